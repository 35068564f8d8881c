// The `rl` stage: online reinforcement learning of a policy (the `model` input, usually the SFT
// model) against a reward — rule judges (verifiable rewards, e.g. judges/count.mjs), reward model
// artifacts, or several weighted — with RLOO (Ahmadian et al. 2024) or GRPO (Shao et al. 2024)
// advantages, a clipped policy-gradient update and a KL penalty to the frozen reference (in the
// reward or in the loss). Every optimizer step's samples are drawn from the current policy
// (src/ml/rl/rollout.ts); the maths is in src/ml/rl/. docs/rl.md has the fields and the metrics.
//
// Inputs:  model (required), train (prompt dataset, required), reference (model, optional: default
//          the model input; with LoRA, the base with adapters off), eval (prompt dataset, optional),
//          and any reward model named by a `rewards:` entry (default input name: reward_model).
// Outputs: model (the trained policy).
// Loading, the split, resume, checkpoints and the summary: ./training.ts.
import { z } from 'zod';
import { configError } from '../errors.js';
import type { StageContext } from './contract.js';
import { baseView, stageLoraSchema } from '../ml/lora.js';
import type { CausalLM } from '../ml/models/types.js';
import { lmTrainee, loadModelInput } from './model-input.js';
import { trainingFields, trainingStage, type Trainee, type TrainingRun } from './training.js';
import { checkStageMemory } from './memory-check.js';
import { RolloutSource, fitPrompt, type Scorer } from '../ml/rl/rollout.js';
import { rlLossFn } from '../ml/rl/loss.js';
import { deriveSeed } from '../ml/train/rng.js';

const rewardSource = z.discriminatedUnion('type', [
  /** A rule judge module exporting score(prompt, response) (src/eval/judges.ts). */
  z.object({ type: z.literal('judge'), module: z.string(), weight: z.number().default(1) }).strict(),
  /** A reward model artifact, given as the stage input named `input`. */
  z.object({ type: z.literal('reward_model'), input: z.string().default('reward_model'), weight: z.number().default(1), batch_size: z.number().int().positive().default(32) }).strict(),
]);

export const rlConfigSchema = z
  .object({
    /** rloo (leave-one-out baseline) or grpo ((r − mean)/std within the group). */
    advantage: z.enum(['rloo', 'grpo']).default('rloo'),
    /** Answers sampled per prompt, k ≥ 2 (TRL's num_generations; rloo_k in older TRL). */
    num_generations: z.number().int().min(2).max(64).default(4),
    /** GRPO only: the std that divides the centred reward (TRL's scale_rewards). */
    scale_rewards: z.enum(['group', 'batch', 'none']).default('group'),
    /** Whiten the advantages over the whole rollout (TRL RLOO's normalize_advantages). */
    normalize_advantages: z.boolean().default(false),
    /** KL coefficient β ≥ 0 (TRL's beta). */
    beta: z.number().nonnegative().default(0.05),
    /** Where the KL penalty goes: reward (RLOO in TRL: r − β·Σ_t kl_t) or loss (GRPO in TRL: + β·kl_t per token). */
    kl_in: z.enum(['reward', 'loss']).optional(),
    /** Per-token KL estimator (Schulman's k1/k2/k3); default k1 in the reward, k3 in the loss. */
    kl_estimator: z.enum(['k1', 'k2', 'k3']).optional(),
    /** The unit of the importance ratio: sequence (TRL 1.13 RLOO) or token (GRPO). Default by advantage. */
    importance_sampling_level: z.enum(['token', 'sequence']).optional(),
    /** Clip range ε of the ratio (TRL's epsilon / cliprange); epsilon_high defaults to it. */
    epsilon: z.number().positive().lt(1).default(0.2),
    epsilon_high: z.number().positive().optional(),
    /** Updates per sampled rollout: passes (TRL's num_ppo_epochs / num_iterations) × mini-batches. */
    num_ppo_epochs: z.number().int().positive().default(1),
    num_mini_batches: z.number().int().positive().default(1),
    max_new_tokens: z.number().int().min(1).max(4096).default(24),
    temperature: z.number().gt(0).max(10).default(1),
    top_k: z.number().int().min(0).optional(),
    top_p: z.number().gt(0).max(1).optional(),
    /** Subtracted from the score of an answer that ended without EOS (TRL's missing_eos_penalty). */
    missing_eos_penalty: z.number().nonnegative().optional(),
    /** Scores are clipped to [lo, hi] before the KL penalty (TRL RLOO's reward_clip_range). */
    reward_clip_range: z.tuple([z.number(), z.number()]).optional(),
    /** The reward: one or more sources, summed with their weights. */
    rewards: z.array(rewardSource).min(1),
    /** Use only the first N prompts of `train`. */
    max_prompts: z.number().int().positive().optional(),
    /** Train LoRA adapters only; the reference is then the base with adapters off. */
    lora: stageLoraSchema.optional(),
    ...trainingFields({ lr: 1e-4, maxLength: 128, logEvery: 1, checkpointEvery: 50, evalFraction: 0 }),
  })
  .strict();

