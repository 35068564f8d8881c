// The labeling service of a worker on another host: the LabelingService interface of
// src/labeling/port.ts over the coordinator API (src/server/routes/coordinator-labeling.ts), which
// runs each call through the coordinator's own port on its SQLite. It serves the one stage this
// attempt holds.
//
// The client retries a request whose answer was lost (CoordinatorClient.send), so the coordinator
// may see a write twice: every pair, response and label is named here, before the first try, and
// the port stores an id once. fillBatch needs no names (a batch holding pairs is left as it is);
// ensureBatch finds the stage's batch; closeBatch and setScore are idempotent.
import { randomUUID } from 'node:crypto';
import { AlignflowError } from '../../errors.js';
import type { BatchProgress, PairInput, ResponseInput } from '../../labeling/batches.js';
import type { PreferenceExport, RawLabel } from '../../labeling/export.js';
import type { LabelingService, StoredPair } from '../../labeling/port.js';
import type { Batch } from '../../labeling/batches.js';
import type { CoordinatorClient } from './client.js';

/** The same shape of id as the coordinator's own (src/labeling/users.ts newId). */
const newId = (prefix: string) => `${prefix}-${randomUUID().replaceAll('-', '')}`;

const named = (r: ResponseInput): ResponseInput => (r.id ? r : { ...r, id: newId('r') });

export function remoteLabeling(client: CoordinatorClient, job: { runId: string; stageId: string }): LabelingService {
  const base = `/stages/${job.stageId}/labeling`;
  const batch = (id: string) => `${base}/batches/${encodeURIComponent(id)}`;
  const own = (runId: string | null | undefined, stageId: string | null | undefined, what: string) => {
    if (runId !== job.runId || stageId !== job.stageId) throw new AlignflowError('internal', `${what}: a remote worker labels for the stage it holds (${job.stageId} of ${job.runId}), not ${stageId} of ${runId}`);
  };
  return {
    kind: 'alignflow.labeling/1',
    async savePairs(runId, stageId, pairs) {
      own(runId, stageId, 'savePairs');
      const body = pairs.map((p): PairInput => ({ ...p, id: p.id ?? newId('p'), a: named(p.a), b: named(p.b), ...(p.rest ? { rest: p.rest.map(named) } : {}) }));
      return (await client.json<{ ids: string[] }>('POST', `${base}/pairs`, { pairs: body })).ids;
    },
    async ensureBatch({ runId, stageId, ...opts }) {
      own(runId, stageId, 'ensureBatch');
      return client.json<Batch>('POST', `${base}/batch`, opts);
    },
    fillBatch: (batchId, pairs, opts = {}) => client.json('POST', `${batch(batchId)}/fill`, { pairs, ...opts }),
    progress: (batchId) => client.json<BatchProgress>('GET', `${batch(batchId)}/progress`),
    pairsOf: async (batchId) => (await client.json<{ pairs: StoredPair[] }>('GET', `${batch(batchId)}/pairs`)).pairs,
    labelCount: async (batchId) => (await client.json<{ count: number }>('GET', `${batch(batchId)}/label-count`)).count,
    async recordLabels(batchId, labels) {
      const body = labels.map((l) => (l.id ? l : { ...l, id: newId('l') }));
      return (await client.json<{ recorded: number }>('POST', `${batch(batchId)}/labels`, { labels: body })).recorded;
    },
    async setScore(responseId, score) {
      // JSON has no NaN; SQLite stores a NaN score as NULL, and so does the coordinator for null.
      await client.json('POST', `${base}/scores`, { responseId, score: Number.isFinite(score) ? score : null });
    },
    async closeBatch(batchId) {
      await client.json('POST', `${batch(batchId)}/close`);
    },
    preferences: (batchId, resolution) => client.json<PreferenceExport>('GET', `${batch(batchId)}/preferences${resolution ? `?resolution=${resolution}` : ''}`),
    rawLabels: async (batchId) => (await client.json<{ labels: RawLabel[] }>('GET', `${batch(batchId)}/raw-labels`)).labels,
  };
}
