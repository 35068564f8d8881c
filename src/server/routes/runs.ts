// Runs, datasets and artifacts: read by admins and viewers; runs submitted and cancelled by admins.
import type { FastifyInstance } from 'fastify';
import { and, desc, eq, gt, inArray } from 'drizzle-orm';
import type { RouteContext } from '../index.js';
import { artifactFiles, artifacts, datasets, lineageEdges, runEvents, runs, stages } from '../../store/schema.js';
import { AlignflowError, notFound } from '../../errors.js';
import { offsetInt } from '../limits.js';

const id = { type: 'string', minLength: 1, maxLength: 100, pattern: '^[A-Za-z0-9_.-]+$' } as const;
const readers = ['admin', 'viewer'] as const;

export default async function runRoutes(app: FastifyInstance, opts: RouteContext): Promise<void> {
  const { db } = opts;

  app.get('/api/runs', {
    config: { roles: readers },
    schema: {
      summary: 'Runs, newest first',
      tags: ['runs'],
      querystring: { type: 'object', additionalProperties: false, properties: { status: { type: 'string', enum: ['pending', 'running', 'waiting', 'succeeded', 'failed', 'cancelled'] }, limit: { type: 'integer', minimum: 1, maximum: 500 } } },
    },
  }, async (req) => {
    const q = req.query as { status?: (typeof runs.$inferSelect)['status']; limit?: number };
    const rows = db
      .select({ id: runs.id, name: runs.name, status: runs.status, executor: runs.executor, error: runs.error, createdAt: runs.createdAt, startedAt: runs.startedAt, finishedAt: runs.finishedAt })
      .from(runs)
      .where(q.status ? eq(runs.status, q.status) : undefined)
      .orderBy(desc(runs.createdAt))
      .limit(q.limit ?? 50)
      .all();
    return { runs: rows };
  });

  app.get('/api/runs/:runId', {
    config: { roles: readers },
    schema: { summary: 'One run with its stages', tags: ['runs'], params: { type: 'object', required: ['runId'], additionalProperties: false, properties: { runId: id } } },
  }, async (req) => {
    const { runId } = req.params as { runId: string };
    const run = db.select().from(runs).where(eq(runs.id, runId)).get();
    if (!run) throw notFound(`no run "${runId}"`);
    const st = db.select().from(stages).where(eq(stages.runId, runId)).all();
    return { run, stages: st };
  });

  app.get('/api/runs/:runId/events', {
    config: { roles: readers },
    schema: {
      summary: 'Log lines of a run (poll with after=<last id>)',
      tags: ['runs'],
      params: { type: 'object', required: ['runId'], additionalProperties: false, properties: { runId: id } },
      querystring: { type: 'object', additionalProperties: false, properties: { after: offsetInt } },
    },
  }, async (req) => {
    const { runId } = req.params as { runId: string };
    const after = (req.query as { after?: number }).after ?? 0;
    if (!db.select({ id: runs.id }).from(runs).where(eq(runs.id, runId)).get()) throw notFound(`no run "${runId}"`);
    return { events: db.select().from(runEvents).where(and(eq(runEvents.runId, runId), gt(runEvents.id, after))).orderBy(runEvents.id).limit(1000).all() };
  });

  app.post('/api/runs', {
    config: { roles: ['admin'] },
    schema: {
      summary: 'Submit a run from a pipeline spec (the same object a pipelines/*.yaml file holds)',
      tags: ['runs'],
      body: {
        type: 'object',
        required: ['spec'],
        additionalProperties: false,
        properties: { spec: { type: 'object' }, executor: { type: 'string', enum: ['inline', 'bullmq'] }, force: { type: 'array', items: { type: 'string', maxLength: 100 }, maxItems: 100 } },
      },
    },
  }, async (req, reply) => {
    if (!opts.orchestrator) throw new AlignflowError('config', 'this server was started without an orchestrator; submit runs with `alignflow runs submit`');
    const body = req.body as { spec: unknown; executor?: 'inline' | 'bullmq'; force?: string[] };
    const r = await opts.orchestrator.submit(body);
    return reply.code(201).send(r);
  });

  app.post('/api/runs/:runId/cancel', {
    config: { roles: ['admin'] },
    schema: {
      summary: 'Cancel a run (or one stage of it)',
      tags: ['runs'],
      params: { type: 'object', required: ['runId'], additionalProperties: false, properties: { runId: id } },
      body: { type: ['object', 'null'], additionalProperties: false, properties: { stage: { type: 'string', maxLength: 100 } } },
    },
  }, async (req) => {
    const { runId } = req.params as { runId: string };
    const stage = (req.body as { stage?: string } | null | undefined)?.stage;
    if (opts.orchestrator) return opts.orchestrator.cancel(runId, stage);
    const { cancelRun } = await import('../../orchestrator/runs.js');
    return { cancelled: cancelRun(db, runId, stage) };
  });

  app.get('/api/datasets', {
    config: { roles: readers },
    schema: { summary: 'Registered datasets', tags: ['datasets'], querystring: { type: 'object', additionalProperties: false, properties: { kind: { type: 'string', enum: ['sft', 'preference', 'unpaired', 'prompt'] } } } },
  }, async (req) => {
    const kind = (req.query as { kind?: (typeof datasets.$inferSelect)['kind'] }).kind;
    return { datasets: db.select().from(datasets).where(kind ? eq(datasets.kind, kind) : undefined).orderBy(desc(datasets.createdAt)).all() };
  });

  app.get('/api/artifacts', {
    config: { roles: readers },
    schema: {
      summary: 'Artifacts, newest first',
      tags: ['artifacts'],
      querystring: { type: 'object', additionalProperties: false, properties: { kind: { type: 'string', maxLength: 40 }, run: id, limit: { type: 'integer', minimum: 1, maximum: 1000 } } },
    },
  }, async (req) => {
    const q = req.query as { kind?: string; run?: string; limit?: number };
    const conds = [];
    if (q.kind) conds.push(eq(artifacts.kind, q.kind as (typeof artifacts.$inferSelect)['kind']));
    if (q.run) conds.push(eq(artifacts.producerRunId, q.run));
    const rows = db.select().from(artifacts).where(conds.length ? and(...conds) : undefined).orderBy(desc(artifacts.createdAt)).limit(q.limit ?? 100).all();
    return { artifacts: rows };
  });

  app.get('/api/artifacts/:artifactId', {
    config: { roles: readers },
    schema: { summary: 'One artifact: manifest, files and lineage', tags: ['artifacts'], params: { type: 'object', required: ['artifactId'], additionalProperties: false, properties: { artifactId: id } } },
  }, async (req) => {
    const { artifactId } = req.params as { artifactId: string };
    const a = db.select().from(artifacts).where(eq(artifacts.id, artifactId)).get();
    if (!a) throw notFound(`no artifact "${artifactId}"`);
    const files = db.select().from(artifactFiles).where(eq(artifactFiles.artifactId, artifactId)).all();
    const inputs = db.select().from(lineageEdges).where(eq(lineageEdges.artifactId, artifactId)).all();
    const outputs = db.select().from(lineageEdges).where(inArray(lineageEdges.inputArtifactId, [artifactId])).all();
    return { artifact: a, files, inputs, usedBy: outputs };
  });
}
