// Scoring: per-record sum and mean log-probability of completions given prompts, for a whole
// dataset, batched — `alignflow score` and any later stage that needs them. Built on the ML core's
// completionLogps (right-padded batches, completion tokens only, truncation per its documented rule).
//   preference data → chosen_logps, rejected_logps (+ _mean, _tokens)
//   SFT / unpaired data → logps (+ logps_mean, tokens)
// Chosen and rejected completions of a batch go through the model together.
import { AlignflowError } from '../errors.js';
import type { DatasetKind, DatasetRecord, PreferenceRecord, SftRecord, UnpairedRecord } from '../data/formats.js';
import { completionLogps, type PromptCompletion } from './logprobs.js';
import type { CausalLM } from './models/types.js';
import type { TextTokenizer } from './tokenizer/tokenizer.js';
import { tokenizePair } from './tokenizer/pairs.js';
import { preferenceRecordText, sftRecordText, unpairedRecordText } from './train/records.js';

export interface SequenceScore {
  index: number;
  logps: number;
  logps_mean: number;
  tokens: number;
  truncated: boolean;
  /** tokenize(prompt) was not a prefix of tokenize(prompt + completion) (reported, not fixed). */
  prefix_mismatch?: boolean;
  label?: boolean;
}

export interface PairScore {
  index: number;
  chosen_logps: number;
  chosen_logps_mean: number;
  chosen_tokens: number;
  rejected_logps: number;
  rejected_logps_mean: number;
  rejected_tokens: number;
  truncated: boolean;
  prefix_mismatch?: boolean;
}

export type ScoreRow = SequenceScore | PairScore;

export interface ScoreOptions {
  batchSize?: number;
  /** Append EOS to standard-format completions (TRL does for SFT/DPO); default true. */
  addEos?: boolean;
  template?: string;
  onProgress?: (done: number, total: number) => void;
}

export async function scoreRecords(model: CausalLM, tok: TextTokenizer, kind: DatasetKind, records: DatasetRecord[], opts: ScoreOptions = {}): Promise<ScoreRow[]> {
  const pad = tok.padTokenId ?? 0;
  const batchSize = opts.batchSize ?? 8;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new AlignflowError('usage', `batch size must be a positive integer, got ${batchSize}`);
  const textOpts = { addEos: opts.addEos ?? true, template: opts.template };
  if (kind === 'preference') {
    const seqs: PromptCompletion[] = [];
    const mismatch: boolean[] = [];
    for (const r of records as PreferenceRecord[]) {
      const t = preferenceRecordText(tok, r, textOpts);
      const c = tokenizePair(tok, t.prompt, t.chosen);
      const j = tokenizePair(tok, t.prompt, t.rejected);
      seqs.push(c, j);
      mismatch.push(c.prefixMismatch || j.prefixMismatch);
    }
    // chosen and rejected of a pair stay in the same batch: 2 sequences per pair
    const lp = await completionLogps(model, seqs, { batchSize: batchSize * 2, padId: pad, onProgress: (d, n) => opts.onProgress?.(d / 2, n / 2) });
    return records.map((_, i) => {
      const c = lp[2 * i]!;
      const j = lp[2 * i + 1]!;
      return {
        index: i,
        chosen_logps: c.sum,
        chosen_logps_mean: c.mean,
        chosen_tokens: c.tokens,
        rejected_logps: j.sum,
        rejected_logps_mean: j.mean,
        rejected_tokens: j.tokens,
        truncated: c.truncated || j.truncated,
        ...(mismatch[i] ? { prefix_mismatch: true } : {}),
      };
    });
  }
  if (kind !== 'sft' && kind !== 'unpaired') {
    throw new AlignflowError('config', `cannot score a ${kind} dataset: it has no completions (use an sft, preference or unpaired dataset)`);
  }
  const labels: (boolean | undefined)[] = [];
  const seqs = records.map((r) => {
    const t = kind === 'sft' ? sftRecordText(tok, r as SftRecord, textOpts) : unpairedRecordText(tok, r as UnpairedRecord, textOpts);
    labels.push('label' in t ? (t as { label: boolean }).label : undefined);
    return tokenizePair(tok, t.prompt, t.completion);
  });
  const lp = await completionLogps(model, seqs, { batchSize, padId: pad, onProgress: opts.onProgress });
  return lp.map((s, i) => ({
    index: i,
    logps: s.sum,
    logps_mean: s.mean,
    tokens: s.tokens,
    truncated: s.truncated,
    ...(seqs[i]!.prefixMismatch ? { prefix_mismatch: true } : {}),
    ...(labels[i] !== undefined ? { label: labels[i] } : {}),
  }));
}
