// Labeling API: the labeler's queue (next / label / skip / undo / own stats) and the admin's
// batches (create, add pairs, close, stats, export). A labeler only ever receives the texts of
// their own assignment: no model ids, no a/b mapping, no gold marker, no other labeler's labels.
import type { FastifyInstance } from 'fastify';
import { userOf } from '../auth.js';
import type { RouteContext } from '../index.js';
import { addPairs, batchProgress, closeBatch, createBatch, getBatch, listBatches, type GoldInput, type GoldRankingInput, type PairInput } from '../../labeling/batches.js';
import { nextAssignment, ownLabelCount, skipAssignment, submitLabel, undoLastLabel, choices, labelFlags, type SubmitInput } from '../../labeling/queue.js';
import { batchStats, ownStats } from '../../labeling/stats.js';
import { datasetFiles, preferenceRecords, rawLabels, rawRankings, toJsonl } from '../../labeling/export.js';
import { tarFolder } from '../../labeling/tar.js';
import { resolutions, type Resolution } from '../../labeling/resolve.js';
import { inputError, notFound } from '../../errors.js';
import { offsetInt, safeInt } from '../limits.js';
import { mayLabel } from '../../labeling/admin.js';
import { MAX_RANK_ANSWERS, pairRules } from '../../labeling/ranking.js';
import { batchKinds } from '../../labeling/batches.js';

const id = { type: 'string', minLength: 1, maxLength: 100, pattern: '^[A-Za-z0-9_.-]+$' } as const;
const batchParams = { type: 'object', required: ['batchId'], additionalProperties: false, properties: { batchId: id } } as const;
const assignmentParams = { type: 'object', required: ['assignmentId'], additionalProperties: false, properties: { assignmentId: id } } as const;
const text = (max: number) => ({ type: 'string', maxLength: max }) as const;
/** Sampling settings are flat (temperature, top_p, …): no nesting to walk, a bounded size. */
const sampling = { type: ['object', 'null'], maxProperties: 32, propertyNames: { maxLength: 64 }, additionalProperties: { type: ['number', 'string', 'boolean', 'null'], maxLength: 200 } } as const;
const responseIn = {
  type: 'object',
  required: ['text'],
  additionalProperties: false,
  properties: { text: text(200_000), modelArtifactId: { type: ['string', 'null'], maxLength: 100 }, sampling, seed: { ...safeInt, type: ['integer', 'null'] }, score: { type: ['number', 'null'] } },
} as const;

const assignmentOut = {
  type: 'object',
  properties: {
    assignmentId: { type: 'string' },
    batchId: { type: 'string' },
    prompt: { type: 'string' },
    left: { type: 'string' },
    right: { type: 'string' },
    leasedAt: { type: 'integer' },
    leaseExpiresAt: { type: 'integer' },
    answers: { type: 'array', items: { type: 'string' } },
    // A pair: choice (screen side or tie) and both scores. A ranking item: ranking (groups of shown
    // answer numbers, best first, a group ties) and scores (in shown order).
    suggestion: {
      type: 'object',
      properties: {
        choice: { type: 'string' }, scoreLeft: { type: 'number' }, scoreRight: { type: 'number' },
        ranking: { type: 'array', items: { type: 'array', items: { type: 'integer' } } }, scores: { type: 'array', items: { type: 'number' } },
      },
    },
    previous: { type: 'object', properties: { choice: { type: ['string', 'null'] }, strength: { type: ['integer', 'null'] }, rationale: { type: ['string', 'null'] }, flags: { type: 'array', items: { type: 'string' } }, ranking: { type: 'array', items: { type: 'array', items: { type: 'integer' } } } } },
  },
} as const;

const progressOut = {
  type: 'object',
  properties: {
    batchId: { type: 'string' }, name: { type: 'string' }, status: { type: 'string' }, quota: { type: 'integer' }, pairs: { type: 'integer' }, goldPairs: { type: 'integer' },
    completePairs: { type: 'integer' }, done: { type: 'integer' }, total: { type: 'integer' }, labels: { type: 'integer' }, liveLeases: { type: 'integer' },
  },
} as const;

