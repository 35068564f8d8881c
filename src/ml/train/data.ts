// Training data on the host side: a resumable, deterministically shuffled cursor over examples,
// SFT example preparation (truncation rule, label masks), optional packing, and collation into
// right-padded batches. Everything here is plain arrays; tensors are made by the loss functions.
import { Rng, deriveSeed } from './rng.js';

// ---------------------------------------------------------------------------------------------
// Cursor

/** Where a data stream stands: enough to resume it exactly (the shuffle is a function of seed and epoch). */
export interface CursorState {
  /** Number of examples the cursor walks over (checked on restore). */
  size: number;
  seed: number;
  epoch: number;
  /** Index into this epoch's permutation of the next example to hand out. */
  position: number;
  /** false: every epoch walks the examples in dataset order (TRL's shuffle off, for exact reproduction). Absent: shuffled. */
  shuffle?: false;
}

export interface CursorOptions {
  /** Default true: each epoch a fresh seeded permutation. */
  shuffle?: boolean;
}

/**
 * Hands out example indices epoch after epoch, each epoch a fresh permutation drawn from
 * (seed, epoch) alone, so no RNG stream has to be saved. Batches are taken from one continuous
 * stream: a batch that reaches the end of an epoch continues into the next one's permutation,
 * so every batch has the same size and nothing is dropped (unlike torch's drop_last).
 */
export class DataCursor {
  private st: CursorState;
  private perm: number[] = [];
  private permEpoch = -1;

  constructor(size: number, seed: number, state?: CursorState, o: CursorOptions = {}) {
    if (!Number.isInteger(size) || size <= 0) throw new RangeError(`DataCursor needs at least one example, got ${size}`);
    // `shuffle` is written only when off, so a shuffled cursor's state (and checkpoint) is unchanged
    this.st = { size, seed: seed >>> 0, epoch: 0, position: 0, ...(o.shuffle === false ? { shuffle: false as const } : {}) };
    if (state) this.restore(state);
  }

  private permutation(): number[] {
    if (this.permEpoch !== this.st.epoch) {
      this.perm =
        this.st.shuffle === false
          ? Array.from({ length: this.st.size }, (_, i) => i)
          : new Rng(deriveSeed(this.st.seed, 'epoch', this.st.epoch)).permutation(this.st.size);
      this.permEpoch = this.st.epoch;
    }
    return this.perm;
  }

  /** The next `n` example indices. */
  take(n: number): number[] {
    const out: number[] = [];
    while (out.length < n) {
      const perm = this.permutation();
      out.push(perm[this.st.position]!);
      this.st.position++;
      if (this.st.position >= this.st.size) {
        this.st.epoch++;
        this.st.position = 0;
      }
    }
    return out;
  }

  /** Fractional epochs consumed (TRL's `epoch` metric). */
  epochFloat(): number {
    return this.st.epoch + this.st.position / this.st.size;
  }

  state(): CursorState {
    return { ...this.st };
  }

  restore(s: CursorState): void {
    if (s.size !== this.st.size) throw new RangeError(`data cursor was saved over ${s.size} examples, but there are ${this.st.size} now`);
    if (!(Number.isInteger(s.epoch) && s.epoch >= 0 && Number.isInteger(s.position) && s.position >= 0 && s.position < s.size)) {
      throw new RangeError('invalid data cursor state');
    }
    if ((s.shuffle === false) !== (this.st.shuffle === false)) throw new RangeError(`data cursor was saved with shuffle ${s.shuffle !== false}, but this run has shuffle ${this.st.shuffle !== false}`);
    this.st = { size: s.size, seed: s.seed >>> 0, epoch: s.epoch, position: s.position, ...(s.shuffle === false ? { shuffle: false as const } : {}) };
  }
}

// ---------------------------------------------------------------------------------------------
// Examples and batches

/** A tokenized training sequence: `lossMask[t] = 1` when token t is a target (predicted from tokens < t). */
export interface Example {
  ids: number[];
  lossMask: number[];
}

/** A right-padded batch, padded to its longest sequence (not to the context length). */
export interface Batch {
  batchSize: number;
  seqLen: number;
  /** [B·T] token ids; padding positions hold padId. */
  ids: Int32Array;
  /** [B·T] 1 for real tokens, 0 for padding. */
  attentionMask: Float32Array;
  /** [B·T] 1 where the token is a loss target (never on padding or position 0). */
  lossMask: Float32Array;
  /** Σ lossMask: the number of target tokens (the loss weight). */
  targetTokens: number;
}

export function collate(examples: Example[], padId: number): Batch {
  if (examples.length === 0) throw new RangeError('collate: empty batch');
  const B = examples.length;
  const T = Math.max(...examples.map((e) => e.ids.length));
  const ids = new Int32Array(B * T).fill(padId);
  const attentionMask = new Float32Array(B * T);
  const lossMask = new Float32Array(B * T);
  let targets = 0;
  examples.forEach((e, b) => {
    for (let t = 0; t < e.ids.length; t++) {
      ids[b * T + t] = e.ids[t]!;
      attentionMask[b * T + t] = 1;
      const m = t === 0 ? 0 : e.lossMask[t]! ? 1 : 0;
      lossMask[b * T + t] = m;
      targets += m;
    }
  });
  return { batchSize: B, seqLen: T, ids, attentionMask, lossMask, targetTokens: targets };
}

