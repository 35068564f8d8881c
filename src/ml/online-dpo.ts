// Online DPO (Guo et al. 2024, "Direct Language Model Alignment from Online AI Feedback"; TRL's
// OnlineDPOTrainer): every optimizer step samples two answers per prompt from the CURRENT policy,
// a judge says which is better, and the DPO loss is taken on that fresh pair against a fixed
// reference. The pieces here are the training loop's: a BatchSource whose next() samples, judges
// and collates (so the generic loop, its checkpoints and its resume are reused unchanged), and the
// lossFn, which is the DPO family's loss (dpoLossOnLogps) plus TRL's online metrics.
//
// Repeatability: the micro-batch drawn n-th is sampled with an Rng seeded from (seed, 'sample', n);
// the source's state is the prompt cursor and n, so a resumed run (same weights from the
// checkpoint) samples, judges and steps exactly as the uninterrupted one.
import * as tf from '@tensorflow/tfjs';
import type { CausalLM } from './models/types.js';
import { generate } from './generate.js';
import { pairLogps, dpoLossOnLogps, type DpoLossConfig } from './dpo.js';
import { collatePairs, type PairBatch, type PreparedPair } from './preference-data.js';
import type { MicroBatchOutput } from './train/loop.js';
import { DataCursor, type BatchSource, type CursorState } from './train/data.js';
import { Rng, deriveSeed } from './train/rng.js';

/** One sampled pair before judging: the prompt, both answers (text and ids) and whether each ended with EOS. */
export interface SampledPair {
  prompt: string;
  a: string;
  b: string;
  aEos: boolean;
  bEos: boolean;
}

/**
 * A judge's decision on a list of sampled pairs: for each, whether `a` is chosen, and the pointwise
 * scores of a and b when the judge scores (a reward model, a rule judge's score()).
 */
export interface PairDecisions {
  /**
   * null: no preference (a pairwise tie, a pair left unlabeled). The pair is then trained as (a, a),
   * whose DPO gradient is exactly zero, so it counts in the batch but moves nothing.
   */
  aChosen: (boolean | null)[];
  scores?: { a: number[]; b: number[] };
  /** Pairs the judge called a tie (kept with `a` as chosen, as TRL keeps equal scores). */
  ties?: number;
}

/** `draw`: which micro-batch of the run the pairs belong to (0, 1, ...): the same on a resumed run. */
export type OnlineJudge = (pairs: readonly SampledPair[], info: { draw: number }) => Promise<PairDecisions>;

/**
 * TRL's rule (online_dpo_trainer.py): scores lowered by `missingEosPenalty` for answers without
 * EOS, then the first answer is chosen when its score is ≥ the second's (ties go to the first).
 */
export function decideByScores(a: readonly number[], b: readonly number[], aEos: readonly boolean[], bEos: readonly boolean[], missingEosPenalty?: number): PairDecisions {
  const pen = (s: number, eos: boolean) => (missingEosPenalty !== undefined && !eos ? s - missingEosPenalty : s);
  const sa = a.map((s, i) => pen(s, aEos[i]!));
  const sb = b.map((s, i) => pen(s, bEos[i]!));
  return { aChosen: sa.map((s, i) => s >= sb[i]!), scores: { a: sa, b: sb }, ties: sa.filter((s, i) => s === sb[i]).length };
}

/** A pair batch of sampled answers, with what the loss and the metrics need beside the tokens. */
export interface OnlinePairBatch extends PairBatch {
  /** Summed reference log-probs of each chosen / rejected answer, batch order. */
  ref: { chosen: number[]; rejected: number[] };
  /** The judge's scores of each chosen / rejected answer (pointwise judges only). */
  scores?: { chosen: number[]; rejected: number[] };
  /** Fraction of the 2B answers that ended with EOS (TRL's val/contain_eos_token). */
  containEos: number;
  ties: number;
}

