// Rollouts: sample k answers per prompt from the current policy (KV-cached batched generation,
// src/ml/generate.ts), score them, turn scores into rewards and advantages, and serve the result
// as micro-batches to the training loop — a BatchSource whose next() samples when its buffer is
// empty, so every rollout is drawn from the weights of the moment.
//
// Per rollout of P = batch_size · grad_accum · num_mini_batches prompts (k answers each):
//   score_i   = Σ_s w_s · scorer_s(prompt, answer)                   (judges, reward models)
//             − missing_eos_penalty · [answer has no EOS]           (TRL's missing_eos_penalty)
//   kl_i      = Σ_t kl_t(π_old, π_ref)                             (the configured estimator)
//   reward_i  = clip(score_i) − β·kl_i · [kl_in = reward]           (RLOO in TRL: KL in the reward)
//   A_i       = rloo | grpo advantages of reward within each prompt's group, optionally whitened
// then num_ppo_epochs passes over num_mini_batches mini-batches of grad_accum micro-batches.
//
// Determinism and resume: the prompts come from a DataCursor (seeded, resumable), and rollout n is
// sampled with deriveSeed(seed, 'rollout', n), so a run resumed from a checkpoint taken between
// rollouts (every checkpoint when one rollout is one optimizer step: the default) samples exactly
// what the uninterrupted run sampled. A checkpoint in the middle of a rollout (num_ppo_epochs or
// num_mini_batches > 1; the stage only allows checkpoint_every at rollout boundaries, but a cancel
// may stop anywhere) resumes by resampling that rollout from the checkpointed weights.
import type { CausalLM } from '../models/types.js';
import type { TextTokenizer } from '../tokenizer/tokenizer.js';
import { generate, stopTokenIds } from '../generate.js';
import { DataCursor, type BatchSource, type CursorState } from '../train/data.js';
import { deriveSeed } from '../train/rng.js';
import { advantages, groupStats, whiten, type AdvantageEstimator, type ScaleRewards } from './advantages.js';
import { collateSamples, completionTokenLogps, spread, type RlSample } from './batch.js';
import { klEstimate, type KlEstimator } from './kl.js';
import type { RlBatch } from './loss.js';

/** Scores answers to prompts (texts); higher is better. */
export type Scorer = (prompts: readonly string[], answers: readonly string[]) => Promise<number[]>;

export interface RolloutConfig {
  k: number;
  batchSize: number;
  gradAccum: number;
  miniBatches: number;
  ppoEpochs: number;
  maxNewTokens: number;
  temperature: number;
  topK?: number;
  topP?: number;
  estimator: AdvantageEstimator;
  scaleRewards: ScaleRewards;
  normalizeAdvantages: boolean;
  beta: number;
  klIn: 'reward' | 'loss';
  klEstimator: KlEstimator;
  missingEosPenalty?: number;
  rewardClip?: [number, number];
  seed: number;
  shuffle: boolean;
}

export interface RolloutDeps {
  policy: CausalLM;
  reference: CausalLM;
  tokenizer: TextTokenizer;
  /** Prompt texts (already templated) and their token ids. */
  prompts: { text: string; ids: number[] }[];
  score: Scorer;
  signal?: AbortSignal;
  onRollout?: (n: number) => void;
}

export interface RolloutState {
  rollouts: number;
  /** Micro-batches of the current rollout already served. */
  served: number;
  /** The prompt cursor at the start of the current rollout. */
  cursor: CursorState;
}

/** Cuts a prompt to what generate() keeps (its last contextLength − maxNewTokens tokens); empty → BOS. */
export function fitPrompt(ids: readonly number[], contextLength: number, maxNewTokens: number, bos: number | undefined): number[] {
  if (ids.length === 0) {
    if (bos === undefined) throw new RangeError('an empty prompt needs a bos_token_id');
    return [bos];
  }
  const keep = contextLength - Math.min(maxNewTokens, contextLength - 1);
  return ids.length > keep ? ids.slice(ids.length - keep) : [...ids];
}

const mean = (xs: readonly number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);

