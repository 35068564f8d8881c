// The online DPO stage (Guo et al. 2024; TRL's OnlineDPOTrainer): the policy (the `model` input,
// usually the SFT model) answers each prompt of `train` twice per step, a judge picks the better
// answer, and the DPO-family loss is taken on that fresh pair against the fixed reference (the
// input model; with LoRA, the same weights with the adapters off, as the dpo stage does).
//
// Judges (`judge:`):
//   { module: judges/count.mjs }  a rule judge module (src/eval/judges.ts): score(prompt, response)
//                                 (pointwise: the higher score wins, TRL's ≥ rule) or
//                                 judge(prompt, a, b) → 'a' | 'b' | 'tie' (pairwise)
//   { type: reward_model }        the `reward_model` input (a reward model artifact) scores both
//   { type: human }               each step's pairs go to the labeling queue (humanJudge below)
//
// Inputs:  model (required), train (prompts, required), reward_model (with judge: reward_model),
//          reference (model, optional; default the input model), eval (prompts, optional).
// Outputs: model (the trained policy; metadata records the loss, β, the reference and the judge).
// Metrics: TRL's names (ml/online-dpo.ts). Loading, resume, checkpoints, summary: ./training.ts.
import { z } from 'zod';
import { AlignflowError, configError } from '../errors.js';
import type { StageContext } from './contract.js';
import { baseView, stageLoraSchema } from '../ml/lora.js';
import type { CausalLM } from '../ml/models/types.js';
import { lmTrainee, loadModelInput } from './model-input.js';
import { trainingFields, trainingStage, type Trainee, type TrainingRun } from './training.js';
import { checkStageMemory } from './memory-check.js';
import { decideByScores, onlineDpoLossFn, OnlinePairSource, type OnlineJudge, type OnlinePairBatch, type PairDecisions, type SampledPair } from '../ml/online-dpo.js';
import { generate, stopTokenIds } from '../ml/generate.js';
import { Rng, deriveSeed } from '../ml/train/rng.js';
import { loadRuleJudge, safeJudge, safeScore, type RuleJudge } from '../eval/judges.js';
import { requireLabeling } from '../labeling/port.js';
import { humanState } from '../labeling/labelers/human.js';
import { WaitingForInput } from '../ml/train/data.js';

/** The pair losses that take a reference (TRL's online DPO has sigmoid and ipo; its ipo sums log-probs: our ipo_sum). */
const onlineLosses = ['sigmoid', 'ipo', 'ipo_sum', 'hinge', 'robust'] as const;

export const onlineDpoConfigSchema = z
  .object({
    beta: z.number().positive().default(0.1),
    loss: z.enum(onlineLosses).default('sigmoid'),
    label_smoothing: z.number().min(0).lt(0.5).default(0),
    /** Who decides which answer is chosen. */
    judge: z
      .strictObject({ module: z.string().min(1).optional(), type: z.enum(['reward_model', 'human']).optional() })
      .refine((j) => (j.module === undefined) !== (j.type === undefined), 'give judge.module (a judge module file) or judge.type (reward_model or human), one of them'),
    /** judge: human — labels wanted per pair, the labelers' guidelines, the lease of a pair. */
    quota: z.number().int().min(1).max(100).default(1),
    guidelines: z.string().max(20_000).default(''),
    lease_seconds: z.number().int().min(1).max(86_400).default(600),
    /** judge: human — how long a step waits for its labels in-process before the stage answers 'waiting' (checkpointed). */
    wait_ms: z.number().int().min(0).max(3_600_000).default(10_000),
    /** judge: human — how often the orchestrator asks a waiting stage again. */
    poll_ms: z.number().int().min(100).max(3_600_000).default(5_000),
    /** Subtracted from the score of an answer that did not end with EOS (TRL's missing_eos_penalty; pointwise judges). */
    missing_eos_penalty: z.number().nonnegative().optional(),
    max_new_tokens: z.number().int().min(1).max(4096).default(32),
    /** Sampling temperature (TRL's default 0.9). */
    temperature: z.number().gt(0).max(10).default(0.9),
    top_k: z.number().int().min(0).optional(),
    top_p: z.number().gt(0).max(1).optional(),
    /** Prompts longer than this keep their last tokens (default: max_length − max_new_tokens). */
    max_prompt_length: z.number().int().min(1).optional(),
    lora: stageLoraSchema.optional(),
    ...trainingFields({ lr: 5e-4, maxLength: 128, logEvery: 10, checkpointEvery: 50, evalFraction: 0 }),
  })
  .strict();

