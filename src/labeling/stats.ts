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
  type GoldScore,
  type LabelObs,
} from './agreement.js';
import { batchProgress, type BatchProgress } from './batches.js';
import { kendallTauB, rankingAgreement, type RankingAgreement, type RankingObs } from './ranking.js';

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
  gold_ranking: string | null;
  prompt: string;
  ranking: string | null;
  shown_order: string | null;
}

/**
 * A ranking label seen as the pairwise measures see labels: one observation per two answers i < j
 * of the item, on the unit "<item>#i-j", decision a (i ranked better), b or tie, and "left" the one
 * of the two shown earlier. So α, κ, disputed units and position bias are over answer pairs.
 */
function rankingPairObs(itemId: string, annotator: string, ranks: number[], order: number[] | null): LabelObs[] {
  const out: LabelObs[] = [];
  for (let i = 0; i < ranks.length; i++) {
    for (let j = i + 1; j < ranks.length; j++) {
      const decision: LabelDecision = ranks[i]! < ranks[j]! ? 'a' : ranks[i]! > ranks[j]! ? 'b' : 'tie';
      const shownLeft = order ? (order.indexOf(i) < order.indexOf(j) ? 'a' : 'b') : null;
      out.push({ pairId: `${itemId}#${i}-${j}`, annotator, decision, shownLeft });
    }
  }
  return out;
}

export function batchLabelObs(db: Db, batchId: string, opts: { userId?: string } = {}): { obs: LabelObs[]; pairObs: LabelObs[]; rankings: RankingObs[]; gold: Map<string, string>; goldRanks: Map<string, number[]>; prompts: Map<string, string> } {
  const rows = db.$client
    .prepare(
      `SELECT l.pair_id, l.source, l.user_id, l.decision, l.shown_left, l.duration_ms, l.strength, p.is_gold, p.gold_answer, p.gold_ranking, p.prompt, l.ranking, a.shown_order
       FROM labels l JOIN pairs p ON p.id = l.pair_id LEFT JOIN assignments a ON a.id = l.assignment_id
       WHERE p.batch_id = ? ${opts.userId ? 'AND l.user_id = ?' : ''} ORDER BY l.created_at, l.rowid`,
    )
    .all(...(opts.userId ? [batchId, opts.userId] : [batchId])) as LabelRow[];
  const gold = new Map<string, string>();
  const goldRanks = new Map<string, number[]>();
  const prompts = new Map<string, string>();
  const pairObs: LabelObs[] = [];
  const rankings: RankingObs[] = [];
  const obs = rows.map((r) => {
    if (r.is_gold && r.gold_answer) gold.set(r.pair_id, r.gold_answer);
    if (r.is_gold && r.gold_ranking) goldRanks.set(r.pair_id, JSON.parse(r.gold_ranking) as number[]);
    prompts.set(r.pair_id, r.prompt);
    const o: LabelObs = { pairId: r.pair_id, annotator: r.source, decision: r.decision, shownLeft: r.shown_left, durationMs: r.duration_ms, strength: r.strength };
    if (r.ranking) {
      const ranks = JSON.parse(r.ranking) as number[];
      rankings.push({ itemId: r.pair_id, annotator: r.source, ranks });
      pairObs.push(...rankingPairObs(r.pair_id, r.source, ranks, r.shown_order ? (JSON.parse(r.shown_order) as number[]) : null));
    } else pairObs.push(o);
    return o;
  });
  // obs: one per label (time, gold); pairObs: one per answer pair compared (agreement, bias).
  return { obs, pairObs, rankings, gold, goldRanks, prompts };
}

/**
 * A labeler's answers on gold ranking items: per labeler, how many rankings put exactly the gold
 * ranking's best answer(s) first (top-1 match: `correct` / `total`, `accuracy`) and the mean
 * Kendall's τ-b between their ranking and the gold one (`meanTau`, over `tauLabels`: τ-b is
 * undefined when either ranking ties every answer).
 */
export function goldRankingScores(rankings: readonly RankingObs[], goldRanks: ReadonlyMap<string, readonly number[]>): GoldScore[] {
  const top = (ranks: readonly number[]) => ranks.flatMap((r, i) => (r === Math.min(...ranks) ? [i] : [])).join(',');
  const compared = rankings.flatMap((r) => {
    const g = goldRanks.get(r.itemId);
    return g && g.length === r.ranks.length ? [{ annotator: r.annotator, ranks: r.ranks, ref: g }] : [];
  });
  return byAnnotator(againstReference(compared, (ranks, ref) => top(ranks) === top(ref)).per)
    .map((e) => ({ annotator: e.annotator, correct: e.matched, total: e.total, accuracy: e.total ? e.matched / e.total : null, meanTau: meanOf(e.taus), tauLabels: e.taus.length }));
}

