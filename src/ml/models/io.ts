// Model directories in Hugging Face layout: config.json, model.safetensors, generation_config.json,
// tokenizer.json, tokenizer_config.json, special_tokens_map.json. What we write loads in transformers
// (AutoModelForCausalLM.from_pretrained) unchanged; what transformers writes (fp32/fp16/bf16) loads here.
import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { AlignflowError, type InputIssue } from '../../errors.js';
import { jsonSyntaxReason } from '../../util/json-error.js';
import { initBackend } from '../backend.js';
import { SafetensorsReader, serializeSafetensors, type NamedTensor, type SafetensorsDtype } from '../safetensors.js';
import { loadTokenizerDir, saveTokenizerDir, type TextTokenizer } from '../tokenizer/tokenizer.js';
import { familyOf, knownModelTypes, modelFamily, type ModelFamily } from './registry.js';
import type { CausalLM, ModelConfig } from './types.js';
import { ADAPTER_CONFIG, LoraAdapter, loadAdapterDir, writeAdapterFiles } from '../lora.js';

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
    throw inputErr(file, `invalid JSON (${jsonSyntaxReason(e)})`);
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

/** The tensors of a model directory: model.safetensors, or the shards named by model.safetensors.index.json. */
export class CheckpointReader {
  /** Stored tensor name → its shard. */
  readonly tensors = new Map<string, { reader: SafetensorsReader; shape: number[]; dtype: string }>();
  private readonly readers: SafetensorsReader[] = [];
  /** The file named in errors (model.safetensors or the index). */
  readonly file: string;

  constructor(dir: string) {
    const single = path.join(dir, 'model.safetensors');
    const index = path.join(dir, 'model.safetensors.index.json');
    if (fs.existsSync(single)) {
      this.file = single;
      this.add(new SafetensorsReader(single));
      return;
    }
    if (!fs.existsSync(index)) {
      const bin = ['pytorch_model.bin', 'pytorch_model.bin.index.json'].find((f) => fs.existsSync(path.join(dir, f)));
      throw new AlignflowError('not_found', `${single}: missing${bin ? ` (the directory has ${bin}; convert it with transformers: AutoModelForCausalLM.from_pretrained(dir).save_pretrained(out), which writes safetensors)` : ''}`);
    }
    this.file = index;
    let map: Record<string, unknown>;
    try {
      map = (JSON.parse(fs.readFileSync(index, 'utf8')) as { weight_map?: Record<string, unknown> }).weight_map ?? {};
    } catch (e) {
      throw inputErr(index, `invalid JSON (${jsonSyntaxReason(e)})`);
    }
    const shards = new Map<string, string[]>();
    for (const [name, f] of Object.entries(map)) {
      if (typeof f !== 'string' || f.includes('/') || f.includes('\\')) throw inputErr(index, `weight_map: "${name}" names ${JSON.stringify(f)}, not a file of this directory`, [{ file: index, field: `weight_map.${name}`, reason: 'not a file name' }]);
      shards.set(f, [...(shards.get(f) ?? []), name]);
    }
    if (shards.size === 0) throw inputErr(index, 'weight_map is empty');
    try {
      for (const [f, names] of shards) {
        const r = new SafetensorsReader(path.join(dir, f));
        this.add(r);
        for (const n of names) if (!r.entries.has(n)) throw inputErr(index, `weight_map puts "${n}" in ${f}, which has no such tensor`, [{ file: index, field: `weight_map.${n}`, reason: `not in ${f}` }]);
      }
    } catch (e) {
      this.close();
      throw e;
    }
  }

  private add(r: SafetensorsReader): void {
    this.readers.push(r);
    for (const [name, e] of r.entries) this.tensors.set(name, { reader: r, shape: e.shape, dtype: e.dtype });
  }

  get dtypes(): string[] {
    return [...new Set([...this.tensors.values()].map((t) => t.dtype))];
  }

  read(name: string): Float32Array {
    const t = this.tensors.get(name);
    if (!t) throw new AlignflowError('internal', `${this.file}: no tensor ${name}`);
    return t.reader.read(name);
  }

  close(): void {
    for (const r of this.readers.splice(0)) r.close();
  }
}

/**
 * Checks stored tensors against the architecture and maps each parameter to its stored name
 * (the family's weight-name mapping; a tied head stored anyway must equal the embedding). `head:
 * false` is the sequence-classification body (no untied lm_head); `extra` names tensors that
 * belong to a wrapper (score.weight) and are left to it.
 */
