// Fused operations for the `native` backend: one C++ pass (native/src/fused.cc) where tfjs's
// autograd would otherwise run a chain of element-wise kernels, each reading and writing the whole
// tensor. A profile of a DPO step on the reference shape had GELU, layer norm and the AdamW update
// as most of its Multiply/Add/Sub/Sum time (docs/engine-training.md).
//
// Each function returns undefined when the active backend is not `native` (or its addon lacks the
// kernel), and the caller then runs its own tensor chain: the wasm and cpu paths are unchanged.
// Gradients are given by tf.customGrad with a fused backward kernel, checked against the chains'
// autograd in test/ml/native-fused.test.ts.
import * as tf from '@tensorflow/tfjs';

/** Kernel names, registered on the native backend only (src/ml/kernels/native.ts). */
export const FUSED = {
  geluNew: 'AlignflowGeluNew',
  geluNewGrad: 'AlignflowGeluNewGrad',
  layerNorm: 'AlignflowLayerNorm',
  layerNormGrad: 'AlignflowLayerNormGrad',
  adamw: 'AlignflowAdamW',
  attentionSoftmax: 'AlignflowAttentionSoftmax',
  softmaxGrad: 'AlignflowSoftmaxGrad',
  tokenLogp: 'AlignflowTokenLogp',
  tokenLogpGrad: 'AlignflowTokenLogpGrad',
} as const;

/** ALIGNFLOW_FUSED=0 turns the fused paths off (to profile or test the unfused chains side by side). */
export function fusedAvailable(kernel: string): boolean {
  return process.env.ALIGNFLOW_FUSED !== '0' && tf.getBackend() === 'native' && tf.getKernel(kernel, 'native') !== undefined;
}

const run = (name: string, inputs: tf.NamedTensorMap, attrs: tf.NamedAttrMap = {}) =>
  tf.engine().runKernel(name, inputs, attrs) as tf.Tensor | tf.Tensor[];