interface ReferenceTally {
  annotator: string;
  total: number;
  matched: number;
  taus: number[];
}

/**
 * Rankings held against a reference ranking of the same item (a gold ranking, a suggested order),
 * per labeler: how many, how many `matches` accepts, and each Kendall's τ-b to the reference
 * (left out where undefined: either ranking ties every answer); `all` is every τ-b in input order.
 */
function againstReference(items: readonly { annotator: string; ranks: readonly number[]; ref: readonly number[] }[], matches: (ranks: readonly number[], ref: readonly number[]) => boolean): { per: Map<string, ReferenceTally>; all: number[] } {
  const per = new Map<string, ReferenceTally>();
  const all: number[] = [];
  for (const it of items) {
    const e = per.get(it.annotator) ?? { annotator: it.annotator, total: 0, matched: 0, taus: [] };
    e.total++;
    if (matches(it.ranks, it.ref)) e.matched++;
    const t = kendallTauB(it.ranks, it.ref);
    if (t !== null) {
      e.taus.push(t);
      all.push(t);
    }
    per.set(it.annotator, e);
  }
  return { per, all };
}

const meanOf = (xs: readonly number[]) => (xs.length ? xs.reduce((a, x) => a + x, 0) / xs.length : null);
const byAnnotator = <T extends { annotator: string }>(m: ReadonlyMap<string, T>) => [...m.values()].sort((x, y) => (x.annotator < y.annotator ? -1 : x.annotator > y.annotator ? 1 : 0));

/** Gold figures of a batch: accuracy on gold pairs, or top-1 match and τ-b on gold rankings. */
function goldScores(obs: readonly LabelObs[], rankings: readonly RankingObs[], gold: ReadonlyMap<string, string>, goldRanks: ReadonlyMap<string, readonly number[]>): GoldScore[] {
  if (goldRanks.size) return goldRankingScores(rankings, goldRanks);
  return goldAccuracy(obs, gold);
}

export interface BatchStats {
  progress: BatchProgress;
  /** Krippendorff's α (nominal) over regular pairs; null when undefined (too few overlapping labels). */
  alpha: number | null;
  kappa: ReturnType<typeof pairwiseKappa>;
  /**
   * Per labeler on gold items: in a pairwise batch the share of gold pairs answered exactly as known;
   * in a ranking batch `correct` counts top-1 matches (the labeler's best answer(s) are exactly the
   * gold ranking's) and `meanTau` is the mean Kendall's τ-b to the gold ranking.
   */
  gold: GoldScore[];
  positionBias: ReturnType<typeof positionBias>;
  time: ReturnType<typeof timePerLabel>;
  disputed: (ReturnType<typeof disputedPairs>[number] & { prompt: string })[];
  decisions: Record<LabelDecision, number>;
  skips: number;
  /**
   * Anchoring: among labels given with a pre-annotation shown (batch `suggestions`), how many chose
   * exactly what it suggested (a ranking: the same order, ties included), overall and per labeler;
   * for rankings also the mean Kendall τ-b between label and suggestion. Read it beside α / τ-b
   * between labelers: high agreement with a high follow rate may be agreement with the suggestion
   * rather than between people.
   */
  suggestions: SuggestionFollow;
  /**
   * Ranking batches: Kendall's τ-b between labelers and their pairwise agreement over answer pairs
   * (src/labeling/ranking.ts); null in a pairwise batch. α, κ, decisions, disputed units and
   * position bias above are then over answer pairs ("<item>#i-j").
   */
  ranking: RankingAgreement | null;
}

export interface SuggestionFollow {
  /** Labels given with a suggestion shown. */
  shown: number;
  /** Of those, labels equal to the suggestion: the same choice; for a ranking, the same order exactly (ties included). */
  followed: number;
  rate: number | null;
  /**
   * Ranking labels: the mean Kendall τ-b between each label and the order suggested (1: the same
   * order; 0: unrelated; −1: reversed), over `tauLabels` labels (τ-b is undefined, and left out,
   * when either ties every answer). Null in a pairwise batch or with no such label.
   */
  meanTau: number | null;
  tauLabels: number;
  byAnnotator: { annotator: string; shown: number; followed: number; rate: number; meanTau: number | null; tauLabels: number }[];
}

