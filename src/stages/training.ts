// The one skeleton of every training stage: load the model → prepare the data and hold out the
// eval split → resume from the latest checkpoint → train → checkpoint → save → summary. A training
// stage (SFT, reward, DPO, and the stages to come) supplies only what is its own: a config schema,
// the model it trains, its data preparation and its loss (as a TrainingTask), and the fields its
// output and summary add. See docs/writing-a-stage.md.
import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { z, type ZodType } from 'zod';
import { AlignflowError } from '../errors.js';
import type { ArtifactManifest } from '../store/types.js';
import { dirFiles } from '../store/dir-files.js';
import type { StageContext, StageHandler, StageOutcome } from './contract.js';
import { parseStageConfig } from './stage-config.js';
import { MODEL_FILE, checkpointArtifact, readCheckpoint, type TrainerCheckpoint } from '../ml/train/checkpoint.js';
import { runTraining, type PlannedResult, type TrainingHyper, type TrainingTask } from '../ml/train/plan.js';
import { splitEval } from '../ml/train/split.js';
import { WaitingForInput } from '../ml/train/data.js';
import type { MetricPoint } from '../ml/losses/index.js';
import type { LoraAdapter } from '../ml/lora.js';

const posInt = z.number().int().positive();

/** Where the training stages' defaults differ (sequence length and how chatty/safe a run is). */
export interface TrainingDefaults {
  lr: number;
  maxLength: number;
  logEvery: number;
  /** Absent: no periodic checkpoint unless the spec asks. */
  checkpointEvery?: number;
  evalFraction: number;
}

/**
 * Config fields every training stage has: sequence length, batching, the optimizer and its
 * schedule, how long and how often to train, evaluate, log and checkpoint, and the seed. Names
 * follow TRL's where one exists (docs/engine-training.md lists the mapping).
 */
export function trainingFields(d: TrainingDefaults) {
  return {
    max_length: z.number().int().min(2).default(d.maxLength),
    add_eos: z.boolean().default(true),
    batch_size: posInt.default(8),
    grad_accum: posInt.default(1),
    eval_batch_size: posInt.optional(),
    lr: z.number().positive().default(d.lr),
    schedule: z.enum(['cosine', 'constant', 'linear']).default('linear'),
    /** Warm-up steps; default ⌈warmup_ratio · steps⌉ (transformers' rounding). */
    warmup_steps: z.number().int().nonnegative().optional(),
    warmup_ratio: z.number().min(0).max(1).default(0),
    min_lr_ratio: z.number().min(0).max(1).default(0),
    weight_decay: z.number().nonnegative().default(0),
    adam_beta1: z.number().min(0).lt(1).default(0.9),
    adam_beta2: z.number().min(0).lt(1).default(0.999),
    adam_epsilon: z.number().positive().default(1e-8),
    max_grad_norm: z.number().nonnegative().default(1),
    /** Optimizer steps; when absent, ⌈epochs · training units / (batch_size · grad_accum)⌉. */
    max_steps: posInt.optional(),
    epochs: z.number().positive().default(1),
    /** Held out of `train` when there is no `eval` input. */
    eval_fraction: z.number().min(0).lt(1).default(d.evalFraction),
    eval_every: posInt.optional(),
    log_every: posInt.default(d.logEvery),
    checkpoint_every: d.checkpointEvery === undefined ? posInt.optional() : posInt.default(d.checkpointEvery),
    /** Checkpoints kept (plus the best by eval loss); the orchestrator prunes the rest. */
    keep_checkpoints: posInt.default(3),
    /** false: every epoch walks the data in dataset order (to reproduce a TRL run with shuffling off). */
    shuffle: z.boolean().default(true),
    /** Overrides the run-derived stage seed. */
    seed: z.number().int().nonnegative().optional(),
  };
}

const commonSchema = z.object(trainingFields({ lr: 1, maxLength: 2, logEvery: 1, evalFraction: 0 }));
export type TrainingConfig = z.infer<typeof commonSchema>;

/** The model a stage trains: its parameters and how it writes itself as a model directory. */
export interface Trainee {
  params: Map<string, tf.Variable>;
  /** LoRA adapters being trained: their dropout is on during the training loss only. */
  adapter?: LoraAdapter | undefined;
  /** Writes the stage's output model directory (weights, config, tokenizer) into `dir` (absent or empty). */
  save(dir: string): void;
  dispose(): void;
}

/** What a stage's task adds to the generic one: its statistics and its shaping of logged metrics. */
export interface StageTask<B> extends TrainingTask<B> {
  /** Data statistics for the summary (counts, drops, truncations). */
  stats: Record<string, unknown>;
  /** Applied to every logged training point (not to eval points, which evalFn shapes itself). */
  trainMetrics?: (m: Record<string, number>) => Record<string, number>;
}

