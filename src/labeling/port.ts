// The labeling services the collect, label, eval and online_dpo stages use (StageContext.labeling).
// Stages never see SQL; the orchestrator's context builder (src/orchestrator/context.ts) makes this
// object over its database for every stage it runs:
//
//   ctx.labeling = createLabelingPort(db);
//
// A worker on another host gets the same interface over the coordinator API
// (src/orchestrator/remote/labeling.ts), which is why every method returns a Promise. The writes
// are idempotent, because a remote worker retries a request whose answer was lost: savePairs and
// recordLabels skip the ids already stored (the remote client names every pair, response and
// label before sending), ensureBatch finds the stage's batch, fillBatch leaves a filled batch
// as it is, closeBatch and setScore are idempotent by nature.
import { and, eq } from 'drizzle-orm';
import { AlignflowError, inputError } from '../errors.js';
import { immediate, type Db } from '../store/db.js';
import { labelBatches, labelDecisions, pairs, responses, type LabelDecision } from '../store/schema.js';
import { addPairs, batchProgress, closeBatch, createBatch, type Batch, type BatchOptions, type BatchProgress, type GoldInput, type GoldRankingInput, type PairInput } from './batches.js';
import { preferenceRecords, rawLabels, type PreferenceExport, type RawLabel } from './export.js';
import type { Resolution } from './resolve.js';
import { newId } from './users.js';

/** A label made by a machine (rule judge, reward model, import) rather than through a lease. */
export interface MachineLabel {
  /** The label's id (default: a new one). A label whose id is already stored is not stored again. */
  id?: string;
  pairId: string;
  decision: LabelDecision;
  /** "judge:<name>@<version>", "reward_model:<artifact>", "import:<file>", or "user:<name>" for imports. */
  source: string;
  strength?: number | null;
  rationale?: string | null;
}

export interface StoredPair {
  pairId: string;
  prompt: string;
  a: { id: string; text: string };
  b: { id: string; text: string };
}

export interface LabelingService {
  readonly kind: 'alignflow.labeling/1';
  /** Collect: stores responses and pairs (not yet in any batch); returns the pair ids in order. */
  savePairs(runId: string, stageId: string, pairs: PairInput[]): Promise<string[]>;
  /**
   * The batch of this stage, created on first call (so a retried or resumed stage finds its own).
   * `perName`: a stage with several batches (online DPO: one per step) finds the one of this name.
   */
  ensureBatch(opts: BatchOptions & { runId: string; stageId: string; perName?: boolean }): Promise<Batch>;
  /** Puts pairs (+ gold) into an empty batch; a batch that already holds pairs is left as it is. */
  fillBatch(batchId: string, pairs: PairInput[], opts?: { gold?: GoldInput[]; goldRankings?: GoldRankingInput[]; seed?: number }): Promise<{ added: number; gold: number; alreadyFilled: boolean }>;
  progress(batchId: string): Promise<BatchProgress>;
  /** Regular (non-gold) pairs of the batch with their response texts, in queue order. */
  pairsOf(batchId: string): Promise<StoredPair[]>;
  /** Number of labels already in the batch (a retried machine labeler does not label twice). */
  labelCount(batchId: string): Promise<number>;
  /** Stores machine labels in one transaction (all or none); labels whose id is stored already are skipped. */
  recordLabels(batchId: string, labels: MachineLabel[]): Promise<number>;
  /** Records a response's score (reward model or rule score). */
  setScore(responseId: string, score: number): Promise<void>;
  closeBatch(batchId: string): Promise<void>;
  preferences(batchId: string, resolution?: Resolution): Promise<PreferenceExport>;
  rawLabels(batchId: string): Promise<RawLabel[]>;
}

export function isLabelingService(x: unknown): x is LabelingService {
  return typeof x === 'object' && x !== null && (x as { kind?: unknown }).kind === 'alignflow.labeling/1';
}

export function requireLabeling(x: unknown): LabelingService {
  if (!isLabelingService(x)) throw new AlignflowError('internal', 'this stage needs the labeling service (StageContext.labeling = createLabelingPort(db)) and the executor did not provide it');
  return x;
}

