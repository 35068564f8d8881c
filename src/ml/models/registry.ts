// model_type (config.json) → family. A family is one model file (gpt2.ts, llama.ts) plus an entry
// here; nothing outside those files names a family's config keys or weight names. Callers read
// sizes from CausalLM (contextLength, hiddenSize, vocabSize) or from the family (config only).
import type * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import type { CausalLM, ModelConfig } from './types.js';
import { createGpt2, gpt2ConfigDefaults, gpt2ParamShapes, Gpt2Model, validateGpt2Config } from './gpt2.js';
import { createLlama, LLAMA_TRAITS, llamaConfigDefaults, llamaHeadDim, llamaParamShapes, LlamaModel, validateLlamaConfig, type LlamaConfig, type LlamaModelType } from './llama.js';
import type { Gpt2Config } from './types.js';

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
  /** The config keys `models init --config` and a pipeline's `model.fresh` may set (besides model_type). */
  initKeys: z.ZodRawShape;
  fromWeights(config: ModelConfig, weights: Map<string, tf.Tensor>, opts?: { head?: boolean }): CausalLM;
  create(config: ModelConfig, seed: number): CausalLM;
}

const pos = () => z.number().int().positive().optional();
const prob = () => z.number().min(0).max(1).optional();

const gpt2: ModelFamily = {
  modelType: 'gpt2',
  architecture: 'GPT2LMHeadModel',
  rewardArchitecture: 'GPT2ForSequenceClassification',
  withDefaults: (raw) => gpt2ConfigDefaults(raw as Partial<Gpt2Config>),
  validate: (c, file) => validateGpt2Config(c as Gpt2Config, file),
  paramShapes: (c) => gpt2ParamShapes(c as Gpt2Config),
  canonicalName: (n) => (n.startsWith('transformer.') || n === 'lm_head.weight' ? n : `transformer.${n}`),
  // older checkpoints carry the causal-mask buffers attn.bias [1,1,n,n] and attn.masked_bias
  ignoredTensor: (n) => /^transformer\.h\.\d+\.attn\.(bias|masked_bias)$/.test(n),
  tiedHead: () => ({ head: 'lm_head.weight', embedding: 'transformer.wte.weight' }),
  shape: (raw) => {
    const c = raw as Gpt2Config;
    return { layers: c.n_layer, hiddenSize: c.n_embd, heads: c.n_head, kvHeads: c.n_head, headDim: c.n_embd / c.n_head, intermediateSize: c.n_inner ?? 4 * c.n_embd, contextLength: c.n_positions, vocabSize: c.vocab_size, tiedHead: true };
  },
  initKeys: {
    n_layer: pos(),
    n_head: pos(),
    n_embd: pos(),
    n_positions: pos(),
    n_inner: z.number().int().positive().nullable().optional(),
    activation_function: z.string().optional(),
    resid_pdrop: prob(),
    embd_pdrop: prob(),
    attn_pdrop: prob(),
    layer_norm_epsilon: z.number().positive().optional(),
    initializer_range: z.number().positive().optional(),
  },
  fromWeights: (c, w) => new Gpt2Model(c as Gpt2Config, w),
  create: (c, seed) => createGpt2(c as Gpt2Config, seed),
};

const llamaInitKeys: z.ZodRawShape = {
  hidden_size: pos(),
  intermediate_size: pos(),
  num_hidden_layers: pos(),
  num_attention_heads: pos(),
  num_key_value_heads: pos(),
  head_dim: pos(),
  max_position_embeddings: pos(),
  rms_norm_eps: z.number().positive().optional(),
  rope_theta: z.number().positive().optional(),
  rope_scaling: z.record(z.string(), z.unknown()).nullable().optional(),
  rope_parameters: z.record(z.string(), z.unknown()).nullable().optional(),
  tie_word_embeddings: z.boolean().optional(),
  attention_bias: z.boolean().optional(),
  mlp_bias: z.boolean().optional(),
  sliding_window: z.number().int().positive().nullable().optional(),
  initializer_range: z.number().positive().optional(),
};