export function matchWeights(
  family: ModelFamily,
  config: ModelConfig,
  stored: Map<string, { shape: number[] }>,
  file: string,
  opts: { head?: boolean; extra?: string[]; read?: (name: string) => Float32Array } = {},
): Map<string, string> {
  const expected = family.paramShapes(config, { head: opts.head });
  const tied = family.tiedHead(config);
  const out = new Map<string, string>();
  const issues: InputIssue[] = [];
  let tiedCopy: string | undefined;
  for (const [rawName, t] of stored) {
    if (opts.extra?.includes(rawName)) continue;
    const name = family.canonicalName(rawName);
    if (family.ignoredTensor(name)) continue;
    if (tied && name === tied.head && !expected.has(name)) {
      tiedCopy = rawName;
      continue;
    }
    const shape = expected.get(name);
    if (!shape) {
      issues.push({ file, field: rawName, reason: opts.head === false && name === 'lm_head.weight' ? 'a reward model (sequence classification) has no lm_head' : 'unexpected tensor (not part of this architecture)' });
      continue;
    }
    if (shape.join() !== t.shape.join()) {
      issues.push({ file, field: rawName, reason: `shape [${t.shape.join(', ')}] disagrees with config.json (expected [${shape.join(', ')}])` });
      continue;
    }
    out.set(name, rawName);
  }
  for (const name of expected.keys()) {
    if (!out.has(name) && !issues.some((i) => i.field !== undefined && family.canonicalName(i.field) === name)) {
      issues.push({ file, field: name, reason: name === 'lm_head.weight' ? 'missing tensor (config.json says tie_word_embeddings false)' : 'missing tensor' });
    }
  }
  if (tiedCopy && tied && issues.length === 0 && opts.read) {
    const head = opts.read(tiedCopy);
    const emb = opts.read(out.get(tied.embedding)!);
    const same = head.length === emb.length && head.every((v, i) => v === emb[i]);
    if (!same) issues.push({ file, field: tiedCopy, reason: `differs from ${tied.embedding} although config.json ties the embeddings (set tie_word_embeddings false for an untied head)` });
  }
  if (issues.length) {
    const first = issues.slice(0, 3).map((i) => `${i.field}: ${i.reason}`).join('; ');
    throw new AlignflowError('input', `${file}: ${issues.length} tensor problem(s): ${first}${issues.length > 3 ? '; …' : ''}`, { issues });
  }
  return out;
}

/** Reads the matched tensors one at a time into tfjs tensors (no second host copy of the checkpoint). */
export function readWeights(reader: CheckpointReader, mapping: Map<string, string>): Map<string, tf.Tensor> {
  const tensors = new Map<string, tf.Tensor>();
  try {
    for (const [name, stored] of mapping) tensors.set(name, tf.tensor(reader.read(stored), reader.tensors.get(stored)!.shape, 'float32'));
  } catch (e) {
    for (const t of tensors.values()) t.dispose();
    throw e;
  }
  return tensors;
}

/** Loads and validates a model directory (config, weights, tokenizer when present). */
export async function loadModelDir(dir: string, opts: { requireTokenizer?: boolean } = {}): Promise<LoadedModel> {
  await initBackend();
  const { config, family } = readModelConfig(dir);
  const reader = new CheckpointReader(dir);
  try {
    const mapping = matchWeights(family, config, reader.tensors, reader.file, { read: (n) => reader.read(n) });
    const tokenizer = loadDirTokenizer(dir, config, opts);
    const tensors = readWeights(reader, mapping);
    try {
      const model = family.fromWeights(config, tensors);
      // a LoRA model directory: the base's files plus the adapter, which is attached
      if (fs.existsSync(path.join(dir, ADAPTER_CONFIG))) {
        try {
          loadAdapterDir(dir, model);
        } catch (e) {
          model.dispose();
          throw e;
        }
      }
      return { model, tokenizer, config, dir, storedDtype: reader.dtypes.join('+') };
    } finally {
      for (const t of tensors.values()) t.dispose();
    }
  } finally {
    reader.close();
  }
}

/** The directory's tokenizer (checked against vocab_size), if it has a tokenizer.json. */
export function loadDirTokenizer(dir: string, config: ModelConfig, opts: { requireTokenizer?: boolean } = {}): TextTokenizer | undefined {
  const tfile = path.join(dir, 'tokenizer.json');
  if (!fs.existsSync(tfile)) {
    if (opts.requireTokenizer) throw new AlignflowError('not_found', `${tfile}: missing`);
    return undefined;
  }
  const tokenizer = loadTokenizerDir(dir);
  if (tokenizer.vocabSize > config.vocab_size) {
    throw new AlignflowError('input', `${tfile}: the tokenizer produces ids up to ${tokenizer.vocabSize - 1} but config.json vocab_size is ${config.vocab_size}`, {
      issues: [{ file: tfile, field: 'vocab_size', reason: `tokenizer vocabulary ${tokenizer.vocabSize} > model vocab_size ${config.vocab_size}` }],
    });
  }
  return tokenizer;
}

