// The reward-model stage: a scalar head on the last non-padding token of the `model` input (an SFT
// model, or a fresh model from the base-model stage), trained on preference pairs with the
// Bradley–Terry loss (+ optional per-pair margin and centring term), saved in transformers'
// GPT2ForSequenceClassification layout.
//
// Inputs:  model (required), train (preference dataset, required), eval (optional; default:
//          eval_fraction of train).
// Outputs: model (the reward model).
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import * as tf from '@tensorflow/tfjs';
import { checkStageMemory } from './memory-check.js';
import { AlignflowError, configError } from '../errors.js';
import type { StageHandler } from './contract.js';
import { train, evaluateLoss } from '../ml/train/loop.js';
import { checkpointArtifact, readCheckpoint } from '../ml/train/checkpoint.js';
import { preparePairs, PairBatches, sequentialPairBatches, type PreparedPair, type TruncationRule } from '../ml/preference-data.js';
import { createRewardModel, rewardLossFn, saveRewardModelDir } from '../ml/reward.js';
import { withPrefix } from '../ml/losses/index.js';
import { dirFiles, loadModelInput, pairTrainOptions, pairTrainingFields, parseStageConfig, splitPositions, subset, tokenizePreferenceDataset } from './preference-inputs.js';

export const rewardConfigSchema = z
  .object({
    /** λ of λ·mean((r⁺ + r⁻)²) (TRL's center_rewards_coefficient); 0/absent: off. */
    center_rewards_coefficient: z.number().nonnegative().optional(),
    /** Use the dataset's per-pair `margin` when present (TRL does whenever the column exists). */
    use_margin: z.boolean().default(true),
    ...pairTrainingFields({ lr: 1e-3 }),
    seed: z.number().int().optional(),
  })
  .strict();

export type RewardConfig = z.infer<typeof rewardConfigSchema>;

