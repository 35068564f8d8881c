// The `human` labeler: pairs wait in the labeling queue (server + web UI); the label stage asks
// again later until every regular pair has its quota of labels or an admin closes the batch.
import type { BatchProgress } from '../batches.js';
import type { StageContext, StageOutcome } from '../../stages/contract.js';
import type { LabelingService } from '../port.js';

export type HumanState = { finished: true; reason: 'quota' | 'closed' } | { finished: false; message: string };

export function humanState(p: BatchProgress): HumanState {
  if (p.status === 'closed') return { finished: true, reason: 'closed' };
  if (p.done >= p.total) return { finished: true, reason: 'quota' };
  return { finished: false, message: `waiting for labels (${p.done}/${p.total})${p.status === 'paused' ? ', batch paused' : ''}` };
}

export type HumanBatchCheck =
  | { finished: false; outcome: Extract<StageOutcome, { status: 'waiting' }> }
  | { finished: true; reason: 'quota' | 'closed'; progress: BatchProgress };

/**
 * One look at a stage's human label batch. While labels are missing it reports progress and gives
 * the 'waiting' outcome to return (the orchestrator asks again after `pollMs`). Once every pair has
 * its quota it closes the batch, so a late label is refused rather than silently left out of what
 * the stage builds from the labels.
 */
export function checkHumanBatch(ctx: Pick<StageContext, 'progress'>, port: LabelingService, batchId: string, pollMs: number): HumanBatchCheck {
  const p = port.progress(batchId);
  const st = humanState(p);
  if (!st.finished) {
    ctx.progress({ step: p.done, total: p.total, message: st.message });
    return { finished: false, outcome: { status: 'waiting', message: st.message, done: p.done, total: p.total, retryAfterMs: pollMs } };
  }
  if (st.reason === 'quota') port.closeBatch(batchId);
  return { finished: true, reason: st.reason, progress: p };
}
