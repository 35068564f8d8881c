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
}

export interface ForwardOptions {
  /** [B, T], 1 for real tokens and 0 for padding. */
  attentionMask?: tf.Tensor2D;
  /** [B, T] positions; default 0..T-1 (offset by the cache length). */
  positionIds?: tf.Tensor2D;
  cache?: KVCache;
  /** Return the updated cache (generation). */
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
  dispose(): void;
}