export interface TrainingRun<C> {
  ctx: StageContext<C>;
  cfg: C;
  /** The stage seed (config `seed`, else the run-derived one). */
  seed: number;
}

/** What the skeleton hands a stage after training. */
export interface TrainedResult<T> {
  trainee: T;
  result: PlannedResult;
  /** Every logged training point and every evaluation, as logged (shaped). */
  history: MetricPoint[];
  evals: MetricPoint[];
  train: number;
  eval: number;
  /** The task's data statistics. */
  stats: Record<string, unknown>;
}

/** What a stage's preparation yields: training units of `train`, of `eval` when given, and anything its task and output need. */
export interface Prepared<U> {
  train: U[];
  eval?: U[];
}

export interface TrainingStageDef<C extends TrainingConfig, T extends Trainee, U, B, P extends Prepared<U> = Prepared<U>> {
  kind: string;
  configSchema: ZodType<C>;
  /** Checks zod cannot express (config 'config' errors, thrown before anything loads). */
  validate?(run: TrainingRun<C>): void;
  /** The model to train, from the stage's inputs. */
  load(run: TrainingRun<C>): Promise<T>;
  /** Training units of the `train` input, and of the `eval` input when there is one. */
  prepare(run: TrainingRun<C>, trainee: T): Promise<P>;
  /** Batches, loss and evaluation over the split units. */
  task(run: TrainingRun<C>, trainee: T, split: { train: U[]; eval: U[] }, prepared: P): Promise<StageTask<B>> | StageTask<B>;
  /** The output model artifact's display name, its extra metadata and lineage, and the stage's own summary fields. */
  finish(run: TrainingRun<C>, r: TrainedResult<T>, prepared: P): Promise<StageFinish> | StageFinish;
}

export interface StageFinish {
  name: string;
  metadata?: Record<string, unknown>;
  /** Lineage beyond base_model / train / eval. */
  inputs?: { artifactId: string; role: string }[];
  /** Outputs beside the model (e.g. cached reference log-probs). */
  outputs?: Record<string, ArtifactManifest>;
  summary?: Record<string, unknown>;
}

/** The orchestrator's handler for a training stage defined by `def`. */
export function trainingStage<C extends TrainingConfig, T extends Trainee, U, B, P extends Prepared<U> = Prepared<U>>(def: TrainingStageDef<C, T, U, B, P>): StageHandler<C> {
  return {
    kind: def.kind,
    configSchema: def.configSchema,
    heavy: true,
    run: (ctx) => runTrainingStage(def, ctx),
  };
}

async function resumeFrom(ctx: StageContext<unknown>): Promise<TrainerCheckpoint | undefined> {
  const c = await ctx.latestCheckpoint();
  if (!c) return undefined;
  ctx.log.info(`${ctx.kind.toUpperCase()}: resuming from the checkpoint of step ${c.step}`);
  return readCheckpoint((f) => ctx.store.readFile(c.artifact.id, f));
}

/** The optimizer and schedule settings of a training config, for runTraining. */
export function trainingHyper(cfg: TrainingConfig, seed: number): TrainingHyper {
  return {
    ...(cfg.max_steps !== undefined ? { maxSteps: cfg.max_steps } : {}),
    epochs: cfg.epochs,
    batchSize: cfg.batch_size,
    gradAccum: cfg.grad_accum,
    lr: cfg.lr,
    schedule: cfg.schedule,
    ...(cfg.warmup_steps !== undefined ? { warmupSteps: cfg.warmup_steps } : {}),
    warmupRatio: cfg.warmup_ratio,
    minLrRatio: cfg.min_lr_ratio,
    weightDecay: cfg.weight_decay,
    beta1: cfg.adam_beta1,
    beta2: cfg.adam_beta2,
    eps: cfg.adam_epsilon,
    maxGradNorm: cfg.max_grad_norm,
    ...(cfg.eval_every !== undefined ? { evalEvery: cfg.eval_every } : {}),
    ...(cfg.checkpoint_every !== undefined ? { checkpointEvery: cfg.checkpoint_every } : {}),
    logEvery: cfg.log_every,
    seed,
  };
}

