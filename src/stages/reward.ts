// The reward-model stage: a scalar head on the last non-padding token of the `model` input (an SFT
// model, or a fresh model from the base-model stage), trained on preference pairs with the
// Bradley–Terry loss (+ optional per-pair margin and centring term), saved in transformers'
// family's *ForSequenceClassification layout. With `lora:`, only the adapters and the score head
// train (PEFT's SEQ_CLS trains `score` as a module to save); the saved model is merged.
//
// Inputs:  model (required), train (preference dataset, required), eval (optional; default:
//          eval_fraction of train).
// Outputs: model (the reward model). Loading, the split, resume, checkpoints, the summary: ./training.ts.
import { z } from 'zod';
import type { PairBatch, PairStats, PreparedPair } from '../ml/preference-data.js';
import { createRewardModel, rewardLossFn, saveRewardModelDir, SCORE_WEIGHT, type RewardModel } from '../ml/reward.js';
import { attachStageLora, stageLoraSchema } from '../ml/lora.js';
import { loadModelInput } from './model-input.js';
import { pairBatchesAndEval, pairFields, preparePreferenceInput, truncationRule } from './preference-inputs.js';
import { trainingFields, trainingStage, type Trainee } from './training.js';
import { checkStageMemory } from './memory-check.js';

export const rewardConfigSchema = z
  .object({
    /** λ of λ·mean((r⁺ + r⁻)²) (TRL's center_rewards_coefficient); 0/absent: off. */
    center_rewards_coefficient: z.number().nonnegative().optional(),
    /** Use the dataset's per-pair `margin` when present (TRL does whenever the column exists). */
    use_margin: z.boolean().default(true),
    /** Train LoRA adapters (and the score head) only; the saved reward model has them merged. */
    lora: stageLoraSchema.optional(),
    ...pairFields,
    ...trainingFields({ lr: 1e-3, maxLength: 128, logEvery: 10, checkpointEvery: 50, evalFraction: 0.1 }),
  })
  .strict();

export type RewardConfig = z.infer<typeof rewardConfigSchema>;

type RewardTrainee = Trainee & { rm: RewardModel; base: Awaited<ReturnType<typeof loadModelInput>>; lora: Record<string, unknown> };

export const rewardStage = trainingStage<RewardConfig, RewardTrainee, PreparedPair, PairBatch, { train: PreparedPair[]; eval?: PreparedPair[]; stats: PairStats }>({
  kind: 'reward',
  configSchema: rewardConfigSchema as unknown as z.ZodType<RewardConfig>,
  async load({ ctx, cfg, seed }) {
    const base = await loadModelInput(ctx, 'model');
    const adapter = cfg.lora ? attachStageLora(base.model, cfg.lora, seed) : undefined;
    const rm = createRewardModel(base.model, { seed, padTokenId: base.tokenizer!.padTokenId ?? 0 });
    await checkStageMemory('reward', base.model, 2 * cfg.batch_size, cfg.max_length);
    const params = adapter ? new Map([...adapter.params, [SCORE_WEIGHT, rm.score]]) : rm.params;
    const lora = adapter ? { lora: adapter.config, base_model: base.artifact.id } : {};
    return { rm, base, lora, adapter, params, save: (dir) => saveRewardModelDir(rm, base.tokenizer, dir, { baseModel: base.artifact.id }), dispose: () => rm.dispose() };
  },
  async prepare({ ctx, cfg }, { base }) {
    const rule = truncationRule(ctx, cfg, base.model.contextLength);
    const o = { rule, addEos: cfg.add_eos, keepMargin: cfg.use_margin };
    const train = await preparePreferenceInput(ctx, ctx.inputs.train!.id, base.tokenizer!, { ...o, label: 'train' });
    const evalIn = ctx.inputs.eval ? await preparePreferenceInput(ctx, ctx.inputs.eval.id, base.tokenizer!, { ...o, label: 'eval' }) : undefined;
    return { train: train.pairs, ...(evalIn ? { eval: evalIn.pairs } : {}), stats: train.stats };
  },
  task({ cfg, seed }, trainee, split, prepared) {
    const { rm } = trainee;
    const lossOpts = cfg.center_rewards_coefficient ? { centerCoefficient: cfg.center_rewards_coefficient } : {};
    return { params: trainee.params, ...pairBatchesAndEval(cfg, seed, rm.padTokenId, split, () => rewardLossFn(rm, lossOpts)), stats: { pairs: prepared.stats } };
  },
  finish({ ctx }, r) {
    return { name: `${ctx.stageName} (reward model)`, metadata: { architecture: (r.trainee.rm.config.architectures as string[] | undefined)?.[0] ?? null, ...r.trainee.lora } };
  },
});