export interface OnlineSourceOptions {
  policy: CausalLM;
  /** The fixed reference (the input model; with LoRA, the policy with adapters off). */
  reference: CausalLM;
  /** Prompt text (what the judge reads) and its token ids (already cut to fit; see the stage). */
  prompts: readonly { text: string; ids: number[] }[];
  batchSize: number;
  gradAccum: number;
  seed: number;
  shuffle: boolean;
  maxNewTokens: number;
  temperature: number;
  topK?: number;
  topP?: number;
  /** Ids that end an answer; an answer's EOS stays in its tokens (it is trained on). */
  stopIds: number[];
  padId: number;
  decode: (ids: number[]) => string;
  judge: OnlineJudge;
  signal?: AbortSignal;
  onSampled?: (info: { drawn: number; pairs: number }) => void;
}

export interface OnlineSourceState {
  cursor: CursorState;
  /** Micro-batches drawn so far: the n-th is sampled with seed (seed, 'sample', n). */
  drawn: number;
}

/** Samples, judges and collates one optimizer step's micro-batches at a time (all of them from the same policy weights). */
export class OnlinePairSource implements BatchSource<OnlinePairBatch> {
  readonly cursor: DataCursor;
  private drawn = 0;
  private pending: OnlinePairBatch[] = [];

  constructor(private readonly o: OnlineSourceOptions) {
    this.cursor = new DataCursor(o.prompts.length, o.seed, undefined, { shuffle: o.shuffle });
  }

  async next(): Promise<OnlinePairBatch> {
    if (this.pending.length === 0) {
      const groups: { prompts: number[]; pairs: PreparedPair[]; decisions: PairDecisions; eos: number }[] = [];
      // a judge that cannot decide yet (WaitingForInput) or fails leaves the source where it was
      const before = this.state();
      try {
        for (let k = 0; k < this.o.gradAccum; k++) groups.push(await this.sampleGroup(this.cursor.take(this.o.batchSize)));
      } catch (e) {
        this.restore(before);
        throw e;
      }
      const pairs = this.o.batchSize * this.o.gradAccum;
      const chosenTokens = groups.flatMap((g) => g.pairs).reduce((a, p) => a + p.chosenIds.length - (p.promptIds.length === 0 ? 1 : 0), 0);
      for (const g of groups) {
        const b = collatePairs(g.pairs, g.pairs.map((_, i) => i), this.o.padId, { pairs, chosenTokens });
        const ref = await referenceLogps(this.o.reference, b);
        const s = g.decisions.scores;
        const pick = (chosen: boolean) => g.decisions.aChosen.map((ac, i) => ((ac ?? true) === chosen ? s!.a[i]! : s!.b[i]!));
        this.pending.push({ ...b, ref, ...(s ? { scores: { chosen: pick(true), rejected: pick(false) } } : {}), containEos: g.eos, ties: g.decisions.ties ?? 0 });
      }
    }
    return this.pending.shift()!;
  }

  /** Two answers per prompt from the current policy, judged, as prepared pairs (chosen first). */
  private async sampleGroup(idx: number[]): Promise<{ prompts: number[]; pairs: PreparedPair[]; decisions: PairDecisions; eos: number }> {
    const o = this.o;
    const n = this.drawn++;
    const prompts = idx.map((i) => o.prompts[i]!);
    // TRL's layout: the batch's prompts twice, first half a, second half b
    const rows = [...prompts, ...prompts].map((p) => p.ids);
    const res = await generate(o.policy, rows, {
      maxNewTokens: o.maxNewTokens,
      temperature: o.temperature,
      ...(o.topK !== undefined ? { topK: o.topK } : {}),
      ...(o.topP !== undefined ? { topP: o.topP } : {}),
      rng: new Rng(deriveSeed(o.seed, 'sample', n)),
      eosTokenId: o.stopIds,
      padTokenId: o.padId,
      ...(o.signal ? { signal: o.signal } : {}),
    });
    const B = prompts.length;
    const eos = res.finishReasons.map((r) => r === 'eos');
    const sampled: SampledPair[] = prompts.map((p, i) => ({
      prompt: p.text,
      a: o.decode(res.tokens[i]!),
      b: o.decode(res.tokens[B + i]!),
      aEos: eos[i]!,
      bEos: eos[B + i]!,
    }));
    const decisions = await o.judge(sampled, { draw: n });
    if (decisions.aChosen.length !== B) throw new Error(`online judge returned ${decisions.aChosen.length} decisions for ${B} pairs`);
    const pairs = prompts.map((p, i): PreparedPair => {
      const a = res.tokens[i]!;
      const b = res.tokens[B + i]!;
      const d = decisions.aChosen[i];
      const [c, r] = d === null ? [a, a] : d ? [a, b] : [b, a];
      return { index: idx[i]!, promptIds: p.ids, chosenIds: c, rejectedIds: r };
    });
    o.onSampled?.({ drawn: this.drawn, pairs: B });
    return { prompts: idx, pairs, decisions, eos: eos.filter(Boolean).length / eos.length };
  }

