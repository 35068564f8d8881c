// Label batches and their pairs: create, fill (with gold pairs mixed in), close, progress.
import { and, eq, inArray, sql } from 'drizzle-orm';
import { inputError, notFound } from '../errors.js';
import { immediate, type Db } from '../store/db.js';
import { assignments, labelBatches, pairs, responses } from '../store/schema.js';
import { newId } from './users.js';
import { mulberry32, shuffle } from './rng.js';
import { MAX_RANK_ANSWERS, groupsToRanks, pairRules, rankingIssues, type PairRule } from './ranking.js';

export const batchKinds = ['pairwise', 'ranking'] as const;
export type BatchKind = (typeof batchKinds)[number];

export interface BatchOptions {
  name: string;
  runId?: string | null;
  stageId?: string | null;
  guidelines?: string;
  /** Labels wanted per pair (≥ 1). */
  quota?: number;
  /** Fraction of the queue that is gold pairs, in [0, 1). */
  goldRate?: number;
  leaseSeconds?: number;
  /** Most labels one labeler may give in the batch; null or absent: no limit. */
  labelerQuota?: number | null;
  /**
   * Show what the scores (judge or reward model) prefer as a pre-annotation: the higher-scored
   * response of a pair, the answers ordered by score in a ranking item.
   */
  suggestions?: boolean;
  /** pairwise (default) or ranking: items of k answers ranked by labelers (docs/labeling.md). */
  kind?: BatchKind;
  /** ranking batches: how rankings become preference pairs (default all). */
  pairRule?: PairRule;
}

export type Batch = typeof labelBatches.$inferSelect;

export function validateBatchOptions(o: BatchOptions): Required<Pick<BatchOptions, 'quota' | 'goldRate' | 'leaseSeconds' | 'guidelines'>> {
  const quota = o.quota ?? 1;
  const goldRate = o.goldRate ?? 0;
  const leaseSeconds = o.leaseSeconds ?? 600;
  const issues = [];
  if (!o.name || o.name.length > 200) issues.push({ field: 'name', reason: 'must be 1–200 characters' });
  if (!Number.isInteger(quota) || quota < 1 || quota > 100) issues.push({ field: 'quota', reason: 'must be an integer in 1..100' });
  if (!(goldRate >= 0 && goldRate < 1)) issues.push({ field: 'goldRate', reason: 'must be in [0, 1)' });
  if (!Number.isInteger(leaseSeconds) || leaseSeconds < 1 || leaseSeconds > 86400) issues.push({ field: 'leaseSeconds', reason: 'must be an integer in 1..86400' });
  if (o.labelerQuota != null && !(Number.isInteger(o.labelerQuota) && o.labelerQuota >= 1 && o.labelerQuota <= 1_000_000)) issues.push({ field: 'labelerQuota', reason: 'must be an integer in 1..1000000, or absent for no limit' });
  if (o.kind !== undefined && !(batchKinds as readonly string[]).includes(o.kind)) issues.push({ field: 'kind', reason: `must be one of ${batchKinds.join(', ')}` });
  if (o.pairRule !== undefined && !(pairRules as readonly string[]).includes(o.pairRule)) issues.push({ field: 'pairRule', reason: `must be one of ${pairRules.join(', ')}` });
  if (o.pairRule !== undefined && o.kind !== 'ranking') issues.push({ field: 'pairRule', reason: 'applies to ranking batches only (kind: ranking)' });
  if (issues.length) throw inputError('invalid label batch settings', issues);
  return { quota, goldRate, leaseSeconds, guidelines: o.guidelines ?? '' };
}

export function createBatch(db: Db, o: BatchOptions): Batch {
  const v = validateBatchOptions(o);
  const row: Batch = {
    id: newId('b'),
    runId: o.runId ?? null,
    stageId: o.stageId ?? null,
    name: o.name,
    guidelines: v.guidelines,
    quota: v.quota,
    goldRate: v.goldRate,
    leaseSeconds: v.leaseSeconds,
    labelerQuota: o.labelerQuota ?? null,
    suggestions: o.suggestions ?? false,
    kind: o.kind ?? 'pairwise',
    pairRule: o.pairRule ?? 'all',
    status: 'open',
    createdAt: Date.now(),
    closedAt: null,
  };
  db.insert(labelBatches).values(row).run();
  return row;
}

