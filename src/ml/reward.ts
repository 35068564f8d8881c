// A reward model: a causal LM body with a scalar head on the last non-padding token, laid out as
// transformers' <Family>ForSequenceClassification (num_labels 1) so a saved directory loads there
// (GPT2ForSequenceClassification, LlamaForSequenceClassification, Qwen2..., the family says which):
// the body's parameters without an untied lm_head, plus `score.weight` [1, hiddenSize] (no bias),
// and config.json with that architecture, num_labels 1 and pad_token_id.
import { LoraAdapter, mergedTensors, writeSeqClsAdapterFiles } from './lora.js';
import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { AlignflowError } from '../errors.js';
import { initBackend } from './backend.js';
import { CheckpointReader, loadDirTokenizer, matchWeights, modelTensors, readModelConfig, readWeights, saveModelDir } from './models/io.js';
import { familyOf, knownModelTypes, modelFamily } from './models/registry.js';
import { configEosIds, type CausalLM, type ModelConfig } from './models/types.js';
import type { SafetensorsDtype } from './safetensors.js';
import type { TextTokenizer } from './tokenizer/tokenizer.js';
import { tensorSeed } from './tensor-seed.js';
import type { MicroBatchOutput } from './train/loop.js';
import { collatePairs, type PairBatch, type PreparedPair } from './preference-data.js';
import { bradleyTerryLoss } from './losses/index.js';
import type { ArtifactStore } from '../store/types.js';
import type { DatasetKind, DatasetRecord, PreferenceRecord, SftRecord, UnpairedRecord } from '../data/formats.js';
import { preferenceRecordText, sftRecordText, unpairedRecordText } from './train/records.js';
import { tokenizePair } from './tokenizer/pairs.js';

export const SCORE_WEIGHT = 'score.weight';

export class RewardModel {
  readonly params: Map<string, tf.Variable>;
  constructor(
    readonly base: CausalLM,
    readonly score: tf.Variable,
    readonly padTokenId: number,
  ) {
    this.params = new Map([...base.params, [SCORE_WEIGHT, score]]);
  }

  get config(): ModelConfig {
    return rewardModelConfig(this.base.config, this.padTokenId);
  }

  /**
   * Pooling position per row, transformers' rule: the rightmost token whose id is not
   * pad_token_id (so with pad = eos a trailing EOS is skipped, exactly as transformers does).
   */
  poolIndex(ids: Int32Array, rows: number, seqLen: number): number[] {
    const out: number[] = [];
    for (let r = 0; r < rows; r++) {
      let last = seqLen - 1; // transformers: no non-pad token → index −1 → the last position
      for (let t = seqLen - 1; t >= 0; t--) {
        if (ids[r * seqLen + t] !== this.padTokenId) {
          last = t;
          break;
        }
      }
      out.push(last);
    }
    return out;
  }

  /** Scalar rewards [rows] of right-padded sequences; differentiable. */
  rewards(ids: Int32Array, attentionMask: Float32Array, rows: number, seqLen: number): tf.Tensor1D {
    const pool = this.poolIndex(ids, rows, seqLen);
    return tf.tidy(() => {
      const hidden = this.base.hiddenStates(tf.tensor2d(ids, [rows, seqLen], 'int32'), {
        attentionMask: tf.tensor2d(attentionMask, [rows, seqLen]),
      });
      const C = hidden.shape[2];
      // flat gather of each row's pooled hidden state (gather with batchDims > 0 is wrong on wasm)
      const flat = tf.reshape(hidden, [rows * seqLen, C]);
      const picked = tf.gather(flat, tf.tensor1d(pool.map((t, r) => r * seqLen + t), 'int32')); // [rows, C]
      return tf.reshape(tf.matMul(picked, this.score, false, true), [rows]) as tf.Tensor1D;
    });
  }

  dispose(): void {
    this.base.dispose();
    this.score.dispose();
  }
}

let scoreCounter = 0;

/** A fresh head on `base` (an SFT model or a fresh one): score ~ N(0, initializer_range), as transformers inits Linear. */
export function createRewardModel(base: CausalLM, o: { seed?: number; padTokenId: number }): RewardModel {
  const std = base.config.initializer_range ?? 0.02;
  const w = tf.randomNormal([1, base.hiddenSize], 0, std, 'float32', tensorSeed(o.seed ?? 0));
  const v = tf.variable(w, true, `rm${++scoreCounter}/${SCORE_WEIGHT}`);
  w.dispose();
  return new RewardModel(base, v, o.padTokenId);
}

