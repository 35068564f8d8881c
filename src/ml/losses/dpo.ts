// The DPO family as small pure functions on per-example tensors, as TRL's DPOTrainer.dpo_loss,
// CPOTrainer (SimPO) and ORPOTrainer.odds_ratio_loss define them. Every loss takes summed
// completion log-probs [B] (and the completion token counts [B] for the per-token averages) and
// returns a per-example loss vector plus the scalar the optimizer sees.
import * as tf from '@tensorflow/tfjs';
import { configError } from '../../errors.js';
import { logSigmoid } from './logsigmoid.js';

export interface PreferenceInputs {
  /** Σ log π(y⁺|x) over completion tokens, [B]; the differentiable side. */
  chosenLogps: tf.Tensor1D;
  /** Σ log π(y⁻|x), [B]. */
  rejectedLogps: tf.Tensor1D;
  /** Completion token counts |y⁺|, |y⁻|, [B] (for per-token averages). */
  chosenLengths: tf.Tensor1D;
  rejectedLengths: tf.Tensor1D;
  /** Σ log π_ref(y⁺|x), Σ log π_ref(y⁻|x), [B]: constants (precomputed or computed without grad). */
  refChosenLogps?: tf.Tensor1D;
  refRejectedLogps?: tf.Tensor1D;
}

export interface LossOptions {
  /** β: inverse temperature (DPO), regulariser τ (IPO), reward scale (SimPO). > 0. */
  beta: number;
  /** ε: label smoothing for `sigmoid` (conservative DPO) and `robust`; in [0, 0.5). */
  labelSmoothing?: number;
  /** γ: SimPO target reward margin (TRL's simpo_gamma, default 0.5). */
  simpoGamma?: number;
  /** λ: ORPO odds-ratio weight (TRL calls it beta; default 0.1). */
  orpoLambda?: number;
}

/**
 * How the per-example losses become the scalar. Under gradient accumulation pass the totals of the
 * WHOLE accumulated batch, so that summing micro-batch gradients gives exactly the gradient of
 * the big batch: pairwise terms are divided by `pairs`, token-level NLL terms by `chosenTokens`.
 */
export interface Normaliser {
  pairs: number;
  chosenTokens: number;
}

export interface LossTerm {
  /** Per-example loss, [B]. */
  losses: tf.Tensor1D;
  /** Σ contributions / normaliser: what to minimise. */
  loss: tf.Scalar;
}

export const preferenceLossNames = ['sigmoid', 'robust', 'hinge', 'ipo', 'ipo_sum', 'simpo', 'orpo', 'sft'] as const;
export type PreferenceLossName = (typeof preferenceLossNames)[number];

export interface LossSpec {
  name: PreferenceLossName;
  needsReference: boolean;
  paper: string;
  fn: (x: PreferenceInputs, o: LossOptions, n: Normaliser) => LossTerm;
}

function ref(x: PreferenceInputs, loss: string): { c: tf.Tensor1D; r: tf.Tensor1D } {
  if (!x.refChosenLogps || !x.refRejectedLogps) throw configError(`loss "${loss}" needs reference log-probs`);
  return { c: x.refChosenLogps, r: x.refRejectedLogps };
}

/** δ = (log π(y⁺) − log π_ref(y⁺)) − (log π(y⁻) − log π_ref(y⁻)) on summed log-probs (TRL's `logits`). */
export function dpoDelta(x: PreferenceInputs): tf.Tensor1D {
  const { c, r } = ref(x, 'dpo');
  return tf.sub(tf.sub(x.chosenLogps, c), tf.sub(x.rejectedLogps, r)) as tf.Tensor1D;
}

/** δ' on per-token averaged log-probs: TRL divides all log-probs by the completion length for IPO. */
export function dpoDeltaMean(x: PreferenceInputs): tf.Tensor1D {
  const { c, r } = ref(x, 'ipo');
  const cl = x.chosenLengths;
  const rl = x.rejectedLengths;
  return tf.sub(
    tf.sub(tf.div(x.chosenLogps, cl), tf.div(c, cl)),
    tf.sub(tf.div(x.rejectedLogps, rl), tf.div(r, rl)),
  ) as tf.Tensor1D;
}

