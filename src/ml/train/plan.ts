// One training run from a plan: the step count, the warm-up, the eval cadence, the optimizer and
// the loop seed are decided here for every trainer (SFT, the reward model, DPO, and stages to
// come), which supply only their batches, their loss and their evaluation.
import type * as tf from '@tensorflow/tfjs';
import { deriveSeed } from './rng.js';
import { train, type LossContext, type MicroBatchOutput, type TrainResult } from './loop.js';
import { totalTrainingSteps, warmupStepsFor, type ScheduleKind, type StepPlan } from './schedule.js';
import type { BatchSource } from './data.js';
import type { TrainerCheckpoint } from './checkpoint.js';

export interface TrainingHyper extends StepPlan {
  lr: number;
  schedule: ScheduleKind;
  warmupSteps?: number;
  warmupRatio?: number;
  minLrRatio: number;
  weightDecay: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  maxGradNorm: number;
  evalEvery?: number;
  checkpointEvery?: number;
  logEvery: number;
  /** The stage seed; the loop's own stream is derived from it. */
  seed: number;
}

/** What a trainer supplies: its batches, its loss and (optionally) its held-out evaluation. */
export interface TrainingTask<B> {
  /** The trained parameters (a model's, by name). */
  params: Map<string, tf.Variable>;
  /** Training units (rows, pairs) one epoch walks over: the step count is computed from it. */
  units: number;
  data: BatchSource<B>;
  /** The training loss; ctx says where in the run it is (LoRA dropout seeds its masks from it). */
  lossFn: (b: B, ctx: LossContext) => MicroBatchOutput;
  evalFn?: () => Promise<Record<string, number>>;
  /** Evaluations over the run when eval_every is not set (default 10). */
  evalsPerRun?: number;
}

export interface TrainingHooks {
  resume?: TrainerCheckpoint;
  onCheckpoint?: (ckpt: TrainerCheckpoint) => Promise<void>;
  onMetrics?: (step: number, m: Record<string, number>) => void;
  onProgress?: (p: { step: number; total: number; metrics: Record<string, number> }) => void;
  signal?: AbortSignal;
}

export interface PlannedResult extends TrainResult {
  totalSteps: number;
  /** Seconds this call spent (evaluation and checkpoints included). */
  seconds: number;
  /** The step this call started from (0, or the resumed checkpoint's). */
  startStep: number;
}

export async function runTraining<B>(h: TrainingHyper, task: TrainingTask<B>, hooks: TrainingHooks = {}): Promise<PlannedResult> {
  const totalSteps = totalTrainingSteps(h, task.units);
  const t0 = performance.now();
  const result = await train<B>({
    params: task.params,
    lossFn: task.lossFn,
    data: task.data,
    maxSteps: totalSteps,
    gradAccum: h.gradAccum,
    optimizer: { beta1: h.beta1, beta2: h.beta2, eps: h.eps, weightDecay: h.weightDecay },
    schedule: { lr: h.lr, kind: h.schedule, warmupSteps: warmupStepsFor(h, totalSteps), totalSteps, minLrRatio: h.minLrRatio },
    maxGradNorm: h.maxGradNorm,
    seed: deriveSeed(h.seed, 'loop'),
    logEvery: h.logEvery,
    evalEvery: task.evalFn ? (h.evalEvery ?? Math.max(1, Math.ceil(totalSteps / (task.evalsPerRun ?? 10)))) : undefined,
    evalAtStart: !!task.evalFn,
    evalFn: task.evalFn,
    checkpointEvery: h.checkpointEvery,
    onCheckpoint: hooks.onCheckpoint,
    resume: hooks.resume,
    onMetrics: hooks.onMetrics,
    onProgress: hooks.onProgress,
    signal: hooks.signal,
  });
  return { ...result, totalSteps, seconds: (performance.now() - t0) / 1000, startStep: hooks.resume?.state.step ?? 0 };
}
