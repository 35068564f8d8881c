// A freshly initialised model from a preset and/or config keys: the one implementation behind
// `alignflow models init` and a pipeline's `model: { fresh: … }` (the model_init stage).
import { z } from 'zod';
import { AlignflowError, type InputIssue } from '../../errors.js';
import { initBackend } from '../backend.js';
import type { TextTokenizer } from '../tokenizer/tokenizer.js';
import { knownModelTypes, modelFamily, PRESETS, type ModelFamily } from './registry.js';
import type { CausalLM, ModelConfig } from './types.js';

const COMMON_KEYS: z.ZodRawShape = {
  model_type: z.string().optional(),
  vocab_size: z.number().int().positive().optional(),
  bos_token_id: z.number().int().nonnegative().nullable().optional(),
  eos_token_id: z.union([z.number().int().nonnegative(), z.array(z.number().int().nonnegative())]).nullable().optional(),
  pad_token_id: z.number().int().nonnegative().nullable().optional(),
};

/**
 * Merges a preset (if named) with explicit keys and checks every key against the family's init keys;
 * `where` names the source in errors ("--config", "model.fresh"). model_type defaults to gpt2.
 */
export function resolveInitConfig(preset: string | undefined, keys: Record<string, unknown>, where: string): { raw: Record<string, unknown>; family: ModelFamily } {
  let raw: Record<string, unknown> = {};
  if (preset !== undefined) {
    const p = PRESETS[preset];
    if (!p) throw new AlignflowError('config', `${where}: unknown preset "${preset}" (${Object.keys(PRESETS).join(', ')})`);
    raw = { ...p };
  }
  raw = { ...raw, ...Object.fromEntries(Object.entries(keys).filter(([, v]) => v !== undefined)) };
  raw.model_type ??= 'gpt2';
  const family = modelFamily(String(raw.model_type));
  if (!family) throw new AlignflowError('config', `${where}: unknown model_type "${String(raw.model_type)}" (alignflow supports ${knownModelTypes().join(', ')})`);
  const issues = initKeyIssues(raw, where);
  if (issues.length) throw new AlignflowError('config', `${where}: ${issues.map((i) => `${i.field}: ${i.reason}`).join('; ')}`, { issues });
  return { raw, family };
}

/** Problems with config keys for a fresh model of raw.model_type (unknown keys, wrong types). */
export function initKeyIssues(raw: Record<string, unknown>, where: string): InputIssue[] {
  const family = modelFamily(String(raw.model_type ?? 'gpt2'));
  if (!family) return [{ file: where, field: 'model_type', reason: `unknown model_type "${String(raw.model_type)}" (alignflow supports ${knownModelTypes().join(', ')})` }];
  const schema = z.strictObject({ ...COMMON_KEYS, ...family.initKeys });
  const r = schema.safeParse(raw);
  if (r.success) return [];
  return r.error.issues.map((i) => {
    const keys = (i as { keys?: string[] }).keys;
    const field = keys?.length ? keys.join(', ') : i.path.join('.');
    const reason = i.code === 'unrecognized_keys' ? `not a ${family.modelType} config key (known: ${Object.keys({ ...COMMON_KEYS, ...family.initKeys }).join(', ')})` : i.message;
    return { file: where, field, reason };
  });
}

/**
 * Creates the model: vocab_size from the tokenizer when one is given (it must fit), bos/eos ids from
 * it, transformers' defaults for the rest, then the family's validation and initialisation.
 */
export async function initModel(
  raw: Record<string, unknown>,
  family: ModelFamily,
  o: { tokenizer?: TextTokenizer; seed: number; where: string; vocabFromTokenizer?: boolean },
): Promise<{ model: CausalLM; config: ModelConfig }> {
  const r = { ...raw };
  const tok = o.tokenizer;
  if (tok) {
    if (o.vocabFromTokenizer) r.vocab_size = tok.vocabSize;
    else if (r.vocab_size === undefined) r.vocab_size = tok.vocabSize;
    if (tok.vocabSize > Number(r.vocab_size)) throw new AlignflowError('config', `${o.where}: the tokenizer has ${tok.vocabSize} ids but vocab_size is ${String(r.vocab_size)}`);
    if (tok.eosTokenId !== undefined) {
      r.bos_token_id ??= tok.bosTokenId ?? tok.eosTokenId;
      r.eos_token_id ??= tok.eosTokenId;
    }
  }
  const config = family.withDefaults(r);
  family.validate(config, o.where);
  await initBackend();
  return { model: family.create(config, o.seed), config };
}

/** The context length a config will have (for a tokenizer's model_max_length before the model exists). */
export function initContextLength(raw: Record<string, unknown>, family: ModelFamily): number {
  return family.shape(family.withDefaults({ vocab_size: 1, ...raw })).contextLength;
}
