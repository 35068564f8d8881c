// The training engine's public surface (see docs/engine-training.md).
export { train, evaluateLoss, type TrainOptions, type TrainResult, type MicroBatchOutput, type LossContext, type TrainProgress } from './loop.js';
export { AdamW, defaultDecayFilter, resolveAdamW, type AdamWConfig, type AdamWHyper } from './optimizer.js';
export { learningRateAt, validateSchedule, totalTrainingSteps, warmupStepsFor, type ScheduleConfig, type ScheduleKind, type StepPlan } from './schedule.js';
export { runTraining, type TrainingHyper, type TrainingTask, type TrainingHooks, type PlannedResult } from './plan.js';
export { splitEval } from './split.js';
export { Rng, deriveSeed, type RngState } from './rng.js';
export {
  DataCursor,
  ExampleBatches,
  collate,
  packExamples,
  prepareSftExamples,
  sequentialBatches,
  type Batch,
  type BatchSource,
  type CursorState,
  type Example,
  type PrepareStats,
  type SftPair,
} from './data.js';
export {
  snapshotTrainer,
  restoreTrainer,
  checkpointFiles,
  checkpointArtifact,
  readCheckpoint,
  readCheckpointDir,
  writeCheckpointDir,
  saveCheckpointDir,
  latestCheckpointDir,
  type TrainerCheckpoint,
  type TrainerState,
} from './checkpoint.js';
export { causalLmLoss, tokenNll, batchTensors } from './lm-loss.js';
export { runSft, prepareSftTask, type SftHyper, type SftRunOptions, type SftRunResult, type SftDataStats } from './sft.js';
export { sftRecordText, preferenceRecordText, unpairedRecordText, promptText, type TextPair, type PreferenceText } from './records.js';
