// The SFT stage: fine-tunes the `model` input (a model artifact in Hugging Face layout, e.g. the
// output of model_init or an imported checkpoint) on the `train` SFT dataset with the causal-LM
// loss on completion tokens, evaluating on the `eval` dataset (or an `eval_fraction` held out of
// train). Output: a 'model' artifact (config.json, model.safetensors, generation_config.json,
// tokenizer files). Loading, the split, resume, checkpoints and the summary: ./training.ts.
import { z } from 'zod';
import { AlignflowError } from '../errors.js';
import type { SftRecord } from '../data/formats.js';
import { readDatasetRecords } from '../data/datasets.js';
import { ExampleBatches, type Batch } from '../ml/train/data.js';
import { deriveSeed } from '../ml/train/rng.js';
import { prepareSftTask, tokensPerSecond, withPerplexity } from '../ml/train/sft.js';
import type { StageContext } from './contract.js';
import { lmTrainee, loadModelInput } from './model-input.js';
import { stageLoraSchema } from '../ml/lora.js';
import { trainingFields, trainingStage, type Trainee } from './training.js';
import { checkStageMemory } from './memory-check.js';

export const sftConfigSchema = z
  .object({
    ...trainingFields({ lr: 2e-5, maxLength: 1024, logEvery: 1, evalFraction: 0 }),
    /** Concatenates examples into full max_length rows (TRL's packing). */
    packing: z.boolean().default(false),
    /** Train LoRA adapters only (PEFT names); the output is the base plus an adapter (ml/lora.ts). */
    lora: stageLoraSchema.optional(),
  })
  .strict();

export type SftConfig = z.infer<typeof sftConfigSchema>;

async function readSft(ctx: StageContext<SftConfig>, role: string): Promise<SftRecord[]> {
  const a = ctx.inputs[role]!;
  const out: SftRecord[] = [];
  for await (const r of readDatasetRecords(ctx.store, a.id, { kind: 'sft' })) out.push(r);
  return out;
}

type LmTrainee = Trainee & ReturnType<typeof lmTrainee>;

export const sftStage = trainingStage<SftConfig, LmTrainee, SftRecord, Batch>({
  kind: 'sft',
  configSchema: sftConfigSchema as unknown as z.ZodType<SftConfig>,
  async load({ ctx, cfg, seed }) {
    if (ctx.inputs.model && ctx.inputs.model.kind !== 'model') throw new AlignflowError('config', `the sft "model" input is a ${ctx.inputs.model.kind} artifact, not a model`);
    const lm = lmTrainee(await loadModelInput(ctx, 'model'), cfg.lora, seed);
    await checkStageMemory('sft', lm.model, cfg.batch_size, cfg.max_length);
    return lm;
  },
  async prepare({ ctx }) {
    return { train: await readSft(ctx, 'train'), ...(ctx.inputs.eval ? { eval: await readSft(ctx, 'eval') } : {}) };
  },
  task({ ctx, cfg, seed }, lm, split) {
    const t = prepareSftTask({
      model: lm.model,
      tokenizer: lm.tokenizer!,
      train: split.train,
      eval: split.eval,
      maxLength: cfg.max_length,
      packing: cfg.packing,
      addEos: cfg.add_eos,
      evalBatchSize: cfg.eval_batch_size ?? cfg.batch_size,
      seed,
      shuffle: cfg.shuffle,
      log: (m) => ctx.log.info(m),
    });
    return {
      params: lm.params,
      units: t.rows.length,
      data: new ExampleBatches(t.rows, cfg.batch_size, t.padId, deriveSeed(seed, 'data'), { shuffle: cfg.shuffle }),
      lossFn: t.lossFn,
      ...(t.evalFn ? { evalFn: t.evalFn } : {}),
      evalsPerRun: 10,
      stats: { ...t.data, target_tokens_per_row: t.targetTokensPerRow },
      trainMetrics: withPerplexity,
    };
  },
  finish({ ctx, cfg }, r) {
    const perRow = r.stats.target_tokens_per_row as number;
    return { name: ctx.stageName, metadata: r.trainee.loraMetadata(), summary: { train_tokens_per_second: tokensPerSecond(r.result, perRow * cfg.batch_size * cfg.grad_accum) } };
  },
});