export type RlConfig = z.infer<typeof rlConfigSchema>;

/** The defaults that depend on other fields: TRL's RLOO and GRPO conventions. */
export function resolveRl(c: RlConfig) {
  const klIn = c.kl_in ?? (c.advantage === 'grpo' ? 'loss' : 'reward');
  return {
    klIn,
    klEstimator: c.kl_estimator ?? (klIn === 'loss' ? 'k3' : 'k1'),
    level: c.importance_sampling_level ?? (c.advantage === 'grpo' ? 'token' : 'sequence'),
    eps: { low: c.epsilon, high: c.epsilon_high ?? c.epsilon },
  } as const;
}

type Policy = Trainee & ReturnType<typeof lmTrainee> & { reference: CausalLM; scorer: Scorer; scorerNames: string[] };

interface Prompt {
  text: string;
  ids: number[];
}

async function readPrompts(ctx: StageContext<unknown>, role: string, policy: Policy, cfg: RlConfig, max?: number): Promise<Prompt[]> {
  const { readDatasetRecords } = await import('../data/datasets.js');
  const { promptText } = await import('../ml/train/records.js');
  const tok = policy.tokenizer!;
  const limit = Math.min(cfg.max_length, policy.model.contextLength);
  const out: Prompt[] = [];
  for await (const r of readDatasetRecords(ctx.store, ctx.inputs[role]!.id)) {
    const p = (r as { prompt?: unknown }).prompt;
    if (p === undefined) throw configError(`rl: dataset ${ctx.inputs[role]!.id} (input ${role}) has records without a prompt; rl needs a prompt (or prompt-completion) dataset`);
    const text = promptText(tok, p as Parameters<typeof promptText>[1]);
    out.push({ text, ids: fitPrompt(tok.encode(text), limit, cfg.max_new_tokens, policy.model.config.bos_token_id ?? undefined) });
    if (max && out.length >= max) break;
  }
  if (out.length === 0) throw configError(`rl: input ${role} has no prompts`);
  return out;
}

