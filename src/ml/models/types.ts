import type * as tf from '@tensorflow/tfjs';
import type { z } from 'zod';


/** config.json keys every family has (transformers' PretrainedConfig). */
export interface BaseModelConfig {
  model_type: string;
  architectures?: string[];
  vocab_size: number;
  bos_token_id?: number | null;
  /** Llama 3 and Qwen list several stop ids. */
  eos_token_id?: number | number[] | null;
  pad_token_id?: number | null;
  tie_word_embeddings?: boolean;
  initializer_range?: number;
  torch_dtype?: string;
  [key: string]: unknown;
}

export type { Gpt2Config } from './gpt2.js';

/**
 * A family's config as loaded (transformers' defaults filled in). Code outside ml/models/<family>.ts
 * reads only the BaseModelConfig keys; sizes come from CausalLM (contextLength, hiddenSize, vocabSize).
 */
export type ModelConfig = BaseModelConfig;

/** The stop ids of a config: eos_token_id as a list (it may be one id, a list, or absent). */
export function configEosIds(c: BaseModelConfig): number[] {
  const e = c.eos_token_id;
  if (Array.isArray(e)) return e.filter((x) => Number.isInteger(x));
  return typeof e === 'number' ? [e] : [];
}

/** Per-layer attention keys and values of the tokens seen so far: [B, heads, T, headDim]. */
export interface KVCache {
  layers: { k: tf.Tensor4D; v: tf.Tensor4D }[];
  length: number;
  /** [B, length] padding mask of the cached positions (1 real, 0 padding); absent = all real. */
  mask?: tf.Tensor2D;
}

export interface ForwardOptions {
  /**
   * 1 for real tokens and 0 for padding: [B, T] for the new tokens (the cache's own mask, if any, is
   * prepended), or [B, cacheLength + T] for all of them (the transformers convention).
   */
  attentionMask?: tf.Tensor2D;
  /** [B, T] positions; default 0..T-1 (offset by the cache length). */
  positionIds?: tf.Tensor2D;
  cache?: KVCache;
  /**
   * Return the updated cache (generation). The returned cache holds new tensors; the caller
   * disposes both the old and the new one (disposeCache) when done.
   */
  useCache?: boolean;
}

/**
 * Low-rank adapters on a model's linear layers (LoRA). A model that has one adds, to each adapted
 * projection y = x W (+ b), the adapter's delta(x); `cols` asks for a column block of the output
 * (GPT-2's fused q/k/v projection is applied one block at a time).
 */
export interface LinearAdapter {
  delta(weight: string, x: tf.Tensor2D, cols?: { start: number; size: number }): tf.Tensor2D | undefined;
}

/** A linear layer a LoRA adapter may target: its weight's name, PEFT module name and sizes. */
export interface LinearLayer {
  /** Parameter name of the weight ("model.layers.0.self_attn.q_proj.weight"). */
  weight: string;
  /** PEFT's target_modules name of the layer ("q_proj", "c_attn"). */
  module: string;
  inFeatures: number;
  outFeatures: number;
  /** The weight is stored [in, out] (GPT-2's Conv1D; PEFT's fan_in_fan_out) rather than torch.nn.Linear's [out, in]. */
  fanInFanOut: boolean;
}

export interface ForwardResult {
  logits: tf.Tensor3D; // [B, T, vocab]
  hidden: tf.Tensor3D; // [B, T, hiddenSize], after the final norm
  cache?: KVCache;
}

/**
 * A causal language model whose parameters carry Hugging Face names ("transformer.h.0.attn.c_attn.weight",
 * "model.layers.0.self_attn.q_proj.weight"). Callers read sizes from here, never from config keys.
 */
export interface CausalLM {
  readonly config: ModelConfig;
  readonly params: Map<string, tf.Variable>;
  /** Longest sequence the model takes (GPT-2 n_positions, Llama max_position_embeddings). */
  readonly contextLength: number;
  /** Width of the hidden states (what a reward head reads). */
  readonly hiddenSize: number;
  /** Rows of the output head (config vocab_size). */
  readonly vocabSize: number;
  /** LoRA adapters applied in forward (undefined: none, or switched off). */
  adapter?: LinearAdapter;
  forward(ids: tf.Tensor2D, opts?: ForwardOptions): ForwardResult;
  /** The final hidden states only, without the output head (reward models). */
  hiddenStates(ids: tf.Tensor2D, opts?: ForwardOptions): tf.Tensor3D;
  /** The linear layers LoRA may target, in parameter order. */
  linearLayers(): LinearLayer[];
  /** Parameter names → shapes this architecture expects for its config (HF names, HF layouts). */
  expectedShapes(): Map<string, number[]>;
  dispose(): void;
}

