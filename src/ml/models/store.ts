// Models as 'model' artifacts: the files of a Hugging Face model directory, validated on the way in.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ArtifactManifest, ArtifactStore, PutArtifact } from '../../store/types.js';
import { AlignflowError } from '../../errors.js';
import type { TextTokenizer } from '../tokenizer/tokenizer.js';
import { CheckpointReader, loadModelDir, readModelConfig, saveModelDir, type LoadedModel } from './io.js';
import { isRewardModelConfig, loadRewardModelDir } from '../reward.js';
import type { CausalLM } from './types.js';
import { familyOf } from './registry.js';

/**
 * The files of a model directory that travel with it: every top-level file except weights in formats
 * alignflow does not read (pytorch_model.bin, *.gguf, ...), which would go stale once the model trains.
 */
export function modelDirFiles(dir: string): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isFile() && !e.name.startsWith('.') && !/\.(bin|pt|pth|h5|msgpack|onnx|gguf|ot|ckpt)$|\.bin\.index\.json$/.test(e.name))
    .map((e) => e.name)
    .sort();
}

/** What `models ls/show` display; part of the artifact's metadata (family-neutral names). */
export function modelSummary(loaded: Pick<LoadedModel, 'model' | 'tokenizer' | 'storedDtype'>): Record<string, unknown> {
  const m = loaded.model;
  const s = familyOf(m.config).shape(m.config);
  let n = 0;
  for (const v of m.params.values()) n += v.size;
  return {
    model_type: m.config.model_type,
    architecture: m.config.architectures?.[0] ?? familyOf(m.config).architecture,
    parameters: n,
    vocab_size: m.vocabSize,
    context_length: m.contextLength,
    hidden_size: m.hiddenSize,
    layers: s.layers,
    heads: s.heads,
    kv_heads: s.kvHeads,
    tied_embeddings: s.tiedHead,
    dtype: loaded.storedDtype,
    tokenizer: loaded.tokenizer ? { vocab_size: loaded.tokenizer.vocabSize, eos_token: loaded.tokenizer.eosToken ?? null } : null,
  };
}

function scratch(base: string | undefined, prefix: string): string {
  const parent = base ?? os.tmpdir();
  fs.mkdirSync(parent, { recursive: true });
  return fs.mkdtempSync(path.join(parent, `alignflow-${prefix}`));
}

/** Validates a model directory (config, tensors, tokenizer) and stores its files as a 'model' artifact. */
export async function importModelDir(
  store: ArtifactStore,
  dir: string,
  opts: { name?: string; inputs?: PutArtifact['inputs']; producer?: PutArtifact['producer'] } = {},
): Promise<ArtifactManifest> {
  let metadata: Record<string, unknown>;
  if (isRewardModelConfig(readModelConfig(dir).config as Record<string, unknown>)) {
    // a *ForSequenceClassification directory (score.weight, no lm_head): validated as the reward
    // model it is, as the eval stage will load it
    const { model, tokenizer } = await loadRewardModelDir(dir);
    const reader = new CheckpointReader(dir);
    const dtypes = reader.dtypes.join('+');
    reader.close();
    metadata = { ...modelSummary({ model: model.base, tokenizer, storedDtype: dtypes }), architecture: model.config.architectures?.[0] ?? null, parameters: [...model.params.values()].reduce((n, v) => n + v.size, 0) };
    model.dispose();
  } else {
    const loaded = await loadModelDir(dir);
    metadata = modelSummary(loaded);
    loaded.model.dispose();
  }
  const files = modelDirFiles(dir).map((f) => ({ path: f, sourceFile: path.join(dir, f) }));
  return store.put({ kind: 'model', name: opts.name ?? path.basename(path.resolve(dir)), files, metadata, inputs: opts.inputs, producer: opts.producer });
}

/** Writes a model (and tokenizer) as a new 'model' artifact. `scratchDir` should be on the store's filesystem. */
export async function putModel(
  store: ArtifactStore,
  model: CausalLM,
  tokenizer: TextTokenizer | undefined,
  opts: { name: string; inputs?: PutArtifact['inputs']; producer?: PutArtifact['producer']; scratchDir?: string },
): Promise<ArtifactManifest> {
  const tmp = scratch(opts.scratchDir, 'model-');
  try {
    const dir = path.join(tmp, 'm');
    saveModelDir(model, tokenizer, dir);
    return await importModelDir(store, dir, opts);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/** Loads a 'model' artifact (materialized into a scratch directory that is removed afterwards). */
export async function loadModelArtifact(store: ArtifactStore, id: string, opts: { scratchDir?: string } = {}): Promise<LoadedModel & { manifest: ArtifactManifest }> {
  const manifest = await store.get(id);
  if (manifest.kind !== 'model' && manifest.kind !== 'checkpoint') {
    throw new AlignflowError('input', `artifact ${id} is a ${manifest.kind}, not a model`);
  }
  const tmp = scratch(opts.scratchDir, 'load-');
  try {
    await store.materialize(manifest.id, tmp);
    const loaded = await loadModelDir(tmp);
    return { ...loaded, dir: `artifact:${manifest.id}`, manifest };
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
