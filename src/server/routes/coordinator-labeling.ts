// The labeling service over the coordinator API, for the collect, label, eval (human judge) and
// online_dpo (human judge) stages of a worker on another host (src/orchestrator/remote/labeling.ts).
// Each call is one method of the very port a local worker uses (createLabelingPort over this
// host's SQLite), so a stage cannot tell where it ran.
//
// Scope, like the rest of /api/coord/v1: worker tokens only; the stage must be running under one
// of the token user's workers (403 otherwise), and only the worker process holding it may call
// (409 for an attempt that was taken over, as for records and artifacts); a batch must be one this
// stage made, a scored response an answer in one of its batches (403).
//
//   POST /stages/:id/labeling/pairs                         savePairs    {pairs} → {ids}
//   POST /stages/:id/labeling/batch                         ensureBatch  {BatchOptions…, perName?} → batch
//   POST /stages/:id/labeling/batches/:batchId/fill         fillBatch    {pairs, gold?, seed?}
//   POST /stages/:id/labeling/batches/:batchId/labels       recordLabels {labels} → {recorded}
//   POST /stages/:id/labeling/batches/:batchId/close        closeBatch
//   POST /stages/:id/labeling/scores                        setScore     {responseId, score}
//   GET  /stages/:id/labeling/batches/:batchId/progress | pairs | label-count | raw-labels
//   GET  /stages/:id/labeling/batches/:batchId/preferences?resolution=
//
// Retries: the worker's client retries a request whose answer was lost, so every write is
// idempotent (see src/labeling/port.ts): the client names every pair, response and label before
// sending, and the port skips ids already stored.
import type { FastifyInstance, FastifyReply, FastifyRequest, FastifySchema } from 'fastify';
import type { RouteContext } from '../index.js';
import { userOf } from '../auth.js';
import { createLabelingPort, type MachineLabel } from '../../labeling/port.js';
import { batchKinds, type BatchOptions, type GoldInput, type GoldRankingInput, type PairInput } from '../../labeling/batches.js';
import { MAX_RANK_ANSWERS, pairRules } from '../../labeling/ranking.js';
import { resolutions, type Resolution } from '../../labeling/resolve.js';
import { labelDecisions } from '../../store/schema.js';
import { isBatchOfStage, isResponseOfStage, labelingHolder, workerIdOf } from '../../orchestrator/coordinator.js';
import { COORD_PREFIX } from './coordinator.js';

/** Pairs and labels of a whole label stage travel in one request (a fill is one transaction). */
const BODY_LIMIT = 64 * 1024 * 1024;
const MAX_ITEMS = 200_000;

