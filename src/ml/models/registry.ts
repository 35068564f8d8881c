// model_type (config.json) → family. A family is one model file (gpt2.ts, llama.ts) that exports its
// ModelFamily, plus an entry here; nothing outside those files names a family's config keys or
// weight names. Callers read sizes from CausalLM (contextLength, hiddenSize, vocabSize) or from the
// family (config only).
import type { ModelConfig, ModelFamily } from './types.js';
import { GPT2_PRESETS, gpt2Family } from './gpt2.js';
import { LLAMA_PRESETS, llamaFamily } from './llama.js';

export type { ModelFamily, ModelShape } from './types.js';

const FAMILIES = new Map<string, ModelFamily>([gpt2Family, ...(['llama', 'mistral', 'qwen2', 'qwen3'] as const).map(llamaFamily)].map((f) => [f.modelType, f]));

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

/** Named starting configs for `models init --preset`, a pipeline's `model.fresh.preset` and `models show`. */
export const PRESETS: Record<string, Record<string, unknown>> = { ...GPT2_PRESETS, ...LLAMA_PRESETS };