/** config.json of a reward model: the body's config + the sequence-classification keys. */
export function rewardModelConfig(base: ModelConfig, padTokenId: number): ModelConfig {
  return {
    ...base,
    architectures: [familyOf(base).rewardArchitecture],
    num_labels: 1,
    id2label: { '0': 'LABEL_0' },
    label2id: { LABEL_0: 0 },
    pad_token_id: padTokenId,
  };
}

/** A config.json of a sequence-classification model of a known family. */
export function isRewardModelConfig(c: Record<string, unknown>): boolean {
  const f = typeof c.model_type === 'string' ? modelFamily(c.model_type) : undefined;
  return !!f && Array.isArray(c.architectures) && (c.architectures as unknown[]).includes(f.rewardArchitecture);
}

/**
 * Writes config.json, model.safetensors (body without an untied lm_head, + score.weight), the tokenizer
 * and its companion files into `dir` (must be empty or absent), atomically.
 */
export function saveRewardModelDir(rm: RewardModel, tokenizer: TextTokenizer | undefined, dir: string, opts: { dtype?: SafetensorsDtype; baseModel?: string } = {}): void {
  const body = familyOf(rm.base.config).paramShapes(rm.base.config, { head: false });
  // A LoRA-trained reward model is written merged (W + (α/r)·B·A): the one layout that
  // AutoModelForSequenceClassification loads without peft; the adapters stay attached here. Its PEFT
  // SEQ_CLS adapter (adapters + score) is kept beside, for `models export` without --merge.
  const adapter = rm.base.adapter instanceof LoraAdapter ? rm.base.adapter : undefined;
  const all = adapter ? mergedTensors(rm.base, adapter) : modelTensors(rm.base);
  const tensors = new Map([...all].filter(([n]) => body.has(n)));
  const score = { shape: rm.score.shape.slice(), data: rm.score.dataSync() as Float32Array };
  tensors.set(SCORE_WEIGHT, score);
  saveModelDir(rm.base, tokenizer, dir, {
    config: rm.config,
    tensors,
    dtype: opts.dtype,
    ...(adapter ? { extraFiles: (tmp: string) => writeSeqClsAdapterFiles(tmp, rm.base, adapter, new Map([[SCORE_WEIGHT, score]]), opts.baseModel ?? 'base', opts.dtype) } : {}),
  });
}

/** Loads a directory written by saveRewardModelDir (or transformers' *ForSequenceClassification with num_labels 1). */
export async function loadRewardModelDir(dir: string): Promise<{ model: RewardModel; tokenizer?: TextTokenizer }> {
  await initBackend();
  const { config, family } = readModelConfig(dir);
  const raw = config as Record<string, unknown>;
  const cfgFile = path.join(dir, 'config.json');
  if (!isRewardModelConfig(raw)) {
    throw new AlignflowError('input', `${cfgFile}: not a reward model (architectures ${JSON.stringify(raw.architectures)}; expected ${family.rewardArchitecture}; alignflow supports ${knownModelTypes().join(', ')})`);
  }
  if (raw.num_labels !== undefined && raw.num_labels !== 1) throw new AlignflowError('input', `${cfgFile}: num_labels is ${raw.num_labels}; a reward model has 1`);
  const id2label = raw.id2label as Record<string, unknown> | undefined;
  if (raw.num_labels === undefined && id2label && Object.keys(id2label).length !== 1) throw new AlignflowError('input', `${cfgFile}: id2label has ${Object.keys(id2label).length} labels; a reward model has 1`);
  const reader = new CheckpointReader(dir);
  try {
    const file = reader.file;
    const score = reader.tensors.get(SCORE_WEIGHT);
    if (!score) throw new AlignflowError('input', `${file}: missing tensor ${SCORE_WEIGHT}`, { issues: [{ file, field: SCORE_WEIGHT, reason: 'missing tensor' }] });
    const hidden = family.shape(config).hiddenSize;
    if (score.shape.join() !== [1, hidden].join()) {
      throw new AlignflowError('input', `${file}: ${SCORE_WEIGHT} has shape [${score.shape}], expected [1, ${hidden}]`, { issues: [{ file, field: SCORE_WEIGHT, reason: `shape [${score.shape}], expected [1, ${hidden}]` }] });
    }
    const mapping = matchWeights(family, config, reader.tensors, file, { head: false, extra: [SCORE_WEIGHT], read: (n) => reader.read(n) });
    const pad = typeof raw.pad_token_id === 'number' ? raw.pad_token_id : (configEosIds(config)[0] ?? 0);
    const tokenizer = loadDirTokenizer(dir, config);
    const tensors = readWeights(reader, mapping);
    try {
      const base = family.fromWeights(config, tensors, { head: false });
      const s = tf.tensor(reader.read(SCORE_WEIGHT), score.shape, 'float32');
      const v = tf.variable(s, true, `rm${++scoreCounter}/${SCORE_WEIGHT}`);
      s.dispose();
      return { model: new RewardModel(base, v, pad), ...(tokenizer ? { tokenizer } : {}) };
    } finally {
      for (const t of tensors.values()) t.dispose();
    }
  } finally {
    reader.close();
  }
}

