// The shape arithmetic of tfjs's BatchMatMul shared by our wasm and native kernels: one batch loop
// with a stride per side covers equal outer dims and one unbatched side; anything else (true
// broadcasting between batch dims) is left to the stock kernel.
import * as tf from '@tensorflow/tfjs';

export interface MatMulPlan {
  M: number;
  N: number;
  K: number;
  /** Products in the loop, and each side's batch count (1 = the same matrix every time). */
  batch: number;
  batchA: number;
  batchB: number;
  outShape: number[];
}

const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** The loop for a·b with the transpose flags, or undefined when the batch dims need broadcasting. */
export function planBatchMatMul(aShape: readonly number[], bShape: readonly number[], tA: boolean, tB: boolean): MatMulPlan | undefined {
  const ra = aShape.length;
  const rb = bShape.length;
  const outerA = aShape.slice(0, -2);
  const outerB = bShape.slice(0, -2);
  const batchA = size(outerA);
  const batchB = size(outerB);
  if (batchA === batchB ? batchA > 1 && outerA.join() !== outerB.join() : batchA !== 1 && batchB !== 1) return undefined;
  const M = tA ? aShape[ra - 1]! : aShape[ra - 2]!;
  const K = tA ? aShape[ra - 2]! : aShape[ra - 1]!;
  const Kb = tB ? bShape[rb - 1]! : bShape[rb - 2]!;
  const N = tB ? bShape[rb - 2]! : bShape[rb - 1]!;
  if (K !== Kb) throw new Error(`Error in matMul: inner shapes (${K}) and (${Kb}) of Tensors with shapes ${aShape} and ${bShape} and transposeA=${tA} and transposeB=${tB} must match.`);
  const outer = tf.backend_util.assertAndGetBroadcastShape(outerA, outerB);
  return { M, N, K, batch: Math.max(batchA, batchB), batchA, batchB, outShape: [...outer, M, N] };
}