export type OnlineDpoConfig = z.infer<typeof onlineDpoConfigSchema>;

type Policy = Trainee & ReturnType<typeof lmTrainee> & { reference: CausalLM; judge: StageJudge };

/** A judge bound for the run: decides sampled pairs, scores single answers when it can (for the eval). */
interface StageJudge {
  describe: string;
  decide: OnlineJudge;
  score?: (prompt: string, response: string) => Promise<number>;
  dispose(): void;
}

interface PromptUnit {
  text: string;
  ids: number[];
}

/** Longest prompt kept (its last tokens), so that prompt + answer fit max_length and the context. */
function promptBudget(cfg: OnlineDpoConfig, contextLength: number): number {
  const total = Math.min(cfg.max_length, contextLength);
  return Math.min(cfg.max_prompt_length ?? Infinity, total - cfg.max_new_tokens);
}

/** A judge module's decisions: score() pointwise (TRL's rule, with the EOS penalty), else judge() pairwise. */
export function moduleJudge(j: RuleJudge, missingEosPenalty?: number): StageJudge {
  const score = j.score ? (p: string, r: string) => safeScore({ name: j.name, score: j.score! }, p, r) : undefined;
  return {
    describe: `judge:${j.name}@${j.version} (${j.source}, sha256 ${j.sha256.slice(0, 12)})`,
    ...(score ? { score } : {}),
    decide: async (pairs: readonly SampledPair[]): Promise<PairDecisions> => {
      if (score) {
        const a: number[] = [];
        const b: number[] = [];
        for (const p of pairs) {
          a.push(await score(p.prompt, p.a));
          b.push(await score(p.prompt, p.b));
        }
        return decideByScores(a, b, pairs.map((p) => p.aEos), pairs.map((p) => p.bEos), missingEosPenalty);
      }
      const verdicts: string[] = [];
      for (const p of pairs) verdicts.push(await safeJudge({ name: j.name, judge: j.judge! }, p.prompt, p.a, p.b));
      // a tie is no preference: trained as (a, a), which moves nothing (ml/online-dpo.ts)
      return { aChosen: verdicts.map((v) => (v === 'tie' ? null : v === 'a')), ties: verdicts.filter((v) => v === 'tie').length };
    },
    dispose: () => {},
  };
}

async function rewardModelJudge(ctx: StageContext<OnlineDpoConfig>, missingEosPenalty?: number): Promise<StageJudge> {
  const art = ctx.inputs.reward_model;
  if (!art) throw configError(`online_dpo: judge reward_model needs a "reward_model" input (a reward model artifact)`);
  const [{ loadRewardModelRef, scoreWithRewardModel }, { tokenizePair }] = await Promise.all([import('../ml/reward.js'), import('../ml/tokenizer/pairs.js')]);
  const { model, tokenizer } = await loadRewardModelRef({ store: ctx.store, id: art.id, scratchDir: ctx.workDir });
  if (!tokenizer) {
    model.dispose();
    throw configError(`online_dpo: reward model ${art.id} has no tokenizer.json`);
  }
  const scoreAll = async (items: { prompt: string; response: string }[]) => {
    const rows = await scoreWithRewardModel(model, items.map((it) => tokenizePair(tokenizer, it.prompt, it.response)), { batchSize: 16 });
    return rows.map((r) => r.reward);
  };
  return {
    describe: `reward_model:${art.id}`,
    score: async (p, r) => (await scoreAll([{ prompt: p, response: r }]))[0]!,
    decide: async (pairs) => {
      const s = await scoreAll(pairs.flatMap((p) => [{ prompt: p.prompt, response: p.a }, { prompt: p.prompt, response: p.b }]));
      return decideByScores(pairs.map((_, i) => s[2 * i]!), pairs.map((_, i) => s[2 * i + 1]!), pairs.map((p) => p.aEos), pairs.map((p) => p.bEos), missingEosPenalty);
    },
    dispose: () => model.dispose(),
  };
}

