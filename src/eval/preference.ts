// Held-out preference accuracy. The DPO policy defines an implicit reward
//   r(x, y) = β · [log π(y|x) − log π_ref(y|x)]          (Rafailov et al. 2023, eq. 5)
// and TRL reports, on the eval split, `eval_rewards/chosen`, `eval_rewards/rejected`,
// `eval_rewards/accuracies` = mean[r(x,y_w) > r(x,y_l)] and `eval_rewards/margins` = mean[r_w − r_l]
// (trl/trainer/dpo_trainer.py, get_batch_loss_metrics). A reward model is scored the same way on
// its own scalar scores.
// Which reward (with or without the reference, per token or summed) follows the loss the policy
// was trained with: implicitRewardRule in ml/losses/dpo.ts, the same rule the DPO stage logs by.
import { mean } from './stats.js';
import { implicitRewardValue, type ImplicitRewardRule } from '../ml/losses/dpo.js';

export interface PairLogps {
  policyChosen: number;
  policyRejected: number;
  referenceChosen: number;
  referenceRejected: number;
  /** Completion tokens (needed by per-token rules; absent in states written before they were recorded). */
  chosenTokens?: number;
  rejectedTokens?: number;
}

/** A bare β: the sigmoid-DPO rule (with the reference, summed log-probs), what reports used before rules were recorded. */
export const sigmoidRule = (beta: number): ImplicitRewardRule => ({ beta, useReference: true, perToken: false });

/** Implicit rewards r⁺, r⁻ of every pair under `rule`. */
export function pairImplicitRewards(pairs: readonly PairLogps[], rule: ImplicitRewardRule): { chosen: number[]; rejected: number[] } {
  if (!(rule.beta > 0)) throw new RangeError(`implicit reward: β must be > 0, got ${rule.beta}`);
  const tokens = (t: number | undefined) => {
    if (rule.perToken && t === undefined) throw new RangeError('implicit reward: a per-token rule needs the completion token counts');
    return t ?? 1;
  };
  return {
    chosen: pairs.map((p) => implicitRewardValue(rule, p.policyChosen, p.referenceChosen, tokens(p.chosenTokens))),
    rejected: pairs.map((p) => implicitRewardValue(rule, p.policyRejected, p.referenceRejected, tokens(p.rejectedTokens))),
  };
}

export interface ImplicitRewardMetrics {
  'eval_rewards/chosen': number;
  'eval_rewards/rejected': number;
  'eval_rewards/accuracies': number;
  'eval_rewards/margins': number;
  'eval_logps/chosen': number;
  'eval_logps/rejected': number;
  pairs: number;
  beta: number;
}

export function implicitRewardMetrics(pairs: readonly PairLogps[], ruleOrBeta: ImplicitRewardRule | number): ImplicitRewardMetrics {
  const rule = typeof ruleOrBeta === 'number' ? sigmoidRule(ruleOrBeta) : ruleOrBeta;
  const beta = rule.beta;
  const { chosen: rc, rejected: rr } = pairImplicitRewards(pairs, rule);
  return {
    'eval_rewards/chosen': mean(rc),
    'eval_rewards/rejected': mean(rr),
    // Strict '>' as TRL: a tie is not a correct ranking.
    'eval_rewards/accuracies': mean(rc.map((c, i) => (c > rr[i]! ? 1 : 0))),
    'eval_rewards/margins': mean(rc.map((c, i) => c - rr[i]!)),
    'eval_logps/chosen': mean(pairs.map((p) => p.policyChosen)),
    'eval_logps/rejected': mean(pairs.map((p) => p.policyRejected)),
    pairs: pairs.length,
    beta,
  };
}

/** Reward-model accuracy on preference pairs: fraction with score(chosen) > score(rejected). */
export function rewardModelAccuracy(scores: readonly { chosen: number; rejected: number }[]): { accuracy: number; margin: number; pairs: number } {
  return {
    accuracy: mean(scores.map((s) => (s.chosen > s.rejected ? 1 : 0))),
    margin: mean(scores.map((s) => s.chosen - s.rejected)),
    pairs: scores.length,
  };
}
