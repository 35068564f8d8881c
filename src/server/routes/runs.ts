// Runs, datasets and artifacts: read by admins and viewers; runs submitted and cancelled by admins.
// Every read goes through the same functions as the CLI (`runs ls/show/logs`, `datasets ls`,
// `artifacts ls/show`), so both show one shape of the same rows.
import type { FastifyInstance } from 'fastify';
import type { RouteContext } from '../index.js';
import type { DatasetKind } from '../../kinds.js';
import { AlignflowError } from '../../errors.js';
import { getRun, listRuns, runLogs, runStages } from '../../orchestrator/runs.js';
import type { RunStatus } from '../../orchestrator/state.js';
import { listDatasets } from '../../data/datasets.js';
import { listArtifacts, showArtifact } from '../../store/registry.js';
import type { ArtifactKind } from '../../kinds.js';
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
    const q = req.query as { status?: RunStatus; limit?: number };
    return { runs: listRuns(db, q.limit ?? 50, q.status ? { status: q.status } : {}) };
  });

  app.get('/api/runs/:runId', {
    config: { roles: readers },
    schema: { summary: 'One run with its stages', tags: ['runs'], params: { type: 'object', required: ['runId'], additionalProperties: false, properties: { runId: id } } },
  }, async (req) => {
    const { runId } = req.params as { runId: string };
    return { run: getRun(db, runId), stages: runStages(db, runId) };
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
    return { events: runLogs(db, runId, after).slice(0, 1000) };
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
    const kind = (req.query as { kind?: DatasetKind }).kind;
    return { datasets: listDatasets(db, kind ? { kind } : {}) };
  });

  app.get('/api/artifacts', {
    config: { roles: readers },
    schema: {
      summary: 'Artifacts, newest first',
      tags: ['artifacts'],
      querystring: { type: 'object', additionalProperties: false, properties: { kind: { type: 'string', maxLength: 40 }, run: id, limit: { type: 'integer', minimum: 1, maximum: 1000 } } },
    },
  }, async (req) => {
    const q = req.query as { kind?: ArtifactKind; run?: string; limit?: number };
    return { artifacts: listArtifacts(db, { ...(q.kind ? { kind: q.kind } : {}), ...(q.run ? { run: q.run } : {}), limit: q.limit ?? 100 }) };
  });

  app.get('/api/artifacts/:artifactId', {
    config: { roles: readers },
    schema: { summary: 'One artifact: manifest, files, lineage, producers and dataset entry (as `alignflow artifacts show`)', tags: ['artifacts'], params: { type: 'object', required: ['artifactId'], additionalProperties: false, properties: { artifactId: id } } },
  }, async (req) => {
    const { artifactId } = req.params as { artifactId: string };
    return { artifact: showArtifact({ db }, artifactId) };
  });
}
