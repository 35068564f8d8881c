// Batched sampling from a causal LM with a KV cache: the (left-padded) prompts are run once
// (prefill), then one token per step goes through the cache — the prefix is never recomputed.
// A no-cache path (the whole sequence every step) exists for tests and the benchmark.
//
// Padding: prompts are LEFT-padded so every row's last prompt token sits in the last column;
// padded keys are masked through attentionMask (the cache carries its mask) and positions are
// given explicitly (position = index among the row's real tokens), so a padded row produces exactly
// what it would alone. Sampling happens on the host with our seedable Rng (same seed → same text).
//
// Prompt-length rule: a prompt is cut to its LAST contextLength − maxNewTokens tokens (the end of a
// prompt is what the continuation depends on), and the cut is counted in `truncatedPrompts`.
// An empty prompt starts from bos_token_id.
import * as tf from '@tensorflow/tfjs';
import { AlignflowError } from '../errors.js';
import { configEosIds, disposeCache, type CausalLM, type KVCache } from './models/types.js';
import type { TextTokenizer } from './tokenizer/tokenizer.js';
import { Rng } from './train/rng.js';

export interface GenerateOptions {
  maxNewTokens: number;
  /** 0 → greedy (argmax). Default 1. */
  temperature?: number;
  /** Keep only the k most likely tokens (0/undefined: off). */
  topK?: number;
  /** Nucleus sampling: the smallest set whose probability reaches p (1/undefined: off). */
  topP?: number;
  /** Seed of the sampling RNG (default 0), or an Rng to draw from (its state advances). */
  seed?: number;
  rng?: Rng;
  /** Stop a sequence after it emits this id or any of these ids (default config.eos_token_id, which may be a list; null: never). */
  eosTokenId?: number | number[] | null;
  /** Id fed for padding and after EOS (default: eos, else 0). */
  padTokenId?: number;
  /** Default true; false recomputes the whole sequence every step (tests, benchmark). */
  useCache?: boolean;
  signal?: AbortSignal;
}

export interface GenerateResult {
  /** New tokens per prompt, EOS included when emitted. */
  tokens: number[][];
  finishReasons: ('eos' | 'length')[];
  /** Prompts cut to fit the context (see the prompt-length rule). */
  truncatedPrompts: number;
  /** Forward passes made (1 prefill + decode steps with the cache). */
  forwardPasses: number;
}

/** Picks a token from one row of logits (host-side): temperature, then top-k, then top-p. */
export function sampleToken(logits: Float32Array | number[], o: { temperature: number; topK?: number; topP?: number }, rng: Rng): number {
  const V = logits.length;
  if (o.temperature <= 0) {
    let best = 0;
    for (let i = 1; i < V; i++) if (logits[i]! > logits[best]!) best = i;
    return best;
  }
  let idx = Array.from({ length: V }, (_, i) => i);
  const scaled = Array.from(logits, (x) => x / o.temperature);
  // sorting (O(V log V)) is only needed to truncate the distribution
  const truncates = (o.topK !== undefined && o.topK > 0 && o.topK < V) || (o.topP !== undefined && o.topP < 1);
  if (truncates) idx.sort((a, b) => scaled[b]! - scaled[a]! || a - b);
  let max = -Infinity;
  for (const x of scaled) if (x > max) max = x;
  if (o.topK && o.topK > 0 && o.topK < V) idx = idx.slice(0, o.topK);
  let probs = idx.map((i) => Math.exp(scaled[i]! - max));
  let total = probs.reduce((a, b) => a + b, 0);
  if (o.topP !== undefined && o.topP < 1) {
    // transformers' TopPLogitsWarper: keep tokens until the cumulative probability reaches top_p (at least one)
    let cum = 0;
    let keep = 0;
    while (keep < probs.length) {
      cum += probs[keep]! / total;
      keep++;
      if (cum >= o.topP) break;
    }
    idx = idx.slice(0, keep);
    probs = probs.slice(0, keep);
    total = probs.reduce((a, b) => a + b, 0);
  }
  let u = rng.next() * total;
  for (let j = 0; j < idx.length; j++) {
    u -= probs[j]!;
    if (u < 0) return idx[j]!;
  }
  return idx[idx.length - 1]!;
}

function validate(o: GenerateOptions): void {
  const bad = (m: string) => new AlignflowError('usage', m);
  if (!Number.isInteger(o.maxNewTokens) || o.maxNewTokens < 1) throw bad(`max new tokens must be a positive integer, got ${o.maxNewTokens}`);
  if (o.temperature !== undefined && !(o.temperature >= 0 && Number.isFinite(o.temperature))) throw bad(`temperature must be ≥ 0, got ${o.temperature}`);
  if (o.topK !== undefined && !(Number.isInteger(o.topK) && o.topK >= 0)) throw bad(`top-k must be an integer ≥ 0, got ${o.topK}`);
  if (o.topP !== undefined && !(o.topP > 0 && o.topP <= 1)) throw bad(`top-p must be in (0, 1], got ${o.topP}`);
}

/** Left-padded ids, mask and positions for the given token rows. */
function leftPad(rows: number[][], pad: number) {
  const B = rows.length;
  const T = Math.max(...rows.map((r) => r.length));
  const ids = new Int32Array(B * T).fill(pad);
  const mask = new Float32Array(B * T);
  const pos = new Int32Array(B * T);
  rows.forEach((r, b) => {
    const off = T - r.length;
    r.forEach((id, j) => {
      ids[b * T + off + j] = id;
      mask[b * T + off + j] = 1;
      pos[b * T + off + j] = j;
    });
  });
  return { T, ids: tf.tensor2d(ids, [B, T], 'int32'), mask: tf.tensor2d(mask, [B, T]), pos: tf.tensor2d(pos, [B, T], 'int32') };
}

