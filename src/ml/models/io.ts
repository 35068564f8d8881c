// Model directories in Hugging Face layout: config.json, model.safetensors, generation_config.json,
// tokenizer.json, tokenizer_config.json, special_tokens_map.json. What we write loads in transformers
// (GPT2LMHeadModel.from_pretrained) unchanged; what transformers writes (fp32/fp16/bf16) loads here.
import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { AlignflowError, type InputIssue } from '../../errors.js';
import { initBackend } from '../backend.js';
import { readSafetensors, serializeSafetensors, type NamedTensor, type SafetensorsDtype } from '../safetensors.js';
import { loadTokenizerDir, saveTokenizerDir, type TextTokenizer } from '../tokenizer/tokenizer.js';
import { knownModelTypes, modelFamily, type ModelFamily } from './registry.js';
import type { CausalLM, ModelConfig } from './types.js';

export const TRANSFORMERS_VERSION = '4.46.3'; // the version whose layout we mirror

export interface LoadedModel {
  model: CausalLM;
  tokenizer?: TextTokenizer;
  config: ModelConfig;
  dir: string;
  /** dtype of the stored weights (F32/F16/BF16); always float32 in memory. */
  storedDtype: string;
}

function inputErr(file: string, msg: string, issues: InputIssue[] = [{ file, reason: msg }]): AlignflowError {
  return new AlignflowError('input', `${file}: ${msg}`, { issues });
}

/** Reads and validates config.json: known model_type, sane sizes; fills transformers' defaults. */
export function readModelConfig(dir: string): { config: ModelConfig; family: ModelFamily } {
  const file = path.join(dir, 'config.json');
  if (!fs.existsSync(file)) throw new AlignflowError('not_found', `${file}: missing (not a model directory?)`);
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw inputErr(file, `invalid JSON (${(e as Error).message})`);
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw inputErr(file, 'not a JSON object');
  const mt = (raw as Record<string, unknown>).model_type;
  const family = typeof mt === 'string' ? modelFamily(mt) : undefined;
  if (!family) {
    throw inputErr(file, `unknown architecture: model_type ${JSON.stringify(mt)} (alignflow supports ${knownModelTypes().join(', ')})`, [
      { file, field: 'model_type', reason: `unknown model_type ${JSON.stringify(mt)}` },
    ]);
  }
  const config = family.withDefaults(raw as Record<string, unknown>);
  family.validate(config, file);
  return { config, family };
}

/**
 * Checks stored tensors against the architecture. Accepts names with or without the "transformer."
 * prefix and an lm_head.weight equal to wte (tied); ignores known buffers. Returns HF-named tensors.
 */
export function matchWeights(
  family: ModelFamily,
  config: ModelConfig,
  stored: Map<string, NamedTensor>,
  file: string,
): Map<string, NamedTensor> {
  const expected = family.paramShapes(config);
  const out = new Map<string, NamedTensor>();
  const issues: InputIssue[] = [];
  let lmHead: NamedTensor | undefined;
  for (const [rawName, t] of stored) {
    if (rawName === 'lm_head.weight') {
      lmHead = t;
      continue;
    }
    const name = expected.has(rawName) || rawName.startsWith('transformer.') ? rawName : `transformer.${rawName}`;
    if (family.ignoredTensor(name)) continue;
    const shape = expected.get(name);
    if (!shape) {
      issues.push({ file, field: rawName, reason: 'unexpected tensor (not part of this architecture)' });
      continue;
    }
    if (shape.join() !== t.shape.join()) {
      issues.push({ file, field: rawName, reason: `shape [${t.shape.join(', ')}] disagrees with config.json (expected [${shape.join(', ')}])` });
      continue;
    }
    out.set(name, t);
  }
  for (const name of expected.keys()) {
    if (!out.has(name) && !issues.some((i) => i.field === name || i.field === name.replace(/^transformer\./, ''))) {
      issues.push({ file, field: name, reason: 'missing tensor' });
    }
  }
  if (lmHead && issues.length === 0) {
    const wte = out.get('transformer.wte.weight')!;
    const same = lmHead.shape.join() === wte.shape.join() && lmHead.data.every((v, i) => v === wte.data[i]);
    if (!same) issues.push({ file, field: 'lm_head.weight', reason: 'differs from transformer.wte.weight; alignflow supports only tied output heads' });
  }
  if (issues.length) {
    const first = issues.slice(0, 3).map((i) => `${i.field}: ${i.reason}`).join('; ');
    throw new AlignflowError('input', `${file}: ${issues.length} tensor problem(s): ${first}${issues.length > 3 ? '; …' : ''}`, { issues });
  }
  return out;
}