function pairwise(losses: tf.Tensor): LossTerm {
  return { losses: losses as tf.Tensor1D, loss: tf.sum(losses) as tf.Scalar };
}
const over = (t: LossTerm, n: Normaliser): LossTerm => ({ losses: t.losses, loss: tf.div(t.loss, n.pairs) as tf.Scalar });

/** Rafailov et al. 2023 (DPO), eq. 7; with ε > 0 the conservative DPO of Mitchell 2023 (cdpo.pdf, eq. 3):
 *  −(1−ε)·log σ(βδ) − ε·log σ(−βδ). */
export function sigmoidLoss(x: PreferenceInputs, o: LossOptions, n: Normaliser): LossTerm {
  const eps = o.labelSmoothing ?? 0;
  const z = tf.mul(dpoDelta(x), o.beta);
  const l = tf.sub(tf.mul(logSigmoid(z), -(1 - eps)), tf.mul(logSigmoid(tf.neg(z)), eps));
  return over(pairwise(l), n);
}

/** Chowdhury et al. 2024, "Provably Robust DPO" (rDPO), eq. 10 as TRL writes it:
 *  [−(1−ε)·log σ(βδ) + ε·log σ(−βδ)] / (1 − 2ε). */
export function robustLoss(x: PreferenceInputs, o: LossOptions, n: Normaliser): LossTerm {
  const eps = o.labelSmoothing ?? 0;
  const z = tf.mul(dpoDelta(x), o.beta);
  const l = tf.div(tf.add(tf.mul(logSigmoid(z), -(1 - eps)), tf.mul(logSigmoid(tf.neg(z)), eps)), 1 - 2 * eps);
  return over(pairwise(l), n);
}

/** Zhao et al. 2023 (SLiC-HF) hinge, as in TRL / RSO (Liu et al. 2023): max(0, 1 − βδ). */
export function hingeLoss(x: PreferenceInputs, o: LossOptions, n: Normaliser): LossTerm {
  return over(pairwise(tf.relu(tf.sub(1, tf.mul(dpoDelta(x), o.beta)))), n);
}

/** Azar et al. 2023 (IPO, "A General Theoretical Paradigm…"), eq. 17: (δ' − 1/(2β))², δ' on
 *  per-token averaged log-probs as TRL computes it (β plays the paper's τ). */
export function ipoLoss(x: PreferenceInputs, o: LossOptions, n: Normaliser): LossTerm {
  return over(pairwise(tf.square(tf.sub(dpoDeltaMean(x), 1 / (2 * o.beta)))), n);
}

/** IPO with δ on summed log-probs, as the paper writes it (TRL averages; see docs/preference.md). */
export function ipoSumLoss(x: PreferenceInputs, o: LossOptions, n: Normaliser): LossTerm {
  return over(pairwise(tf.square(tf.sub(dpoDelta(x), 1 / (2 * o.beta)))), n);
}

/** Per-token average log-prob ā = Σ log π / |y|. */
export function meanLogps(sum: tf.Tensor1D, len: tf.Tensor1D): tf.Tensor1D {
  return tf.div(sum, len) as tf.Tensor1D;
}

/** Meng et al. 2024 (SimPO), eq. 6, reference-free: −log σ(β(ā⁺ − ā⁻) − γ); TRL's CPOTrainer
 *  also applies label smoothing ε here, so we do too. */
export function simpoLoss(x: PreferenceInputs, o: LossOptions, n: Normaliser): LossTerm {
  const eps = o.labelSmoothing ?? 0;
  const gamma = o.simpoGamma ?? 0.5;
  const z = tf.sub(tf.mul(tf.sub(meanLogps(x.chosenLogps, x.chosenLengths), meanLogps(x.rejectedLogps, x.rejectedLengths)), o.beta), gamma);
  const l = tf.sub(tf.mul(logSigmoid(z), -(1 - eps)), tf.mul(logSigmoid(tf.neg(z)), eps));
  return over(pairwise(l), n);
}