export class RolloutSource implements BatchSource<RlBatch> {
  private cursor: DataCursor;
  private startCursor: CursorState;
  private rollouts = 0;
  private served = 0;
  private buffer: RlBatch[] = [];
  private pendingSkip = 0;

  constructor(
    readonly cfg: RolloutConfig,
    readonly deps: RolloutDeps,
  ) {
    this.cursor = new DataCursor(deps.prompts.length, deriveSeed(cfg.seed, 'prompts'), undefined, { shuffle: cfg.shuffle });
    this.startCursor = this.cursor.state();
  }

  /** Micro-batches one rollout yields (optimizer steps × grad_accum). */
  get microBatchesPerRollout(): number {
    return this.cfg.ppoEpochs * this.cfg.miniBatches * this.cfg.gradAccum;
  }

  async next(): Promise<RlBatch> {
    if (this.buffer.length === 0) {
      this.startCursor = this.cursor.state();
      this.buffer = await this.rollout(this.rollouts);
      this.rollouts++;
      this.served = 0;
      // resumed mid-rollout: skip what the checkpointed run had already trained on
      while (this.pendingSkip > 0 && this.buffer.length > 1) {
        this.buffer.shift();
        this.served++;
        this.pendingSkip--;
      }
      this.pendingSkip = 0;
    }
    this.served++;
    return this.buffer.shift()!;
  }

  state(): RolloutState {
    // between rollouts the cursor has moved on; inside one, resume from the rollout's start
    return this.buffer.length === 0
      ? { rollouts: this.rollouts, served: 0, cursor: this.cursor.state() }
      : { rollouts: this.rollouts - 1, served: this.served, cursor: this.startCursor };
  }

  restore(s: unknown): void {
    const st = s as RolloutState;
    if (!st || typeof st.rollouts !== 'number' || typeof st.served !== 'number' || !st.cursor) throw new Error('not an RL rollout state');
    this.cursor.restore(st.cursor);
    this.rollouts = st.rollouts;
    this.buffer = [];
    this.pendingSkip = st.served;
  }

  epoch(): number {
    const c = this.cursor.state();
    return c.epoch + c.position / c.size;
  }

