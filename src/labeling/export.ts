// Export of a batch: TRL preference records (prompt / chosen / rejected) and the raw labels.
import fs from 'node:fs';
import path from 'node:path';
import type { Db } from '../store/db.js';
import type { LabelDecision } from '../store/schema.js';
import { resolvePair, type Resolution } from './resolve.js';
import { getBatch } from './batches.js';
import { batchStats } from './stats.js';
import { datasetCard } from './dataset-card.js';

/** TRL's explicit-prompt preference record, the same shape src/data reads as a preference dataset. */
export interface PreferenceRecord {
  prompt: string;
  chosen: string;
  rejected: string;
}

export interface RawLabel {
  pair_id: string;
  batch_id: string;
  prompt: string;
  response_a: string;
  response_b: string;
  decision: LabelDecision;
  strength: number | null;
  rationale: string | null;
  flags: string[];
  annotator: string;
  user_id: string | null;
  shown_left: 'a' | 'b' | null;
  duration_ms: number | null;
  is_gold: boolean;
  created_at: number;
}

interface Row {
  pair_id: string;
  batch_id: string;
  prompt: string;
  a: string;
  b: string;
  decision: LabelDecision;
  strength: number | null;
  rationale: string | null;
  flags: string | null;
  source: string;
  user_id: string | null;
  shown_left: 'a' | 'b' | null;
  duration_ms: number | null;
  is_gold: number;
  created_at: number;
}

export function rawLabels(db: Db, batchId: string): RawLabel[] {
  const rows = db.$client
    .prepare(
      `SELECT l.pair_id, p.batch_id, p.prompt, ra.text AS a, rb.text AS b, l.decision, l.strength, l.rationale, l.flags, l.source,
              l.user_id, l.shown_left, l.duration_ms, p.is_gold, l.created_at
       FROM labels l JOIN pairs p ON p.id = l.pair_id JOIN responses ra ON ra.id = p.response_a_id JOIN responses rb ON rb.id = p.response_b_id
       WHERE p.batch_id = ? ORDER BY p.created_at, p.id, l.created_at, l.rowid`,
    )
    .all(batchId) as Row[];
  return rows.map((r) => ({
    pair_id: r.pair_id,
    batch_id: r.batch_id,
    prompt: r.prompt,
    response_a: r.a,
    response_b: r.b,
    decision: r.decision,
    strength: r.strength,
    rationale: r.rationale,
    flags: r.flags ? (JSON.parse(r.flags) as string[]) : [],
    annotator: r.source,
    user_id: r.user_id,
    shown_left: r.shown_left,
    duration_ms: r.duration_ms,
    is_gold: r.is_gold === 1,
    created_at: r.created_at,
  }));
}

export interface PreferenceExport {
  records: PreferenceRecord[];
  /** Pairs that yielded no record, by reason. */
  excluded: { tie: number; both_bad: number; split: number; no_labels: number };
  resolution: Resolution;
}

/**
 * One record per regular (non-gold) pair whose labels resolve to a preference (see resolvePair for
 * the rules). Pairs appear in queue order.
 */
export function preferenceRecords(db: Db, batchId: string, resolution: Resolution = 'majority'): PreferenceExport {
  const pairsRows = db.$client
    .prepare(
      `SELECT p.id, p.prompt, ra.text AS a, rb.text AS b FROM pairs p JOIN responses ra ON ra.id = p.response_a_id JOIN responses rb ON rb.id = p.response_b_id
       WHERE p.batch_id = ? AND p.is_gold = 0 ORDER BY p.created_at, p.id`,
    )
    .all(batchId) as { id: string; prompt: string; a: string; b: string }[];
  const votes = new Map<string, { decision: LabelDecision; strength: number | null }[]>();
  for (const v of db.$client
    .prepare(`SELECT l.pair_id, l.decision, l.strength FROM labels l JOIN pairs p ON p.id = l.pair_id WHERE p.batch_id = ? AND p.is_gold = 0`)
    .all(batchId) as { pair_id: string; decision: LabelDecision; strength: number | null }[]) {
    const list = votes.get(v.pair_id) ?? [];
    list.push(v);
    votes.set(v.pair_id, list);
  }
  const excluded = { tie: 0, both_bad: 0, split: 0, no_labels: 0 };
  const records: PreferenceRecord[] = [];
  for (const p of pairsRows) {
    const r = resolvePair(votes.get(p.id) ?? [], resolution);
    if (r.winner === 'a') records.push({ prompt: p.prompt, chosen: p.a, rejected: p.b });
    else if (r.winner === 'b') records.push({ prompt: p.prompt, chosen: p.b, rejected: p.a });
    else excluded[r.reason as keyof typeof excluded]++;
  }
  return { records, excluded, resolution };
}

export function toJsonl(rows: readonly unknown[]): string {
  return rows.map((r) => JSON.stringify(r)).join('\n') + (rows.length ? '\n' : '');
}

/**
 * Writes preferences.jsonl, labels.jsonl and a README.md dataset card into `dir` (atomically each:
 * temp file + rename). The card's YAML makes the folder a Hugging Face dataset (`load_dataset(dir)`).
 */
export function exportBatch(db: Db, batchId: string, dir: string, resolution: Resolution = 'majority') {
  const prefs = preferenceRecords(db, batchId, resolution);
  const raw = rawLabels(db, batchId);
  fs.mkdirSync(dir, { recursive: true });
  const write = (name: string, text: string) => {
    const p = path.join(dir, name);
    fs.writeFileSync(p + '.tmp', text);
    fs.renameSync(p + '.tmp', p);
    return p;
  };
  const card = datasetCard({ batch: getBatch(db, batchId), stats: batchStats(db, batchId), prefs, labelCount: raw.length, preferencesFile: 'preferences.jsonl', labelsFile: 'labels.jsonl' });
  return {
    preferences: write('preferences.jsonl', toJsonl(prefs.records)),
    labels: write('labels.jsonl', toJsonl(raw)),
    card: write('README.md', card),
    records: prefs.records.length,
    labelCount: raw.length,
    excluded: prefs.excluded,
    resolution,
  };
}
