// The counting task: instructions with a verifiable answer ("list three fruits:" → " apple, pear,
// plum."), checked exactly by judges/count.mjs. Trained beside the sentiment task, it shows whether
// aligning one behaviour (sentiment) breaks another (following a format and a count).
import * as judge from '../../../judges/count.mjs';
import { inputError } from '../../errors.js';
import { Prng } from './prng.js';
import { checkCount, distinctPrompts, promptIn, splitOf, type SynthDataset, type SynthFile, type TaskSizes } from './types.js';

export const COUNT_GENERATOR_VERSION = '2';

export interface CountOptions extends TaskSizes {
  /** Share of SFT completions that break the instruction (so the SFT model is imperfect, as real ones are). */
  errorRate: number;
}

export const COUNT_DEFAULTS: CountOptions = {
  seed: 1,
  nTrain: 4000,
  nSftEval: 300,
  nPrompts: 40,
  nEvalPrompts: 40,
  nPrefs: 1000,
  nEvalPrefs: 200,
  errorRate: 0.2,
};

const SHARES = { eval: 0.25, collect: 0.25 };
const CATEGORY_NAMES = Object.keys(judge.CATEGORIES);
const WORD_OF = new Map(Object.entries(judge.NUMBER_WORDS).map(([w, n]) => [n, w]));
const COUNTS = Array.from({ length: judge.MAX_COUNT - judge.MIN_COUNT + 1 }, (_, i) => judge.MIN_COUNT + i);
/** Every instruction the generator writes: verbs × counts (as word or digits) × categories. */
export const COUNT_PROMPT_SPACE = judge.INSTRUCTION_VERBS.length * COUNTS.length * 2 * CATEGORY_NAMES.length;

function drawPrompt(rng: Prng): string {
  const n = rng.pick(COUNTS);
  const count = rng.chance(0.5) ? WORD_OF.get(n)! : String(n);
  return `${rng.pick(judge.INSTRUCTION_VERBS)} ${count} ${rng.pick(CATEGORY_NAMES)}:`;
}

function instructionOf(prompt: string): { n: number; members: readonly string[]; category: string } {
  const instr = judge.parseInstruction(prompt);
  if (!instr) throw inputError(`not a counting instruction: ${JSON.stringify(prompt)}`);
  return { n: instr.n, category: instr.category, members: judge.CATEGORIES[instr.category]! };
}

const list = (items: string[]) => ' ' + items.join(', ') + '.';

/** A compliant answer: n distinct members of the category. */
export function correctCompletion(rng: Prng, prompt: string): string {
  const { n, members } = instructionOf(prompt);
  return list(rng.sample(members, n));
}

/** An answer that breaks the instruction in one of the usual ways: a count off by one, an outsider, a repeat. */
export function wrongCompletion(rng: Prng, prompt: string): string {
  const { n, members, category } = instructionOf(prompt);
  const kind = rng.weighted([
    ['count', 0.5],
    ['outsider', 0.25],
    ['repeat', 0.25],
  ] as const);
  if (kind === 'count') {
    const m = n === judge.MIN_COUNT ? n + 1 : n === judge.MAX_COUNT ? n - 1 : rng.pick([n - 1, n + 1]);
    return list(rng.sample(members, m));
  }
  const items = rng.sample(members, n);
  const i = rng.int(n);
  if (kind === 'outsider') {
    const other = judge.CATEGORIES[rng.pick(CATEGORY_NAMES.filter((c) => c !== category))]!;
    items[i] = rng.pick(other);
  } else {
    const j = (i + 1 + rng.int(n - 1)) % n;
    items[i] = items[j]!;
  }
  return list(items);
}

export function validateCountOptions(o: CountOptions): CountOptions {
  checkCount('--seed', o.seed, 0, 0xffffffff);
  checkCount('--n-train', o.nTrain, 1, 1_000_000);
  checkCount('--n-sft-eval', o.nSftEval, 1, 100_000);
  checkCount('--n-prompts', o.nPrompts, 1, COUNT_PROMPT_SPACE);
  checkCount('--n-eval-prompts', o.nEvalPrompts, 1, COUNT_PROMPT_SPACE);
  checkCount('--n-prefs', o.nPrefs, 1, 1_000_000);
  checkCount('--n-eval-prefs', o.nEvalPrefs, 1, 100_000);
  if (!(Number.isFinite(o.errorRate) && o.errorRate >= 0 && o.errorRate <= 1)) {
    throw inputError(`--error-rate must be a number from 0 to 1, got ${o.errorRate}`);
  }
  return o;
}

export function generateCount(options: Partial<CountOptions> = {}): SynthDataset {
  const o = validateCountOptions({ ...COUNT_DEFAULTS, ...options });
  const inSplit = (split: string) => (p: string) => splitOf(o.seed, p, SHARES) === split;
  const stream = (name: string) => new Prng(o.seed, `count/${name}`);

  const sftRecords = (rng: Prng, n: number, split: string) =>
    Array.from({ length: n }, () => {
      const prompt = promptIn(rng, drawPrompt, inSplit(split));
      return { prompt, completion: rng.chance(o.errorRate) ? wrongCompletion(rng, prompt) : correctCompletion(rng, prompt) };
    });
  const pairs = (rng: Prng, n: number, split: string) =>
    Array.from({ length: n }, () => {
      const prompt = promptIn(rng, drawPrompt, inSplit(split));
      return { prompt, chosen: correctCompletion(rng, prompt), rejected: wrongCompletion(rng, prompt) };
    });

  const sft = sftRecords(stream('sft'), o.nTrain, 'sft');
  const sftEval = sftRecords(stream('sft_eval'), o.nSftEval, 'eval');
  const prompts = distinctPrompts(stream('prompts'), o.nPrompts, drawPrompt, inSplit('collect'), '--n-prompts');
  const evalPrompts = distinctPrompts(stream('eval_prompts'), o.nEvalPrompts, drawPrompt, inSplit('eval'), '--n-eval-prompts');
  const prefs = pairs(stream('prefs'), o.nPrefs, 'collect');
  const evalPrefs = pairs(stream('eval_prefs'), o.nEvalPrefs, 'eval');

  const files: SynthFile[] = [
    { name: 'sft.jsonl', kind: 'sft', description: `SFT corpus: counting instructions and lists, ${Math.round(o.errorRate * 100)}% of them wrong (training prompts)`, records: sft },
    { name: 'sft_eval.jsonl', kind: 'sft', description: 'held-out SFT records on eval prompts, same error rate', records: sftEval },
    { name: 'prompts.jsonl', kind: 'prompt', description: 'distinct instructions for pair collection (disjoint from SFT and eval prompts)', records: prompts.map((prompt) => ({ prompt })) },
    { name: 'eval_prompts.jsonl', kind: 'prompt', description: 'distinct held-out instructions for evaluation', records: evalPrompts.map((prompt) => ({ prompt })) },
    { name: 'prefs.jsonl', kind: 'preference', description: 'pairs on collection prompts: a compliant list (chosen) against a non-compliant one', records: prefs },
    { name: 'eval_prefs.jsonl', kind: 'preference', description: 'held-out pairs on eval prompts: compliant (chosen) against non-compliant', records: evalPrefs },
  ];
  return {
    task: 'count',
    generatorVersion: COUNT_GENERATOR_VERSION,
    seed: o.seed,
    options: { ...o },
    judge: { module: 'judges/count.mjs', name: judge.name, version: judge.version },
    files,
  };
}