export function suggestionFollow(db: Db, batchId: string): SuggestionFollow {
  const pairRows = db.$client
    .prepare(
      `SELECT l.source AS annotator, count(*) AS shown, sum(CASE WHEN l.decision = l.suggested THEN 1 ELSE 0 END) AS followed
       FROM labels l JOIN pairs p ON p.id = l.pair_id WHERE p.batch_id = ? AND l.suggested IS NOT NULL GROUP BY l.source ORDER BY l.source`,
    )
    .all(batchId) as { annotator: string; shown: number; followed: number }[];
  // Ranking labels: compared with the suggested order in item order (both dense ranks).
  const rankRows = db.$client
    .prepare(`SELECT l.source AS annotator, l.ranking, l.suggested_ranking FROM labels l JOIN pairs p ON p.id = l.pair_id WHERE p.batch_id = ? AND l.suggested_ranking IS NOT NULL AND l.ranking IS NOT NULL`)
    .all(batchId) as { annotator: string; ranking: string; suggested_ranking: string }[];
  const same = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((x, i) => x === b[i]);
  const { per, all } = againstReference(rankRows.map((r) => ({ annotator: r.annotator, ranks: JSON.parse(r.ranking) as number[], ref: JSON.parse(r.suggested_ranking) as number[] })), same);
  for (const r of pairRows) {
    const e = per.get(r.annotator) ?? { annotator: r.annotator, total: 0, matched: 0, taus: [] };
    per.set(r.annotator, { ...e, total: e.total + r.shown, matched: e.matched + r.followed });
  }
  const rows = byAnnotator(per);
  const shown = rows.reduce((a, r) => a + r.total, 0);
  const followed = rows.reduce((a, r) => a + r.matched, 0);
  return {
    shown,
    followed,
    rate: shown ? followed / shown : null,
    meanTau: meanOf(all),
    tauLabels: all.length,
    byAnnotator: rows.map((r) => ({ annotator: r.annotator, shown: r.total, followed: r.matched, rate: r.matched / r.total, meanTau: meanOf(r.taus), tauLabels: r.taus.length })),
  };
}

export function batchStats(db: Db, batchId: string, opts: { disputedLimit?: number } = {}): BatchStats {
  const progress = batchProgress(db, batchId);
  const { obs, pairObs, rankings, gold, goldRanks, prompts } = batchLabelObs(db, batchId);
  // Agreement is measured on regular pairs only: gold pairs have their own measure (accuracy). A
  // ranking's answer-pair units are "<item>#i-j".
  const regular = pairObs.filter((o) => !gold.has(o.pairId.split('#')[0]!));
  const decisions: Record<LabelDecision, number> = { a: 0, b: 0, tie: 0, both_bad: 0 };
  for (const o of pairObs) decisions[o.decision]++;
  const isRanking = (db.$client.prepare(`SELECT kind FROM label_batches WHERE id = ?`).get(batchId) as { kind: string }).kind === 'ranking';
  const skips = db.$client
    .prepare(`SELECT count(*) AS n FROM assignments a JOIN pairs p ON p.id = a.pair_id WHERE p.batch_id = ? AND a.status = 'skipped'`)
    .get(batchId) as { n: number };
  return {
    progress,
    alpha: alphaOfLabels(regular),
    kappa: pairwiseKappa(regular),
    gold: goldScores(obs, rankings, gold, goldRanks),
    positionBias: positionBias(pairObs),
    time: timePerLabel(obs),
    disputed: disputedPairs(regular, opts.disputedLimit ?? 20).map((d) => ({ ...d, prompt: prompts.get(d.pairId.split('#')[0]!) ?? '' })),
    decisions,
    skips: skips.n,
    suggestions: suggestionFollow(db, batchId),
    ranking: isRanking ? rankingAgreement(rankings.filter((r) => !gold.has(r.itemId))) : null,
  };
}

/** A labeler's own figures: never anyone else's labels. */
export function ownStats(db: Db, batchId: string, userId: string) {
  const { obs, pairObs, rankings, gold, goldRanks } = batchLabelObs(db, batchId, { userId });
  const t = timePerLabel(obs)[0];
  const g = goldScores(obs, rankings, gold, goldRanks)[0];
  return {
    labels: obs.length,
    medianMs: t?.medianMs ?? null,
    // Ranking batches: the top-1 match rate on gold rankings, and the mean τ-b to them.
    goldAccuracy: g?.accuracy ?? null,
    goldLabels: g?.total ?? 0,
    ...(g && g.meanTau !== undefined ? { goldTau: g.meanTau } : {}),
    positionBias: positionBias(pairObs),
  };
}
