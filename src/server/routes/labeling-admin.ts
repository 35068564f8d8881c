// Batch administration for the web UI: make a batch from a run's pairs, a preference dataset or
// an uploaded TRL JSONL in one request (checked in full before anything is written), pause and
// resume, and the labelers a batch is assigned to. Create/close/stats/export live in labeling.ts.
import type { FastifyInstance } from 'fastify';
import type { RouteContext } from '../index.js';
import { addPairs, createBatch, getBatch, validateBatchOptions, type BatchOptions, type GoldInput, type GoldRankingInput, type PairInput } from '../../labeling/batches.js';
import { batchLabelers, resolveLabelers, setBatchLabelers, setBatchPaused } from '../../labeling/admin.js';
import { goldFromPreferenceJsonl, goldFromRankingJsonl, itemsFromRankingJsonl, pairsFromArtifact, pairsFromPreferenceJsonl } from '../../labeling/sources.js';
import { batchKinds, itemIssues } from '../../labeling/batches.js';
import { pairRules } from '../../labeling/ranking.js';
import { inputError } from '../../errors.js';
import { offsetInt, safeInt } from '../limits.js';
import { batchItems, itemFilters, itemHistory, type ItemQuery } from '../../labeling/items.js';
import { labelBatches } from '../../store/schema.js';
import { eq } from 'drizzle-orm';

const id = { type: 'string', minLength: 1, maxLength: 100, pattern: '^[A-Za-z0-9_.-]+$' } as const;
const batchParams = { type: 'object', required: ['batchId'], additionalProperties: false, properties: { batchId: id } } as const;
const upload = {
  type: 'object',
  required: ['jsonl', 'fileName'],
  additionalProperties: false,
  properties: { jsonl: { type: 'string', maxLength: 60 * 1024 * 1024 }, fileName: { type: 'string', minLength: 1, maxLength: 300 } },
} as const;

interface SetupBody extends BatchOptions {
  source: { artifactId: string } | { jsonl: string; fileName: string };
  gold?: { jsonl: string; fileName: string };
  labelers?: string[];
  seed?: number;
}

