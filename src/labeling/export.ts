// Export of a batch: TRL preference records (prompt / chosen / rejected) and the raw labels.
import fs from 'node:fs';
import path from 'node:path';
import type { Db } from '../store/db.js';
import type { LabelDecision } from '../store/schema.js';
import { resolvePair, type Resolution } from './resolve.js';
import { getBatch } from './batches.js';
import { batchStats } from './stats.js';
import { datasetCard } from './dataset-card.js';
import { consensusRanks, inducePairs, ranksToGroups, type PairRule } from './ranking.js';

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
  /** Ranking items: every answer in item order (response_a/b are the first two). */
  responses?: string[];
  /** Ranking items: dense rank per answer in item order (1 = best; equal ranks tie). */
  ranks?: number[];
  /** Ranking items in a batch with suggestions: the order suggested by the answers' scores (dense ranks). */
  suggested_ranks?: number[];
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
  ranking: string | null;
  suggested_ranking: string | null;
  response_ids: string | null;
}

/** The answer texts of ranking items, by response id. */
function answerTexts(db: Db, batchId: string): Map<string, string> {
  const rows = db.$client
    .prepare(`SELECT r.id, r.text FROM pairs p, json_each(p.response_ids) j JOIN responses r ON r.id = j.value WHERE p.batch_id = ? AND p.response_ids IS NOT NULL`)
    .all(batchId) as { id: string; text: string }[];
  return new Map(rows.map((r) => [r.id, r.text]));
}

export function rawLabels(db: Db, batchId: string): RawLabel[] {
  const rows = db.$client
    .prepare(
      `SELECT l.pair_id, p.batch_id, p.prompt, ra.text AS a, rb.text AS b, l.decision, l.strength, l.rationale, l.flags, l.source,
              l.user_id, l.shown_left, l.duration_ms, p.is_gold, l.created_at, l.ranking, l.suggested_ranking, p.response_ids
       FROM labels l JOIN pairs p ON p.id = l.pair_id JOIN responses ra ON ra.id = p.response_a_id JOIN responses rb ON rb.id = p.response_b_id
       WHERE p.batch_id = ? ORDER BY p.created_at, p.id, l.created_at, l.rowid`,
    )
    .all(batchId) as Row[];
  const texts = rows.some((r) => r.response_ids) ? answerTexts(db, batchId) : new Map<string, string>();
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
    ...(r.response_ids ? { responses: (JSON.parse(r.response_ids) as string[]).map((id) => texts.get(id) ?? '') } : {}),
    ...(r.ranking ? { ranks: JSON.parse(r.ranking) as number[] } : {}),
    ...(r.suggested_ranking ? { suggested_ranks: JSON.parse(r.suggested_ranking) as number[] } : {}),
  }));
}

/** One ranking label in the raw-rankings export (rankings.jsonl). */
export interface RawRanking {
  item_id: string;
  batch_id: string;
  prompt: string;
  /** The answers in item order. */
  responses: string[];
  /** Groups of 0-based answer indices, best first; answers in one group tie. */
  ranking: number[][];
  /** Dense rank per answer (1 = best). */
  ranks: number[];
  /** Batches with suggestions: the order the answers' scores suggested to this labeler (dense ranks). */
  suggested_ranks?: number[];
  /** Set on labels of gold ranking items (known ranking; never turned into preferences). */
  is_gold?: boolean;
  annotator: string;
  user_id: string | null;
  rationale: string | null;
  flags: string[];
  duration_ms: number | null;
  created_at: number;
}

/** Every ranking label of a batch, in queue order (an empty list for a pairwise batch). */
export function rawRankings(db: Db, batchId: string): RawRanking[] {
  return rawLabels(db, batchId)
    .filter((l) => l.ranks && l.responses)
    .map((l) => ({
      item_id: l.pair_id, batch_id: l.batch_id, prompt: l.prompt, responses: l.responses!, ranking: ranksToGroups(l.ranks!), ranks: l.ranks!,
      ...(l.suggested_ranks ? { suggested_ranks: l.suggested_ranks } : {}),
      ...(l.is_gold ? { is_gold: true } : {}),
      annotator: l.annotator, user_id: l.user_id, rationale: l.rationale, flags: l.flags, duration_ms: l.duration_ms, created_at: l.created_at,
    }));
}

export interface PreferenceExport {
  records: PreferenceRecord[];
  /** Pairs that yielded no record, by reason (ranking batches: items; `tie`: every answer tied). */
  excluded: { tie: number; both_bad: number; split: number; no_labels: number };
  resolution: Resolution;
  /** Ranking batches: the pair rule the records were induced by, and how many items gave them. */
  ranking?: { pairRule: PairRule; items: number; rankedItems: number };
}

/**
 * A ranking batch's preferences: per item, the labels' consensus ranking (mean rank, one labeler:
 * their ranking) turned into pairs by the batch's pair rule; ties give no pair.
 */
