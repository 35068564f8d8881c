// The `human` labeler: pairs wait in the labeling queue (server + web UI); the label stage asks
// again later until every regular pair has its quota of labels or an admin closes the batch.
import type { BatchProgress } from '../batches.js';

export type HumanState = { finished: true; reason: 'quota' | 'closed' } | { finished: false; message: string };

export function humanState(p: BatchProgress): HumanState {
  if (p.status === 'closed') return { finished: true, reason: 'closed' };
  if (p.done >= p.total) return { finished: true, reason: 'quota' };
  return { finished: false, message: `waiting for labels (${p.done}/${p.total})${p.status === 'paused' ? ', batch paused' : ''}` };
}