export default async function labelingAdminRoutes(app: FastifyInstance, opts: RouteContext): Promise<void> {
  const { db, store } = opts;

  app.get('/api/labeling/sources', {
    config: { roles: ['admin'] },
    schema: { summary: "What a batch can be made from: runs' pairs artifacts and preference datasets", tags: ['labeling'] },
  }, async () => {
    const rows = db.$client.prepare(
      `SELECT a.id, a.kind, a.name, a.producer_run_id AS runId, a.created_at AS createdAt, a.metadata
       FROM artifacts a WHERE a.kind = 'pairs' OR (a.kind = 'dataset' AND json_extract(a.metadata, '$.datasetKind') = 'preference')
       ORDER BY a.created_at DESC LIMIT 500`,
    ).all() as { id: string; kind: string; name: string; runId: string | null; createdAt: number; metadata: string }[];
    return {
      sources: rows.map((r) => {
        const md = JSON.parse(r.metadata) as { records?: number; pairs?: number; items?: string };
        // `items: ranking`: a collect stage's k-way items, for a batch of kind ranking.
        return { artifactId: r.id, kind: r.kind, name: r.name, runId: r.runId, createdAt: r.createdAt, records: md.records ?? md.pairs ?? null, items: md.items === 'ranking' ? 'ranking' : 'pairs' };
      }),
    };
  });

  app.post('/api/labeling/batches/setup', {
    config: { roles: ['admin'] },
    bodyLimit: 64 * 1024 * 1024,
    schema: {
      summary: 'Create a batch and fill it in one step: settings, pairs (from an artifact or an uploaded TRL preference JSONL), gold pairs, labelers',
      tags: ['labeling'],
      body: {
        type: 'object',
        required: ['name', 'source'],
        additionalProperties: false,
        properties: {
          name: { type: 'string', minLength: 1, maxLength: 200 },
          guidelines: { type: 'string', maxLength: 20_000 },
          quota: { type: 'integer', minimum: 1, maximum: 100 },
          goldRate: { type: 'number', minimum: 0, exclusiveMaximum: 1 },
          labelerQuota: { type: ['integer', 'null'], minimum: 1, maximum: 1_000_000 },
          suggestions: { type: 'boolean' },
          kind: { type: 'string', enum: [...batchKinds] },
          pairRule: { type: 'string', enum: [...pairRules] },
          leaseSeconds: { type: 'integer', minimum: 1, maximum: 86400 },
          runId: id,
          source: { oneOf: [{ type: 'object', required: ['artifactId'], additionalProperties: false, properties: { artifactId: id } }, upload] },
          gold: upload,
          labelers: { type: 'array', maxItems: 1000, items: { type: 'string', minLength: 1, maxLength: 200 } },
          seed: safeInt,
        },
      },
    },
  }, async (req, reply) => {
    const b = req.body as SetupBody;
    // Everything is checked before the first write, so a bad file leaves no empty batch behind.
    validateBatchOptions(b);
    if (b.runId && !db.$client.prepare('SELECT 1 FROM runs WHERE id = ?').get(b.runId)) throw inputError(`no run "${b.runId}"`, [{ field: 'runId', reason: 'no such run' }]);
    let pairs: PairInput[];
    if ('artifactId' in b.source) {
      if (!store) throw inputError('this server has no artifact store; upload a JSONL file instead');
      pairs = await pairsFromArtifact(store, b.source.artifactId);
    } else pairs = b.kind === 'ranking' ? itemsFromRankingJsonl(b.source.jsonl, b.source.fileName) : pairsFromPreferenceJsonl(b.source.jsonl, b.source.fileName);
    const misfit = itemIssues(b.kind ?? 'pairwise', pairs, 'source');
    if (misfit.length) throw inputError(`the source's items do not fit a ${b.kind ?? 'pairwise'} batch`, misfit);
    // Gold: pairs with a known answer, or for a ranking batch items with a known ranking.
    const ranking = b.kind === 'ranking';
    const gold: GoldInput[] = b.gold && !ranking ? goldFromPreferenceJsonl(b.gold.jsonl, b.gold.fileName) : [];
    const goldRankings: GoldRankingInput[] = b.gold && ranking ? goldFromRankingJsonl(b.gold.jsonl, b.gold.fileName) : [];
    if ((b.goldRate ?? 0) > 0 && gold.length + goldRankings.length === 0) {
      throw inputError(`a gold share needs gold ${ranking ? 'rankings' : 'pairs'}`, [{ field: 'gold', reason: ranking ? 'upload a JSONL of ranking items with known rankings (prompt, responses, ranking)' : 'upload a JSONL of pairs with known answers (prompt, chosen, rejected)' }]);
    }
    const labelers = resolveLabelers(db, b.labelers ?? []);
    const batch = createBatch(db, { name: b.name, guidelines: b.guidelines, quota: b.quota, goldRate: b.goldRate, labelerQuota: b.labelerQuota, suggestions: b.suggestions, kind: b.kind, pairRule: b.pairRule, leaseSeconds: b.leaseSeconds, runId: b.runId });
    try {
      const r = addPairs(db, batch.id, pairs, { gold, goldRankings, seed: b.seed });
      setBatchLabelers(db, batch.id, labelers);
      return reply.code(201).send({ batch: getBatch(db, batch.id), added: r.added, gold: r.gold, labelers });
    } catch (e) {
      db.delete(labelBatches).where(eq(labelBatches.id, batch.id)).run();
      throw e;
    }
  });

  for (const [action, paused] of [['pause', true], ['resume', false]] as const) {
    app.post(`/api/labeling/batches/:batchId/${action}`, {
      config: { roles: ['admin'] },
      schema: { summary: paused ? 'Pause a batch: no new assignments; leases already given out may still be submitted' : 'Resume a paused batch', tags: ['labeling'], params: batchParams },
    }, async (req) => {
      const b = setBatchPaused(db, (req.params as { batchId: string }).batchId, paused);
      return { id: b.id, status: b.status };
    });
  }

  app.get('/api/labeling/batches/:batchId/labelers', {
    config: { roles: ['admin'] },
    schema: { summary: 'The labelers a batch is assigned to (empty: every labeler)', tags: ['labeling'], params: batchParams },
  }, async (req) => {
    const { batchId } = req.params as { batchId: string };
    getBatch(db, batchId);
    return { labelers: batchLabelers(db, batchId) };
  });

  app.put('/api/labeling/batches/:batchId/labelers', {
    config: { roles: ['admin'] },
    schema: {
      summary: 'Assign a batch to these labelers (user ids or names); an empty list opens it to every labeler',
      tags: ['labeling'],
      params: batchParams,
      body: { type: 'object', required: ['labelers'], additionalProperties: false, properties: { labelers: { type: 'array', maxItems: 1000, items: { type: 'string', minLength: 1, maxLength: 200 } } } },
    },
  }, async (req) => {
    const { batchId } = req.params as { batchId: string };
    return { labelers: setBatchLabelers(db, batchId, (req.body as { labelers: string[] }).labelers) };
  });

  app.get('/api/labeling/batches/:batchId/items', {
    config: { roles: ['admin'] },
    schema: {
      summary: "A batch's pairs with their labels: search (prompt, every answer, answer metadata: model artifact id and sampling, rationales) and filters (disputed, flagged, unlabeled, gold, skipped, by labeler)",
      tags: ['labeling'],
      params: batchParams,
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: { q: { type: 'string', maxLength: 500 }, filter: { type: 'string', enum: [...itemFilters] }, labeler: id, limit: { type: 'integer', minimum: 1, maximum: 500 }, offset: offsetInt },
      },
    },
  }, async (req) => batchItems(db, (req.params as { batchId: string }).batchId, req.query as ItemQuery));

  app.get('/api/labeling/pairs/:pairId/history', {
    config: { roles: ['admin'] },
    schema: {
      summary: 'One pair with every lease, skip and label it had, oldest first',
      tags: ['labeling'],
      params: { type: 'object', required: ['pairId'], additionalProperties: false, properties: { pairId: id } },
    },
  }, async (req) => itemHistory(db, (req.params as { pairId: string }).pairId));
}