export function disposeCache(cache: KVCache | undefined): void {
  if (!cache) return;
  for (const l of cache.layers) {
    l.k.dispose();
    l.v.dispose();
  }
  cache.mask?.dispose();
}

/** Sizes of a config in one vocabulary, for listings and memory estimates. */
export interface ModelShape {
  layers: number;
  hiddenSize: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  intermediateSize: number;
  contextLength: number;
  vocabSize: number;
  tiedHead: boolean;
}

/**
 * Floats the tfjs gradient tape holds for one micro-batch of R rows × T tokens: what tf.memory() counts
 * at the end of the forward inside tf.variableGrads (every tensor handle, views included), fitted on
 * measured shapes of the family (src/ml/memory.ts has the formula):
 *   R·T·( layers·(hidden·C + intermediate·I + query·H·Dh + keyValue·KV·Dh + attention·H·T
 *                 [+ groupedAttention·H·T when KV < H])
 *         + vocab·V + outside·C + position·T )
 *   + lora·R·T·Σ over adapted linear layers (out + r)  +  parameter·(model parameters + V·C if the head is tied)
 * with C hidden size, I intermediate size, H / KV query / key-value heads, Dh head dim, V vocabulary.
 * Absent terms are 0.
 */
export interface TapeConstants {
  hidden: number;
  intermediate?: number;
  query?: number;
  keyValue?: number;
  attention: number;
  groupedAttention?: number;
  vocab: number;
  outside?: number;
  position?: number;
  /** per output unit (plus rank) of a LoRA-adapted layer: the adapter's x·Aᵀ and its product with B are kept */
  lora?: number;
  /** per parameter: the views of the weights the tape's matmuls and gathers saved (tf.memory() counts each; a tied embedding twice) */
  parameter?: number;
}

export interface ActivationModel {
  /** wasm, cpu, tensorflow, and native with ALIGNFLOW_FUSED=0. */
  tape: TapeConstants;
  /** The native backend with its fused kernels on (`kernel` registered): a smaller tape. */
  fused?: TapeConstants & { kernel: string };
}

/** A model family: one model file (gpt2.ts, llama.ts) exports one, and registry.ts lists it. */
export interface ModelFamily {
  modelType: string;
  /** transformers' class of the causal LM, and of the reward model (sequence classification, num_labels 1). */
  architecture: string;
  rewardArchitecture: string;
  /** Fills transformers' defaults for keys a config may omit. */
  withDefaults(raw: Record<string, unknown>): ModelConfig;
  /** Throws an 'input' AlignflowError naming `file` and the field. */
  validate(config: ModelConfig, file: string): void;
  /** Parameter names → shapes; `head: false` leaves out an untied output head (reward bodies). */
  paramShapes(config: ModelConfig, opts?: { head?: boolean }): Map<string, number[]>;
  /** A stored tensor name → the parameter name (GPT-2 checkpoints may omit the "transformer." prefix). */
  canonicalName(stored: string): string;
  /** Stored tensors the model does not use (buffers). */
  ignoredTensor(name: string): boolean;
  /** With tied embeddings a checkpoint may still carry the head: its name and the parameter it must equal. */
  tiedHead(config: ModelConfig): { head: string; embedding: string } | undefined;
  shape(config: ModelConfig): ModelShape;
  /** What its gradient tape holds for a micro-batch, fitted per family (src/ml/memory.ts uses it). */
  activationModel: ActivationModel;
  /** Its layers' 2-D weights are stored [in, out] (GPT-2's Conv1D) rather than torch.nn.Linear's [out, in]. */
  weightsInOut?: boolean;
  /** The config keys `models init --config` and a pipeline's `model.fresh` may set (besides model_type). */
  initKeys: z.ZodRawShape;
  fromWeights(config: ModelConfig, weights: Map<string, tf.Tensor>, opts?: { head?: boolean }): CausalLM;
  create(config: ModelConfig, seed: number): CausalLM;
}