/** tf.customGrad with the tensor arguments typed (tfjs types them as Tensor | GradSaveFunc). */
function customGrad<A extends tf.Tensor[]>(
  f: (...args: [...A, tf.GradSaveFunc]) => { value: tf.Tensor; gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor | tf.Tensor[] },
): (...args: A) => tf.Tensor {
  return tf.customGrad(f as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (...args: A) => tf.Tensor;
}

const geluNewOp = customGrad((x: tf.Tensor, save: tf.GradSaveFunc) => {
  save([x]);
  return {
    value: run(FUSED.geluNew, { x }) as tf.Tensor,
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => run(FUSED.geluNewGrad, { x: saved[0]!, dy }) as tf.Tensor,
  };
});

/** gelu_new (tanh approximation) of x in one pass; undefined off the native backend. */
export function fusedGeluNew(x: tf.Tensor): tf.Tensor | undefined {
  if (x.dtype !== 'float32' || !fusedAvailable(FUSED.geluNew)) return undefined;
  return geluNewOp(x);
}

const layerNormOps = new Map<number, (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.Tensor>();
function layerNormOp(eps: number) {
  let op = layerNormOps.get(eps);
  if (!op) {
    op = customGrad((x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, save: tf.GradSaveFunc) => {
      const [y, mean, rstd] = run(FUSED.layerNorm, { x, gamma, beta }, { eps }) as tf.Tensor[];
      save([x, gamma, mean!, rstd!]);
      return {
        value: y!,
        gradFunc: (dy: tf.Tensor, [sx, sg, sm, sr]: tf.Tensor[]) => run(FUSED.layerNormGrad, { x: sx!, gamma: sg!, mean: sm!, rstd: sr!, dy }) as tf.Tensor[],
      };
    });
    layerNormOps.set(eps, op);
  }
  return op;
}

/** Layer norm over the last axis ((x − mean) / √(var + eps) · g + b, biased variance as
 *  torch.nn.LayerNorm); undefined off the native backend. */
export function fusedLayerNorm<T extends tf.Tensor>(x: T, g: tf.Tensor, b: tf.Tensor, eps: number): T | undefined {
  if (x.rank < 1 || x.dtype !== 'float32' || g.dtype !== 'float32' || b.dtype !== 'float32' || !fusedAvailable(FUSED.layerNorm)) return undefined;
  return layerNormOp(eps)(x, g, b) as T;
}

/**
 * Attention probabilities softmax(x·scale + bias) over the last axis, x [B, H, T, S] and the additive
 * mask bias [B|1, 1, T, S]; the gradient flows to x only (the bias is a constant mask built from the
 * batch, src/ml/models/attention.ts maskBias). Undefined off the native backend or for other shapes.
 */
export function fusedAttentionSoftmax(x: tf.Tensor4D, bias: tf.Tensor4D, scale: number): tf.Tensor4D | undefined {
  const [B, , T, S] = x.shape;
  const [b0, b1, b2, b3] = bias.shape;
  if (x.dtype !== 'float32' || bias.dtype !== 'float32' || (b0 !== 1 && b0 !== B) || b1 !== 1 || b2 !== T || b3 !== S || !fusedAvailable(FUSED.attentionSoftmax)) return undefined;
  const op = customGrad((xx: tf.Tensor, save: tf.GradSaveFunc) => {
    const y = run(FUSED.attentionSoftmax, { x: xx, bias }, { scale }) as tf.Tensor;
    save([y]);
    return { value: y, gradFunc: (dy: tf.Tensor, [sy]: tf.Tensor[]) => run(FUSED.softmaxGrad, { y: sy!, dy }, { scale }) as tf.Tensor };
  });
  return op(x) as tf.Tensor4D;
}

/**
 * log p(ids[:, t] | ids[:, <t]) for t = 1..T−1 from logits [B, T, V]: [B, T−1], differentiable in the
 * logits. One pass per row (max, Σ exp, the target's element) with no [B, T−1, V] log-softmax, slice
 * or gather tensor, and a one-pass gradient ([t = target] − softmax) · dy. Undefined off native.
 */
export function fusedTokenLogps(logits: tf.Tensor3D, ids: tf.Tensor2D): tf.Tensor2D | undefined {
  if (logits.dtype !== 'float32' || ids.dtype !== 'int32' || logits.shape[1] < 2 || !fusedAvailable(FUSED.tokenLogp)) return undefined;
  const op = customGrad((x: tf.Tensor, save: tf.GradSaveFunc) => {
    const [lp, stats] = run(FUSED.tokenLogp, { logits: x, ids }) as tf.Tensor[];
    // ids are saved too: tensors the forward closed over may be disposed before the backward pass
    save([x, stats!, ids]);
    return { value: lp!, gradFunc: (dy: tf.Tensor, [sx, ss, si]: tf.Tensor[]) => run(FUSED.tokenLogpGrad, { logits: sx!, ids: si!, stats: ss!, dy }) as tf.Tensor };
  });
  return op(logits) as tf.Tensor2D;
}

/** The scalars of one AdamW update, as the optimizer's tensor chain rounds them to float32. */
export interface AdamWStepScalars {
  decay: boolean;
  decayFactor: number;
  beta1: number;
  beta2: number;
  bc2Sqrt: number;
  eps: number;
  stepSize: number;
}

/** One AdamW update of one parameter: [p1, m1, v1]; undefined off the native backend. */
export function fusedAdamW(p: tf.Tensor, g: tf.Tensor, m: tf.Tensor, v: tf.Tensor, s: AdamWStepScalars): tf.Tensor[] | undefined {
  if ([p, g, m, v].some((t) => t.dtype !== 'float32') || !fusedAvailable(FUSED.adamw)) return undefined;
  const scalars = [s.decay ? 1 : 0, s.decayFactor, s.beta1, 1 - s.beta1, s.beta2, 1 - s.beta2, s.bc2Sqrt, s.eps, s.stepSize];
  return run(FUSED.adamw, { p, g, m, v }, { scalars }) as tf.Tensor[];
}