export function getBatch(db: Db, id: string): Batch {
  const b = db.select().from(labelBatches).where(eq(labelBatches.id, id)).get();
  if (!b) throw notFound(`no label batch "${id}"`);
  return b;
}

export function listBatches(db: Db, filter: { status?: Batch['status']; runId?: string } = {}): Batch[] {
  const conds = [];
  if (filter.status) conds.push(eq(labelBatches.status, filter.status));
  if (filter.runId) conds.push(eq(labelBatches.runId, filter.runId));
  return db.select().from(labelBatches).where(conds.length ? and(...conds) : undefined).orderBy(labelBatches.createdAt).all();
}

export interface ResponseInput {
  id?: string;
  text: string;
  modelArtifactId?: string | null;
  sampling?: Record<string, unknown> | null;
  seed?: number | null;
  score?: number | null;
}

/** A pair, or (with `rest`) a ranking item whose answers are a, b, ...rest in item order. */
export interface PairInput {
  id?: string;
  prompt: string;
  a: ResponseInput;
  b: ResponseInput;
  /** Ranking items: the answers after the first two (at most MAX_RANK_ANSWERS in all). */
  rest?: ResponseInput[];
}

/** Checks that items fit the batch kind: pairs in a pairwise batch, 2..8 answers in a ranking batch. */
export function itemIssues(kind: BatchKind, input: readonly PairInput[], field = 'pairs'): { field: string; reason: string }[] {
  const out: { field: string; reason: string }[] = [];
  input.forEach((p, i) => {
    const n = 2 + (p.rest?.length ?? 0);
    if (kind === 'pairwise' && p.rest?.length) out.push({ field: `${field}[${i}].rest`, reason: 'a pairwise batch holds pairs only; make the batch with kind: ranking for more answers' });
    if (kind === 'ranking' && n > MAX_RANK_ANSWERS) out.push({ field: `${field}[${i}].rest`, reason: `a ranking item holds at most ${MAX_RANK_ANSWERS} answers (this one has ${n})` });
  });
  return out.slice(0, 20);
}

/** A gold pair: `chosen` is the known better response (or `tie: true` for a known tie). */
export interface GoldInput {
  prompt: string;
  chosen: string;
  rejected: string;
  tie?: boolean;
}

/**
 * A gold ranking item (ranking batches): answers in item order and their known ranking as groups of
 * 1-based answer numbers, best first, answers in one group tie (the form a labeler submits).
 */
export interface GoldRankingInput {
  prompt: string;
  responses: string[];
  ranking: number[][];
}

/** Checks gold ranking items: 2..8 answers, a ranking of exactly those answers. */
export function goldRankingIssues(input: readonly GoldRankingInput[], field = 'goldRankings'): { field: string; reason: string }[] {
  const out: { field: string; reason: string }[] = [];
  input.forEach((g, i) => {
    const k = Array.isArray(g.responses) ? g.responses.length : 0;
    if (k < 2 || k > MAX_RANK_ANSWERS) out.push({ field: `${field}[${i}].responses`, reason: `must hold 2..${MAX_RANK_ANSWERS} answers` });
    else out.push(...rankingIssues(g.ranking, k, `${field}[${i}].ranking`));
  });
  return out.slice(0, 20);
}

/** How many gold pairs make them `rate` of a queue holding `regular` other pairs. */
export function goldCount(regular: number, rate: number, available: number): number {
  if (rate <= 0 || available <= 0) return 0;
  return Math.min(available, Math.round((regular * rate) / (1 - rate)));
}

/**
 * Adds pairs (and their responses) to a batch, with gold pairs mixed in at the batch's gold rate.
 * Queue order is a seeded shuffle of regular and gold pairs, so gold is spread through the batch
 * rather than bunched at one end. One transaction: all pairs are added, or none.
 */
