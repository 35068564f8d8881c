// The SFT stage: fine-tunes the `model` input (a model artifact in Hugging Face layout, e.g. the
// output of model_init or an imported checkpoint) on the `train` SFT dataset, evaluates on the
// `eval` dataset (or an `eval_fraction` held out of train), checkpoints through the context and
// resumes from ctx.latestCheckpoint() bit for bit. Output: a 'model' artifact (config.json,
// model.safetensors, generation_config.json, tokenizer.json, tokenizer_config.json).
// Config names follow TRL's SFTConfig where one exists (learning_rate → lr, etc.; see docs).
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { AlignflowError } from '../errors.js';
import type { SftRecord } from '../data/formats.js';
import { readDatasetRecords } from '../data/datasets.js';
import { loadModelDir, saveModelDir, configJson } from '../ml/models/io.js';
import { attachStageLora, loraConfigSchema } from '../ml/lora.js';
import { checkpointArtifact, readCheckpoint } from '../ml/train/checkpoint.js';
import { runSft, splitEval } from '../ml/train/sft.js';
import { checkStageMemory } from './memory-check.js';
import type { StageContext, StageHandler } from './contract.js';

const posInt = z.number().int().positive();

export const sftConfigSchema = z
  .object({
    /** Optimizer updates; default: `epochs` over the training data. */
    max_steps: posInt.optional(),
    epochs: z.number().positive().default(1),
    batch_size: posInt.default(8),
    grad_accum: posInt.default(1),
    lr: z.number().positive().default(2e-5),
    schedule: z.enum(['cosine', 'constant', 'linear']).default('linear'),
    warmup_steps: z.number().int().nonnegative().optional(),
    warmup_ratio: z.number().min(0).max(1).default(0),
    min_lr_ratio: z.number().min(0).max(1).default(0),
    weight_decay: z.number().nonnegative().default(0),
    adam_beta1: z.number().min(0).lt(1).default(0.9),
    adam_beta2: z.number().min(0).lt(1).default(0.999),
    adam_epsilon: z.number().positive().default(1e-8),
    max_grad_norm: z.number().nonnegative().default(1),
    max_length: posInt.min(2).default(1024),
    packing: z.boolean().default(false),
    add_eos: z.boolean().default(true),
    eval_fraction: z.number().min(0).lt(1).default(0),
    eval_every: posInt.optional(),
    eval_batch_size: posInt.optional(),
    checkpoint_every: posInt.optional(),
    keep_checkpoints: posInt.default(3),
    log_every: posInt.default(1),
    /** Overrides the run-derived stage seed. */
    seed: z.number().int().nonnegative().optional(),
    /** Train LoRA adapters only (PEFT names); the output is the base plus an adapter (ml/lora.ts). */
    lora: loraConfigSchema.optional(),
  })
  .strict();

export type SftConfig = z.infer<typeof sftConfigSchema>;

async function readSft(ctx: StageContext<SftConfig>, role: string): Promise<SftRecord[]> {
  const a = ctx.inputs[role];
  if (!a) throw new AlignflowError('config', `the sft stage needs a "${role}" input (an SFT dataset)`);
  const out: SftRecord[] = [];
  for await (const r of readDatasetRecords(ctx.store, a.id, { kind: 'sft' })) out.push(r);
  return out;
}