function rankingPreferences(db: Db, batchId: string, pairRule: PairRule, resolution: Resolution): PreferenceExport {
  const items = db.$client
    .prepare(`SELECT id, prompt, response_ids FROM pairs WHERE batch_id = ? AND is_gold = 0 AND response_ids IS NOT NULL ORDER BY created_at, id`)
    .all(batchId) as { id: string; prompt: string; response_ids: string }[];
  const texts = answerTexts(db, batchId);
  const byItem = new Map<string, number[][]>();
  for (const r of db.$client.prepare(`SELECT l.pair_id, l.ranking FROM labels l JOIN pairs p ON p.id = l.pair_id WHERE p.batch_id = ? AND l.ranking IS NOT NULL ORDER BY l.created_at, l.rowid`).all(batchId) as { pair_id: string; ranking: string }[]) {
    byItem.set(r.pair_id, [...(byItem.get(r.pair_id) ?? []), JSON.parse(r.ranking) as number[]]);
  }
  const excluded = { tie: 0, both_bad: 0, split: 0, no_labels: 0 };
  const records: PreferenceRecord[] = [];
  let ranked = 0;
  for (const it of items) {
    const rs = byItem.get(it.id);
    if (!rs?.length) {
      excluded.no_labels++;
      continue;
    }
    const answers = (JSON.parse(it.response_ids) as string[]).map((id) => texts.get(id) ?? '');
    const pairsOf = inducePairs(consensusRanks(rs), pairRule);
    if (pairsOf.length === 0) excluded.tie++;
    else ranked++;
    for (const [w, l] of pairsOf) records.push({ prompt: it.prompt, chosen: answers[w]!, rejected: answers[l]! });
  }
  return { records, excluded, resolution, ranking: { pairRule, items: items.length, rankedItems: ranked } };
}

/**
 * One record per regular (non-gold) pair whose labels resolve to a preference (see resolvePair for
 * the rules). Pairs appear in queue order.
 */
export function preferenceRecords(db: Db, batchId: string, resolution: Resolution = 'majority'): PreferenceExport {
  const batch = getBatch(db, batchId);
  if (batch.kind === 'ranking') return rankingPreferences(db, batchId, batch.pairRule, resolution);
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
 * The files of a Hugging Face dataset folder for a batch, by name: preferences.jsonl (TRL),
 * labels.jsonl (raw), rankings.jsonl (ranking batches) and the README.md dataset card. What
 * `labels export` writes to a folder and the server hands out as one archive.
 */
export function datasetFiles(db: Db, batchId: string, resolution: Resolution = 'majority'): Record<string, string> & { 'preferences.jsonl': string; 'labels.jsonl': string; 'README.md': string } {
  const batch = getBatch(db, batchId);
  const prefs = preferenceRecords(db, batchId, resolution);
  const raw = rawLabels(db, batchId);
  const rankings = batch.kind === 'ranking' ? rawRankings(db, batchId) : null;
  const card = datasetCard({ batch, stats: batchStats(db, batchId), prefs, labelCount: raw.length, preferencesFile: 'preferences.jsonl', labelsFile: 'labels.jsonl', rankingsFile: rankings ? 'rankings.jsonl' : undefined, rankingCount: rankings?.length });
  return {
    'preferences.jsonl': toJsonl(prefs.records),
    'labels.jsonl': toJsonl(raw),
    ...(rankings ? { 'rankings.jsonl': toJsonl(rankings) } : {}),
    'README.md': card,
  };
}

/**
 * Writes preferences.jsonl, labels.jsonl and a README.md dataset card into `dir` (atomically each:
 * temp file + rename). The card's YAML makes the folder a Hugging Face dataset (`load_dataset(dir)`).
 */
export function exportBatch(db: Db, batchId: string, dir: string, resolution: Resolution = 'majority') {
  const prefs = preferenceRecords(db, batchId, resolution);
  const raw = rawLabels(db, batchId);
  const rankings = getBatch(db, batchId).kind === 'ranking' ? rawRankings(db, batchId) : null;
  fs.mkdirSync(dir, { recursive: true });
  const write = (name: string, text: string) => {
    const p = path.join(dir, name);
    fs.writeFileSync(p + '.tmp', text);
    fs.renameSync(p + '.tmp', p);
    return p;
  };
  const files = datasetFiles(db, batchId, resolution);
  return {
    preferences: write('preferences.jsonl', files['preferences.jsonl']),
    labels: write('labels.jsonl', files['labels.jsonl']),
    ...(rankings ? { rankings: write('rankings.jsonl', files['rankings.jsonl']!) } : {}),
    card: write('README.md', files['README.md']),
    records: prefs.records.length,
    labelCount: raw.length,
    excluded: prefs.excluded,
    resolution,
  };
}