  /** Checkpoints are taken between optimizer steps, when nothing is pending. */
  state(): OnlineSourceState {
    return { cursor: this.cursor.state(), drawn: this.drawn };
  }

  restore(state: unknown): void {
    const s = state as OnlineSourceState;
    if (!s || typeof s.drawn !== 'number' || !s.cursor) throw new RangeError('not an online DPO data state (cursor, drawn)');
    this.pending = [];
    this.cursor.restore(s.cursor);
    this.drawn = s.drawn;
  }

  epoch(): number {
    return this.cursor.epochFloat();
  }
}

/** Summed reference log-probs of a pair batch's chosen and rejected rows, no gradient. */
export async function referenceLogps(reference: CausalLM, b: PairBatch): Promise<{ chosen: number[]; rejected: number[] }> {
  const r = pairLogps(reference, b);
  const [c, j] = await Promise.all([r.chosen.data(), r.rejected.data()]);
  r.chosen.dispose();
  r.rejected.dispose();
  return { chosen: Array.from(c), rejected: Array.from(j) };
}

/**
 * The loop's lossFn: the DPO-family loss on the sampled pair (one forward of [chosen; rejected]
 * through the policy) and TRL OnlineDPOTrainer's metrics, over the 2B sampled answers:
 *   objective/kl               mean Σ_t (log π − log π_ref) per answer
 *   objective/entropy          −mean Σ_t log π per answer (TRL's estimate)
 *   objective/non_score_reward −β · objective/kl
 *   objective/scores, objective/scores_margin, objective/rlhf_reward (scores + non_score_reward): pointwise judges only
 *   val/contain_eos_token, beta
 */
export function onlineDpoLossFn(model: CausalLM, cfg: DpoLossConfig): (b: OnlinePairBatch) => MicroBatchOutput {
  return (b) => {
    const { chosen, rejected } = pairLogps(model, b);
    const out = dpoLossOnLogps(cfg, b, chosen, rejected, b.ref);
    const kl = tf.mean(tf.concat([tf.sub(chosen, tf.tensor1d(b.ref.chosen)), tf.sub(rejected, tf.tensor1d(b.ref.rejected))])) as tf.Scalar;
    const metrics: Record<string, tf.Scalar | number> = {
      ...out.metrics,
      'objective/kl': kl,
      'objective/entropy': tf.neg(tf.mean(tf.concat([chosen, rejected]))) as tf.Scalar,
      'objective/non_score_reward': tf.mul(kl, -cfg.beta) as tf.Scalar,
      'val/contain_eos_token': b.containEos,
      'val/ties': b.ties / b.pairs,
      beta: cfg.beta,
    };
    if (b.scores) {
      const mean = (xs: number[]) => xs.reduce((a, x) => a + x, 0) / xs.length;
      const scores = (mean(b.scores.chosen) + mean(b.scores.rejected)) / 2;
      metrics['objective/scores'] = scores;
      metrics['objective/scores_margin'] = mean(b.scores.chosen.map((c, i) => c - b.scores!.rejected[i]!));
      metrics['objective/rlhf_reward'] = tf.add(tf.mul(kl, -cfg.beta), scores) as tf.Scalar;
    }
    return { ...out, metrics };
  };
}
