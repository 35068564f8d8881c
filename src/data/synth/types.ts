// What a synthetic-data generator returns: named JSONL files of TRL-format records, plus the
// provenance (task, generator version, seed, options, judge) that goes into manifest.json.
import { inputError } from '../../errors.js';
import { hash32, type Prng } from './prng.js';

/** The seed and the size of each file a task generator writes (every task writes the same six files). */
export interface TaskSizes {
  seed: number;
  /** SFT records {prompt, completion} on training prompts. */
  nTrain: number;
  /** Held-out SFT records on eval prompts (eval loss / perplexity). */
  nSftEval: number;
  /** Distinct prompts for pair collection (disjoint from SFT and eval prompts). */
  nPrompts: number;
  /** Distinct held-out prompts for evaluation. */
  nEvalPrompts: number;
  /** Judge-labeled preference pairs on collection prompts (off-policy, for RM/DPO without collection). */
  nPrefs: number;
  /** Judge-labeled held-out preference pairs on eval prompts (eval_rewards/accuracies). */
  nEvalPrefs: number;
}

/** TRL record kinds: SFT {prompt, completion}; prompt-only {prompt}; preference {prompt, chosen, rejected}. */
export type SynthKind = 'sft' | 'prompt' | 'preference';

export interface SynthFile {
  name: string;
  kind: SynthKind;
  description: string;
  records: Record<string, string>[];
}

export interface SynthDataset {
  task: string;
  generatorVersion: string;
  seed: number;
  options: Record<string, number>;
  /** The rule judge that defines the task's ground truth (path relative to the package root). */
  judge: { module: string; name: string; version: string };
  files: SynthFile[];
}

/** Which part of the prompt space a prompt belongs to: disjoint, so eval prompts are never trained on. */
export type Split = 'sft' | 'collect' | 'eval';

/**
 * Assigns a prompt to a split by a seeded hash of its text, so the split of a prompt does not
 * depend on how many prompts were drawn or in which order, and each split has the same
 * distribution of prompt shapes.
 */
export function splitOf(seed: number, prompt: string, shares: { eval: number; collect: number }): Split {
  const u = hash32(seed, 'split\u0000' + prompt) / 4294967296;
  if (u < shares.eval) return 'eval';
  if (u < shares.eval + shares.collect) return 'collect';
  return 'sft';
}

/** n distinct prompts of one split, drawn from `draw` in order of first appearance. */
export function distinctPrompts(rng: Prng, n: number, draw: (rng: Prng) => string, inSplit: (p: string) => boolean, option: string): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  const maxTries = 200 * n + 10_000;
  for (let tries = 0; out.length < n && tries < maxTries; tries++) {
    const p = draw(rng);
    if (seen.has(p) || !inSplit(p)) continue;
    seen.add(p);
    out.push(p);
  }
  if (out.length < n) {
    throw inputError(`only ${out.length} distinct prompts could be drawn for ${option} (asked for ${n}); ask for fewer`);
  }
  return out;
}

/** Draws until `inSplit` accepts (for records whose prompts may repeat). */
export function promptIn(rng: Prng, draw: (rng: Prng) => string, inSplit: (p: string) => boolean): string {
  for (let tries = 0; tries < 100_000; tries++) {
    const p = draw(rng);
    if (inSplit(p)) return p;
  }
  throw new Error('no prompt of the requested split after 100000 draws');
}

/** Validates a count option: an integer in [min, max]. */
export function checkCount(option: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw inputError(`${option} must be an integer from ${min} to ${max}, got ${value}`);
  }
  return value;
}