/**
 * Human labels through the labeling service: each micro-batch's pairs become a label batch of their
 * own ("<stage> batch N"), published to the queue; the step waits up to wait_ms for every pair's
 * quota, then the stage checkpoints and answers 'waiting' (as the label stage does) and, asked
 * again, resumes from that step: the same seeds sample the same answers, which find their batch and
 * its labels. The majority of a pair's labels decides it; no majority (tie, both bad, an admin
 * closed the batch before it was labeled) is no preference.
 */
export function humanJudge(ctx: StageContext<OnlineDpoConfig>, cfg: OnlineDpoConfig): StageJudge {
  const port = requireLabeling(ctx.labeling);
  const model = ctx.inputs.model?.id ?? null;
  const sleep = (ms: number) => new Promise<void>((res) => setTimeout(res, ms));
  return {
    describe: `human (labeling queue, quota ${cfg.quota})`,
    decide: async (pairs, { draw }) => {
      const batch = await port.ensureBatch({ runId: ctx.runId, stageId: ctx.stageId, perName: true, name: `${ctx.stageName} batch ${draw + 1} (${ctx.runId})`, guidelines: cfg.guidelines, quota: cfg.quota, goldRate: 0, leaseSeconds: cfg.lease_seconds });
      const id = (i: number, side = '') => `p-${ctx.stageId}-${draw}-${i}${side}`;
      if (batch.status === 'open') {
        const sampling = { temperature: cfg.temperature, top_k: cfg.top_k ?? null, top_p: cfg.top_p ?? null, max_new_tokens: cfg.max_new_tokens, draw };
        const f = await port.fillBatch(batch.id, pairs.map((p, i) => ({ id: id(i), prompt: p.prompt, a: { id: id(i, '-a'), text: p.a, modelArtifactId: model, sampling }, b: { id: id(i, '-b'), text: p.b, modelArtifactId: model, sampling } })), { seed: draw });
        if (!f.alreadyFilled) ctx.log.info(`online_dpo: label batch ${batch.id} (${batch.name}): ${f.added} pairs published`);
      }
      const deadline = Date.now() + cfg.wait_ms;
      for (;;) {
        if (ctx.signal.aborted) throw new AlignflowError('cancelled', 'online_dpo cancelled while waiting for labels');
        const p = await port.progress(batch.id);
        const st = humanState(p);
        if (st.finished) {
          if (st.reason === 'quota') await port.closeBatch(batch.id);
          break;
        }
        ctx.progress({ step: p.done, total: p.total, message: `${batch.name}: ${st.message}` });
        if (Date.now() >= deadline) throw new WaitingForInput(`${batch.name}: ${st.message}`, p.done, p.total, cfg.poll_ms);
        await sleep(Math.min(200, Math.max(1, deadline - Date.now())));
      }
      const votes = new Map<string, number>();
      for (const l of await port.rawLabels(batch.id)) {
        if (l.is_gold) continue;
        const v = l.decision === 'a' ? 1 : l.decision === 'b' ? -1 : 0;
        votes.set(l.pair_id, (votes.get(l.pair_id) ?? 0) + v);
      }
      const aChosen = pairs.map((_, i) => {
        const v = votes.get(id(i)) ?? 0;
        return v === 0 ? null : v > 0;
      });
      return { aChosen, ties: aChosen.filter((d) => d === null).length };
    },
    dispose: () => {},
  };
}