// ---------------------------------------------------------------------------------------------
// SFT examples

export interface SftPair {
  promptIds: number[];
  completionIds: number[];
}

export interface PrepareStats {
  /** Examples kept as they were. */
  kept: number;
  /** Examples kept with their completion cut at maxLength. */
  truncated: number;
  /** Examples dropped: the prompt leaves no room for a completion token, or the completion is empty. */
  dropped: number;
}

/**
 * Builds SFT examples: prompt tokens are context only, completion tokens are targets.
 *
 * Truncation rule (as TRL's SFTTrainer, which keeps the start of the sequence): when
 * prompt + completion is longer than `maxLength`, the completion is cut on the right. An example
 * whose prompt alone takes `maxLength` tokens or more (no completion token would remain), or whose
 * completion is empty, is dropped and counted — never truncated into nonsense, never a crash.
 * With an empty prompt the first completion token has nothing to condition on and is not a target.
 */
export function prepareSftExamples(pairs: SftPair[], maxLength: number): { examples: Example[]; kept: number[]; stats: PrepareStats } {
  if (!Number.isInteger(maxLength) || maxLength < 2) throw new RangeError(`maxLength must be an integer ≥ 2, got ${maxLength}`);
  const stats: PrepareStats = { kept: 0, truncated: 0, dropped: 0 };
  const examples: Example[] = [];
  const kept: number[] = [];
  pairs.forEach((p, i) => {
    const P = p.promptIds.length;
    if (p.completionIds.length === 0 || P >= maxLength || (P === 0 && p.completionIds.length < 2)) {
      stats.dropped++;
      return;
    }
    const room = maxLength - P;
    const completion = p.completionIds.length > room ? p.completionIds.slice(0, room) : p.completionIds;
    if (completion.length < p.completionIds.length) stats.truncated++;
    else stats.kept++;
    const ids = [...p.promptIds, ...completion];
    const lossMask = ids.map((_, t) => (t >= P && t > 0 ? 1 : 0));
    examples.push({ ids, lossMask });
    kept.push(i);
  });
  return { examples, kept, stats };
}

/**
 * Packing (optional for SFT): concatenates whole examples, in the given order, into rows of at
 * most `maxLength` tokens (greedy, next-fit; an example never straddles two rows), which cuts the
 * padding of batches of short examples. As in TRL's original ConstantLengthDataset, tokens in a
 * row attend to the earlier examples of the same row (no block-diagonal mask) and positions run
 * on across the row; the loss mask stays per token, so only completion tokens are targets. The
 * first token of every packed example is never a target. Shuffle before packing if order matters.
 */
export function packExamples(examples: Example[], maxLength: number): Example[] {
  const rows: Example[] = [];
  let cur: Example | undefined;
  for (const e of examples) {
    if (e.ids.length > maxLength) throw new RangeError(`packExamples: an example of ${e.ids.length} tokens exceeds maxLength ${maxLength}`);
    if (!cur || cur.ids.length + e.ids.length > maxLength) {
      cur = { ids: [], lossMask: [] };
      rows.push(cur);
    }
    cur.ids.push(...e.ids);
    cur.lossMask.push(0, ...e.lossMask.slice(1));
  }
  return rows;
}

// ---------------------------------------------------------------------------------------------
// A batch source for the training loop

/** What the training loop pulls micro-batches from; its state goes into checkpoints. */
/**
 * Thrown by a BatchSource whose next batch needs input that is not there yet (human labels): the
 * loop checkpoints the step it stands at and rethrows; the stage answers 'waiting' and resumes from
 * that checkpoint when asked again. The source must leave its state as it was before the call.
 */
export class WaitingForInput extends Error {
  constructor(
    message: string,
    readonly done: number,
    readonly total: number,
    readonly retryAfterMs: number,
  ) {
    super(message);
    this.name = 'WaitingForInput';
  }
}

export interface BatchSource<B> {
  /** The next micro-batch; a promise where producing it is asynchronous (sampling from the policy). */
  next(): B | Promise<B>;
  /** JSON-serializable; restore(state()) resumes exactly. */
  state(): unknown;
  restore(state: unknown): void;
  /** Fractional epochs consumed. */
  epoch(): number;
}

/** Shuffled micro-batches of `batchSize` examples, collated with right padding. */
export class ExampleBatches implements BatchSource<Batch> {
  readonly cursor: DataCursor;

  constructor(
    readonly examples: Example[],
    readonly batchSize: number,
    readonly padId: number,
    seed: number,
    o: CursorOptions = {},
  ) {
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`batchSize must be a positive integer, got ${batchSize}`);
    this.cursor = new DataCursor(examples.length, seed, undefined, o);
  }

  next(): Batch {
    return collate(this.cursor.take(this.batchSize).map((i) => this.examples[i]!), this.padId);
  }
  state(): CursorState {
    return this.cursor.state();
  }
  restore(state: unknown): void {
    this.cursor.restore(state as CursorState);
  }
  epoch(): number {
    return this.cursor.epochFloat();
  }
}

/** Consecutive, unshuffled batches covering every example once (evaluation). */
export function sequentialBatches(examples: Example[], batchSize: number, padId: number): Batch[] {
  const out: Batch[] = [];
  for (let i = 0; i < examples.length; i += batchSize) out.push(collate(examples.slice(i, i + batchSize), padId));
  return out;
}
