// Preference pairs on the token level: the truncation rule (with the bad-input accounting issue 4
// asks for), collation of chosen and rejected into ONE right-padded batch for a single forward
// pass, and a resumable batch source for the training loop.
import { DataCursor, collate, type CursorOptions, type CursorState, type BatchSource } from './train/data.js';
import type { Batch } from './train/data.js';

export interface TokenPair {
  promptIds: number[];
  chosenIds: number[];
  rejectedIds: number[];
  /** Optional per-pair margin for the reward model's Bradley–Terry loss. */
  margin?: number;
}

export interface PreparedPair extends TokenPair {
  /** Index of the pair in the source list (before drops). */
  index: number;
  /** KTO only: the row is an unpaired example (chosenIds = its completion, rejectedIds = the
   *  mismatched completion for the KL baseline) and this is its desirability label. */
  desirable?: boolean;
}

export interface TruncationRule {
  /** Longest prompt + completion, in tokens (TRL's max_length). */
  maxLength: number;
  /** Longer prompts keep their LAST maxPromptLength tokens (TRL's truncation_mode="keep_end"). */
  maxPromptLength?: number;
}

/** A stable name of the rule, part of the reference log-prob cache key. */
export function truncationRuleId(r: TruncationRule): string {
  return `v1;max_length=${r.maxLength};max_prompt_length=${r.maxPromptLength ?? 'none'};prompt=keep_end;completion=keep_start`;
}

export interface PairStats {
  total: number;
  kept: number;
  /** Prompt cut to maxPromptLength (its last tokens kept). */
  promptTruncated: number;
  /** A completion cut on the right to fit maxLength. */
  completionTruncated: number;
  /** Dropped: the prompt alone takes maxLength tokens or more (TRL filters these out too). */
  droppedPromptTooLong: number;
  /** Skipped: chosen and rejected are the same tokens (no preference signal). */
  droppedIdentical: number;
  /** Dropped: an empty chosen or rejected completion. */
  droppedEmpty: number;
}

/**
 * The rule: (1) a prompt longer than maxPromptLength keeps its last tokens; (2) a pair whose prompt
 * then still fills maxLength is dropped and counted — never truncated into nonsense; (3) each
 * completion is cut on the right to maxLength − |prompt|; (4) pairs whose chosen and rejected
 * completions are identical (before or after cutting) are skipped and counted.
 */
export function preparePairs(pairs: readonly TokenPair[], rule: TruncationRule): { pairs: PreparedPair[]; stats: PairStats } {
  const stats: PairStats = { total: pairs.length, kept: 0, promptTruncated: 0, completionTruncated: 0, droppedPromptTooLong: 0, droppedIdentical: 0, droppedEmpty: 0 };
  const out: PreparedPair[] = [];
  const same = (a: number[], b: number[]) => a.length === b.length && a.every((v, i) => v === b[i]);
  pairs.forEach((p, index) => {
    if (p.chosenIds.length === 0 || p.rejectedIds.length === 0) {
      stats.droppedEmpty++;
      return;
    }
    if (same(p.chosenIds, p.rejectedIds)) {
      stats.droppedIdentical++;
      return;
    }
    let prompt = p.promptIds;
    if (rule.maxPromptLength !== undefined && prompt.length > rule.maxPromptLength) {
      prompt = prompt.slice(prompt.length - rule.maxPromptLength);
      stats.promptTruncated++;
    }
    // an empty prompt leaves the first completion token unconditioned (not a target): need ≥ 1 target
    if (prompt.length >= rule.maxLength || (prompt.length === 0 && rule.maxLength < 2)) {
      stats.droppedPromptTooLong++;
      return;
    }
    const room = rule.maxLength - prompt.length;
    const chosen = p.chosenIds.length > room ? p.chosenIds.slice(0, room) : p.chosenIds;
    const rejected = p.rejectedIds.length > room ? p.rejectedIds.slice(0, room) : p.rejectedIds;
    if (chosen !== p.chosenIds || rejected !== p.rejectedIds) stats.completionTruncated++;
    if (same(chosen, rejected)) {
      stats.droppedIdentical++;
      return;
    }
    stats.kept++;
    out.push({ index, promptIds: prompt, chosenIds: chosen, rejectedIds: rejected, ...(p.margin !== undefined ? { margin: p.margin } : {}) });
  });
  return { pairs: out, stats };
}

/** Chosen rows 0..B−1 then rejected rows B..2B−1, right-padded to the longest of all 2B. */
export interface PairBatch extends Batch {
  pairs: number;
  /** Positions in the prepared list (for cached reference log-probs). */
  positions: number[];
  /** Completion token counts (targets) per row: chosen then rejected, [2B]. */
  targetCounts: number[];
  /** Last real token of each row (the reward model's pooling position), [2B]. */
  lastIndex: number[];
  margins?: number[];
  /** KTO rows: the desirability label of each example. */
  desirable?: boolean[];
  /** Σ pairs and Σ chosen tokens of the whole accumulated step this micro-batch belongs to. */
  group: { pairs: number; chosenTokens: number };
}