function llamaFamily(modelType: LlamaModelType): ModelFamily {
  const t = LLAMA_TRAITS[modelType];
  return {
    modelType,
    architecture: t.architecture,
    rewardArchitecture: t.rewardArchitecture,
    withDefaults: (raw) => llamaConfigDefaults(raw),
    validate: (c, file) => validateLlamaConfig(c as LlamaConfig, file),
    paramShapes: (c, o) => llamaParamShapes(c as LlamaConfig, o),
    canonicalName: (n) => n,
    ignoredTensor: (n) => /\.rotary_emb\.inv_freq$/.test(n),
    tiedHead: (c) => (c.tie_word_embeddings === false ? undefined : { head: 'lm_head.weight', embedding: 'model.embed_tokens.weight' }),
    shape: (raw) => {
      const c = raw as LlamaConfig;
      return {
        layers: c.num_hidden_layers,
        hiddenSize: c.hidden_size,
        heads: c.num_attention_heads,
        kvHeads: c.num_key_value_heads,
        headDim: llamaHeadDim(c),
        intermediateSize: c.intermediate_size,
        contextLength: c.max_position_embeddings,
        vocabSize: c.vocab_size,
        tiedHead: c.tie_word_embeddings !== false,
      };
    },
    initKeys: llamaInitKeys,
    fromWeights: (c, w, o) => new LlamaModel(c as LlamaConfig, w, o),
    create: (c, seed) => createLlama(c, seed),
  };
}

const FAMILIES = new Map<string, ModelFamily>([gpt2, ...(['llama', 'mistral', 'qwen2', 'qwen3'] as const).map(llamaFamily)].map((f) => [f.modelType, f]));

export function modelFamily(modelType: string): ModelFamily | undefined {
  return FAMILIES.get(modelType);
}

export function knownModelTypes(): string[] {
  return [...FAMILIES.keys()];
}

/** The family of a loaded model. */
export function familyOf(config: ModelConfig): ModelFamily {
  const f = FAMILIES.get(config.model_type);
  if (!f) throw new Error(`no model family for model_type ${config.model_type}`);
  return f;
}

/** Named starting configs for `models init --preset` and a pipeline's `model.fresh.preset`. */
export const PRESETS: Record<string, Record<string, unknown>> = {
  // the reference model of the benchmarks (issue 3): vocab 512, 128 wide, 4 layers, 4 heads, 128 context
  'gpt2-tiny': { model_type: 'gpt2', vocab_size: 512, n_positions: 128, n_embd: 128, n_layer: 4, n_head: 4 },
  'gpt2-micro': { model_type: 'gpt2', vocab_size: 260, n_positions: 64, n_embd: 32, n_layer: 2, n_head: 2 },
  'gpt2-small': { model_type: 'gpt2', vocab_size: 50257, n_positions: 1024, n_embd: 768, n_layer: 12, n_head: 12 },
  // a small random Llama for examples and tests (SmolLM2's layout: tied head, GQA, rope_theta 1e5)
  'llama-tiny': { model_type: 'llama', vocab_size: 512, hidden_size: 128, intermediate_size: 384, num_hidden_layers: 4, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 256, rms_norm_eps: 1e-5, rope_theta: 100000, tie_word_embeddings: true },
  // the shapes of real checkpoints (config.json of HuggingFaceTB/SmolLM2-135M/360M-Instruct, Qwen/Qwen2.5-0.5B-Instruct), for estimates
  'smollm2-135m': { model_type: 'llama', vocab_size: 49152, hidden_size: 576, intermediate_size: 1536, num_hidden_layers: 30, num_attention_heads: 9, num_key_value_heads: 3, max_position_embeddings: 8192, rms_norm_eps: 1e-5, rope_theta: 100000, tie_word_embeddings: true, bos_token_id: 1, eos_token_id: 2 },
  'smollm2-360m': { model_type: 'llama', vocab_size: 49152, hidden_size: 960, intermediate_size: 2560, num_hidden_layers: 32, num_attention_heads: 15, num_key_value_heads: 5, max_position_embeddings: 8192, rms_norm_eps: 1e-5, rope_theta: 100000, tie_word_embeddings: true, bos_token_id: 1, eos_token_id: 2 },
  'qwen2.5-0.5b': { model_type: 'qwen2', vocab_size: 151936, hidden_size: 896, intermediate_size: 4864, num_hidden_layers: 24, num_attention_heads: 14, num_key_value_heads: 2, max_position_embeddings: 32768, rms_norm_eps: 1e-6, rope_theta: 1000000, tie_word_embeddings: true, bos_token_id: 151643, eos_token_id: 151645 },
};