/** NLL(y⁺): per example −Σ log π(y⁺)/|y⁺|; the scalar is the token-level mean over the whole
 *  (accumulated) batch, −Σ_i Σ log π(y⁺_i) / Σ_i |y⁺_i|, like TRL's cross-entropy `nll_loss`.
 *  Used as `sft` (the RPO term, Pang et al. 2024, weighted by rpo_alpha) and inside ORPO. */
export function sftLoss(x: PreferenceInputs, _o: LossOptions, n: Normaliser): LossTerm {
  const losses = tf.neg(meanLogps(x.chosenLogps, x.chosenLengths)) as tf.Tensor1D;
  return { losses, loss: tf.div(tf.neg(tf.sum(x.chosenLogps)), n.chosenTokens) as tf.Scalar };
}

/** ORPO log-odds: log odds(y⁺) − log odds(y⁻), odds(y) = P/(1−P) with log P = ā (TRL uses the
 *  per-token average): (ā⁺ − ā⁻) − (log(1 − e^{ā⁺}) − log(1 − e^{ā⁻})). */
export function orpoLogOdds(x: PreferenceInputs): tf.Tensor1D {
  const c = meanLogps(x.chosenLogps, x.chosenLengths);
  const r = meanLogps(x.rejectedLogps, x.rejectedLengths);
  const log1mexp = (a: tf.Tensor) => tf.log1p(tf.neg(tf.exp(a)));
  return tf.sub(tf.sub(c, r), tf.sub(log1mexp(c), log1mexp(r))) as tf.Tensor1D;
}

/** Hong et al. 2024 (ORPO), eq. 6, reference-free: NLL(y⁺) − λ·log σ(log-odds ratio). */
export function orpoLoss(x: PreferenceInputs, o: LossOptions, n: Normaliser): LossTerm {
  const lambda = o.orpoLambda ?? 0.1;
  const ratio = logSigmoid(orpoLogOdds(x));
  const nll = sftLoss(x, o, n);
  return {
    losses: tf.sub(nll.losses, tf.mul(ratio, lambda)) as tf.Tensor1D,
    loss: tf.sub(nll.loss, tf.div(tf.mul(tf.sum(ratio), lambda), n.pairs)) as tf.Scalar,
  };
}

export const lossSpecs: Record<PreferenceLossName, LossSpec> = {
  sigmoid: { name: 'sigmoid', needsReference: true, paper: 'Rafailov et al. 2023, arXiv:2305.18290', fn: sigmoidLoss },
  robust: { name: 'robust', needsReference: true, paper: 'Chowdhury et al. 2024, arXiv:2403.00409', fn: robustLoss },
  hinge: { name: 'hinge', needsReference: true, paper: 'Zhao et al. 2023 (SLiC-HF), arXiv:2305.10425', fn: hingeLoss },
  ipo: { name: 'ipo', needsReference: true, paper: 'Azar et al. 2023, arXiv:2310.12036', fn: ipoLoss },
  ipo_sum: { name: 'ipo_sum', needsReference: true, paper: 'Azar et al. 2023, arXiv:2310.12036', fn: ipoSumLoss },
  simpo: { name: 'simpo', needsReference: false, paper: 'Meng et al. 2024, arXiv:2405.14734', fn: simpoLoss },
  orpo: { name: 'orpo', needsReference: false, paper: 'Hong et al. 2024, arXiv:2403.07691', fn: orpoLoss },
  sft: { name: 'sft', needsReference: false, paper: 'Pang et al. 2024 (RPO), arXiv:2404.19733', fn: sftLoss },
};

export function lossesNeedReference(names: readonly PreferenceLossName[]): boolean {
  return names.some((n) => lossSpecs[n].needsReference);
}

export interface CombinedOptions extends LossOptions {
  losses: readonly PreferenceLossName[];
  /** One weight per loss (TRL's loss_weights); default all 1. */
  weights?: readonly number[];
  /** Adds rpo_alpha·NLL(y⁺) (TRL's rpo_alpha). */
  rpoAlpha?: number;
  /** Defaults to this batch alone: {pairs: B, chosenTokens: Σ|y⁺|}. */
  normaliser?: Normaliser;
}

export interface CombinedLoss extends LossTerm {
  /** Each term's scalar (unweighted), for logging. */
  parts: Partial<Record<PreferenceLossName, tf.Scalar>>;
}