/** The weighted sum of every reward source (judges and reward models), loaded once. */
async function loadScorer(ctx: StageContext<unknown>, cfg: RlConfig): Promise<{ score: Scorer; names: string[]; dispose: () => void }> {
  const parts: { name: string; weight: number; score: Scorer; dispose?: () => void }[] = [];
  for (const src of cfg.rewards) {
    if (src.type === 'judge') {
      const { loadRuleJudge, safeScore } = await import('../eval/judges.js');
      const j = await loadRuleJudge(src.module);
      if (!j.score) throw configError(`rl: judge ${j.source} has no score(prompt, response) export`);
      const fn = { name: j.name, score: j.score };
      parts.push({ name: `judge:${j.name}`, weight: src.weight, score: async (ps, as) => Promise.all(ps.map((p, i) => safeScore(fn, p, as[i]!))) });
    } else {
      const art = ctx.inputs[src.input];
      if (!art) throw configError(`rl: rewards names the reward model input "${src.input}", but the stage has no such input`);
      const { loadRewardModelRef, scoreWithRewardModel } = await import('../ml/reward.js');
      const { tokenizePair } = await import('../ml/tokenizer/pairs.js');
      const { model, tokenizer } = await loadRewardModelRef({ store: ctx.store, id: art.id, scratchDir: ctx.workDir });
      if (!tokenizer) throw configError(`rl: reward model ${art.id} has no tokenizer.json`);
      parts.push({
        name: `reward_model:${art.id}`,
        weight: src.weight,
        // the answer as the reward model saw training answers: text with EOS (TRL's add_eos)
        score: async (ps, as) => (await scoreWithRewardModel(model, ps.map((p, i) => tokenizePair(tokenizer, p, as[i]!, { addEos: tokenizer.eosTokenId !== undefined })), { batchSize: src.batch_size })).map((s) => s.reward),
        dispose: () => model.dispose(),
      });
    }
  }
  return {
    names: parts.map((p) => p.name),
    score: async (ps, as) => {
      const total = new Array<number>(ps.length).fill(0);
      for (const p of parts) (await p.score(ps, as)).forEach((s, i) => (total[i]! += p.weight * s));
      return total;
    },
    dispose: () => parts.forEach((p) => p.dispose?.()),
  };
}

function validateRl({ cfg }: TrainingRun<RlConfig>): void {
  if (cfg.advantage === 'rloo' && cfg.scale_rewards !== 'group') throw configError('rl: scale_rewards applies to advantage: grpo only');
  if (cfg.reward_clip_range && !(cfg.reward_clip_range[0] < cfg.reward_clip_range[1])) throw configError(`rl: reward_clip_range must be [lo, hi] with lo < hi, got [${cfg.reward_clip_range.join(', ')}]`);
  if (cfg.max_new_tokens >= cfg.max_length) throw configError(`rl: max_new_tokens (${cfg.max_new_tokens}) must be smaller than max_length (${cfg.max_length})`);
  const perRollout = cfg.num_ppo_epochs * cfg.num_mini_batches;
  if (cfg.checkpoint_every !== undefined && cfg.checkpoint_every % perRollout !== 0) {
    throw configError(`rl: checkpoint_every (${cfg.checkpoint_every}) must be a multiple of num_ppo_epochs × num_mini_batches (${perRollout}), the optimizer steps of one rollout, so a resume starts at a rollout boundary`);
  }
}