export const rewardStage: StageHandler<RewardConfig> = {
  kind: 'reward',
  configSchema: rewardConfigSchema as unknown as z.ZodType<RewardConfig>,
  heavy: true,
  async run(ctx) {
    const cfg = parseStageConfig(rewardConfigSchema, ctx.config, ctx.stageName);
    if (cfg.max_prompt_length !== undefined && cfg.max_prompt_length >= cfg.max_length) {
      throw configError(`reward: max_prompt_length (${cfg.max_prompt_length}) must be smaller than max_length (${cfg.max_length})`);
    }
    const trainDs = ctx.inputs.train;
    if (!trainDs) throw configError(`stage "${ctx.stageName}" needs a "train" input (a preference dataset)`);
    const seed = cfg.seed ?? ctx.seed;
    const base = await loadModelInput(ctx, 'model');
    const tok = base.tokenizer!;
    const padId = tok.padTokenId ?? 0;
    const rm = createRewardModel(base.model, { seed, padTokenId: padId });
    try {
      await checkStageMemory('reward', base.model, 2 * cfg.batch_size, cfg.max_length);
      const rule: TruncationRule = { maxLength: Math.min(cfg.max_length, base.model.contextLength), ...(cfg.max_prompt_length ? { maxPromptLength: cfg.max_prompt_length } : {}) };
      const prep = async (id: string, label: string) => {
        const t = await tokenizePreferenceDataset(ctx.store, id, tok, { addEos: cfg.add_eos });
        const pairs = cfg.use_margin ? t.pairs : t.pairs.map(({ margin: _m, ...p }) => p);
        const p = preparePairs(pairs, rule);
        const s = p.stats;
        ctx.log.info(
          `${label}: ${s.total} pairs, ${s.kept} kept; dropped ${s.droppedPromptTooLong} whose prompt fills max_length ${rule.maxLength}, skipped ${s.droppedIdentical} with chosen == rejected, ${s.droppedEmpty} empty; truncated ${s.completionTruncated} completions`,
        );
        return p;
      };
      const tp = await prep(trainDs.id, 'train');
      if (tp.pairs.length === 0) throw new AlignflowError('input', `reward: no usable preference pairs in dataset ${trainDs.id}`);
      let trainPairs: PreparedPair[];
      let evalPairs: PreparedPair[];
      if (ctx.inputs.eval) {
        trainPairs = tp.pairs;
        evalPairs = (await prep(ctx.inputs.eval.id, 'eval')).pairs;
      } else {
        const split = splitPositions(tp.pairs.length, cfg.eval_fraction, seed);
        trainPairs = subset(tp.pairs, split.train);
        evalPairs = subset(tp.pairs, split.eval);
      }
      const steps = cfg.max_steps ?? Math.max(1, Math.ceil((cfg.epochs * trainPairs.length) / (cfg.batch_size * cfg.grad_accum)));
      const lossOpts = cfg.center_rewards_coefficient ? { centerCoefficient: cfg.center_rewards_coefficient } : {};
      const evalBs = cfg.eval_batch_size ?? cfg.batch_size * 2;
      const evalFn =
        evalPairs.length > 0
          ? async () => {
              const r = await evaluateLoss(sequentialPairBatches(evalPairs, evalBs, padId), rewardLossFn(rm, lossOpts));
              return withPrefix({ loss: r.loss, ...r.metrics }, 'eval_');
            }
          : undefined;
      const configDir = path.join(ctx.workDir, 'rm-config');
      const ckptExtra = () => {
        fs.rmSync(configDir, { recursive: true, force: true });
        saveRewardModelDir(rm, tok, configDir);
        return dirFiles(configDir).filter((f) => f.path !== 'model.safetensors');
      };
      const last = await ctx.latestCheckpoint();
      const resume = last ? await readCheckpoint((f) => ctx.store.readFile(last.artifact.id, f)) : undefined;
      if (last) ctx.log.info(`resuming from the checkpoint of step ${last.step}`);
      const t0 = Date.now();
      const result = await train({
        params: rm.params,
        lossFn: rewardLossFn(rm, lossOpts),
        data: new PairBatches(trainPairs, cfg.batch_size, cfg.grad_accum, padId, seed),
        ...pairTrainOptions(cfg, steps, seed),
        evalEvery: cfg.eval_every ?? Math.max(1, Math.ceil(steps / 4)),
        evalAtStart: true,
        ...(evalFn ? { evalFn } : {}),
        checkpointEvery: cfg.checkpoint_every,
        onCheckpoint: async (ck) => {
          await ctx.saveCheckpoint(ck.state.step, checkpointArtifact(ck, { name: `${ctx.stageName} step ${ck.state.step}`, extra: ckptExtra() }), ck.state.evalLoss);
        },
        ...(resume ? { resume } : {}),
        onMetrics: (step, m) => ctx.metrics(step, m),
        onProgress: (p) => ctx.progress({ step: p.step, total: p.total, metrics: p.metrics }),
        signal: ctx.signal,
      });
      const outDir = path.join(ctx.workDir, 'reward-model');
      saveRewardModelDir(rm, tok, outDir);
      const model = await ctx.store.put({
        kind: 'model',
        name: `${ctx.stageName} (reward model)`,
        files: dirFiles(outDir),
        metadata: { stage: 'reward', architecture: 'GPT2ForSequenceClassification', steps: result.step, base: base.artifact.id },
        inputs: [
          { artifactId: base.artifact.id, role: 'base_model' },
          { artifactId: trainDs.id, role: 'train' },
        ],
      });
      return {
        status: 'done',
        outputs: { model },
        summary: {
          steps: result.step,
          seconds: (Date.now() - t0) / 1000,
          backend: tf.getBackend(),
          pairs: { train: trainPairs.length, eval: evalPairs.length, stats: tp.stats },
          metrics: result.metrics,
          eval_start: result.evals[0]?.metrics ?? {},
          eval: result.evals.at(-1)?.metrics ?? {},
        },
      };
    } finally {
      rm.dispose();
    }
  },
};
