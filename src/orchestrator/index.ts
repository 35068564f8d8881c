// The orchestrator's public API (what the CLI and the server use).
export { createRun, resolveRunInputs, datasetImporter, getRun, runStages, listRuns, runLogs, cancelRun, resumeRun, retryRun, type StoredSpec, type ExecutorName, type CreateRunOptions } from './runs.js';
export { advanceRun, activeRunIds, resolveInputs, stageOutputMap, type StageProgress } from './scheduler.js';
export { runStageAttempt, backoffMs, timing, type ExecDeps, type AttemptResult, type AttemptOptions } from './execute.js';
export { STAGE_TRANSITIONS, RUN_TRANSITIONS, deriveRunStatus, type RunStatus } from './state.js';
export { stageCacheKey, stageSeed } from './cache-key.js';
export { driveRun, type DriveOptions } from './executors/inline.js';
export { Dispatcher, startWorkers, watchProgress, redisConnection, queueNameFor, jobIdFor, QUEUE_PREFIX } from './executors/bullmq.js';
export { runSnapshot, runLine, stageLine, formatDuration } from './follow.js';