export function createLabelingPort(db: Db): LabelingService {
  return {
    kind: 'alignflow.labeling/1',
    async savePairs(runId, stageId, input) {
      const now = Date.now();
      return immediate(db, (tx) =>
        input.map((p, i) => {
          const ins = (r: PairInput['a']) => {
            const id = r.id ?? newId('r');
            if (!tx.select({ id: responses.id }).from(responses).where(eq(responses.id, id)).get()) {
              tx.insert(responses)
                .values({ id, runId, stageId, prompt: p.prompt, text: r.text, modelArtifactId: r.modelArtifactId ?? null, sampling: r.sampling ?? null, seed: r.seed ?? null, score: r.score ?? null, createdAt: now })
                .run();
            }
            return id;
          };
          const a = ins(p.a);
          const b = ins(p.b);
          // A ranking item keeps all its answers (a, b first).
          const responseIds = p.rest ? [a, b, ...p.rest.map(ins)] : null;
          const id = p.id ?? newId('p');
          if (!tx.select({ id: pairs.id }).from(pairs).where(eq(pairs.id, id)).get()) {
            tx.insert(pairs).values({ id, batchId: null, runId, stageId, prompt: p.prompt, responseAId: a, responseBId: b, responseIds, createdAt: now + i }).run();
          }
          return id;
        }),
      );
    },
    async ensureBatch({ perName, ...opts }) {
      return immediate(db, (tx) => {
        const existing = tx
          .select()
          .from(labelBatches)
          .where(perName ? and(eq(labelBatches.stageId, opts.stageId), eq(labelBatches.name, opts.name)) : eq(labelBatches.stageId, opts.stageId))
          .get();
        if (existing) return existing;
        return createBatch(tx, opts);
      });
    },
    async fillBatch(batchId, input, opts = {}) {
      const n = db.$client.prepare(`SELECT count(*) AS n FROM pairs WHERE batch_id = ?`).get(batchId) as { n: number };
      if (n.n > 0) return { added: 0, gold: 0, alreadyFilled: true };
      const r = addPairs(db, batchId, input, opts);
      return { added: r.added, gold: r.gold, alreadyFilled: false };
    },
    progress: async (batchId) => batchProgress(db, batchId),
    async pairsOf(batchId) {
      const rows = db.$client
        .prepare(
          `SELECT p.id, p.prompt, ra.id AS aid, ra.text AS a, rb.id AS bid, rb.text AS b FROM pairs p JOIN responses ra ON ra.id = p.response_a_id JOIN responses rb ON rb.id = p.response_b_id
           WHERE p.batch_id = ? AND p.is_gold = 0 ORDER BY p.created_at, p.id`,
        )
        .all(batchId) as { id: string; prompt: string; aid: string; a: string; bid: string; b: string }[];
      return rows.map((r) => ({ pairId: r.id, prompt: r.prompt, a: { id: r.aid, text: r.a }, b: { id: r.bid, text: r.b } }));
    },
    async labelCount(batchId) {
      return (db.$client.prepare(`SELECT count(*) AS n FROM labels l JOIN pairs p ON p.id = l.pair_id WHERE p.batch_id = ?`).get(batchId) as { n: number }).n;
    },
    async recordLabels(batchId, list) {
      const now = Date.now();
      return immediate(db, () => {
        const inBatch = db.$client.prepare(`SELECT batch_id FROM pairs WHERE id = ?`);
        const ins = db.$client.prepare(
          `INSERT INTO labels (id, pair_id, assignment_id, user_id, source, decision, strength, rationale, flags, shown_left, duration_ms, created_at) VALUES (?, ?, NULL, NULL, ?, ?, ?, ?, NULL, NULL, NULL, ?)`,
        );
        const bump = db.$client.prepare(`UPDATE pairs SET label_count = label_count + 1 WHERE id = ?`);
        const stored = db.$client.prepare(`SELECT pair_id FROM labels WHERE id = ?`);
        list.forEach((l, i) => {
          const p = inBatch.get(l.pairId) as { batch_id: string | null } | undefined;
          if (!p || p.batch_id !== batchId) throw inputError(`pair "${l.pairId}" is not in label batch "${batchId}"`);
          if (!(labelDecisions as readonly string[]).includes(l.decision)) throw inputError(`invalid decision "${String(l.decision)}" for pair "${l.pairId}"`);
          if (!l.source) throw inputError(`label for pair "${l.pairId}" has no source`);
          if (l.id) {
            // Stored by an earlier try of this very call (a retried request whose answer was lost).
            const had = stored.get(l.id) as { pair_id: string } | undefined;
            if (had && had.pair_id !== l.pairId) throw inputError(`label id "${l.id}" is already a label of pair "${had.pair_id}"`);
            if (had) return;
          }
          ins.run(l.id ?? newId('l'), l.pairId, l.source, l.decision, l.strength ?? null, l.rationale ?? null, now + i);
          bump.run(l.pairId);
        });
        return list.length;
      });
    },
    async setScore(responseId, score) {
      db.update(responses).set({ score }).where(eq(responses.id, responseId)).run();
    },
    async closeBatch(batchId) {
      closeBatch(db, batchId);
    },
    preferences: async (batchId, resolution) => preferenceRecords(db, batchId, resolution),
    rawLabels: async (batchId) => rawLabels(db, batchId),
  };
}
