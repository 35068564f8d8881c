// Memory a training stage needs, estimated before it starts, so a run that cannot fit is refused
// with a clear message instead of dying mid-run (wasm aborts with "Aborted()" at its 4 GB heap; any
// backend can exhaust the machine). Pure arithmetic on the model config and the batch shape.
//
// Bytes, fp32 throughout:
// - weights 4·N, gradients 4·N, AdamW state 8·N (m and v; Loshchilov & Hutter 2019), N = parameters;
// - activations kept for the backward pass, per micro-batch of R rows × T tokens, per layer: tfjs
//   autograd keeps every intermediate tensor of the forward, about ACT_PER_TOKEN_LAYER·d floats a
//   token (layer norms, q/k/v and their head transposes, MLP and GELU pieces) plus the attention
//   maps, ATT_MAPS·H·T floats a token (scores, masked scores, softmax); and the head: logits and
//   their log-softmax pieces, HEAD_MAPS·V floats a token. The constants are fitted to what
//   tf.memory() holds at the end of the SFT forward inside variableGrads, measured on two shapes
//   (d 128 / 4 layers / T 128 / V 512: 258.6 MB for 8 rows; d 256 / 2 layers / T 64 / V 2000:
//   161.1 MB), rounded up.
//   On the native backend the fused kernels (src/ml/kernels/fused.ts) keep far fewer pieces: fitted
//   the same way on six shapes (d 64–256, 1–4 layers, T 32–128, V 256–8000; all within 11%), FUSED_*
//   below, plus FUSED_PER_TOKEN_D·d a token outside the layers (embeddings, final norm).
// A frozen reference model (DPO without cached log-probs) adds its weights only.
import os from 'node:os';
import { readFileSync } from 'node:fs';
import { AlignflowError } from '../errors.js';
import type { ModelShape } from './models/types.js';
import { FUSED, fusedAvailable } from './kernels/fused.js';
import { modelFamily } from './models/registry.js';

const ACT_PER_TOKEN_LAYER = 80;
const ATT_MAPS = 8;
const HEAD_MAPS = 16;
const FUSED_PER_TOKEN_LAYER = 29;
const FUSED_ATT_MAPS = 2;
const FUSED_HEAD_MAPS = 2.5;
const FUSED_PER_TOKEN_D = 40;
const GIB = 2 ** 30;

export interface TrainingMemoryInput {
  model: ModelShape;
  /** Trainable + frozen parameters of the trained model. */
  params: number;
  /** Rows in one micro-batch (DPO and reward models: 2 × pairs, chosen and rejected). */
  rows: number;
  /** Tokens per row (max_length, at most the model's context). */
  seqLen: number;
  /** Parameters of a frozen reference model kept in memory beside it, if any. */
  referenceParams?: number;
  /** The native backend's fused kernels are active (fewer activations kept); default false. */
  fused?: boolean;
}

export interface TrainingMemoryEstimate {
  weights: number;
  gradients: number;
  optimizer: number;
  activations: number;
  reference: number;
  total: number;
}

/** Bytes the gradient tape holds for one micro-batch of `rows` × `seqLen` tokens (constants above). */
export function activationBytes(m: ModelShape, rows: number, seqLen: number, fused = false): number {
  const T = Math.min(seqLen, m.contextLength);
  if (fused) return 4 * rows * T * (m.layers * (FUSED_PER_TOKEN_LAYER * m.hiddenSize + FUSED_ATT_MAPS * m.heads * T) + FUSED_HEAD_MAPS * m.vocabSize + FUSED_PER_TOKEN_D * m.hiddenSize);
  return 4 * rows * T * (m.layers * (ACT_PER_TOKEN_LAYER * m.hiddenSize + ATT_MAPS * m.heads * T) + HEAD_MAPS * m.vocabSize);
}

export function estimateTrainingMemory(i: TrainingMemoryInput): TrainingMemoryEstimate {
  const weights = 4 * i.params;
  const gradients = 4 * i.params;
  const optimizer = 8 * i.params;
  const activations = activationBytes(i.model, i.rows, i.seqLen, i.fused);
  const reference = 4 * (i.referenceParams ?? 0);
  return { weights, gradients, optimizer, activations, reference, total: weights + gradients + optimizer + activations + reference };
}

/** Bytes the active backend can hold: wasm's 32-bit heap, else the machine's (or cgroup's) memory. */
export function memoryLimit(backend: string): { bytes: number; what: string } {
  if (backend === 'wasm') return { bytes: 4 * GIB, what: "the wasm backend's 4 GiB heap" };
  let bytes = os.totalmem();
  let what = `this machine's ${(bytes / GIB).toFixed(1)} GiB`;
  try {
    const raw = readFileSync('/sys/fs/cgroup/memory.max', 'utf8').trim();
    const n = Number(raw);
    if (raw !== 'max' && Number.isFinite(n) && n < bytes) {
      bytes = n;
      what = `this container's ${(n / GIB).toFixed(1)} GiB limit`;
    }
  } catch {
    // no cgroup v2 limit
  }
  return { bytes, what };
}

export const gib = (b: number) => `${(b / GIB).toFixed(2)} GiB`;

export function describeEstimate(e: TrainingMemoryEstimate): string {
  return `weights ${gib(e.weights)}, gradients ${gib(e.gradients)}, AdamW state ${gib(e.optimizer)}, activations ${gib(e.activations)}` + (e.reference ? `, reference model ${gib(e.reference)}` : '');
}

/**
 * Whether a model of this type trains with the fused kernels' smaller tape (its family's `fusedTape`).
 * The FUSED_* constants were fitted on GPT-2 blocks (fused layer norm, GELU, attention softmax, token log-probs); the
 * Llama family's RMSNorm and SwiGLU run unfused, so they are counted with the unfused constants (an
 * over-estimate of their attention and head, never an under-estimate).
 */
export function trainsFused(modelType: string): boolean {
  return modelFamily(modelType)?.fusedTape === true && fusedAvailable(FUSED.layerNorm);
}

/**
 * Throws AlignflowError('config') when the estimate exceeds what the backend can hold, naming the
 * parts and what to change. `headroom` covers the runtime itself and the data (default 10%).
 */
export function assertTrainingFits(stage: string, i: TrainingMemoryInput, backend: string, headroom = 0.9): TrainingMemoryEstimate {
  const e = estimateTrainingMemory({ ...i, fused: i.fused ?? false });
  const limit = memoryLimit(backend);
  if (e.total > limit.bytes * headroom) {
    const fix = backend === 'wasm' ? 'use the native backend (alignflow doctor says how), or lower batch_size or max_length' : 'lower batch_size or max_length (grad_accum keeps the effective batch)';
    throw new AlignflowError(
      'config',
      `${stage}: training needs about ${gib(e.total)} (${describeEstimate(e)}; ${i.rows} rows × ${Math.min(i.seqLen, i.model.contextLength)} tokens a micro-batch), more than ${limit.what}; ${fix}`,
    );
  }
  return e;
}