/** Loads and validates a model directory (config, weights, tokenizer when present). */
export async function loadModelDir(dir: string, opts: { requireTokenizer?: boolean } = {}): Promise<LoadedModel> {
  await initBackend();
  const { config, family } = readModelConfig(dir);
  const wfile = path.join(dir, 'model.safetensors');
  if (!fs.existsSync(wfile)) {
    const sharded = fs.existsSync(path.join(dir, 'model.safetensors.index.json'));
    throw new AlignflowError('not_found', `${wfile}: missing${sharded ? ' (sharded checkpoints are not supported)' : ''}`);
  }
  const st = readSafetensors(wfile);
  const dtypes = new Set([...st.tensors.values()].map((t) => t.dtype));
  const weights = matchWeights(family, config, st.tensors, wfile);

  let tokenizer: TextTokenizer | undefined;
  const tfile = path.join(dir, 'tokenizer.json');
  if (fs.existsSync(tfile)) {
    tokenizer = loadTokenizerDir(dir);
    const vs = (config as { vocab_size: number }).vocab_size;
    if (tokenizer.vocabSize > vs) {
      throw new AlignflowError('input', `${tfile}: the tokenizer produces ids up to ${tokenizer.vocabSize - 1} but config.json vocab_size is ${vs}`, {
        issues: [{ file: tfile, field: 'vocab_size', reason: `tokenizer vocabulary ${tokenizer.vocabSize} > model vocab_size ${vs}` }],
      });
    }
  } else if (opts.requireTokenizer) {
    throw new AlignflowError('not_found', `${tfile}: missing`);
  }

  const tensors = new Map<string, tf.Tensor>();
  for (const [name, t] of weights) tensors.set(name, tf.tensor(t.data, t.shape, 'float32'));
  try {
    const model = family.fromWeights(config, tensors);
    return { model, tokenizer, config, dir, storedDtype: [...dtypes].join('+') };
  } finally {
    for (const t of tensors.values()) t.dispose();
  }
}

/** config.json as transformers writes it: keys sorted, architectures, torch_dtype, version. */
export function configJson(config: ModelConfig, dtype: SafetensorsDtype = 'F32'): string {
  const torchDtype = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' }[dtype];
  const c: Record<string, unknown> = { ...config, architectures: config.architectures ?? ['GPT2LMHeadModel'], torch_dtype: torchDtype, transformers_version: TRANSFORMERS_VERSION };
  const sorted = Object.fromEntries(Object.keys(c).sort().map((k) => [k, c[k]]));
  return JSON.stringify(sorted, null, 2) + '\n';
}

/** The model's weights as HF-named float32 arrays. */
export function modelTensors(model: CausalLM): Map<string, NamedTensor> {
  const m = new Map<string, NamedTensor>();
  for (const [name, v] of model.params) m.set(name, { shape: v.shape.slice(), data: v.dataSync() as Float32Array });
  return m;
}

/**
 * Writes a model directory atomically: into a temporary sibling, then renamed onto `dir`
 * (which must not exist or be empty). Weights are float32 unless `dtype` says otherwise.
 */
export function saveModelDir(model: CausalLM, tokenizer: TextTokenizer | undefined, dir: string, opts: { dtype?: SafetensorsDtype } = {}): void {
  const dtype = opts.dtype ?? 'F32';
  if (fs.existsSync(dir) && fs.readdirSync(dir).length > 0) throw new AlignflowError('usage', `${dir}: exists and is not empty`);
  const vs = (model.config as { vocab_size: number }).vocab_size;
  if (tokenizer && tokenizer.vocabSize > vs) {
    throw new AlignflowError('input', `tokenizer vocabulary ${tokenizer.vocabSize} is larger than the model's vocab_size ${vs}`);
  }
  const parent = path.dirname(path.resolve(dir));
  fs.mkdirSync(parent, { recursive: true });
  const tmp = fs.mkdtempSync(path.join(parent, `.${path.basename(dir)}.tmp-`));
  try {
    fs.writeFileSync(path.join(tmp, 'config.json'), configJson(model.config, dtype));
    const c = model.config as { bos_token_id?: number; eos_token_id?: number };
    const gen = { _from_model_config: true, bos_token_id: c.bos_token_id, eos_token_id: c.eos_token_id, transformers_version: TRANSFORMERS_VERSION };
    fs.writeFileSync(path.join(tmp, 'generation_config.json'), JSON.stringify(gen, null, 2) + '\n');
    fs.writeFileSync(path.join(tmp, 'model.safetensors'), serializeSafetensors(modelTensors(model), { dtype, metadata: { format: 'pt' } }));
    if (tokenizer) saveTokenizerDir(tokenizer, tmp);
    if (fs.existsSync(dir)) fs.rmdirSync(dir);
    fs.renameSync(tmp, dir);
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}
