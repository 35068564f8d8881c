// Logged metrics with TRL's names and meanings (DPOTrainer.get_batch_loss_metrics,
// RewardTrainer.compute_loss). Pure functions on plain numbers, so a logging interval can
// gather per-example values over micro-batches and steps and summarise them once.

const mean = (a: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]!;
  return a.length ? s / a.length : NaN;
};

export interface PreferenceValues {
  /** Implicit rewards β·(log π − log π_ref) per pair (see implicitRewards). */
  chosenRewards: ArrayLike<number>;
  rejectedRewards: ArrayLike<number>;
  /** Policy log-probs of the completions per pair (summed, or averaged for ipo as TRL does). */
  chosenLogps: ArrayLike<number>;
  rejectedLogps: ArrayLike<number>;
  /** The optimised loss over the interval. */
  loss: number;
}

/** rewards/chosen, rewards/rejected, rewards/accuracies (strictly chosen > rejected), rewards/margins,
 *  logps/chosen, logps/rejected, loss. */
export function preferenceMetrics(v: PreferenceValues): Record<string, number> {
  const n = v.chosenRewards.length;
  let wins = 0;
  const margins = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const m = v.chosenRewards[i]! - v.rejectedRewards[i]!;
    margins[i] = m;
    if (v.chosenRewards[i]! > v.rejectedRewards[i]!) wins++;
  }
  return {
    'rewards/chosen': mean(v.chosenRewards),
    'rewards/rejected': mean(v.rejectedRewards),
    'rewards/accuracies': n ? wins / n : NaN,
    'rewards/margins': mean(margins),
    'logps/chosen': mean(v.chosenLogps),
    'logps/rejected': mean(v.rejectedLogps),
    loss: v.loss,
  };
}

/** Reward model: accuracy (strictly r⁺ > r⁻), margin mean(r⁺ − r⁻), min/mean/max over all scores, loss. */
export function rewardModelMetrics(v: { chosen: ArrayLike<number>; rejected: ArrayLike<number>; loss: number }): Record<string, number> {
  const n = v.chosen.length;
  let wins = 0;
  let margin = 0;
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const c = v.chosen[i]!;
    const r = v.rejected[i]!;
    if (c > r) wins++;
    margin += c - r;
    min = Math.min(min, c, r);
    max = Math.max(max, c, r);
    sum += c + r;
  }
  return {
    accuracy: n ? wins / n : NaN,
    margin: n ? margin / n : NaN,
    min_reward: n ? min : NaN,
    mean_reward: n ? sum / (2 * n) : NaN,
    max_reward: n ? max : NaN,
    loss: v.loss,
  };
}

/** `eval_` prefix on the eval split, as transformers' Trainer.evaluate does. */
export function withPrefix(m: Record<string, number>, prefix: string): Record<string, number> {
  return Object.fromEntries(Object.entries(m).map(([k, v]) => [prefix + k, v]));
}

/** Collects per-example values over micro-batches / steps for one logging interval. */
export class PreferenceAccumulator {
  private cr: number[] = [];
  private rr: number[] = [];
  private cl: number[] = [];
  private rl: number[] = [];
  private lossSum = 0;
  private lossWeight = 0;

  add(v: { chosenRewards: ArrayLike<number>; rejectedRewards: ArrayLike<number>; chosenLogps: ArrayLike<number>; rejectedLogps: ArrayLike<number> }): void {
    this.cr.push(...Array.from(v.chosenRewards));
    this.rr.push(...Array.from(v.rejectedRewards));
    this.cl.push(...Array.from(v.chosenLogps));
    this.rl.push(...Array.from(v.rejectedLogps));
  }
  /** A step's (or eval batch's) loss with its weight (number of pairs it covers). */
  addLoss(loss: number, weight = 1): void {
    this.lossSum += loss * weight;
    this.lossWeight += weight;
  }
  get size(): number {
    return this.cr.length;
  }
  summary(): Record<string, number> {
    return preferenceMetrics({
      chosenRewards: this.cr,
      rejectedRewards: this.rr,
      chosenLogps: this.cl,
      rejectedLogps: this.rl,
      loss: this.lossWeight ? this.lossSum / this.lossWeight : NaN,
    });
  }
}
