// Group-relative advantages for online RL: each prompt has k sampled answers (a "group"), and an
// answer's advantage is its reward measured against the other answers of the same prompt, so no
// value network is needed. Plain JS (no tfjs): rewards are host numbers after scoring.
//
//   RLOO  (Ahmadian et al. 2024, "Back to Basics: Revisiting REINFORCE Style Optimization for
//          Learning from Human Feedback in LLMs", eq. 5; Kool et al. 2019):
//          A_i = r_i − (1/(k−1)) Σ_{j≠i} r_j                  (the leave-one-out baseline)
//   GRPO  (Shao et al. 2024, "DeepSeekMath", §4.1.2; TRL GRPOTrainer):
//          A_i = (r_i − mean(r)) / (std(r) + eps)            scale_rewards: group (TRL's default)
//          A_i = (r_i − mean(r)) / (std(all rewards) + eps)  scale_rewards: batch
//          A_i =  r_i − mean(r)                              scale_rewards: none (Dr. GRPO)
//          std is the unbiased one (torch.std, as TRL), eps = 1e-4 as TRL.
//
// Exactness: every mean is taken over deviations from the group's first reward, so a group of equal
// rewards gives advantages that are exactly 0 (not 1e-17), and with them a policy gradient that is
// exactly 0 — the property the tests pin down.

export type AdvantageEstimator = 'rloo' | 'grpo';
export type ScaleRewards = 'group' | 'batch' | 'none';

/** TRL's epsilon in (r − mean) / (std + eps). */
export const ADV_EPS = 1e-4;

function check(rewards: readonly number[], k: number): void {
  if (!Number.isInteger(k) || k < 2) throw new RangeError(`a group needs at least 2 samples, got k=${k}`);
  if (rewards.length % k !== 0) throw new RangeError(`${rewards.length} rewards do not split into groups of ${k}`);
  for (const r of rewards) if (!Number.isFinite(r)) throw new RangeError(`reward ${r} is not finite`);
}

/** RLOO advantages; `rewards` holds consecutive groups of k (group g = rewards[g·k .. g·k+k−1]). */
export function rlooAdvantages(rewards: readonly number[], k: number): number[] {
  check(rewards, k);
  const out = new Array<number>(rewards.length);
  for (let g = 0; g < rewards.length; g += k) {
    const pivot = rewards[g]!;
    let s = 0;
    for (let j = 0; j < k; j++) s += rewards[g + j]! - pivot;
    for (let i = 0; i < k; i++) {
      const d = rewards[g + i]! - pivot;
      // baseline − pivot = (s − d)/(k−1);  A = d − that
      out[g + i] = d - (s - d) / (k - 1);
    }
  }
  return out;
}

/** Unbiased standard deviation (torch.std) of xs around `mean` (both relative to a pivot). */
function std(xs: readonly number[], mean: number): number {
  if (xs.length < 2) return 0;
  let ss = 0;
  for (const x of xs) ss += (x - mean) * (x - mean);
  return Math.sqrt(ss / (xs.length - 1));
}

/** GRPO advantages with TRL's scale_rewards (default 'group'). */
export function grpoAdvantages(rewards: readonly number[], k: number, scale: ScaleRewards = 'group', eps = ADV_EPS): number[] {
  check(rewards, k);
  const out = new Array<number>(rewards.length);
  let batchStd = 0;
  if (scale === 'batch') {
    const p = rewards[0]!;
    const d = rewards.map((r) => r - p);
    batchStd = std(d, d.reduce((a, b) => a + b, 0) / d.length);
  }
  for (let g = 0; g < rewards.length; g += k) {
    const pivot = rewards[g]!;
    const d = rewards.slice(g, g + k).map((r) => r - pivot);
    const mean = d.reduce((a, b) => a + b, 0) / k;
    const denom = scale === 'group' ? std(d, mean) + eps : scale === 'batch' ? batchStd + eps : 1;
    for (let i = 0; i < k; i++) out[g + i] = (d[i]! - mean) / denom;
  }
  return out;
}

export function advantages(estimator: AdvantageEstimator, rewards: readonly number[], k: number, scale: ScaleRewards = 'group'): number[] {
  return estimator === 'rloo' ? rlooAdvantages(rewards, k) : grpoAdvantages(rewards, k, scale);
}

/**
 * Whitening over the whole batch (TRL RLOO's normalize_advantages): (A − mean) / (std + 1e-4).
 * A batch whose advantages are all equal stays exactly 0-centred (deviation from the first value).
 */
export function whiten(xs: readonly number[], eps = ADV_EPS): number[] {
  if (xs.length === 0) return [];
  const p = xs[0]!;
  const d = xs.map((x) => x - p);
  const mean = d.reduce((a, b) => a + b, 0) / d.length;
  const s = std(d, mean);
  return d.map((x) => (x - mean) / (s + eps));
}

/** Mean and (unbiased) std of each group, and whether the group's rewards are all equal (TRL's frac_reward_zero_std). */
export function groupStats(rewards: readonly number[], k: number): { zeroStd: number; std: number } {
  check(rewards, k);
  let zero = 0;
  let stdSum = 0;
  const groups = rewards.length / k;
  for (let g = 0; g < rewards.length; g += k) {
    const grp = rewards.slice(g, g + k);
    const p = grp[0]!;
    const d = grp.map((r) => r - p);
    const s = std(d, d.reduce((a, b) => a + b, 0) / k);
    if (grp.every((r) => r === p)) zero++;
    stdSum += s;
  }
  return { zeroStd: zero / groups, std: stdSum / groups };
}
