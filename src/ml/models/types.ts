import type * as tf from '@tensorflow/tfjs';


/** config.json keys, exactly as transformers writes them for GPT-2. */
export interface Gpt2Config {
  model_type: 'gpt2';
  architectures?: string[];
  vocab_size: number;
  n_positions: number;
  n_ctx?: number;
  n_embd: number;
  n_layer: number;
  n_head: number;
  n_inner?: number | null;
  activation_function: string; // "gelu_new" (tanh approximation)
  layer_norm_epsilon: number;
  resid_pdrop?: number;
  embd_pdrop?: number;
  attn_pdrop?: number;
  initializer_range?: number;
  scale_attn_weights?: boolean;
  bos_token_id?: number;
  eos_token_id?: number;
  pad_token_id?: number | null;
  tie_word_embeddings?: boolean;
  torch_dtype?: string;
  [key: string]: unknown;
}

export type ModelConfig = Gpt2Config; // other families (llama, ...) join this union

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

export interface ForwardResult {
  logits: tf.Tensor3D; // [B, T, vocab]
  hidden: tf.Tensor3D; // [B, T, n_embd], after the final layer norm
  cache?: KVCache;
}

/** A causal language model whose parameters carry Hugging Face names ("transformer.h.0.attn.c_attn.weight"). */
export interface CausalLM {
  readonly config: ModelConfig;
  readonly params: Map<string, tf.Variable>;
  forward(ids: tf.Tensor2D, opts?: ForwardOptions): ForwardResult;
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