/** One batched forward of [chosen; rejected] → rewards r⁺, r⁻ [B]. */
export function pairRewards(rm: RewardModel, b: PairBatch): { chosen: tf.Tensor1D; rejected: tf.Tensor1D } {
  return tf.tidy(() => {
    const r = rm.rewards(b.ids, b.attentionMask, 2 * b.pairs, b.seqLen);
    return { chosen: tf.slice(r, [0], [b.pairs]) as tf.Tensor1D, rejected: tf.slice(r, [b.pairs], [b.pairs]) as tf.Tensor1D };
  });
}

/**
 * The training loop's lossFn for the reward model: Σ over pairs of the Bradley–Terry loss (weight =
 * pairs). Metrics are per-micro-batch values averaged by the loop, as TRL averages its per-batch
 * accuracy / margin / min_reward / mean_reward / max_reward over a logging interval.
 */
export function rewardLossFn(rm: RewardModel, o: { centerCoefficient?: number } = {}): (b: PairBatch) => MicroBatchOutput {
  return (b) => {
    const { chosen, rejected } = pairRewards(rm, b);
    const margin = b.margins ? tf.tensor1d(b.margins) : undefined;
    const { loss } = bradleyTerryLoss(chosen, rejected, { pairs: 1, ...(margin ? { margin } : {}), ...(o.centerCoefficient ? { centerCoefficient: o.centerCoefficient } : {}) });
    const all = tf.concat([chosen, rejected]);
    return {
      loss,
      weight: b.pairs,
      metrics: {
        accuracy: tf.mean(tf.cast(tf.greater(chosen, rejected), 'float32')) as tf.Scalar,
        margin: tf.mean(tf.sub(chosen, rejected)) as tf.Scalar,
        min_reward: tf.min(all) as tf.Scalar,
        mean_reward: tf.mean(all) as tf.Scalar,
        max_reward: tf.max(all) as tf.Scalar,
      },
    };
  };
}

export interface ScoredCompletion {
  reward: number;
  truncated: boolean;
}

/**
 * Rewards of prompt/completion pairs, batched, order preserved. Longer than the context: the prompt
 * keeps its last tokens, then the completion is cut on the right (ML core's truncatePair rule).
 */
export async function scoreWithRewardModel(
  rm: RewardModel,
  items: { promptIds: number[]; completionIds: number[] }[],
  o: { batchSize?: number; onProgress?: (done: number, total: number) => void } = {},
): Promise<ScoredCompletion[]> {
  const bs = Math.max(1, o.batchSize ?? 16);
  const maxLength = rm.base.contextLength;
  const out: ScoredCompletion[] = [];
  for (let i = 0; i < items.length; i += bs) {
    const chunk = items.slice(i, i + bs).map((it) => {
      const total = it.promptIds.length + it.completionIds.length;
      if (total <= maxLength) return { ids: [...it.promptIds, ...it.completionIds], truncated: false };
      const c = it.completionIds.slice(0, maxLength);
      const keep = maxLength - c.length;
      return { ids: [...(keep > 0 ? it.promptIds.slice(it.promptIds.length - keep) : []), ...c], truncated: true };
    });
    const T = Math.max(1, ...chunk.map((c) => c.ids.length));
    const ids = new Int32Array(chunk.length * T).fill(rm.padTokenId);
    const mask = new Float32Array(chunk.length * T);
    chunk.forEach((c, r) => c.ids.forEach((id, t) => ((ids[r * T + t] = id), (mask[r * T + t] = 1))));
    const rt = rm.rewards(ids, mask, chunk.length, T);
    const vals = await rt.data();
    rt.dispose();
    chunk.forEach((c, r) => out.push({ reward: vals[r]!, truncated: c.truncated }));
    o.onProgress?.(Math.min(i + bs, items.length), items.length);
    await new Promise<void>((res) => setImmediate(res));
  }
  return out;
}