export const sftStage: StageHandler<SftConfig> = {
  kind: 'sft',
  configSchema: sftConfigSchema as unknown as z.ZodType<SftConfig>,
  heavy: true,
  async run(ctx) {
    const c = ctx.config;
    const modelIn = ctx.inputs.model;
    if (!modelIn) throw new AlignflowError('config', 'the sft stage needs a "model" input (a model artifact: the pipeline base model or a model stage)');
    if (modelIn.kind !== 'model') throw new AlignflowError('config', `the sft "model" input is a ${modelIn.kind} artifact, not a model`);
    const seed = c.seed ?? ctx.seed;

    const baseDir = await ctx.store.materialize(modelIn.id, path.join(ctx.workDir, 'base'));
    const { model, tokenizer } = await loadModelDir(baseDir, { requireTokenizer: true });
    const adapter = c.lora ? attachStageLora(model, c.lora, seed) : undefined;
    try {
      await checkStageMemory('sft', model, c.batch_size, c.max_length);
      let train = await readSft(ctx, 'train');
      let evalRecords: SftRecord[] | undefined;
      if (ctx.inputs.eval) evalRecords = await readSft(ctx, 'eval');
      else if (c.eval_fraction > 0) {
        const s = splitEval(train, c.eval_fraction, seed);
        train = s.train;
        evalRecords = s.eval;
      }

      let resume;
      const ref = await ctx.latestCheckpoint();
      if (ref) {
        resume = await readCheckpoint((f) => ctx.store.readFile(ref.artifact.id, f));
        ctx.log.info(`SFT: resuming from the checkpoint of step ${ref.step}`);
      }
      // files that make every checkpoint a loadable model directory
      const extra = [
        { path: 'config.json', data: Buffer.from(configJson(model.config)) },
        ...['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json']
          .filter((f) => fs.existsSync(path.join(baseDir, f)))
          .map((f) => ({ path: f, sourceFile: path.join(baseDir, f) })),
      ];

      const result = await runSft({
        model,
        ...(adapter ? { params: adapter.params } : {}),
        tokenizer: tokenizer!,
        train,
        eval: evalRecords,
        hyper: {
          maxSteps: c.max_steps,
          epochs: c.epochs,
          batchSize: c.batch_size,
          gradAccum: c.grad_accum,
          lr: c.lr,
          schedule: c.schedule,
          warmupSteps: c.warmup_steps,
          warmupRatio: c.warmup_ratio,
          minLrRatio: c.min_lr_ratio,
          weightDecay: c.weight_decay,
          beta1: c.adam_beta1,
          beta2: c.adam_beta2,
          eps: c.adam_epsilon,
          maxGradNorm: c.max_grad_norm,
          maxLength: c.max_length,
          packing: c.packing,
          addEos: c.add_eos,
          evalEvery: c.eval_every,
          evalBatchSize: c.eval_batch_size,
          checkpointEvery: c.checkpoint_every,
          logEvery: c.log_every,
          seed,
        },
        resume,
        onCheckpoint: async (ckpt) => {
          await ctx.saveCheckpoint(ckpt.state.step, checkpointArtifact(ckpt, { name: `${ctx.stageName}-step-${ckpt.state.step}`, extra }), ckpt.state.evalLoss);
        },
        onMetrics: (step, m) => ctx.metrics(step, m),
        onProgress: (p) => ctx.progress({ step: p.step, total: p.total, metrics: p.metrics }),
        log: (m) => ctx.log.info(m),
        signal: ctx.signal,
      });

      const outDir = path.join(ctx.workDir, 'out');
      saveModelDir(model, tokenizer, outDir, { baseModel: modelIn.id });
      const files = fs.readdirSync(outDir).sort().map((f) => ({ path: f, sourceFile: path.join(outDir, f) }));
      const inputs = [{ artifactId: modelIn.id, role: 'model' }, { artifactId: ctx.inputs.train!.id, role: 'train' }];
      if (ctx.inputs.eval) inputs.push({ artifactId: ctx.inputs.eval.id, role: 'eval' });
      const summary = {
        steps: result.step,
        train_loss: result.metrics.loss,
        initial_eval_loss: result.initialEvalLoss,
        eval_loss: result.finalEvalLoss,
        eval_perplexity: result.finalEvalLoss === undefined ? undefined : Math.exp(result.finalEvalLoss),
        best_eval_loss: result.bestEvalLoss,
        train_runtime: result.trainRuntime,
        train_tokens_per_second: result.trainTokensPerSecond,
        data: result.data,
      };
      // The artifact id hashes the metadata, and equal ids must mean equal weights (the cache,
      // resume and executor-equivalence checks rely on it): wall-clock figures, and the last
      // logging interval's mean loss (its window is cut short by a resume), stay in the stage
      // summary only.
      const { train_runtime: _runtime, train_tokens_per_second: _speed, train_loss: _loss, ...reproducible } = summary;
      const manifest = await ctx.store.put({
        kind: 'model',
        name: `${ctx.stageName}`,
        files,
        metadata: { source: 'sft', model_type: model.config.model_type, ...reproducible, ...(adapter ? { lora: adapter.config, base_model: modelIn.id } : {}) },
        inputs, // lineage; the orchestrator records the stage output (stage_outputs) itself
      });
      return { status: 'done', outputs: { model: manifest }, summary };
    } finally {
      model.dispose();
    }
  },
};
