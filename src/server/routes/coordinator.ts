// The coordinator API (/api/coord/v1): what a worker on another host needs to run a stage while
// SQLite and the blob store stay on this host. Only `worker` tokens may call it (admins cannot:
// a worker's identity is part of every stage it holds). Every call names the worker process in
// the `alignflow-worker` header; the recorded worker id is "<token's user>/<that name>".
//
//   POST /stages/:id/claim | heartbeat | records | checkpoints | artifacts | complete
//   GET  /stages/:id/checkpoints/latest | history
//   GET  /artifacts/:id, /artifacts?kind=ref-logprobs&key=&value=   (only what a held stage needs)
//   GET  /blobs/:sha256 (Range)            download, resumable
//   GET  /uploads/:sha256                  {complete, offset}: how much of an upload arrived
//   PUT  /uploads/:sha256?offset=N         append one chunk (fsynced before the answer)
//   POST /uploads/:sha256/commit           verify the sha256 and make the blob (temp → rename)
//   …/stages/:id/labeling/…                the labeling service (./coordinator-labeling.ts)
// See docs/deployment.md.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { RouteContext } from '../index.js';
import { userOf } from '../auth.js';
import { offsetInt } from '../limits.js';
import { AlignflowError } from '../../errors.js';
import { BlobStore, isSha256 } from '../../store/blobs.js';
import { artifactKinds } from '../../store/schema.js';
import type { LocalArtifactStore } from '../../store/artifacts.js';
import { findIn } from '../../store/artifacts.js';
import { beat, claimForWorker, completeForWorker, heldStage, holdsAnyStage, mayReadArtifact, mayReadBlob, SHARED_CACHE_KINDS, workerIdOf } from '../../orchestrator/coordinator.js';
import { keepCheckpointsOf, latestCheckpointRow, recordCheckpoint, runHistory, writeStageMetrics, writeStageProgress } from '../../orchestrator/context.js';
import { runEvents } from '../../store/schema.js';
import type { PlainOutcome } from '../../orchestrator/handler-run.js';

/** The largest chunk one PUT may carry; clients send at most this (UPLOAD_CHUNK_BYTES). */
export const UPLOAD_CHUNK_MAX = 8 * 1024 * 1024;
export const COORD_PREFIX = '/api/coord/v1';

const roles = { roles: ['worker'] } as const;
const stageParams = { type: 'object', required: ['stageId'], additionalProperties: false, properties: { stageId: { type: 'string', minLength: 1, maxLength: 100, pattern: '^[A-Za-z0-9_.-]+$' } } } as const;
const shaParams = { type: 'object', required: ['sha256'], additionalProperties: false, properties: { sha256: { type: 'string', pattern: '^[0-9a-f]{64}$' } } } as const;
const workerHeader = { type: 'object', required: ['alignflow-worker'], properties: { 'alignflow-worker': { type: 'string', minLength: 1, maxLength: 200, pattern: '^[A-Za-z0-9_.:@-]+$' } } } as const;
const finite = { type: 'number', minimum: -1.7976931348623157e308, maximum: 1.7976931348623157e308 } as const;
const text = (max: number) => ({ type: 'string', maxLength: max }) as const;
const manifestFile = { type: 'object', required: ['path', 'sha256', 'sizeBytes'], additionalProperties: false, properties: { path: { type: 'string', minLength: 1, maxLength: 512 }, sha256: { type: 'string', pattern: '^[0-9a-f]{64}$' }, sizeBytes: offsetInt } } as const;
const artifactId = { type: 'string', pattern: '^a-[0-9a-f]{16}$' } as const;

export interface CoordinatorHooks {
  /** Schedules what follows a recorded attempt (BullMQ: successors, retries); see afterAttempt. */
  afterAttempt(runId: string, stageId: string, res: import('../../orchestrator/execute.js').AttemptResult): Promise<void>;
}

const workerOf = (req: FastifyRequest) => workerIdOf(userOf(req).name, req.headers['alignflow-worker'] as string);
const forbidden = (reply: FastifyReply, message: string) => reply.code(403).send({ error: 'forbidden', message });