export function addPairs(db: Db, batchId: string, input: PairInput[], opts: { gold?: GoldInput[]; goldRankings?: GoldRankingInput[]; seed?: number } = {}): { added: number; gold: number; pairIds: string[] } {
  const rand = mulberry32(opts.seed ?? 0x5eed);
  return immediate(db, (tx) => {
    const batch = tx.select().from(labelBatches).where(eq(labelBatches.id, batchId)).get();
    if (!batch) throw notFound(`no label batch "${batchId}"`);
    if (batch.status === 'closed') throw inputError(`label batch "${batch.name}" is closed`);
    const bad = itemIssues(batch.kind, input);
    if (bad.length) throw inputError(`items do not fit ${batch.kind} batch "${batch.name}"`, bad);
    // Gold fits the batch kind: gold pairs for a pairwise batch, gold rankings for a ranking batch.
    if (batch.kind === 'ranking' && opts.gold?.length) throw inputError(`ranking batch "${batch.name}" takes gold rankings, not gold pairs`, [{ field: 'gold', reason: 'give gold ranking items: {prompt, responses, ranking}' }]);
    if (batch.kind === 'pairwise' && opts.goldRankings?.length) throw inputError(`pairwise batch "${batch.name}" takes gold pairs, not gold rankings`, [{ field: 'goldRankings', reason: 'give gold pairs: {prompt, chosen, rejected}' }]);
    const badGold = goldRankingIssues(opts.goldRankings ?? []);
    if (badGold.length) throw inputError('invalid gold ranking items', badGold);
    type GoldRow = { kind: 'gold'; p: GoldInput } | { kind: 'goldRanking'; p: GoldRankingInput };
    const goldPool = shuffle<GoldRow>(batch.kind === 'ranking' ? (opts.goldRankings ?? []).map((p) => ({ kind: 'goldRanking' as const, p })) : (opts.gold ?? []).map((p) => ({ kind: 'gold' as const, p })), rand);
    const g = goldCount(input.length, batch.goldRate, goldPool.length);
    type Row = { kind: 'pair'; p: PairInput } | GoldRow;
    const rows: Row[] = shuffle([...input.map((p) => ({ kind: 'pair' as const, p })), ...goldPool.slice(0, g)], rand);
    const last = tx.select({ t: sql<number | null>`max(${pairs.createdAt})` }).from(pairs).where(eq(pairs.batchId, batchId)).get();
    const base = Math.max(Date.now(), (last?.t ?? 0) + 1);
    const ids: string[] = [];
    rows.forEach((r, i) => {
      const createdAt = base + i;
      if (r.kind === 'pair') {
        const a = insertResponse(tx, batch, r.p.prompt, r.p.a, createdAt);
        const b = insertResponse(tx, batch, r.p.prompt, r.p.b, createdAt);
        // A ranking item keeps every answer; even a 2-answer one is ranked, not chosen between.
        const responseIds = batch.kind === 'ranking' ? [a, b, ...(r.p.rest ?? []).map((x) => insertResponse(tx, batch, r.p.prompt, x, createdAt))] : null;
        // A pair stored earlier without a batch (by the collect stage) joins this batch as it is;
        // one already in another batch is copied (same responses, new pair id).
        const existing = r.p.id ? tx.select({ batchId: pairs.batchId }).from(pairs).where(eq(pairs.id, r.p.id)).get() : undefined;
        if (existing && existing.batchId === null) {
          tx.update(pairs).set({ batchId, createdAt, responseIds }).where(eq(pairs.id, r.p.id!)).run();
          ids.push(r.p.id!);
          return;
        }
        const id = r.p.id && !existing ? r.p.id : newId('p');
        tx.insert(pairs).values({ id, batchId, runId: batch.runId, stageId: batch.stageId, prompt: r.p.prompt, responseAId: a, responseBId: b, responseIds, createdAt }).run();
        ids.push(id);
      } else if (r.kind === 'goldRanking') {
        // A gold ranking item is shown like any item (in a random order per assignment); the known
        // ranking is stored in item order, its first two answers compared in gold_answer.
        const k = r.p.responses.length;
        const ids = r.p.responses.map((text) => insertResponse(tx, batch, r.p.prompt, { text }, createdAt));
        const ranks = groupsToRanks(r.p.ranking, k);
        const goldAnswer = ranks[0]! < ranks[1]! ? 'a' : ranks[0]! > ranks[1]! ? 'b' : 'tie';
        const id = newId('p');
        tx.insert(pairs).values({ id, batchId, runId: batch.runId, stageId: batch.stageId, prompt: r.p.prompt, responseAId: ids[0]!, responseBId: ids[1]!, responseIds: ids, isGold: true, goldAnswer, goldRanking: ranks, createdAt }).run();
      } else {
        // Which side holds the better response is random, so gold answers are not always "a".
        const chosenIsA = rand() < 0.5;
        const [ta, tb] = chosenIsA ? [r.p.chosen, r.p.rejected] : [r.p.rejected, r.p.chosen];
        const a = insertResponse(tx, batch, r.p.prompt, { text: ta }, createdAt);
        const b = insertResponse(tx, batch, r.p.prompt, { text: tb }, createdAt);
        const id = newId('p');
        const goldAnswer = r.p.tie ? 'tie' : chosenIsA ? 'a' : 'b';
        tx.insert(pairs).values({ id, batchId, runId: batch.runId, stageId: batch.stageId, prompt: r.p.prompt, responseAId: a, responseBId: b, isGold: true, goldAnswer, createdAt }).run();
      }
    });
    return { added: input.length, gold: g, pairIds: ids };
  });
}

