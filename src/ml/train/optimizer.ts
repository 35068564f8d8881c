// AdamW with decoupled weight decay (Loshchilov & Hutter, "Decoupled Weight Decay Regularization",
// ICLR 2019), written out instead of tf.train.adam so that its state (both moments and the step
// count) is explicit, checkpointable and restorable bit for bit.
//
// The update follows torch.optim.AdamW (non-amsgrad, non-fused) step for step:
//   p ← p·(1 − lr·λ)                                  (decoupled decay, before the Adam step)
//   m ← β1·m + (1 − β1)·g ;  v ← β2·v + (1 − β2)·g²
//   p ← p − (lr / (1 − β1^t)) · m / (√v / √(1 − β2^t) + ε)   (bias correction; ε outside the sqrt)
//
// Weight-decay rule (defaultDecayFilter): decay a parameter iff it has two or more dimensions —
// linear/Conv1D weight matrices and the embeddings. Biases and LayerNorm gains/biases (all 1-D)
// are never decayed. This is the same set that transformers' Trainer builds with
// get_decay_parameter_names (everything except LayerNorm parameters and biases).
import * as tf from '@tensorflow/tfjs';
import { fusedAdamW } from '../kernels/fused.js';

export interface AdamWConfig {
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** Decoupled weight decay λ (transformers' default 0; torch's 0.01). */
  weightDecay?: number;
  /** Which parameters are decayed; default defaultDecayFilter. */
  decayFilter?: (name: string, v: tf.Variable) => boolean;
}

export interface AdamWHyper {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

export const defaultDecayFilter = (_name: string, v: tf.Variable): boolean => v.shape.length >= 2;

export function resolveAdamW(c: AdamWConfig = {}): AdamWHyper {
  const h = { beta1: c.beta1 ?? 0.9, beta2: c.beta2 ?? 0.999, eps: c.eps ?? 1e-8, weightDecay: c.weightDecay ?? 0 };
  if (!(h.beta1 >= 0 && h.beta1 < 1)) throw new RangeError(`AdamW beta1 must be in [0, 1), got ${h.beta1}`);
  if (!(h.beta2 >= 0 && h.beta2 < 1)) throw new RangeError(`AdamW beta2 must be in [0, 1), got ${h.beta2}`);
  if (!(h.eps > 0)) throw new RangeError(`AdamW eps must be > 0, got ${h.eps}`);
  if (!(h.weightDecay >= 0)) throw new RangeError(`AdamW weightDecay must be ≥ 0, got ${h.weightDecay}`);
  return h;
}

export class AdamW {
  readonly hyper: AdamWHyper;
  /** Number of updates taken so far (torch's `state['step']`). */
  step = 0;
  readonly params: Map<string, tf.Variable>;
  /** First and second moments, keyed by parameter name (torch's exp_avg / exp_avg_sq). */
  readonly m = new Map<string, tf.Variable>();
  readonly v = new Map<string, tf.Variable>();
  private readonly decay = new Map<string, boolean>();

  constructor(params: Map<string, tf.Variable>, config: AdamWConfig = {}) {
    this.hyper = resolveAdamW(config);
    this.params = params;
    const filter = config.decayFilter ?? defaultDecayFilter;
    for (const [name, p] of params) {
      this.m.set(name, zeroMoment(p.shape));
      this.v.set(name, zeroMoment(p.shape));
      this.decay.set(name, filter(name, p));
    }
  }

  /** Names of the parameters that receive weight decay (for logs and docs). */
  decayedNames(): string[] {
    return [...this.decay].filter(([, d]) => d).map(([n]) => n);
  }

  /**
   * One update with learning rate `lr`. `grads` maps parameter names to gradients (already
   * clipped/scaled by the caller); a parameter without a gradient is left untouched, as torch does.
   * The caller keeps ownership of `grads`.
   */
  applyGradients(grads: Map<string, tf.Tensor>, lr: number): void {
    const { beta1, beta2, eps, weightDecay } = this.hyper;
    const t = this.step + 1;
    const bc1 = 1 - Math.pow(beta1, t);
    const bc2Sqrt = Math.sqrt(1 - Math.pow(beta2, t));
    tf.tidy(() => {
      const sB1 = tf.scalar(beta1);
      const s1mB1 = tf.scalar(1 - beta1);
      const sB2 = tf.scalar(beta2);
      const s1mB2 = tf.scalar(1 - beta2);
      const sDecay = tf.scalar(1 - lr * weightDecay);
      const sBc2 = tf.scalar(bc2Sqrt);
      const sEps = tf.scalar(eps);
      const sStep = tf.scalar(lr / bc1);
      for (const [name, p] of this.params) {
        const g = grads.get(name);
        if (!g) continue;
        const m = this.m.get(name)!;
        const v = this.v.get(name)!;
        const decay = weightDecay > 0 && this.decay.get(name)!;
        // native backend: the same float32 operations in one pass (bit-identical to the chain below)
        const fused = fusedAdamW(p, g, m, v, { decay, decayFactor: 1 - lr * weightDecay, beta1, beta2, bc2Sqrt, eps, stepSize: lr / bc1 });
        if (fused) {
          m.assign(fused[1]!);
          v.assign(fused[2]!);
          p.assign(fused[0]!);
          continue;
        }
        const decayed = weightDecay > 0 && this.decay.get(name) ? tf.mul(p, sDecay) : p;
        const m1 = tf.add(tf.mul(m, sB1), tf.mul(g, s1mB1));
        const v1 = tf.add(tf.mul(v, sB2), tf.mul(tf.mul(g, g), s1mB2));
        const denom = tf.add(tf.div(tf.sqrt(v1), sBc2), sEps);
        const p1 = tf.sub(decayed, tf.mul(sStep, tf.div(m1, denom)));
        m.assign(m1);
        v.assign(v1);
        p.assign(p1);
      }
    });
    this.step = t;
  }

  dispose(): void {
    for (const t of this.m.values()) t.dispose();
    for (const t of this.v.values()) t.dispose();
    this.m.clear();
    this.v.clear();
  }
}

/** A zero-filled moment variable; the zeros it is copied from are freed at once. */
function zeroMoment(shape: number[]): tf.Variable {
  return tf.tidy(() => tf.variable(tf.zeros(shape, 'float32'), false, undefined, 'float32'));
}
