// Parameter counts and training-memory estimates from a config alone (no weights are made), for
// `alignflow models show`: full fine-tuning vs LoRA, float32 weights and AdamW state as alignflow
// trains. Activations use the same figure as the stages' pre-flight check (ml/memory.ts: fitted to
// what tfjs's gradient tape really holds), so `models show` and a refused stage agree.
import type { ModelConfig } from './types.js';
import { familyOf } from './registry.js';
import { activationBytes } from '../memory.js';

export interface MemoryEstimate {
  parameters: number;
  trainable: number;
  /** Bytes: frozen and trained weights, gradients, AdamW moments, activations of one micro-batch. */
  weights: number;
  gradients: number;
  optimizer: number;
  activations: number;
  total: number;
}

export interface EstimateOptions {
  /** Sequences in one micro-batch (DPO: 2 per pair) and their length. */
  batch: number;
  seqLen: number;
  /** LoRA rank and the PEFT module names it targets; absent: full fine-tuning. */
  lora?: { r: number; targetModules: string[] | 'all-linear' };
  /** The native backend's fused kernels would train it (fewer activations kept); default false. */
  fused?: boolean;
}

export function parameterCount(config: ModelConfig): number {
  let n = 0;
  for (const shape of familyOf(config).paramShapes(config).values()) n += shape.reduce((a, b) => a * b, 1);
  return n;
}

/** The [in, out] sizes of the linear layers LoRA adapts in a config (from the family's own shapes: [out, in], or [in, out] for GPT-2). */
function loraTargets(config: ModelConfig, targetModules: string[] | 'all-linear'): { inF: number; outF: number }[] {
  const f = familyOf(config);
  const out: { inF: number; outF: number }[] = [];
  for (const [name, shape] of f.paramShapes(config)) {
    if (shape.length !== 2 || !name.endsWith('.weight')) continue;
    const module = name.split('.').at(-2)!;
    if (!/\.(layers|h)\.\d+\./.test(name)) continue;
    if (targetModules !== 'all-linear' && !targetModules.includes(module)) continue;
    out.push(f.weightsInOut ? { inF: shape[0]!, outF: shape[1]! } : { inF: shape[1]!, outF: shape[0]! });
  }
  return out;
}

/** r·(in + out) per targeted linear layer: the LoRA parameters of a config. */
export function loraParameterCount(config: ModelConfig, r: number, targetModules: string[] | 'all-linear'): number {
  return loraTargets(config, targetModules).reduce((n, l) => n + r * (l.inF + l.outF), 0);
}

/** Σ (outputs + r) over the linear layers LoRA adapts: what the adapters add to the gradient tape (ml/memory.ts). */
export function loraOutputCount(config: ModelConfig, r: number, targetModules: string[] | 'all-linear'): number {
  return loraTargets(config, targetModules).reduce((n, l) => n + l.outF + r, 0);
}

export function trainingMemory(config: ModelConfig, o: EstimateOptions): MemoryEstimate {
  const f = familyOf(config);
  const s = f.shape(config);
  const parameters = parameterCount(config);
  const trainable = o.lora ? loraParameterCount(config, o.lora.r, o.lora.targetModules) : parameters;
  const F = 4; // float32
  const weights = F * (parameters + (o.lora ? trainable : 0));
  const gradients = F * trainable;
  const optimizer = 2 * F * trainable;
  const loraOutputs = o.lora ? loraOutputCount(config, o.lora.r, o.lora.targetModules) : 0;
  const activations = activationBytes(s, f.activationModel, o.batch, o.seqLen, { fused: o.fused, params: parameters, loraOutputs });
  return { parameters, trainable, weights, gradients, optimizer, activations, total: weights + gradients + optimizer + activations };
}