const roles = { roles: ['worker'] } as const;
const idPattern = { type: 'string', minLength: 1, maxLength: 200, pattern: '^[A-Za-z0-9_.:@-]+$' } as const;
const stageParams = { type: 'object', required: ['stageId'], additionalProperties: false, properties: { stageId: { type: 'string', minLength: 1, maxLength: 100, pattern: '^[A-Za-z0-9_.-]+$' } } } as const;
const batchParams = { type: 'object', required: ['stageId', 'batchId'], additionalProperties: false, properties: { ...stageParams.properties, batchId: idPattern } } as const;
const workerHeader = { type: 'object', required: ['alignflow-worker'], properties: { 'alignflow-worker': { type: 'string', minLength: 1, maxLength: 200, pattern: '^[A-Za-z0-9_.:@-]+$' } } } as const;
const finite = { type: 'number', minimum: -1.7976931348623157e308, maximum: 1.7976931348623157e308 } as const;
const text = { type: 'string', maxLength: 4_000_000 } as const;
const response = {
  type: 'object',
  required: ['text'],
  additionalProperties: false,
  properties: {
    id: idPattern,
    text,
    modelArtifactId: { type: ['string', 'null'], maxLength: 200 },
    sampling: { type: ['object', 'null'] },
    seed: { anyOf: [finite, { type: 'null' }] },
    score: { anyOf: [finite, { type: 'null' }] },
  },
} as const;
const pair = {
  type: 'object',
  required: ['prompt', 'a', 'b'],
  additionalProperties: false,
  properties: { id: idPattern, prompt: text, a: response, b: response, rest: { type: 'array', maxItems: MAX_RANK_ANSWERS - 2, items: response } },
} as const;
const pairList = { type: 'array', maxItems: MAX_ITEMS, items: pair } as const;
const gold = { type: 'object', required: ['prompt', 'chosen', 'rejected'], additionalProperties: false, properties: { prompt: text, chosen: text, rejected: text, tie: { type: 'boolean' } } } as const;
// Ranking batches: a gold item's answers and its known ranking (groups of 1-based answer numbers, best first).
const goldRanking = {
  type: 'object',
  required: ['prompt', 'responses', 'ranking'],
  additionalProperties: false,
  properties: {
    prompt: text,
    responses: { type: 'array', minItems: 2, maxItems: MAX_RANK_ANSWERS, items: text },
    ranking: { type: 'array', minItems: 1, maxItems: MAX_RANK_ANSWERS, items: { type: 'array', minItems: 1, maxItems: MAX_RANK_ANSWERS, items: { type: 'integer' } } },
  },
} as const;
const label = {
  type: 'object',
  required: ['id', 'pairId', 'decision', 'source'],
  additionalProperties: false,
  properties: {
    id: idPattern,
    pairId: idPattern,
    decision: { type: 'string', enum: [...labelDecisions] },
    source: { type: 'string', minLength: 1, maxLength: 500 },
    strength: { anyOf: [finite, { type: 'null' }] },
    rationale: { type: ['string', 'null'], maxLength: 100_000 },
  },
} as const;
const batchOptions = {
  type: 'object',
  required: ['name'],
  additionalProperties: false,
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 200 },
    guidelines: { type: 'string', maxLength: 200_000 },
    quota: { type: 'integer' },
    goldRate: { type: 'number' },
    leaseSeconds: { type: 'integer' },
    labelerQuota: { type: ['integer', 'null'] },
    suggestions: { type: 'boolean' },
    kind: { type: 'string', enum: [...batchKinds] },
    pairRule: { type: 'string', enum: [...pairRules] },
    perName: { type: 'boolean' },
  },
} as const;

type Params = { stageId: string; batchId?: string };