export default async function labelingRoutes(app: FastifyInstance, opts: RouteContext): Promise<void> {
  const { db } = opts;

  // ------------------------------------------------------------------ labelers

  app.get('/api/labeling/queue', {
    config: { roles: ['labeler', 'admin'] },
    schema: { summary: 'Open batches a labeler can work on, with progress and their own label count', tags: ['labeling'] },
  }, async (req) => {
    const me = userOf(req);
    return {
      batches: listBatches(db, { status: 'open' }).filter((b) => mayLabel(db, b.id, me.id)).map((b) => {
        const p = batchProgress(db, b.id);
        return { id: b.id, name: b.name, guidelines: b.guidelines, quota: b.quota, done: p.done, total: p.total, pairs: p.pairs, completePairs: p.completePairs, mine: ownLabelCount(db, b.id, me.id) };
      }),
    };
  });

  app.post('/api/labeling/batches/:batchId/next', {
    config: { roles: ['labeler', 'admin'] },
    schema: { summary: 'Lease the next pair to the caller (or return their current lease)', tags: ['labeling'], params: batchParams, response: { 200: { type: 'object', properties: { assignment: { anyOf: [assignmentOut, { type: 'null' }] } } } } },
  }, async (req) => {
    const { batchId } = req.params as { batchId: string };
    const me = userOf(req);
    return { assignment: nextAssignment(db, batchId, me) };
  });

  app.post('/api/labeling/assignments/:assignmentId/label', {
    config: { roles: ['labeler', 'admin'] },
    schema: {
      summary: 'Submit a label for one of your assignments: a pair takes `choice` (screen terms), a ranking item `ranking` (groups of shown answer numbers, best first, ties grouped); stored in item terms',
      tags: ['labeling'],
      params: assignmentParams,
      body: {
        type: 'object',
        additionalProperties: false,
        properties: {
          choice: { type: 'string', enum: [...choices] },
          // Shape only here; that it ranks exactly this item's answers is checked against the item.
          ranking: { type: 'array', minItems: 1, maxItems: MAX_RANK_ANSWERS, items: { type: 'array', minItems: 1, maxItems: MAX_RANK_ANSWERS, items: { type: 'integer', minimum: 1, maximum: MAX_RANK_ANSWERS } } },
          strength: { type: ['integer', 'null'], minimum: 1, maximum: 3 },
          rationale: { type: ['string', 'null'], maxLength: 5000 },
          flags: { type: ['array', 'null'], maxItems: 2, uniqueItems: true, items: { type: 'string', enum: [...labelFlags] } },
          durationMs: { type: ['integer', 'null'], minimum: 0, maximum: 86_400_000 },
        },
      },
      response: { 200: { type: 'object', properties: { labelId: { type: 'string' } } } },
    },
  }, async (req) => {
    const { assignmentId } = req.params as { assignmentId: string };
    const r = submitLabel(db, assignmentId, userOf(req), req.body as SubmitInput);
    return { labelId: r.labelId };
  });

  app.post('/api/labeling/assignments/:assignmentId/skip', {
    config: { roles: ['labeler', 'admin'] },
    schema: {
      summary: 'Skip one of your assignments, with a reason (you will not see the pair again)',
      tags: ['labeling'],
      params: assignmentParams,
      body: { type: 'object', required: ['reason'], additionalProperties: false, properties: { reason: { type: 'string', minLength: 1, maxLength: 500 } } },
    },
  }, async (req) => {
    const { assignmentId } = req.params as { assignmentId: string };
    skipAssignment(db, assignmentId, userOf(req), (req.body as { reason: string }).reason);
    return { ok: true };
  });

  app.post('/api/labeling/batches/:batchId/undo', {
    config: { roles: ['labeler', 'admin'] },
    schema: { summary: 'Withdraw your last label in this batch; the pair comes back to you', tags: ['labeling'], params: batchParams, response: { 200: { type: 'object', properties: { assignment: assignmentOut } } } },
  }, async (req) => {
    const { batchId } = req.params as { batchId: string };
    return { assignment: undoLastLabel(db, batchId, userOf(req)) };
  });

  app.get('/api/labeling/batches/:batchId/me', {
    config: { roles: ['labeler', 'admin'] },
    schema: { summary: 'Your own figures in a batch, and the batch progress', tags: ['labeling'], params: batchParams },
  }, async (req) => {
    const { batchId } = req.params as { batchId: string };
    const b = getBatch(db, batchId);
    const p = batchProgress(db, batchId);
    return {
      batch: { id: b.id, name: b.name, guidelines: b.guidelines, status: b.status, quota: b.quota },
      progress: { done: p.done, total: p.total, pairs: p.pairs, completePairs: p.completePairs },
      me: ownStats(db, batchId, userOf(req).id),
    };
  });

  // ------------------------------------------------------------------ admins (viewers read)

  app.get('/api/labeling/batches', {
    config: { roles: ['admin', 'viewer'] },
    schema: {
      summary: 'All label batches with progress',
      tags: ['labeling'],
      querystring: { type: 'object', additionalProperties: false, properties: { status: { type: 'string', enum: ['open', 'paused', 'closed'] }, runId: id } },
      response: { 200: { type: 'object', properties: { batches: { type: 'array', items: { type: 'object', additionalProperties: true, properties: { progress: progressOut } } } } } },
    },
  }, async (req) => {
    const q = req.query as { status?: 'open' | 'paused' | 'closed'; runId?: string };
    return { batches: listBatches(db, q).map((b) => ({ ...b, progress: batchProgress(db, b.id) })) };
  });

  app.post('/api/labeling/batches', {
    config: { roles: ['admin'] },
    schema: {
      summary: 'Create a label batch',
      tags: ['labeling'],
      body: {
        type: 'object',
        required: ['name'],
        additionalProperties: false,
        properties: {
          name: { type: 'string', minLength: 1, maxLength: 200 },
          guidelines: text(20_000),
          quota: { type: 'integer', minimum: 1, maximum: 100 },
          goldRate: { type: 'number', minimum: 0, exclusiveMaximum: 1 },
          leaseSeconds: { type: 'integer', minimum: 1, maximum: 86400 },
          labelerQuota: { type: ['integer', 'null'], minimum: 1, maximum: 1_000_000 },
          suggestions: { type: 'boolean' },
          kind: { type: 'string', enum: [...batchKinds] },
          pairRule: { type: 'string', enum: [...pairRules] },
          runId: id,
        },
      },
    },
  }, async (req, reply) => {
    const body = req.body as Parameters<typeof createBatch>[1];
    if (body.runId && !db.$client.prepare('SELECT 1 FROM runs WHERE id = ?').get(body.runId)) throw notFound(`no run "${body.runId}"`);
    const b = createBatch(db, body);
    return reply.code(201).send(b);
  });

  app.post('/api/labeling/batches/:batchId/pairs', {
    config: { roles: ['admin'] },
    schema: {
      summary: 'Add pairs (and gold pairs, or for a ranking batch gold rankings, mixed in at the batch gold rate) to an open batch',
      tags: ['labeling'],
      params: batchParams,
      body: {
        type: 'object',
        required: ['pairs'],
        additionalProperties: false,
        properties: {
          pairs: { type: 'array', maxItems: 10_000, items: { type: 'object', required: ['prompt', 'a', 'b'], additionalProperties: false, properties: { prompt: text(200_000), a: responseIn, b: responseIn, rest: { type: 'array', maxItems: MAX_RANK_ANSWERS - 2, items: responseIn } } } },
          gold: { type: 'array', maxItems: 10_000, items: { type: 'object', required: ['prompt', 'chosen', 'rejected'], additionalProperties: false, properties: { prompt: text(200_000), chosen: text(200_000), rejected: text(200_000), tie: { type: 'boolean' } } } },
          // Ranking batches: gold items with a known ranking (groups of 1-based answer numbers of `responses`, best first).
          goldRankings: {
            type: 'array', maxItems: 10_000,
            items: {
              type: 'object', required: ['prompt', 'responses', 'ranking'], additionalProperties: false,
              properties: {
                prompt: text(200_000),
                responses: { type: 'array', minItems: 2, maxItems: MAX_RANK_ANSWERS, items: text(200_000) },
                ranking: { type: 'array', minItems: 1, maxItems: MAX_RANK_ANSWERS, items: { type: 'array', minItems: 1, maxItems: MAX_RANK_ANSWERS, items: { type: 'integer' } } },
              },
            },
          },
          seed: safeInt,
        },
      },
    },
  }, async (req) => {
    const { batchId } = req.params as { batchId: string };
    const body = req.body as { pairs: PairInput[]; gold?: GoldInput[]; goldRankings?: GoldRankingInput[]; seed?: number };
    const r = addPairs(db, batchId, body.pairs, { gold: body.gold, goldRankings: body.goldRankings, seed: body.seed });
    return { added: r.added, gold: r.gold };
  });

  app.post('/api/labeling/batches/:batchId/close', {
    config: { roles: ['admin'] },
    schema: { summary: 'Close a batch: no more assignments; late submissions are refused with a message', tags: ['labeling'], params: batchParams },
  }, async (req) => {
    const { batchId } = req.params as { batchId: string };
    const b = closeBatch(db, batchId);
    return { id: b.id, status: b.status, closedAt: b.closedAt };
  });

  app.get('/api/labeling/batches/:batchId/stats', {
    config: { roles: ['admin', 'viewer'] },
    schema: {
      summary: "Agreement (Krippendorff's α, pairwise Cohen's κ), gold accuracy, position bias, time per label, disputed pairs",
      tags: ['labeling'],
      params: batchParams,
      querystring: { type: 'object', additionalProperties: false, properties: { disputed: { type: 'integer', minimum: 0, maximum: 500 } } },
    },
  }, async (req) => {
    const { batchId } = req.params as { batchId: string };
    return batchStats(db, batchId, { disputedLimit: (req.query as { disputed?: number }).disputed });
  });

  app.get('/api/labeling/batches/:batchId/pairs', {
    config: { roles: ['admin', 'viewer'] },
    schema: {
      summary: 'Pairs of a batch with their responses (model ids included)',
      tags: ['labeling'],
      params: batchParams,
      querystring: { type: 'object', additionalProperties: false, properties: { limit: { type: 'integer', minimum: 1, maximum: 1000 }, offset: offsetInt } },
    },
  }, async (req) => {
    const { batchId } = req.params as { batchId: string };
    getBatch(db, batchId);
    const q = req.query as { limit?: number; offset?: number };
    const rows = db.$client
      .prepare(
        `SELECT p.id, p.prompt, p.is_gold AS isGold, p.gold_answer AS goldAnswer, p.label_count AS labelCount,
                ra.id AS aId, ra.text AS aText, ra.model_artifact_id AS aModel, ra.seed AS aSeed, ra.score AS aScore, ra.sampling AS aSampling,
                rb.id AS bId, rb.text AS bText, rb.model_artifact_id AS bModel, rb.seed AS bSeed, rb.score AS bScore, rb.sampling AS bSampling
         FROM pairs p JOIN responses ra ON ra.id = p.response_a_id JOIN responses rb ON rb.id = p.response_b_id
         WHERE p.batch_id = ? ORDER BY p.created_at, p.id LIMIT ? OFFSET ?`,
      )
      .all(batchId, q.limit ?? 100, q.offset ?? 0) as Record<string, unknown>[];
    const js = (s: unknown) => (typeof s === 'string' ? (JSON.parse(s) as unknown) : null);
    return {
      pairs: rows.map((r) => ({
        id: r.id, prompt: r.prompt, isGold: r.isGold === 1, goldAnswer: r.goldAnswer, labelCount: r.labelCount,
        a: { id: r.aId, text: r.aText, modelArtifactId: r.aModel, seed: r.aSeed, score: r.aScore, sampling: js(r.aSampling) },
        b: { id: r.bId, text: r.bText, modelArtifactId: r.bModel, seed: r.bSeed, score: r.bScore, sampling: js(r.bSampling) },
      })),
    };
  });

  app.get('/api/labeling/batches/:batchId/labels', {
    config: { roles: ['admin'] },
    schema: { summary: 'Raw labels of a batch with annotator ids', tags: ['labeling'], params: batchParams },
  }, async (req) => {
    const { batchId } = req.params as { batchId: string };
    getBatch(db, batchId);
    return { labels: rawLabels(db, batchId) };
  });

  app.get('/api/labeling/batches/:batchId/export', {
    config: { roles: ['admin'] },
    schema: {
      summary:
        'Export: TRL prompt/chosen/rejected preferences as JSONL (ties, both-bad and splits excluded; ranking batches: the pairs their rankings induce), the raw labels, the raw rankings, or `hf`: a tar of a Hugging Face dataset folder (JSONL files + README.md card with guidelines and agreement)',
      tags: ['labeling'],
      params: batchParams,
      querystring: { type: 'object', additionalProperties: false, properties: { what: { type: 'string', enum: ['preferences', 'labels', 'rankings', 'hf'] }, resolution: { type: 'string', enum: [...resolutions] } } },
    },
  }, async (req, reply) => {
    const { batchId } = req.params as { batchId: string };
    const batch = getBatch(db, batchId);
    const q = req.query as { what?: 'preferences' | 'labels' | 'rankings' | 'hf'; resolution?: Resolution };
    if (q.what === 'rankings') {
      if (batch.kind !== 'ranking') throw inputError(`batch "${batch.name}" is pairwise: it has no rankings`, [{ field: 'what', reason: 'rankings exist in ranking batches only' }]);
      return reply.type('application/x-ndjson; charset=utf-8').send(toJsonl(rawRankings(db, batchId)));
    }
    if (q.what === 'hf') {
      // The same files `alignflow labels export --out DIR` writes, in one folder named after the batch.
      const folder = `${batch.name.toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 60) || 'batch'}-${batch.id}`.slice(0, 90);
      const tar = tarFolder(folder, datasetFiles(db, batchId, q.resolution ?? 'majority'));
      return reply.type('application/x-tar').header('content-disposition', `attachment; filename="${folder}.tar"`).send(tar);
    }
    const body = q.what === 'labels' ? toJsonl(rawLabels(db, batchId)) : toJsonl(preferenceRecords(db, batchId, q.resolution ?? 'majority').records);
    return reply.type('application/x-ndjson; charset=utf-8').send(body);
  });
}