async function stageJudge(ctx: StageContext<OnlineDpoConfig>, cfg: OnlineDpoConfig): Promise<StageJudge> {
  if (cfg.judge.type === 'reward_model') return rewardModelJudge(ctx, cfg.missing_eos_penalty);
  if (cfg.judge.type === 'human') return humanJudge(ctx, cfg);
  const j = await loadRuleJudge(cfg.judge.module!);
  if (!j.score && cfg.missing_eos_penalty !== undefined) ctx.log.warn(`online_dpo: missing_eos_penalty applies to scores; judge ${j.name} is pairwise and ignores it`);
  return moduleJudge(j, cfg.missing_eos_penalty);
}

async function readPrompts(ctx: StageContext<OnlineDpoConfig>, artifactId: string, policy: Policy, budget: number): Promise<{ units: PromptUnit[]; truncated: number }> {
  const [{ readDatasetRecords }, { promptText }] = await Promise.all([import('../data/datasets.js'), import('../ml/train/records.js')]);
  const tok = policy.tokenizer!;
  const units: PromptUnit[] = [];
  let truncated = 0;
  let line = 0;
  for await (const r of readDatasetRecords(ctx.store, artifactId)) {
    line++;
    const p = (r as { prompt?: unknown }).prompt;
    if (p === undefined) throw new AlignflowError('input', `online_dpo: dataset ${artifactId}, record ${line} has no prompt; online DPO needs a prompt (or prompt-completion) dataset`);
    const text = promptText(tok, p as Parameters<typeof promptText>[1]);
    let ids = tok.encode(text);
    if (ids.length > budget) {
      ids = ids.slice(ids.length - budget);
      truncated++;
    }
    units.push({ text, ids });
  }
  return { units, truncated };
}