/** Rewards of prepared pairs (for eval metrics outside the loop): r⁺ and r⁻ per pair. */
export async function pairRewardValues(rm: RewardModel, prepared: readonly PreparedPair[], batchSize: number): Promise<{ chosen: number[]; rejected: number[] }> {
  const chosen: number[] = [];
  const rejected: number[] = [];
  for (let i = 0; i < prepared.length; i += batchSize) {
    const pos = Array.from({ length: Math.min(batchSize, prepared.length - i) }, (_, k) => i + k);
    const r = pairRewards(rm, collatePairs(prepared, pos, rm.padTokenId));
    chosen.push(...(await r.chosen.data()));
    rejected.push(...(await r.rejected.data()));
    r.chosen.dispose();
    r.rejected.dispose();
  }
  return { chosen, rejected };
}

export type RewardScoreRow =
  | { index: number; chosen_reward: number; rejected_reward: number; margin: number; truncated: boolean }
  | { index: number; reward: number; truncated: boolean; label?: boolean };

/**
 * Rewards for a dataset's records: preference → chosen_reward, rejected_reward, margin; sft /
 * unpaired → reward (of the completion given the prompt). Record → text exactly as training saw it.
 */
export async function scoreRecordsWithRewardModel(
  rm: RewardModel,
  tok: TextTokenizer,
  kind: DatasetKind,
  records: DatasetRecord[],
  o: { batchSize?: number; addEos?: boolean; onProgress?: (done: number, total: number) => void } = {},
): Promise<RewardScoreRow[]> {
  const textOpts = { addEos: o.addEos ?? true };
  if (kind === 'preference') {
    const items = (records as PreferenceRecord[]).flatMap((r) => {
      const t = preferenceRecordText(tok, r, textOpts);
      return [tokenizePair(tok, t.prompt, t.chosen), tokenizePair(tok, t.prompt, t.rejected)];
    });
    const s = await scoreWithRewardModel(rm, items, { batchSize: 2 * (o.batchSize ?? 8), ...(o.onProgress ? { onProgress: (d, n) => o.onProgress!(d / 2, n / 2) } : {}) });
    return records.map((_, i) => {
      const c = s[2 * i]!;
      const j = s[2 * i + 1]!;
      return { index: i, chosen_reward: c.reward, rejected_reward: j.reward, margin: c.reward - j.reward, truncated: c.truncated || j.truncated };
    });
  }
  if (kind !== 'sft' && kind !== 'unpaired') throw new AlignflowError('config', `cannot score a ${kind} dataset with a reward model: it has no completions`);
  const labels: (boolean | undefined)[] = [];
  const items = records.map((r) => {
    const t = kind === 'sft' ? sftRecordText(tok, r as SftRecord, textOpts) : unpairedRecordText(tok, r as UnpairedRecord, textOpts);
    labels.push('label' in t ? (t as { label: boolean }).label : undefined);
    return tokenizePair(tok, t.prompt, t.completion);
  });
  const s = await scoreWithRewardModel(rm, items, { batchSize: o.batchSize ?? 8, ...(o.onProgress ? { onProgress: o.onProgress } : {}) });
  return s.map((x, i) => ({ index: i, reward: x.reward, truncated: x.truncated, ...(labels[i] !== undefined ? { label: labels[i] } : {}) }));
}

/** A reward model from a directory or a model artifact (materialised under `scratchDir`). */
export async function loadRewardModelRef(ref: { dir: string } | { store: ArtifactStore; id: string; scratchDir: string }): Promise<{ model: RewardModel; tokenizer?: TextTokenizer }> {
  if ('dir' in ref) return loadRewardModelDir(ref.dir);
  const m = await ref.store.get(ref.id);
  if (m.kind !== 'model' && m.kind !== 'checkpoint') throw new AlignflowError('input', `artifact ${ref.id} is a ${m.kind}, not a reward model`);
  const dir = fs.mkdtempSync(path.join(ref.scratchDir, 'rm-'));
  try {
    await ref.store.materialize(ref.id, dir);
    return await loadRewardModelDir(dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