  /** Samples, scores and batches rollout n. */
  private async rollout(n: number): Promise<RlBatch[]> {
    const { cfg, deps } = this;
    const perMicro = cfg.batchSize;
    const micro = cfg.gradAccum * cfg.miniBatches;
    const promptIdx = this.cursor.take(perMicro * micro);
    const tok = deps.tokenizer;
    const pad = tok.padTokenId ?? tok.eosTokenId ?? 0;
    const eosIds = new Set(stopTokenIds(deps.policy, tok));
    const seed = deriveSeed(cfg.seed, 'rollout', n);
    const chunks: RlBatch[] = [];
    // one generate() call per micro-batch (batch_size · k rows) keeps memory at the training size
    const drafts: { samples: RlSample[]; texts: string[]; prompts: string[] }[] = [];
    for (let m = 0; m < micro; m++) {
      const idx = promptIdx.slice(m * perMicro, (m + 1) * perMicro);
      const rows = idx.flatMap((p) => Array.from({ length: cfg.k }, () => deps.prompts[p]!.ids));
      const res = await generate(deps.policy, rows, {
        maxNewTokens: cfg.maxNewTokens,
        temperature: cfg.temperature,
        topK: cfg.topK,
        topP: cfg.topP,
        seed: deriveSeed(seed, m),
        eosTokenId: [...eosIds],
        padTokenId: pad,
        signal: deps.signal,
      });
      const samples = rows.map((ids, r): RlSample => ({ group: Math.floor(r / cfg.k), promptIds: ids, completionIds: res.tokens[r]!, eos: res.finishReasons[r] === 'eos' }));
      // an answer of zero tokens cannot be trained on (or scored as text); generate gives ≥ 1
      drafts.push({
        samples,
        texts: samples.map((s) => tok.decode(s.completionIds, { skipSpecialTokens: true })),
        prompts: idx.flatMap((p) => Array.from({ length: cfg.k }, () => deps.prompts[p]!.text)),
      });
    }
    // score, log-probs and rewards per micro-batch; advantages over each prompt's group
    const all: { rows: ReturnType<typeof collateSamples>; old: Float32Array[]; ref: Float32Array[]; scores: number[]; rewards: number[]; klSeq: number[]; k1Seq: number[]; d: (typeof drafts)[number] }[] = [];
    for (const d of drafts) {
      const rows = collateSamples(d.samples, pad);
      const old = await completionTokenLogps(deps.policy, rows);
      const ref = await completionTokenLogps(deps.reference, rows);
      const raw = await deps.score(d.prompts, d.texts);
      const scores = raw.map((s, i) => (cfg.missingEosPenalty !== undefined && !d.samples[i]!.eos ? s - cfg.missingEosPenalty : s));
      const klSeq = old.map((o, i) => o.reduce((a, lp, t) => a + klEstimate(cfg.klEstimator, lp, ref[i]![t]!), 0));
      const k1Seq = old.map((o, i) => o.reduce((a, lp, t) => a + (lp - ref[i]![t]!), 0));
      const clipped = cfg.rewardClip ? scores.map((s) => Math.min(Math.max(s, cfg.rewardClip![0]), cfg.rewardClip![1])) : scores;
      const rewards = clipped.map((s, i) => (cfg.klIn === 'reward' && cfg.beta > 0 ? s - cfg.beta * klSeq[i]! : s));
      all.push({ rows, old, ref, scores, rewards, klSeq, k1Seq, d });
    }
    let adv = all.map((a) => advantages(cfg.estimator, a.rewards, cfg.k, cfg.scaleRewards));
    if (cfg.normalizeAdvantages) {
      const flat = whiten(adv.flat());
      let o = 0;
      adv = adv.map((a) => a.map(() => flat[o++]!));
    }
    all.forEach((a, m) => {
      const lens = a.d.samples.map((s) => s.completionIds.length);
      const term = a.d.samples.map((s, i) => (s.eos ? lens[i]! : -1)).filter((x) => x >= 0);
      const g = groupStats(a.rewards, cfg.k);
      const nonScore = a.rewards.map((r, i) => r - (cfg.rewardClip ? Math.min(Math.max(a.scores[i]!, cfg.rewardClip[0]), cfg.rewardClip[1]) : a.scores[i]!));
      const entropy = a.old.map((o) => -o.reduce((s, x) => s + x, 0));
      const tokens = lens.reduce((s, x) => s + x, 0);
      chunks.push({
        ...a.rows,
        old: spread(a.rows, a.old),
        ref: spread(a.rows, a.ref),
        adv: Float32Array.from(adv[m]!),
        stats: {
          // old TRL RLOO/PPO names: sequence sums of k1 and of −log π, mean over answers
          'objective/kl': mean(a.k1Seq),
          'objective/entropy': mean(entropy),
          'objective/non_score_reward': mean(nonScore),
          'objective/rlhf_reward': mean(a.rewards),
          'objective/scores': mean(a.scores),
          'val/num_eos_tokens': a.d.samples.filter((s) => s.eos).length,
          // TRL 1.13 names: per-token means, reward spread, completion lengths
          kl: tokens ? a.klSeq.reduce((s, x) => s + x, 0) / tokens : 0,
          reward: mean(a.rewards),
          reward_std: g.std,
          frac_reward_zero_std: g.zeroStd,
          'completions/mean_length': mean(lens),
          'completions/min_length': Math.min(...lens),
          'completions/max_length': Math.max(...lens),
          'completions/clipped_ratio': a.d.samples.filter((s) => !s.eos).length / lens.length,
          'completions/mean_terminated_length': term.length ? mean(term) : 0,
        },
      });
    });
    deps.onRollout?.(n);
    // the serving order: ppo epochs × mini-batches × accumulation micro-batches
    const out: RlBatch[] = [];
    for (let e = 0; e < cfg.ppoEpochs; e++) out.push(...chunks);
    return out;
  }
}