export function collatePairs(prepared: readonly PreparedPair[], positions: number[], padId: number, group?: PairBatch['group']): PairBatch {
  const ps = positions.map((i) => prepared[i]!);
  const seq = (completion: number[], promptIds: number[]) => ({
    ids: [...promptIds, ...completion],
    lossMask: [...promptIds.map(() => 0), ...completion.map(() => 1)],
  });
  const rows = [...ps.map((p) => seq(p.chosenIds, p.promptIds)), ...ps.map((p) => seq(p.rejectedIds, p.promptIds))];
  const b = collate(rows, padId);
  const targetCounts: number[] = [];
  for (let r = 0; r < rows.length; r++) {
    let n = 0;
    for (let t = 0; t < b.seqLen; t++) n += b.lossMask[r * b.seqLen + t]!;
    targetCounts.push(n);
  }
  const chosenTokens = targetCounts.slice(0, ps.length).reduce((a, c) => a + c, 0);
  const out: PairBatch = {
    ...b,
    pairs: ps.length,
    positions,
    targetCounts,
    lastIndex: rows.map((r) => r.ids.length - 1),
    group: group ?? { pairs: ps.length, chosenTokens },
  };
  if (ps.some((p) => p.margin !== undefined)) out.margins = ps.map((p) => p.margin ?? 0);
  if (ps.some((p) => p.desirable !== undefined)) out.desirable = ps.map((p) => p.desirable === true);
  return out;
}

/**
 * Shuffled micro-batches of pairs for train(). It draws a whole optimizer step (batchSize ×
 * gradAccum pairs) at once so every micro-batch knows the step's totals: the token-level NLL term
 * is then normalised by the chosen tokens of the whole step, exactly as one big batch would be.
 */
export class PairBatches implements BatchSource<PairBatch> {
  readonly cursor: DataCursor;
  private pending: PairBatch[] = [];

  constructor(
    readonly prepared: readonly PreparedPair[],
    readonly batchSize: number,
    readonly gradAccum: number,
    readonly padId: number,
    seed: number,
    o: CursorOptions = {},
  ) {
    this.cursor = new DataCursor(prepared.length, seed, undefined, o);
  }

  next(): PairBatch {
    if (this.pending.length === 0) {
      const groups: number[][] = [];
      for (let k = 0; k < this.gradAccum; k++) groups.push(this.cursor.take(this.batchSize));
      const pairs = this.batchSize * this.gradAccum;
      const chosenTokens = groups.flat().reduce((a, i) => a + chosenTargets(this.prepared[i]!), 0);
      this.pending = groups.map((g) => collatePairs(this.prepared, g, this.padId, { pairs, chosenTokens }));
    }
    return this.pending.shift()!;
  }
  /** Checkpoints are taken between optimizer steps, when nothing is pending. */
  state(): CursorState {
    return this.cursor.state();
  }
  restore(state: unknown): void {
    this.pending = [];
    this.cursor.restore(state as CursorState);
  }
  epoch(): number {
    return this.cursor.epochFloat();
  }
}

/** Target tokens of a chosen completion (the first token of an empty-prompt sequence is not one). */
export function chosenTargets(p: TokenPair): number {
  return p.chosenIds.length - (p.promptIds.length === 0 ? 1 : 0);
}

/** Consecutive batches covering every pair once, in order (evaluation, reference log-probs). */
export function sequentialPairBatches(prepared: readonly PreparedPair[], batchSize: number, padId: number): PairBatch[] {
  const out: PairBatch[] = [];
  for (let i = 0; i < prepared.length; i += batchSize) {
    const pos = Array.from({ length: Math.min(batchSize, prepared.length - i) }, (_, k) => i + k);
    out.push(collatePairs(prepared, pos, padId));
  }
  return out;
}

/** An unpaired (KTO) example: one completion with a desirability label. */
export interface UnpairedExample {
  promptIds: number[];
  completionIds: number[];
  desirable: boolean;
}

/**
 * KTO examples as rows of the pair machinery: `chosenIds` is the example's completion and
 * `rejectedIds` the completion of the PREVIOUS kept example (cyclically) — the mismatched (x, y')
 * pair for the KL baseline z₀, as TRL's KTO builds it by shifting completions by one. Same
 * truncation rule as preparePairs; empty completions and prompts that fill maxLength are dropped.
 */
export function prepareUnpaired(examples: readonly UnpairedExample[], rule: TruncationRule): { pairs: PreparedPair[]; stats: PairStats } {
  const stats: PairStats = { total: examples.length, kept: 0, promptTruncated: 0, completionTruncated: 0, droppedPromptTooLong: 0, droppedIdentical: 0, droppedEmpty: 0 };
  const kept: { index: number; promptIds: number[]; completionIds: number[]; desirable: boolean }[] = [];
  examples.forEach((e, index) => {
    if (e.completionIds.length === 0) {
      stats.droppedEmpty++;
      return;
    }
    let prompt = e.promptIds;
    if (rule.maxPromptLength !== undefined && prompt.length > rule.maxPromptLength) {
      prompt = prompt.slice(prompt.length - rule.maxPromptLength);
      stats.promptTruncated++;
    }
    if (prompt.length >= rule.maxLength) {
      stats.droppedPromptTooLong++;
      return;
    }
    const room = rule.maxLength - prompt.length;
    const completion = e.completionIds.length > room ? e.completionIds.slice(0, room) : e.completionIds;
    if (completion !== e.completionIds) stats.completionTruncated++;
    stats.kept++;
    kept.push({ index, promptIds: prompt, completionIds: completion, desirable: e.desirable });
  });
  const pairs = kept.map((k, i) => {
    const other = kept[(i - 1 + kept.length) % kept.length]!.completionIds;
    const room = rule.maxLength - k.promptIds.length;
    return { index: k.index, promptIds: k.promptIds, chosenIds: k.completionIds, rejectedIds: other.slice(0, room), desirable: k.desirable };
  });
  return { pairs, stats };
}