/** Σ_k w_k·loss_k (+ rpo_alpha·NLL): TRL's multi-loss DPO (`loss_type=[...]`, `loss_weights`). */
export function preferenceLoss(x: PreferenceInputs, o: CombinedOptions): CombinedLoss {
  if (o.losses.length === 0) throw configError('at least one loss is needed');
  if (o.weights && o.weights.length !== o.losses.length)
    throw configError(`loss_weights has ${o.weights.length} entries for ${o.losses.length} losses`);
  const n: Normaliser = o.normaliser ?? {
    pairs: x.chosenLogps.shape[0],
    chosenTokens: tf.sum(x.chosenLengths).dataSync()[0]!,
  };
  const terms: { w: number; name: PreferenceLossName; t: LossTerm }[] = o.losses.map((name, i) => ({
    w: o.weights?.[i] ?? 1,
    name,
    t: lossSpecs[name].fn(x, o, n),
  }));
  if (o.rpoAlpha) terms.push({ w: o.rpoAlpha, name: 'sft', t: sftLoss(x, o, n) });
  let losses: tf.Tensor = tf.zerosLike(x.chosenLogps);
  let loss: tf.Tensor = tf.scalar(0);
  const parts: CombinedLoss['parts'] = {};
  for (const { w, name, t } of terms) {
    losses = tf.add(losses, tf.mul(t.losses, w));
    loss = tf.add(loss, tf.mul(t.loss, w));
    parts[name] = t.loss;
  }
  return { losses: losses as tf.Tensor1D, loss: loss as tf.Scalar, parts };
}

/**
 * Which implicit reward a DPO-family run reports, as TRL does: β·(log π − log π_ref) per example
 * when the losses use a reference (per-token averaged log-probs when `ipo` is among them, as TRL
 * averages all log-probs then); reference-free losses report β·ā, the mean token log-prob
 * (CPOTrainer / ORPOTrainer). Training (implicitRewards) and the eval stage (implicitRewardValue)
 * both follow this rule, so one `eval_rewards/*` name means one quantity.
 */
export interface ImplicitRewardRule {
  beta: number;
  /** Subtract the reference's log-prob. */
  useReference: boolean;
  /** Divide log-probs by the completion's token count first. */
  perToken: boolean;
}

export function implicitRewardRule(o: { beta: number; losses: readonly PreferenceLossName[] }, hasReference: boolean): ImplicitRewardRule {
  const useReference = hasReference && lossesNeedReference(o.losses);
  return { beta: o.beta, useReference, perToken: !useReference || o.losses.includes('ipo') };
}

/** One example's implicit reward under `rule`, from summed log-probs and the completion's token count. */
export function implicitRewardValue(rule: ImplicitRewardRule, logp: number, refLogp: number, tokens: number): number {
  const norm = (v: number) => (rule.perToken ? v / tokens : v);
  return rule.beta * (rule.useReference ? norm(logp) - norm(refLogp) : norm(logp));
}

/** Implicit rewards of a batch under implicitRewardRule (tensors, for the training metrics). */
export function implicitRewards(
  x: PreferenceInputs,
  o: { beta: number; losses: readonly PreferenceLossName[] },
): { chosen: tf.Tensor1D; rejected: tf.Tensor1D } {
  return tf.tidy(() => {
    const rule = implicitRewardRule(o, x.refChosenLogps !== undefined && x.refRejectedLogps !== undefined);
    const norm = (t: tf.Tensor1D, len: tf.Tensor1D) => (rule.perToken ? tf.div(t, len) : t);
    const c = rule.useReference ? tf.sub(norm(x.chosenLogps, x.chosenLengths), norm(x.refChosenLogps!, x.chosenLengths)) : norm(x.chosenLogps, x.chosenLengths);
    const r = rule.useReference
      ? tf.sub(norm(x.rejectedLogps, x.rejectedLengths), norm(x.refRejectedLogps!, x.rejectedLengths))
      : norm(x.rejectedLogps, x.rejectedLengths);
    return { chosen: tf.mul(c, rule.beta) as tf.Tensor1D, rejected: tf.mul(r, rule.beta) as tf.Tensor1D };
  });
}