export const rlStage = trainingStage<RlConfig, Policy, Prompt, import('../ml/rl/loss.js').RlBatch>({
  kind: 'rl',
  configSchema: rlConfigSchema as unknown as z.ZodType<RlConfig>,
  validate: validateRl,
  async load({ ctx, cfg, seed }) {
    const policy = lmTrainee(await loadModelInput(ctx, 'model'), cfg.lora, seed);
    const refArt = ctx.inputs.reference ?? ctx.inputs.model!;
    let reference: CausalLM;
    let ownRef = false;
    if (refArt.id === policy.artifact.id && policy.adapter) reference = baseView(policy.model);
    else {
      reference = (await loadModelInput(ctx, ctx.inputs.reference ? 'reference' : 'model')).model;
      ownRef = true;
    }
    const scorer = await loadScorer(ctx, cfg);
    await checkStageMemory('rl', policy.model, cfg.batch_size * cfg.num_generations, cfg.max_length);
    return {
      ...policy,
      reference,
      scorer: scorer.score,
      scorerNames: scorer.names,
      dispose: () => {
        policy.dispose();
        if (ownRef) reference.dispose();
        scorer.dispose();
      },
    };
  },
  async prepare({ ctx, cfg }, policy) {
    const train = await readPrompts(ctx, 'train', policy, cfg, cfg.max_prompts);
    const evalP = ctx.inputs.eval ? await readPrompts(ctx, 'eval', policy, cfg) : undefined;
    return { train, ...(evalP ? { eval: evalP } : {}) };
  },
  task({ ctx, cfg, seed }, policy, split) {
    const r = resolveRl(cfg);
    const tok = policy.tokenizer!;
    const source = new RolloutSource(
      {
        k: cfg.num_generations,
        batchSize: cfg.batch_size,
        gradAccum: cfg.grad_accum,
        miniBatches: cfg.num_mini_batches,
        ppoEpochs: cfg.num_ppo_epochs,
        maxNewTokens: cfg.max_new_tokens,
        temperature: cfg.temperature,
        ...(cfg.top_k !== undefined ? { topK: cfg.top_k } : {}),
        ...(cfg.top_p !== undefined ? { topP: cfg.top_p } : {}),
        estimator: cfg.advantage,
        scaleRewards: cfg.scale_rewards,
        normalizeAdvantages: cfg.normalize_advantages,
        beta: cfg.beta,
        klIn: r.klIn,
        klEstimator: r.klEstimator,
        ...(cfg.missing_eos_penalty !== undefined ? { missingEosPenalty: cfg.missing_eos_penalty } : {}),
        ...(cfg.reward_clip_range ? { rewardClip: cfg.reward_clip_range } : {}),
        seed,
        shuffle: cfg.shuffle,
      },
      { policy: policy.model, reference: policy.reference, tokenizer: tok, prompts: split.train, score: policy.scorer, signal: ctx.signal },
    );
    // held-out prompts: one sampled answer each (fixed seed), mean score; eval_loss = −score so the
    // checkpoint kept as "best" is the one with the highest held-out reward
    const evalFn =
      split.eval.length > 0
        ? async () => {
            const { generate, stopTokenIds } = await import('../ml/generate.js');
            let sum = 0;
            for (let i = 0; i < split.eval.length; i += cfg.batch_size) {
              const chunk = split.eval.slice(i, i + cfg.batch_size);
              const res = await generate(policy.model, chunk.map((p) => p.ids), { maxNewTokens: cfg.max_new_tokens, temperature: cfg.temperature, seed: deriveSeed(seed, 'eval', i), eosTokenId: stopTokenIds(policy.model, tok), signal: ctx.signal });
              const s = await policy.scorer(chunk.map((p) => p.text), res.tokens.map((t) => tok.decode(t, { skipSpecialTokens: true })));
              sum += s.reduce((a, b) => a + b, 0);
            }
            const score = sum / split.eval.length;
            return { eval_loss: -score, 'eval_objective/scores': score };
          }
        : undefined;
    return {
      params: policy.params,
      // one epoch over the prompts takes ⌈prompts / (batch_size · grad_accum)⌉ rollouts' worth of
      // micro-batch groups, each trained num_ppo_epochs times
      units: split.train.length * cfg.num_ppo_epochs,
      data: source,
      lossFn: rlLossFn(policy.model, { level: r.level, eps: r.eps, beta: cfg.beta, klIn: r.klIn, klEstimator: r.klEstimator }),
      ...(evalFn ? { evalFn } : {}),
      stats: { prompts: split.train.length, eval_prompts: split.eval.length, rewards: policy.scorerNames },
    };
  },
  finish({ ctx, cfg }, r) {
    const res = resolveRl(cfg);
    const reference = (ctx.inputs.reference ?? ctx.inputs.model)!.id;
    const rmInputs = cfg.rewards.flatMap((s) => (s.type === 'reward_model' && ctx.inputs[s.input] ? [{ artifactId: ctx.inputs[s.input]!.id, role: 'reward_model' }] : []));
    return {
      name: `${ctx.stageName} (rl ${cfg.advantage}, β ${cfg.beta})`,
      metadata: { advantage: cfg.advantage, beta: cfg.beta, kl_in: res.klIn, kl_estimator: res.klEstimator, reference, rewards: r.stats.rewards, ...r.trainee.loraMetadata() },
      inputs: [...(reference !== r.trainee.artifact.id ? [{ artifactId: reference, role: 'reference' }] : []), ...rmInputs],
      summary: { advantage: cfg.advantage, beta: cfg.beta, kl_in: res.klIn, kl_estimator: res.klEstimator, importance_sampling_level: res.level, num_generations: cfg.num_generations },
    };
  },
});
