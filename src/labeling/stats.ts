// Batch quality figures from the database, computed by the pure functions in ./agreement.ts.
import type { Db } from '../store/db.js';
import type { LabelDecision } from '../store/schema.js';
import {
  alphaOfLabels,
  disputedPairs,
  goldAccuracy,
  pairwiseKappa,
  positionBias,
  timePerLabel,
  type LabelObs,
} from './agreement.js';
import { batchProgress, type BatchProgress } from './batches.js';

interface LabelRow {
  pair_id: string;
  source: string;
  user_id: string | null;
  decision: LabelDecision;
  shown_left: 'a' | 'b' | null;
  duration_ms: number | null;
  strength: number | null;
  is_gold: number;
  gold_answer: string | null;
  prompt: string;
}

export function batchLabelObs(db: Db, batchId: string, opts: { userId?: string } = {}): { obs: LabelObs[]; gold: Map<string, string>; prompts: Map<string, string> } {
  const rows = db.$client
    .prepare(
      `SELECT l.pair_id, l.source, l.user_id, l.decision, l.shown_left, l.duration_ms, l.strength, p.is_gold, p.gold_answer, p.prompt
       FROM labels l JOIN pairs p ON p.id = l.pair_id WHERE p.batch_id = ? ${opts.userId ? 'AND l.user_id = ?' : ''} ORDER BY l.created_at, l.rowid`,
    )
    .all(...(opts.userId ? [batchId, opts.userId] : [batchId])) as LabelRow[];
  const gold = new Map<string, string>();
  const prompts = new Map<string, string>();
  const obs = rows.map((r) => {
    if (r.is_gold && r.gold_answer) gold.set(r.pair_id, r.gold_answer);
    prompts.set(r.pair_id, r.prompt);
    return { pairId: r.pair_id, annotator: r.source, decision: r.decision, shownLeft: r.shown_left, durationMs: r.duration_ms, strength: r.strength };
  });
  return { obs, gold, prompts };
}

export interface BatchStats {
  progress: BatchProgress;
  /** Krippendorff's α (nominal) over regular pairs; null when undefined (too few overlapping labels). */
  alpha: number | null;
  kappa: ReturnType<typeof pairwiseKappa>;
  gold: ReturnType<typeof goldAccuracy>;
  positionBias: ReturnType<typeof positionBias>;
  time: ReturnType<typeof timePerLabel>;
  disputed: (ReturnType<typeof disputedPairs>[number] & { prompt: string })[];
  decisions: Record<LabelDecision, number>;
  skips: number;
  /**
   * Anchoring: among labels given with a pre-annotation shown (batch `suggestions`), how many chose
   * exactly what it suggested, overall and per labeler. Read it beside α: a high follow rate with
   * high agreement may be agreement with the suggestion rather than between people.
   */
  suggestions: SuggestionFollow;
}

export interface SuggestionFollow {
  shown: number;
  followed: number;
  rate: number | null;
  byAnnotator: { annotator: string; shown: number; followed: number; rate: number }[];
}

export function suggestionFollow(db: Db, batchId: string): SuggestionFollow {
  const rows = db.$client
    .prepare(
      `SELECT l.source AS annotator, count(*) AS shown, sum(CASE WHEN l.decision = l.suggested THEN 1 ELSE 0 END) AS followed
       FROM labels l JOIN pairs p ON p.id = l.pair_id WHERE p.batch_id = ? AND l.suggested IS NOT NULL GROUP BY l.source ORDER BY l.source`,
    )
    .all(batchId) as { annotator: string; shown: number; followed: number }[];
  const shown = rows.reduce((a, r) => a + r.shown, 0);
  const followed = rows.reduce((a, r) => a + r.followed, 0);
  return { shown, followed, rate: shown ? followed / shown : null, byAnnotator: rows.map((r) => ({ ...r, rate: r.followed / r.shown })) };
}

export function batchStats(db: Db, batchId: string, opts: { disputedLimit?: number } = {}): BatchStats {
  const progress = batchProgress(db, batchId);
  const { obs, gold, prompts } = batchLabelObs(db, batchId);
  // Agreement is measured on regular pairs only: gold pairs have their own measure (accuracy).
  const regular = obs.filter((o) => !gold.has(o.pairId));
  const decisions: Record<LabelDecision, number> = { a: 0, b: 0, tie: 0, both_bad: 0 };
  for (const o of obs) decisions[o.decision]++;
  const skips = db.$client
    .prepare(`SELECT count(*) AS n FROM assignments a JOIN pairs p ON p.id = a.pair_id WHERE p.batch_id = ? AND a.status = 'skipped'`)
    .get(batchId) as { n: number };
  return {
    progress,
    alpha: alphaOfLabels(regular),
    kappa: pairwiseKappa(regular),
    gold: goldAccuracy(obs, gold),
    positionBias: positionBias(obs),
    time: timePerLabel(obs),
    disputed: disputedPairs(regular, opts.disputedLimit ?? 20).map((d) => ({ ...d, prompt: prompts.get(d.pairId) ?? '' })),
    decisions,
    skips: skips.n,
    suggestions: suggestionFollow(db, batchId),
  };
}

/** A labeler's own figures: never anyone else's labels. */
export function ownStats(db: Db, batchId: string, userId: string) {
  const { obs, gold } = batchLabelObs(db, batchId, { userId });
  const t = timePerLabel(obs)[0];
  const g = goldAccuracy(obs, gold)[0];
  return {
    labels: obs.length,
    medianMs: t?.medianMs ?? null,
    goldAccuracy: g?.accuracy ?? null,
    goldLabels: g?.total ?? 0,
    positionBias: positionBias(obs),
  };
}