export default async function coordinatorLabelingRoutes(app: FastifyInstance, opts: RouteContext): Promise<void> {
  const { db } = opts;
  const port = createLabelingPort(db);

  /** The held stage's row when this request may act on it (and on its batch); else answers 403/409 and returns undefined. */
  const scope = (req: FastifyRequest, reply: FastifyReply) => {
    const { stageId, batchId } = req.params as Params;
    const worker = workerIdOf(userOf(req).name, req.headers['alignflow-worker'] as string);
    const h = labelingHolder(db, stageId, userOf(req).name, worker);
    if (h === 'forbidden') return void reply.code(403).send({ error: 'forbidden', message: `stage ${stageId} is not running under a worker of this token; the labeling API serves only stages a worker holds` });
    if (h === 'stale') return void reply.code(409).send({ error: 'conflict', message: `stage ${stageId} is not held by worker ${worker} (cancelled, finished or taken over)` });
    if (batchId !== undefined && !isBatchOfStage(db, batchId, stageId)) return void reply.code(403).send({ error: 'forbidden', message: `label batch ${batchId} is not a batch of stage ${stageId}` });
    return h.row;
  };

  /** One labeling route: the scope check, then `fn` with the stage row. */
  const route = <B>(method: 'GET' | 'POST', url: string, schema: FastifySchema & { summary: string }, fn: (row: NonNullable<ReturnType<typeof scope>>, body: B, req: FastifyRequest, reply: FastifyReply) => Promise<unknown>) =>
    app.route({
      method,
      url: `${COORD_PREFIX}/stages/:stageId/labeling${url}`,
      config: roles,
      ...(method === 'POST' ? { bodyLimit: BODY_LIMIT } : {}),
      schema: { tags: ['coordinator'], headers: workerHeader, params: url.startsWith('/batches/') ? batchParams : stageParams, ...schema },
      handler: async (req, reply) => {
        const row = scope(req, reply);
        if (!row) return reply;
        return fn(row, req.body as B, req, reply);
      },
    });
  const batchOf = (req: FastifyRequest) => (req.params as Params).batchId!;

  route<{ pairs: PairInput[] }>('POST', '/pairs', {
    summary: 'Store collected responses and pairs of a held stage (not yet in a batch); ids already stored are kept as they are',
    body: { type: 'object', required: ['pairs'], additionalProperties: false, properties: { pairs: pairList } },
  }, async (row, b) => ({ ids: await port.savePairs(row.runId, row.id, b.pairs) }));

  route<Omit<BatchOptions, 'runId' | 'stageId'> & { perName?: boolean }>('POST', '/batch', {
    summary: "The held stage's label batch (of this name with perName), created on the first call",
    body: batchOptions,
  }, async (row, b) => port.ensureBatch({ ...b, runId: row.runId, stageId: row.id }));

  route<{ pairs: PairInput[]; gold?: GoldInput[]; goldRankings?: GoldRankingInput[]; seed?: number }>('POST', '/batches/:batchId/fill', {
    summary: 'Put pairs (and gold pairs, or gold rankings for a ranking batch) into an empty batch of the held stage; a batch holding pairs is left as it is',
    body: { type: 'object', required: ['pairs'], additionalProperties: false, properties: { pairs: pairList, gold: { type: 'array', maxItems: MAX_ITEMS, items: gold }, goldRankings: { type: 'array', maxItems: MAX_ITEMS, items: goldRanking }, seed: { type: 'integer' } } },
  }, async (_row, b, req) => port.fillBatch(batchOf(req), b.pairs, { ...(b.gold ? { gold: b.gold } : {}), ...(b.goldRankings ? { goldRankings: b.goldRankings } : {}), ...(b.seed !== undefined ? { seed: b.seed } : {}) }));

  route<{ labels: MachineLabel[] }>('POST', '/batches/:batchId/labels', {
    summary: 'Store machine labels in one transaction (all or none); label ids already stored are skipped',
    body: { type: 'object', required: ['labels'], additionalProperties: false, properties: { labels: { type: 'array', maxItems: MAX_ITEMS, items: label } } },
  }, async (_row, b, req) => ({ recorded: await port.recordLabels(batchOf(req), b.labels) }));

  route('POST', '/batches/:batchId/close', { summary: 'Close a batch of the held stage (idempotent)' }, async (_row, _b, req) => {
    await port.closeBatch(batchOf(req));
    return { ok: true };
  });

  route<{ responseId: string; score: number | null }>('POST', '/scores', {
    summary: "Record a judge's or reward model's score of an answer in one of the held stage's batches",
    body: { type: 'object', required: ['responseId', 'score'], additionalProperties: false, properties: { responseId: idPattern, score: { anyOf: [finite, { type: 'null' }] } } },
  }, async (row, b, _req, reply) => {
    if (!isResponseOfStage(db, b.responseId, row.id)) return reply.code(403).send({ error: 'forbidden', message: `response ${b.responseId} is not an answer in a label batch of stage ${row.id}` });
    await port.setScore(b.responseId, b.score ?? NaN); // null: a non-finite score, stored as NULL as a local worker's NaN is
    return { ok: true };
  });

  route('GET', '/batches/:batchId/progress', { summary: 'Progress of a batch of the held stage' }, async (_row, _b, req) => port.progress(batchOf(req)));
  route('GET', '/batches/:batchId/pairs', { summary: 'Regular pairs of a batch of the held stage, with their answers, in queue order' }, async (_row, _b, req) => ({ pairs: await port.pairsOf(batchOf(req)) }));
  route('GET', '/batches/:batchId/label-count', { summary: 'Number of labels in a batch of the held stage' }, async (_row, _b, req) => ({ count: await port.labelCount(batchOf(req)) }));
  route('GET', '/batches/:batchId/raw-labels', { summary: 'Raw labels of a batch of the held stage' }, async (_row, _b, req) => ({ labels: await port.rawLabels(batchOf(req)) }));
  route('GET', '/batches/:batchId/preferences', {
    summary: 'The preference records a batch of the held stage resolves to',
    querystring: { type: 'object', additionalProperties: false, properties: { resolution: { type: 'string', enum: [...resolutions] } } },
  }, async (_row, _b, req) => port.preferences(batchOf(req), (req.query as { resolution?: Resolution }).resolution));
}