/** Last-position logits [B, V] of a forward result, read to the host. */
async function lastLogits(logits: tf.Tensor3D): Promise<Float32Array> {
  const [B, T, V] = logits.shape;
  const last = tf.slice(logits, [0, T - 1, 0], [B, 1, V]);
  const data = (await last.data()) as Float32Array;
  last.dispose();
  return data;
}

/** The ids that end a generation: the tokenizer's eos and generation_config.json's, and config.json's eos_token_id (one or a list). */
export function stopTokenIds(model: CausalLM, tok: TextTokenizer | undefined): number[] {
  return [...new Set([...(tok?.stopTokenIds ?? []), ...configEosIds(model.config)])];
}

export async function generate(model: CausalLM, prompts: number[][], opts: GenerateOptions): Promise<GenerateResult> {
  validate(opts);
  if (prompts.length === 0) return { tokens: [], finishReasons: [], truncatedPrompts: 0, forwardPasses: 0 };
  const cfg = model.config;
  const V = model.vocabSize;
  const ctx = model.contextLength;
  const maxNew = Math.min(opts.maxNewTokens, ctx - 1);
  const stops = new Set(opts.eosTokenId === undefined ? configEosIds(cfg) : opts.eosTokenId === null ? [] : [opts.eosTokenId].flat());
  const pad = opts.padTokenId ?? stops.values().next().value ?? 0;
  const temperature = opts.temperature ?? 1;
  const rng = opts.rng ?? new Rng(opts.seed ?? 0);
  const sampling = { temperature, topK: opts.topK, topP: opts.topP };
  const keep = ctx - maxNew;
  let truncatedPrompts = 0;
  const rows = prompts.map((p, i) => {
    for (const id of p) if (!Number.isInteger(id) || id < 0 || id >= V) throw new AlignflowError('input', `prompt ${i}: token id ${id} is outside the vocabulary (0..${V - 1})`);
    if (p.length === 0) {
      const bos = cfg.bos_token_id;
      if (bos === undefined || bos === null) throw new AlignflowError('input', `prompt ${i} is empty and the model config has no bos_token_id`);
      return [bos];
    }
    if (p.length > keep) {
      truncatedPrompts++;
      return p.slice(p.length - keep);
    }
    return p.slice();
  });
  const B = rows.length;
  const out: number[][] = rows.map(() => []);
  const done: boolean[] = rows.map(() => false);
  let forwardPasses = 0;

  const pick = (logits: Float32Array) => {
    for (let b = 0; b < B; b++) {
      if (done[b]) continue;
      const id = sampleToken(logits.subarray(b * V, (b + 1) * V), sampling, rng);
      out[b]!.push(id);
      if (stops.has(id)) done[b] = true;
    }
  };

  if (opts.useCache === false) {
    for (let step = 0; step < maxNew && !done.every(Boolean); step++) {
      if (opts.signal?.aborted) throw new AlignflowError('cancelled', 'generation cancelled');
      // finished rows are shorter: left padding still aligns every row's last token; their results are ignored
      const { ids, mask, pos } = leftPad(rows.map((r, b) => [...r, ...out[b]!]), pad);
      const res = model.forward(ids, { attentionMask: mask, positionIds: pos });
      forwardPasses++;
      const data = await lastLogits(res.logits);
      res.logits.dispose();
      res.hidden.dispose();
      ids.dispose();
      mask.dispose();
      pos.dispose();
      pick(data);
    }
  } else {
    const { ids, mask, pos } = leftPad(rows, pad);
    let cache: KVCache | undefined;
    try {
      const res = model.forward(ids, { attentionMask: mask, positionIds: pos, useCache: true });
      forwardPasses++;
      ids.dispose();
      mask.dispose();
      pos.dispose();
      cache = res.cache;
      const data = await lastLogits(res.logits);
      res.logits.dispose();
      res.hidden.dispose();
      pick(data);
      for (let step = 1; step < maxNew && !done.every(Boolean); step++) {
        if (opts.signal?.aborted) throw new AlignflowError('cancelled', 'generation cancelled');
        // the token sampled last step (a row that finished earlier is fed padding; its output is ignored)
        const next = tf.tensor2d(out.map((o) => o[step - 1] ?? pad), [B, 1], 'int32');
        const nextPos = tf.tensor2d(rows.map((r) => r.length + step - 1), [B, 1], 'int32');
        const ones = tf.ones([B, 1]) as tf.Tensor2D;
        const r2 = model.forward(next, { cache, positionIds: nextPos, attentionMask: ones, useCache: true });
        forwardPasses++;
        next.dispose();
        nextPos.dispose();
        ones.dispose();
        disposeCache(cache);
        cache = r2.cache;
        const d2 = await lastLogits(r2.logits);
        r2.logits.dispose();
        r2.hidden.dispose();
        pick(d2);
      }
    } finally {
      disposeCache(cache);
    }
  }
  return { tokens: out, finishReasons: done.map((d) => (d ? 'eos' : 'length')), truncatedPrompts, forwardPasses };
}