function insertResponse(tx: Db, batch: Batch, prompt: string, r: ResponseInput, createdAt: number): string {
  if (r.id) {
    const existing = tx.select({ id: responses.id }).from(responses).where(eq(responses.id, r.id)).get();
    if (existing) return r.id;
  }
  const id = r.id ?? newId('r');
  tx.insert(responses)
    .values({ id, runId: batch.runId, stageId: batch.stageId, prompt, text: r.text, modelArtifactId: r.modelArtifactId ?? null, sampling: r.sampling ?? null, seed: r.seed ?? null, score: r.score ?? null, createdAt })
    .run();
  return id;
}

/**
 * Closes a batch: no new assignments, submissions and undos are refused from now on, live leases
 * end. Runs in an immediate transaction, so a racing submission is ordered strictly before (stored)
 * or after (refused with a message) — never half-applied.
 */
export function closeBatch(db: Db, batchId: string): Batch {
  return immediate(db, (tx) => {
    const b = tx.select().from(labelBatches).where(eq(labelBatches.id, batchId)).get();
    if (!b) throw notFound(`no label batch "${batchId}"`);
    if (b.status === 'closed') return b;
    const now = Date.now();
    tx.update(labelBatches).set({ status: 'closed', closedAt: now }).where(eq(labelBatches.id, batchId)).run();
    tx.update(assignments)
      .set({ status: 'expired' })
      .where(and(eq(assignments.status, 'leased'), inArray(assignments.pairId, tx.select({ id: pairs.id }).from(pairs).where(eq(pairs.batchId, batchId)))))
      .run();
    return { ...b, status: 'closed' as const, closedAt: now };
  });
}

export interface BatchProgress {
  batchId: string;
  name: string;
  status: Batch['status'];
  quota: number;
  /** Regular (non-gold) pairs. */
  pairs: number;
  goldPairs: number;
  /** Regular pairs with labelCount ≥ quota. */
  completePairs: number;
  /** Σ min(labelCount, quota) over regular pairs: the progress numerator. */
  done: number;
  /** pairs × quota. */
  total: number;
  labels: number;
  liveLeases: number;
}

export function batchProgress(db: Db, batchId: string, now = Date.now()): BatchProgress {
  const b = getBatch(db, batchId);
  const r = db.$client
    .prepare(
      `SELECT
         sum(CASE WHEN is_gold = 0 THEN 1 ELSE 0 END) AS pairs,
         sum(CASE WHEN is_gold = 1 THEN 1 ELSE 0 END) AS gold,
         sum(CASE WHEN is_gold = 0 AND label_count >= ? THEN 1 ELSE 0 END) AS complete,
         sum(CASE WHEN is_gold = 0 THEN min(label_count, ?) ELSE 0 END) AS done,
         sum(label_count) AS labels
       FROM pairs WHERE batch_id = ?`,
    )
    .get(b.quota, b.quota, batchId) as { pairs: number | null; gold: number | null; complete: number | null; done: number | null; labels: number | null };
  const leases = db.$client
    .prepare(`SELECT count(*) AS n FROM assignments a JOIN pairs p ON p.id = a.pair_id WHERE p.batch_id = ? AND a.status = 'leased' AND a.lease_expires_at > ?`)
    .get(batchId, now) as { n: number };
  const n = r.pairs ?? 0;
  return {
    batchId,
    name: b.name,
    status: b.status,
    quota: b.quota,
    pairs: n,
    goldPairs: r.gold ?? 0,
    completePairs: r.complete ?? 0,
    done: r.done ?? 0,
    total: n * b.quota,
    labels: r.labels ?? 0,
    liveLeases: b.status !== 'closed' ? leases.n : 0,
  };
}