export const onlineDpoStage = trainingStage<OnlineDpoConfig, Policy, PromptUnit, OnlinePairBatch, { train: PromptUnit[]; eval?: PromptUnit[]; truncated: number }>({
  kind: 'online_dpo',
  configSchema: onlineDpoConfigSchema as unknown as z.ZodType<OnlineDpoConfig>,
  validate({ cfg }) {
    if (cfg.max_new_tokens >= cfg.max_length) throw configError(`online_dpo: max_new_tokens (${cfg.max_new_tokens}) must be smaller than max_length (${cfg.max_length})`);
    if (cfg.max_prompt_length !== undefined && cfg.max_prompt_length + cfg.max_new_tokens > cfg.max_length) {
      throw configError(`online_dpo: max_prompt_length + max_new_tokens (${cfg.max_prompt_length} + ${cfg.max_new_tokens}) exceeds max_length (${cfg.max_length})`);
    }
  },
  async load({ ctx, cfg, seed }) {
    const judge = await stageJudge(ctx, cfg);
    try {
      const policy = lmTrainee(await loadModelInput(ctx, 'model'), cfg.lora, seed);
      await checkStageMemory('online_dpo', policy.model, 2 * cfg.batch_size, cfg.max_length);
      const ownRef = !policy.adapter;
      const reference = policy.adapter ? baseView(policy.model) : (await loadModelInput(ctx, ctx.inputs.reference ? 'reference' : 'model')).model;
      ctx.log.info(`online_dpo: judge ${judge.describe}; reference ${policy.adapter ? 'the input model with the adapters off' : (ctx.inputs.reference ?? ctx.inputs.model)!.id}`);
      return {
        ...policy,
        reference,
        judge,
        dispose: () => {
          policy.dispose();
          if (ownRef) reference.dispose();
          judge.dispose();
        },
      };
    } catch (e) {
      judge.dispose();
      throw e;
    }
  },
  async prepare({ ctx, cfg }, policy) {
    const budget = promptBudget(cfg, policy.model.contextLength);
    if (budget < 1) throw configError(`online_dpo: no room for a prompt: max_length ${cfg.max_length} (context ${policy.model.contextLength}) − max_new_tokens ${cfg.max_new_tokens}`);
    const train = await readPrompts(ctx, ctx.inputs.train!.id, policy, budget);
    if (train.units.length === 0) throw new AlignflowError('input', `online_dpo: no prompts in dataset ${ctx.inputs.train!.id}`);
    const ev = ctx.inputs.eval ? await readPrompts(ctx, ctx.inputs.eval.id, policy, budget) : undefined;
    const truncated = train.truncated + (ev?.truncated ?? 0);
    if (truncated) ctx.log.info(`online_dpo: ${truncated} prompts cut to their last ${budget} tokens`);
    return { train: train.units, ...(ev ? { eval: ev.units } : {}), truncated };
  },
  task({ ctx, cfg, seed }, policy, split, prepared) {
    const tok = policy.tokenizer!;
    const stopIds = stopTokenIds(policy.model, tok);
    const padId = tok.padTokenId ?? stopIds[0] ?? 0;
    const sampling = { maxNewTokens: cfg.max_new_tokens, temperature: cfg.temperature, ...(cfg.top_k !== undefined ? { topK: cfg.top_k } : {}), ...(cfg.top_p !== undefined ? { topP: cfg.top_p } : {}) };
    const decode = (ids: number[]) => tok.decode(ids, { skipSpecialTokens: true });
    const data = new OnlinePairSource({
      policy: policy.model,
      reference: policy.reference,
      prompts: split.train,
      batchSize: cfg.batch_size,
      gradAccum: cfg.grad_accum,
      seed,
      shuffle: cfg.shuffle,
      ...sampling,
      stopIds,
      padId,
      decode,
      judge: policy.judge.decide,
      signal: ctx.signal,
    });
    const lossCfg = { beta: cfg.beta, losses: [cfg.loss], labelSmoothing: cfg.label_smoothing };
    // eval: the judge's mean score of one answer per eval prompt, sampled with a fixed seed (pointwise judges)
    const score = policy.judge.score;
    const evalFn =
      split.eval.length > 0 && score
        ? async () => {
            const res = await generate(policy.model, split.eval.map((p) => p.ids), { ...sampling, rng: new Rng(deriveSeed(seed, 'eval-sample')), eosTokenId: stopIds, padTokenId: padId, signal: ctx.signal });
            let s = 0;
            for (let i = 0; i < split.eval.length; i++) s += await score(split.eval[i]!.text, decode(res.tokens[i]!));
            return { 'eval_objective/scores': s / split.eval.length, 'eval_val/contain_eos_token': res.finishReasons.filter((r) => r === 'eos').length / split.eval.length };
          }
        : undefined;
    return {
      params: policy.params,
      units: split.train.length,
      data,
      lossFn: onlineDpoLossFn(policy.model, lossCfg),
      ...(evalFn ? { evalFn, evalsPerRun: 4 } : {}),
      stats: { prompts: split.train.length, eval_prompts: split.eval.length, prompts_truncated: prepared.truncated },
    };
  },
  finish({ ctx, cfg }, r) {
    const judge = r.trainee.judge.describe;
    const reference = r.trainee.adapter ? r.trainee.artifact.id : (ctx.inputs.reference ?? ctx.inputs.model)!.id;
    return {
      name: `${ctx.stageName} (online dpo ${cfg.loss}, β ${cfg.beta})`,
      metadata: { losses: [cfg.loss], beta: cfg.beta, reference, judge, online: true, ...r.trainee.loraMetadata() },
      inputs: [
        ...(reference !== r.trainee.artifact.id ? [{ artifactId: reference, role: 'reference' }] : []),
        ...(ctx.inputs.reward_model ? [{ artifactId: ctx.inputs.reward_model.id, role: 'reward_model' }] : []),
      ],
      summary: { losses: [cfg.loss], beta: cfg.beta, judge, reference },
    };
  },
});