export default async function coordinatorRoutes(app: FastifyInstance, opts: RouteContext): Promise<void> {
  const { db, home } = opts;
  const blobs = (opts.store as LocalArtifactStore | undefined)?.blobs ?? new BlobStore(home);
  const store = opts.store as LocalArtifactStore | undefined;

  app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer', bodyLimit: UPLOAD_CHUNK_MAX }, (_req, body, done) => done(null, body));

  /** The stage row when this request's worker holds it; answers 409 (and returns undefined) otherwise. */
  const held = (req: FastifyRequest, reply: FastifyReply) => {
    const { stageId } = req.params as { stageId: string };
    const row = heldStage(db, stageId, workerOf(req));
    if (!row) void reply.code(409).send({ error: 'conflict', message: `stage ${stageId} is not held by worker ${workerOf(req)} (cancelled, finished or taken over)` });
    return row;
  };

  app.post(`${COORD_PREFIX}/stages/:stageId/claim`, {
    config: roles,
    schema: { summary: 'Claim a stage attempt (compare-and-set in SQLite: at most one worker wins)', tags: ['coordinator'], params: stageParams, headers: workerHeader },
  }, async (req) => claimForWorker(db, (req.params as { stageId: string }).stageId, workerOf(req)));

  app.post(`${COORD_PREFIX}/stages/:stageId/heartbeat`, {
    config: roles,
    schema: { summary: 'Beat the heartbeat; cancel: true means stop (cancelled or taken over)', tags: ['coordinator'], params: stageParams, headers: workerHeader },
  }, async (req) => ({ cancel: !beat(db, (req.params as { stageId: string }).stageId, workerOf(req)) }));

  app.post(`${COORD_PREFIX}/stages/:stageId/records`, {
    config: roles,
    schema: {
      summary: 'Progress, metrics (upserted by step) and log lines of a held stage, in order',
      tags: ['coordinator'],
      params: stageParams,
      headers: workerHeader,
      body: {
        type: 'object',
        additionalProperties: false,
        properties: {
          progress: { type: 'object', required: ['step', 'total'], additionalProperties: false, properties: { step: finite, total: finite, message: text(2000), metrics: { type: 'object', maxProperties: 100, additionalProperties: finite } } },
          metrics: { type: 'array', maxItems: 1000, items: { type: 'object', required: ['step', 'values'], additionalProperties: false, properties: { step: offsetInt, values: { type: 'object', maxProperties: 100, additionalProperties: { type: 'number' } } } } },
          events: { type: 'array', maxItems: 1000, items: { type: 'object', required: ['level', 'message'], additionalProperties: false, properties: { level: { type: 'string', enum: ['debug', 'info', 'warn', 'error'] }, message: text(20_000) } } },
        },
      },
    },
  }, async (req, reply) => {
    const row = held(req, reply);
    if (!row) return reply;
    const b = req.body as { progress?: { step: number; total: number; message?: string; metrics?: Record<string, number> }; metrics?: { step: number; values: Record<string, number> }[]; events?: { level: 'debug' | 'info' | 'warn' | 'error'; message: string }[] };
    for (const e of b.events ?? []) db.insert(runEvents).values({ runId: row.runId, stageId: row.id, level: e.level, message: e.message, createdAt: Date.now() }).run();
    for (const m of b.metrics ?? []) writeStageMetrics(db, row.runId, row.id, m.step, m.values);
    if (b.progress) writeStageProgress(db, row.id, b.progress);
    return { ok: true };
  });

  app.get(`${COORD_PREFIX}/stages/:stageId/checkpoints/latest`, {
    config: roles,
    schema: { summary: "A held stage's newest checkpoint (null when none)", tags: ['coordinator'], params: stageParams, headers: workerHeader },
  }, async (req, reply) => {
    const row = held(req, reply);
    if (!row) return reply;
    const c = latestCheckpointRow(db, row.id);
    return { checkpoint: c ? { step: c.step, artifactId: c.artifactId } : null };
  });

  app.post(`${COORD_PREFIX}/stages/:stageId/checkpoints`, {
    config: roles,
    schema: {
      summary: 'Record a checkpoint artifact (registered before) of a held stage',
      tags: ['coordinator'],
      params: stageParams,
      headers: workerHeader,
      body: { type: 'object', required: ['step', 'artifactId'], additionalProperties: false, properties: { step: offsetInt, artifactId, evalLoss: finite } },
    },
  }, async (req, reply) => {
    const row = held(req, reply);
    if (!row) return reply;
    const b = req.body as { step: number; artifactId: string; evalLoss?: number };
    const m = findIn(db, b.artifactId);
    if (!m || m.kind !== 'checkpoint') throw new AlignflowError('input', `artifact ${b.artifactId} is not a registered checkpoint`);
    recordCheckpoint(db, row.id, b.step, b.artifactId, keepCheckpointsOf(row.config), b.evalLoss);
    return { ok: true };
  });

  app.get(`${COORD_PREFIX}/stages/:stageId/history`, {
    config: roles,
    schema: { summary: "The run's other stages' curves, configs and warnings (the eval report's history)", tags: ['coordinator'], params: stageParams, headers: workerHeader },
  }, async (req, reply) => {
    const row = held(req, reply);
    if (!row) return reply;
    return runHistory(db, row.runId, row.id);
  });

  app.post(`${COORD_PREFIX}/stages/:stageId/artifacts`, {
    config: roles,
    schema: {
      summary: 'Register an artifact of a held stage from uploaded blobs (refused while any blob is missing)',
      tags: ['coordinator'],
      params: stageParams,
      headers: workerHeader,
      body: {
        type: 'object',
        required: ['kind', 'name', 'files'],
        additionalProperties: false,
        properties: {
          kind: { type: 'string', enum: [...artifactKinds] },
          name: { type: 'string', minLength: 1, maxLength: 200 },
          metadata: { type: 'object' },
          files: { type: 'array', maxItems: 10_000, items: manifestFile },
          inputs: { type: 'array', maxItems: 1000, items: { type: 'object', required: ['artifactId', 'role'], additionalProperties: false, properties: { artifactId, role: { type: 'string', minLength: 1, maxLength: 100 } } } },
          producer: { type: 'object', required: ['runId', 'stageId', 'role'], additionalProperties: false, properties: { runId: text(100), stageId: text(100), role: { type: 'string', minLength: 1, maxLength: 100 } } },
        },
      },
    },
  }, async (req, reply) => {
    const row = held(req, reply);
    if (!row) return reply;
    if (!store) throw new AlignflowError('internal', 'the coordinator has no artifact store');
    const b = req.body as { kind: (typeof artifactKinds)[number]; name: string; metadata?: Record<string, unknown>; files: { path: string; sha256: string; sizeBytes: number }[]; inputs?: { artifactId: string; role: string }[]; producer?: { runId: string; stageId: string; role: string } };
    if (b.producer && (b.producer.stageId !== row.id || b.producer.runId !== row.runId)) return forbidden(reply, `a worker registers artifacts of its own stage only (${row.id}), not of ${b.producer.stageId}`);
    const missing: string[] = [];
    for (const f of b.files) {
      const st = await fsp.stat(blobs.pathOf(f.sha256)).catch(() => undefined);
      if (!st || st.size !== f.sizeBytes) missing.push(f.sha256);
    }
    if (missing.length) return reply.code(409).send({ error: 'conflict', message: `${missing.length} blob(s) of "${b.name}" are not uploaded: ${missing.slice(0, 5).join(', ')}`, missing });
    const m = await store.put({
      kind: b.kind,
      name: b.name,
      ...(b.metadata ? { metadata: b.metadata } : {}),
      files: b.files.map((f) => ({ path: f.path, blob: { sha256: f.sha256, sizeBytes: f.sizeBytes } })),
      ...(b.inputs ? { inputs: b.inputs } : {}),
      ...(b.producer ? { producer: b.producer } : {}),
    });
    return reply.code(201).send(m);
  });

  app.post(`${COORD_PREFIX}/stages/:stageId/complete`, {
    config: roles,
    schema: {
      summary: "Record a held stage attempt's outcome (then its successors are dispatched)",
      tags: ['coordinator'],
      params: stageParams,
      headers: workerHeader,
      body: {
        type: 'object',
        required: ['outcome'],
        additionalProperties: false,
        properties: {
          shutdown: { type: 'boolean' },
          outcome: {
            type: 'object',
            required: ['status'],
            additionalProperties: false,
            properties: {
              status: { type: 'string', enum: ['done', 'waiting', 'error'] },
              outputs: { type: 'object', maxProperties: 100, additionalProperties: artifactId },
              main: text(100),
              summary: { type: 'object' },
              message: text(100_000),
              done: offsetInt,
              total: offsetInt,
              retryAfterMs: offsetInt,
              kind: text(40),
              stack: text(100_000),
            },
          },
        },
      },
    },
  }, async (req) => {
    const { stageId } = req.params as { stageId: string };
    const b = req.body as { outcome: PlainOutcome; shutdown?: boolean };
    const o = b.outcome as PlainOutcome & Record<string, unknown>;
    const need = o.status === 'done' ? ['outputs', 'main'] : o.status === 'waiting' ? ['message', 'done', 'total', 'retryAfterMs'] : ['kind', 'message'];
    for (const k of need) if (o[k] === undefined) throw new AlignflowError('input', `invalid request body: outcome.${k} is required when status is "${o.status}"`);
    if (o.status === 'done') for (const id of Object.values(o.outputs)) if (!findIn(db, id)) throw new AlignflowError('input', `output artifact ${id} is not registered`);
    const worker = workerOf(req);
    const res = completeForWorker(db, stageId, worker, b.outcome, !!b.shutdown);
    const row = heldOrAny(stageId);
    if (row) await opts.coordinator?.afterAttempt(row.runId, stageId, res);
    return res;
  });
  const heldOrAny = (stageId: string) => db.$client.prepare('SELECT run_id AS runId FROM stages WHERE id = ?').get(stageId) as { runId: string } | undefined;

  app.get(`${COORD_PREFIX}/artifacts/:artifactId`, {
    config: roles,
    schema: { summary: 'A manifest a held stage may read (its inputs, checkpoints, outputs)', tags: ['coordinator'], params: { type: 'object', required: ['artifactId'], additionalProperties: false, properties: { artifactId } }, headers: workerHeader },
  }, async (req, reply) => {
    const { artifactId: id } = req.params as { artifactId: string };
    if (!mayReadArtifact(db, userOf(req).name, id)) return forbidden(reply, `artifact ${id} is not an input, checkpoint or output of a stage this worker holds`);
    return findIn(db, id);
  });

  app.get(`${COORD_PREFIX}/artifacts`, {
    config: roles,
    schema: {
      summary: 'Cache artifacts (reference log-probs) by a metadata key, newest first',
      tags: ['coordinator'],
      headers: workerHeader,
      querystring: { type: 'object', required: ['kind', 'key', 'value'], additionalProperties: false, properties: { kind: { type: 'string', enum: [...SHARED_CACHE_KINDS] }, key: { type: 'string', pattern: '^[A-Za-z0-9_]{1,64}$' }, value: text(500) } },
    },
  }, async (req, reply) => {
    if (!store) throw new AlignflowError('internal', 'the coordinator has no artifact store');
    if (!holdsAnyStage(db, userOf(req).name)) return forbidden(reply, 'only a worker holding a stage may look up caches');
    const q = req.query as { kind: (typeof SHARED_CACHE_KINDS)[number]; key: string; value: string };
    return { artifacts: await store.findByMetadata(q.kind, q.key, q.value) };
  });

  app.get(`${COORD_PREFIX}/blobs/:sha256`, {
    config: roles,
    schema: { summary: 'Download a blob a held stage may read; Range: bytes=N- resumes', tags: ['coordinator'], params: shaParams, headers: workerHeader },
  }, async (req, reply) => {
    const { sha256 } = req.params as { sha256: string };
    if (!mayReadBlob(db, userOf(req).name, sha256)) return forbidden(reply, `blob ${sha256} belongs to no artifact a stage of this worker may read`);
    const file = blobs.pathOf(sha256);
    const st = await fsp.stat(file).catch(() => undefined);
    if (!st) throw new AlignflowError('integrity', `blob ${sha256} is missing from the coordinator's store`);
    const range = req.headers.range;
    if (typeof range === 'string') {
      const m = /^bytes=(\d+)-(\d*)$/.exec(range.trim());
      const start = m ? Number(m[1]) : NaN;
      const end = m && m[2] !== '' ? Math.min(Number(m[2]), st.size - 1) : st.size - 1;
      if (!m || !(start <= end) || start >= st.size) return reply.code(416).header('Content-Range', `bytes */${st.size}`).send({ error: 'input', message: `unsatisfiable range "${range}" for ${st.size} bytes (one range bytes=N- or bytes=N-M)` });
      reply.header('Accept-Ranges', 'bytes').header('Content-Type', 'application/octet-stream');
      reply.code(206).header('Content-Range', `bytes ${start}-${end}/${st.size}`).header('Content-Length', String(end - start + 1));
      return reply.send(fs.createReadStream(file, { start, end }));
    }
    reply.header('Accept-Ranges', 'bytes').header('Content-Type', 'application/octet-stream').header('Content-Length', String(st.size));
    return reply.send(fs.createReadStream(file));
  });

  // Uploads: one part file per digest in the store's tmp dir; a chunk is appended at the offset
  // the client names (which must be the part's size: a retried chunk after a lost answer is
  // answered with the size, and the client continues from there) and fsynced before the answer,
  // so an acknowledged byte survives a coordinator crash. Per-digest queue: two workers uploading
  // the same content append in turn.
  const partOf = (sha256: string) => path.join(blobs.tmp, `upload-${sha256}.part`);
  const queues = new Map<string, Promise<unknown>>();
  const serial = <T>(key: string, fn: () => Promise<T>): Promise<T> => {
    const prev = queues.get(key) ?? Promise.resolve();
    const next = prev.catch(() => undefined).then(fn);
    queues.set(key, next);
    void next.finally(() => queues.get(key) === next && queues.delete(key)).catch(() => undefined);
    return next;
  };
  const uploadState = async (sha256: string) => {
    if (blobs.has(sha256)) return { complete: true, offset: (await fsp.stat(blobs.pathOf(sha256))).size };
    const st = await fsp.stat(partOf(sha256)).catch(() => undefined);
    return { complete: false, offset: st?.size ?? 0 };
  };
  const mayUpload = (req: FastifyRequest, reply: FastifyReply) => {
    if (holdsAnyStage(db, userOf(req).name)) return true;
    void forbidden(reply, 'only a worker holding a stage may upload');
    return false;
  };

  app.get(`${COORD_PREFIX}/uploads/:sha256`, {
    config: roles,
    schema: { summary: 'How much of a blob upload arrived (complete: the blob exists, send nothing)', tags: ['coordinator'], params: shaParams, headers: workerHeader },
  }, async (req, reply) => {
    if (!mayUpload(req, reply)) return reply;
    return uploadState((req.params as { sha256: string }).sha256);
  });

  app.put(`${COORD_PREFIX}/uploads/:sha256`, {
    config: roles,
    schema: {
      summary: `Append one chunk (≤ ${UPLOAD_CHUNK_MAX} bytes, application/octet-stream) at offset`,
      tags: ['coordinator'],
      params: shaParams,
      headers: workerHeader,
      querystring: { type: 'object', required: ['offset'], additionalProperties: false, properties: { offset: offsetInt } },
    },
  }, async (req, reply) => {
    if (!mayUpload(req, reply)) return reply;
    const { sha256 } = req.params as { sha256: string };
    const { offset } = req.query as { offset: number };
    const body = req.body;
    if (!Buffer.isBuffer(body)) return reply.code(415).send({ error: 'input', message: 'a chunk is sent as Content-Type: application/octet-stream' });
    return serial(sha256, async () => {
      const now = await uploadState(sha256);
      if (now.complete) return now;
      if (offset !== now.offset) return reply.code(409).send({ error: 'conflict', message: `upload of ${sha256} is at offset ${now.offset}, not ${offset}`, offset: now.offset });
      await fsp.mkdir(blobs.tmp, { recursive: true });
      const fh = await fsp.open(partOf(sha256), 'a');
      try {
        let off = 0;
        while (off < body.byteLength) off += (await fh.write(body, off, body.byteLength - off)).bytesWritten;
        await fh.sync();
      } finally {
        await fh.close();
      }
      return { complete: false, offset: offset + body.byteLength };
    });
  });

  app.post(`${COORD_PREFIX}/uploads/:sha256/commit`, {
    config: roles,
    schema: {
      summary: 'Verify an uploaded blob against its sha256 and store it (a mismatch is discarded: 422)',
      tags: ['coordinator'],
      params: shaParams,
      headers: workerHeader,
      body: { type: 'object', required: ['sizeBytes'], additionalProperties: false, properties: { sizeBytes: offsetInt } },
    },
  }, async (req, reply) => {
    if (!mayUpload(req, reply)) return reply;
    const { sha256 } = req.params as { sha256: string };
    const { sizeBytes } = req.body as { sizeBytes: number };
    if (!isSha256(sha256)) throw new AlignflowError('input', 'not a sha256');
    return serial(sha256, async () => {
      if (blobs.has(sha256)) return { complete: true, offset: sizeBytes };
      const part = partOf(sha256);
      // An empty file (a stage's empty output, e.g. no preference records) has no chunk to send.
      if (sizeBytes === 0 && !(await fsp.stat(part).catch(() => undefined))) {
        await fsp.mkdir(blobs.tmp, { recursive: true });
        await fsp.writeFile(part, '');
      }
      const st = await fsp.stat(part).catch(() => undefined);
      if (!st) return reply.code(409).send({ error: 'conflict', message: `nothing of ${sha256} was uploaded`, offset: 0 });
      if (st.size < sizeBytes) return reply.code(409).send({ error: 'conflict', message: `upload of ${sha256} has ${st.size} of ${sizeBytes} bytes`, offset: st.size });
      try {
        await blobs.adopt(part, sha256, sizeBytes);
      } catch (err) {
        if (err instanceof AlignflowError && err.kind === 'integrity') return reply.code(422).send({ error: 'integrity', message: err.message });
        throw err;
      }
      return { complete: true, offset: sizeBytes };
    });
  });
}