/** config.json as transformers writes it: keys sorted, architectures, torch_dtype, version. */
export function configJson(config: ModelConfig, dtype: SafetensorsDtype = 'F32'): string {
  const torchDtype = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' }[dtype];
  const c: Record<string, unknown> = { ...config, architectures: config.architectures ?? [familyOf(config).architecture], torch_dtype: torchDtype, transformers_version: TRANSFORMERS_VERSION };
  delete c.dtype; // transformers 5's name for torch_dtype; 4.x reads torch_dtype and 5.x reads both
  const sorted = Object.fromEntries(Object.keys(c).sort().map((k) => [k, c[k]]));
  return JSON.stringify(sorted, null, 2) + '\n';
}

/** The model's weights as HF-named float32 arrays. */
export function modelTensors(model: CausalLM): Map<string, NamedTensor> {
  const m = new Map<string, NamedTensor>();
  for (const [name, v] of model.params) m.set(name, { shape: v.shape.slice(), data: v.dataSync() as Float32Array });
  return m;
}

/** generation_config.json for a config: bos/eos (eos may be a list) and pad, as transformers derives it. */
export function generationConfigJson(config: ModelConfig): string {
  const gen: Record<string, unknown> = { _from_model_config: true, bos_token_id: config.bos_token_id ?? undefined, eos_token_id: config.eos_token_id ?? undefined };
  if (typeof config.pad_token_id === 'number') gen.pad_token_id = config.pad_token_id;
  gen.transformers_version = TRANSFORMERS_VERSION;
  return JSON.stringify(gen, null, 2) + '\n';
}

/** Writes `files` (name → bytes) into a fresh directory `dir` atomically: a temporary sibling renamed onto it. */
export function writeDirAtomically(dir: string, write: (tmp: string) => void): void {
  if (fs.existsSync(dir) && fs.readdirSync(dir).length > 0) throw new AlignflowError('usage', `${dir}: exists and is not empty`);
  const parent = path.dirname(path.resolve(dir));
  fs.mkdirSync(parent, { recursive: true });
  const tmp = fs.mkdtempSync(path.join(parent, `.${path.basename(dir)}.tmp-`));
  try {
    write(tmp);
    if (fs.existsSync(dir)) fs.rmdirSync(dir);
    fs.renameSync(tmp, dir);
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}

/**
 * Writes a model directory atomically (`dir` must not exist or be empty): config.json, model.safetensors
 * in `dtype` (default float32), the tokenizer, and every companion file of the directory the tokenizer
 * came from (generation_config.json, vocab.json, merges.txt, chat_template.jinja, ...) unchanged.
 */
export function saveModelDir(
  model: CausalLM,
  tokenizer: TextTokenizer | undefined,
  dir: string,
  opts: { dtype?: SafetensorsDtype; config?: ModelConfig; tensors?: Map<string, NamedTensor>; baseModel?: string; /** More files written into the directory before it appears. */ extraFiles?: (tmp: string) => void } = {},
): void {
  const dtype = opts.dtype ?? 'F32';
  if (tokenizer && tokenizer.vocabSize > model.vocabSize) {
    throw new AlignflowError('input', `tokenizer vocabulary ${tokenizer.vocabSize} is larger than the model's vocab_size ${model.vocabSize}`);
  }
  const config = opts.config ?? model.config;
  writeDirAtomically(dir, (tmp) => {
    if (tokenizer) saveTokenizerDir(tokenizer, tmp);
    if (!fs.existsSync(path.join(tmp, 'generation_config.json'))) fs.writeFileSync(path.join(tmp, 'generation_config.json'), generationConfigJson(config));
    fs.writeFileSync(path.join(tmp, 'config.json'), configJson(config, dtype));
    fs.writeFileSync(path.join(tmp, 'model.safetensors'), serializeSafetensors(opts.tensors ?? modelTensors(model), { dtype, metadata: { format: 'pt' } }));
    // a model with LoRA adapters: the (frozen) base files above plus the PEFT adapter files
    if (model.adapter instanceof LoraAdapter && !opts.tensors) writeAdapterFiles(tmp, model, model.adapter, opts.baseModel ?? 'base', dtype);
    opts.extraFiles?.(tmp);
  });
}
