// KL(π ‖ π_ref) estimated on responses sampled from the policy π (J. Schulman 2020, "Approximating
// KL Divergence", blog post on joschu.net; the same k1/k3 as TRL's PPO/RLOO `objective/kl`).
// For a response y ~ π(·|x), with per-token log-ratios ℓ_t = log π(y_t|…) − log π_ref(y_t|…):
//   k1 = Σ_t ℓ_t                       unbiased for the sequence KL, can be negative on one sample;
//   k3 = Σ_t [(e^{−ℓ_t} − 1) + ℓ_t]    unbiased per token and never negative (lower variance).
// The reported KL is the mean over samples, with a bootstrap interval over samples.
import { bootstrap, mean, type BootstrapOptions, type Interval } from './stats.js';

export interface KlSample {
  /** log π of each sampled token under the policy that sampled it. */
  policy: ArrayLike<number>;
  /** log π_ref of the same tokens. */
  reference: ArrayLike<number>;
}

export interface KlEstimate {
  k1: Interval;
  k3: Interval;
  /** Mean number of scored tokens per response. */
  meanTokens: number;
  samples: number;
}

/** Per-sequence k1 and k3. Throws on mismatched lengths or non-finite log-probs. */
export function sequenceKl(s: KlSample): { k1: number; k3: number } {
  if (s.policy.length !== s.reference.length) {
    throw new RangeError(`KL: policy has ${s.policy.length} token log-probs but reference has ${s.reference.length}`);
  }
  let k1 = 0;
  let k3 = 0;
  for (let t = 0; t < s.policy.length; t++) {
    const l = s.policy[t]! - s.reference[t]!;
    if (!Number.isFinite(l)) throw new RangeError(`KL: non-finite log-ratio at token ${t}`);
    k1 += l;
    k3 += Math.expm1(-l) + l;
  }
  return { k1, k3 };
}

export function estimateKl(samples: readonly KlSample[], opts: BootstrapOptions = {}): KlEstimate {
  const per = samples.map(sequenceKl);
  return {
    k1: bootstrap(per.map((p) => p.k1), mean, opts),
    k3: bootstrap(per.map((p) => p.k3), mean, opts),
    meanTokens: mean(samples.map((s) => s.policy.length)),
    samples: samples.length,
  };
}
