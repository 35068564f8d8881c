// The contract between the orchestrator and the stage handlers. A handler does pure work on
// artifacts: it never sees BullMQ, HTTP or SQL, so both executors run it the same way.
import type { ZodType } from 'zod';
import type { ArtifactManifest, ArtifactStore, PutArtifact } from '../store/types.js';
import type { LabelingService } from '../labeling/port.js';

export type StageKind = 'sft' | 'collect' | 'label' | 'reward' | 'dpo' | 'eval' | (string & {});

export interface Progress {
  step: number;
  total: number;
  message?: string;
  /** Latest scalar metrics, for the live display (loss, rewards/accuracies, ...). */
  metrics?: Record<string, number>;
}

export interface Logger {
  debug(msg: string): void;
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
}

export interface CheckpointRef {
  step: number;
  artifact: ArtifactManifest;
}

/** The labeling services (pairs, batches, labels) a stage may use; the orchestrator's context builder provides them. */
export type LabelingPort = LabelingService;

/** The rest of the run, as the eval report shows it: other stages' metric curves, configs and logged warnings. */
export interface RunHistory {
  curves: { stage: string; kind: string; metric: string; points: [number, number][] }[];
  stageConfigs?: Record<string, unknown>;
  warnings?: { stage: string; message: string }[];
}

export interface StageContext<C = unknown> {
  runId: string;
  stageId: string;
  stageName: string;
  kind: StageKind;
  config: C;
  /** Input artifacts by role ("model", "train", "prompts", "reference", ...). */
  inputs: Record<string, ArtifactManifest>;
  store: ArtifactStore;
  /** A scratch directory for this attempt, removed after the stage ends. */
  workDir: string;
  /** Derived from the run seed and the stage name: repeatable, distinct per stage. */
  seed: number;
  latestCheckpoint(): Promise<CheckpointRef | undefined>;
  /** Stores a checkpoint artifact and prunes old ones (keeps the last N and the best by eval loss). */
  saveCheckpoint(step: number, artifact: PutArtifact, evalLoss?: number): Promise<CheckpointRef>;
  progress(p: Progress): void;
  /** Records metrics at a step (TRL names; `eval_` prefix on the eval split). */
  metrics(step: number, values: Record<string, number>): void;
  log: Logger;
  /** Aborted on cancel or worker shutdown: stop within one training step, after checkpointing. */
  signal: AbortSignal;
  /** Used by the collect, label, eval and online_dpo stages: over SQLite, or over the coordinator API on a remote worker; absent where neither is at hand (bare tests). */
  labeling?: LabelingPort;
  /** The run's other stages (the eval report's curves and warnings); absent outside a run. */
  history?: () => Promise<RunHistory> | RunHistory;
}

export type StageOutcome =
  | {
      status: 'done';
      /** Output artifacts by role; the first role listed is the stage's main output. */
      outputs: Record<string, ArtifactManifest>;
      summary?: Record<string, unknown>;
    }
  | {
      /** Not finished and nothing to compute now (waiting for labels): ask again later. */
      status: 'waiting';
      message: string;
      done: number;
      total: number;
      retryAfterMs: number;
    };

export interface StageHandler<C = unknown> {
  kind: StageKind;
  /** Validates the stage's `config` block of the pipeline spec. */
  configSchema: ZodType<C>;
  /** CPU-heavy handlers run in a worker thread (inline) or a sandboxed processor (BullMQ). */
  heavy: boolean;
  run(ctx: StageContext<C>): Promise<StageOutcome>;
}
