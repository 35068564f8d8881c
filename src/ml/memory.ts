// Memory a training stage needs, estimated before it starts, so a run that cannot fit is refused
// with a clear message instead of dying mid-run (wasm aborts with "Aborted()" at its 4 GB heap; any
// backend can exhaust the machine). Pure arithmetic on the model config and the batch shape.
//
// Bytes, fp32 throughout:
// - weights 4·N, gradients 4·N, AdamW state 8·N (m and v; Loshchilov & Hutter 2019), N = parameters;
// - activations kept for the backward pass, per micro-batch of R rows × T tokens: tfjs autograd keeps
//   every intermediate tensor of the forward. Each family fits constants (its `activationModel`,
//   TapeConstants in models/types.ts) to what tf.memory() holds at the end of the SFT forward inside
//   variableGrads, one set for the native backend's fused kernels (src/ml/kernels/fused.ts) and one
//   for the unfused tape (wasm, cpu), rounded up so the estimate is never below a measured shape:
//   - GPT-2 (models/gpt2.ts): 80·d floats a token and layer plus the attention maps 8·H·T and the
//     head 16·V, fitted on two shapes; fused: 29·d, 2·H·T, 2.5·V and 40·d outside the layers, fitted
//     on six (within 11%).
//   - Llama family (models/llama.ts: RMSNorm, SwiGLU, grouped-query attention, rotary): terms for the
//     hidden size, the MLP's intermediate size, the query and key/value widths, the attention maps
//     (grouped heads run an unfused softmax on native too), the vocabulary, LoRA adapters (their
//     delta is kept per adapted output) and the weights (tf.memory() counts the tape's views of
//     them), fitted on 145 shapes per backend (scripts/measure-activations.ts), up to SmolLM2-135M's
//     and Qwen2.5-0.5B's widths: estimate / measured 1.02–1.13 on every one. The GPT-2 constants
//     they replace over-estimated these blocks up to 3.8x on native and 1.5x on wasm (LoRA on wasm
//     was 2% under).
//   Each term and its fit are at the family's constants.
// A frozen reference model (DPO without cached log-probs) adds its weights only.
import os from 'node:os';
import { readFileSync } from 'node:fs';
import { AlignflowError } from '../errors.js';
import type { ActivationModel, ModelShape, TapeConstants } from './models/types.js';
import { fusedAvailable } from './kernels/fused.js';
import { modelFamily } from './models/registry.js';

const GIB = 2 ** 30;

export interface TrainingMemoryInput {
  model: ModelShape;
  /** The family's tape constants (ModelFamily.activationModel). */
  activationModel: ActivationModel;
  /** Σ over LoRA-adapted linear layers of (outputs + rank); 0 or absent without LoRA. */
  loraOutputs?: number;
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

/** The constants that apply: the fused tape's when the native backend's fused kernels train it. */
export function tapeConstants(a: ActivationModel, fused = false): TapeConstants {
  return fused && a.fused ? a.fused : a.tape;
}

/**
 * Bytes the gradient tape holds for one micro-batch of `rows` × `seqLen` tokens (the formula at
 * TapeConstants in models/types.ts). `params` (the model's parameters) and `loraOutputs` (Σ out + r
 * over adapted layers) feed the families' weight-view and LoRA terms.
 */
export function activationBytes(m: ModelShape, a: ActivationModel, rows: number, seqLen: number, o: { fused?: boolean; params?: number; loraOutputs?: number } = {}): number {
  const k = tapeConstants(a, o.fused);
  const T = Math.min(seqLen, m.contextLength);
  const attention = k.attention + (m.kvHeads < m.heads ? (k.groupedAttention ?? 0) : 0);
  const perLayer = k.hidden * m.hiddenSize + (k.intermediate ?? 0) * m.intermediateSize + (k.query ?? 0) * m.heads * m.headDim + (k.keyValue ?? 0) * m.kvHeads * m.headDim + attention * m.heads * T;
  const perToken = m.layers * perLayer + k.vocab * m.vocabSize + (k.outside ?? 0) * m.hiddenSize + (k.position ?? 0) * T + (k.lora ?? 0) * (o.loraOutputs ?? 0);
  const weightViews = (k.parameter ?? 0) * ((o.params ?? 0) + (m.tiedHead ? m.vocabSize * m.hiddenSize : 0));
  return Math.ceil(4 * rows * T * perToken + 4 * weightViews);
}

export function estimateTrainingMemory(i: TrainingMemoryInput): TrainingMemoryEstimate {
  const weights = 4 * i.params;
  const gradients = 4 * i.params;
  const optimizer = 8 * i.params;
  const activations = activationBytes(i.model, i.activationModel, i.rows, i.seqLen, { fused: i.fused, params: i.params, loraOutputs: i.loraOutputs });
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

/** Whether a model of this type trains with its family's fused-tape constants here: the native backend's fused kernels are on. */
export function trainsFused(modelType: string): boolean {
  const f = modelFamily(modelType)?.activationModel.fused;
  return f !== undefined && fusedAvailable(f.kernel);
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
