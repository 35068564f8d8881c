// A stage waiting on a human label batch (the label stage, and the eval stage's human judge).
import type { BatchProgress } from '../labeling/batches.js';
import { humanState } from '../labeling/labelers/human.js';
import type { LabelingPort, StageContext, StageOutcome } from './contract.js';

export type HumanBatchCheck =
  | { finished: false; outcome: Extract<StageOutcome, { status: 'waiting' }> }
  | { finished: true; reason: 'quota' | 'closed'; progress: BatchProgress };

/**
 * One look at a stage's human label batch. While labels are missing it reports progress and gives
 * the 'waiting' outcome to return (the orchestrator asks again after `pollMs`). Once every pair has
 * its quota it closes the batch, so a late label is refused rather than silently left out of what
 * the stage builds from the labels.
 */
export async function checkHumanBatch(ctx: Pick<StageContext, 'progress'>, port: LabelingPort, batchId: string, pollMs: number): Promise<HumanBatchCheck> {
  const p = await port.progress(batchId);
  const st = humanState(p);
  if (!st.finished) {
    ctx.progress({ step: p.done, total: p.total, message: st.message });
    return { finished: false, outcome: { status: 'waiting', message: st.message, done: p.done, total: p.total, retryAfterMs: pollMs } };
  }
  if (st.reason === 'quota') await port.closeBatch(batchId);
  return { finished: true, reason: st.reason, progress: p };
}
