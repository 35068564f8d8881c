// model_type (config.json) → architecture. Add a family (e.g. llama: RMSNorm, rotary positions,
// SwiGLU, grouped-query attention) by implementing CausalLM and registering it here.
import type * as tf from '@tensorflow/tfjs';
import type { CausalLM, ModelConfig } from './types.js';
import { createGpt2, gpt2ConfigDefaults, gpt2ParamShapes, Gpt2Model, validateGpt2Config } from './gpt2.js';
import type { Gpt2Config } from './types.js';

export interface ModelFamily {
  modelType: string;
  /** Fills transformers' defaults for keys a config may omit. */
  withDefaults(raw: Record<string, unknown>): ModelConfig;
  /** Throws an 'input' AlignflowError naming `file` and the field. */
  validate(config: ModelConfig, file: string): void;
  paramShapes(config: ModelConfig): Map<string, number[]>;
  /** Parameters stored in checkpoints that the model does not use (buffers, tied copies). */
  ignoredTensor(name: string): boolean;
  fromWeights(config: ModelConfig, weights: Map<string, tf.Tensor>): CausalLM;
  create(config: ModelConfig, seed: number): CausalLM;
}

const gpt2: ModelFamily = {
  modelType: 'gpt2',
  withDefaults: (raw) => gpt2ConfigDefaults(raw as Partial<Gpt2Config>),
  validate: (c, file) => validateGpt2Config(c as Gpt2Config, file),
  paramShapes: (c) => gpt2ParamShapes(c as Gpt2Config),
  // older checkpoints carry the causal-mask buffers attn.bias [1,1,n,n] and attn.masked_bias
  ignoredTensor: (n) => /^transformer\.h\.\d+\.attn\.(bias|masked_bias)$/.test(n),
  fromWeights: (c, w) => new Gpt2Model(c as Gpt2Config, w),
  create: (c, seed) => createGpt2(c as Gpt2Config, seed),
};

const FAMILIES = new Map<string, ModelFamily>([[gpt2.modelType, gpt2]]);

export function modelFamily(modelType: string): ModelFamily | undefined {
  return FAMILIES.get(modelType);
}

export function knownModelTypes(): string[] {
  return [...FAMILIES.keys()];
}

/** Named starting configs for `models init --preset`. */
export const PRESETS: Record<string, Record<string, unknown>> = {
  // the reference model of the benchmarks (issue 3): vocab 512, 128 wide, 4 layers, 4 heads, 128 context
  'gpt2-tiny': { model_type: 'gpt2', vocab_size: 512, n_positions: 128, n_embd: 128, n_layer: 4, n_head: 4 },
  'gpt2-micro': { model_type: 'gpt2', vocab_size: 260, n_positions: 64, n_embd: 32, n_layer: 2, n_head: 2 },
  'gpt2-small': { model_type: 'gpt2', vocab_size: 50257, n_positions: 1024, n_embd: 768, n_layer: 12, n_head: 12 },
};