export async function runTrainingStage<C extends TrainingConfig, T extends Trainee, U, B, P extends Prepared<U>>(def: TrainingStageDef<C, T, U, B, P>, ctx: StageContext<C>): Promise<StageOutcome> {
  const cfg = parseStageConfig(def.configSchema, ctx.config, ctx.stageName);
  const run: TrainingRun<C> = { ctx, cfg, seed: cfg.seed ?? ctx.seed };
  def.validate?.(run);
  if (!ctx.inputs.train) throw new AlignflowError('config', `stage "${ctx.stageName}" needs a "train" input (a dataset)`);
  const trainee = await def.load(run);
  try {
    // --- data and the held-out split (one rule for every stage: ml/train/split.ts)
    const prepared = await def.prepare(run, trainee);
    const split = prepared.eval ? { train: prepared.train, eval: prepared.eval } : splitEval(prepared.train, cfg.eval_fraction, run.seed);
    const stageTask = await def.task(run, trainee, split, prepared);
    // LoRA dropout on the training micro-batches only (not evaluation), masks seeded by position in the run
    const adapter = trainee.adapter;
    const task: StageTask<B> = adapter
      ? { ...stageTask, lossFn: (b, at) => adapter.training({ seed: run.seed, step: at.step, microBatch: at.microBatch }, () => stageTask.lossFn(b, at)) }
      : stageTask;

    // --- files that make every checkpoint a loadable model directory: written once per attempt,
    // except a LoRA trainee's, whose directory holds the adapter weights of the step
    let extra: ReturnType<typeof dirFiles> | undefined;
    const checkpointExtra = () => {
      if (!extra || trainee.adapter) {
        const d = path.join(ctx.workDir, 'checkpoint-description');
        fs.rmSync(d, { recursive: true, force: true });
        trainee.save(d);
        extra = dirFiles(d).filter((f) => f.path !== MODEL_FILE);
      }
      return extra;
    };

    // --- resume, train, checkpoint
    const history: MetricPoint[] = [];
    const evals: MetricPoint[] = [];
    const resume = await resumeFrom(ctx);
    let result: PlannedResult;
    try {
      result = await runTraining(trainingHyper(cfg, run.seed), task, {
        ...(resume ? { resume } : {}),
        onCheckpoint: async (ck) => {
          await ctx.saveCheckpoint(ck.state.step, checkpointArtifact(ck, { name: `${ctx.stageName} step ${ck.state.step}`, extra: checkpointExtra() }), ck.state.evalLoss);
        },
        onMetrics: (step, raw) => {
          const isEval = Object.keys(raw).some((k) => k.startsWith('eval_'));
          const m = isEval || !task.trainMetrics ? raw : task.trainMetrics(raw);
          ctx.metrics(step, m);
          (isEval ? evals : history).push({ step, values: m });
        },
        onProgress: (p) => ctx.progress({ step: p.step, total: p.total, metrics: p.metrics }),
        signal: ctx.signal,
      });
    } catch (e) {
      // the data needs input that is not there yet (human labels): the loop checkpointed; ask again later
      if (e instanceof WaitingForInput) {
        ctx.progress({ step: e.done, total: e.total, message: e.message });
        return { status: 'waiting', message: e.message, done: e.done, total: e.total, retryAfterMs: e.retryAfterMs };
      }
      throw e;
    }

    // --- save and summarise
    const trained: TrainedResult<T> = { trainee, result, history, evals, train: split.train.length, eval: split.eval.length, stats: task.stats };
    const fin = await def.finish(run, trained, prepared);
    const outDir = path.join(ctx.workDir, 'out');
    trainee.save(outDir);
    const base = ctx.inputs.model;
    // The artifact id hashes the metadata, and equal ids must mean equal weights (the cache, resume
    // and executor-equivalence checks rely on it): wall-clock figures stay in the summary only.
    const model = await ctx.store.put({
      kind: 'model',
      name: fin.name,
      files: dirFiles(outDir),
      metadata: { stage: def.kind, steps: result.step, base: base?.id ?? null, ...fin.metadata },
      inputs: [
        ...(base ? [{ artifactId: base.id, role: 'base_model' }] : []),
        { artifactId: ctx.inputs.train.id, role: 'train' },
        ...(ctx.inputs.eval ? [{ artifactId: ctx.inputs.eval.id, role: 'eval' }] : []),
        ...(fin.inputs ?? []),
      ],
    });
    return {
      status: 'done',
      outputs: { model, ...fin.outputs },
      summary: trainingSummary(trained, fin.summary),
    };
  } finally {
    trainee.dispose();
  }
}

/** The one summary shape of a training stage; stage-specific fields follow the common ones. */
export function trainingSummary(r: TrainedResult<unknown>, own: Record<string, unknown> = {}): Record<string, unknown> {
  const { result } = r;
  return {
    steps: result.step,
    seconds: result.seconds,
    backend: tf.getBackend(),
    units: { train: r.train, eval: r.eval },
    data: r.stats,
    // the last logged training point as logged (shaped by the stage), not the loop's raw one
    metrics: r.history.at(-1)?.values ?? result.metrics,
    eval_start: result.evals[0]?.metrics ?? {},
    eval: result.evals.at(-1)?.metrics ?? {},
    ...(result.bestEvalLoss !== undefined ? { best_eval_loss: result.bestEvalLoss } : {}),
    ...own,
  };
}
