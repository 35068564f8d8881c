// Both tasks in one SFT corpus: a pipeline's SFT stage (and its BPE tokenizer) reads one dataset,
// and the demo trains one model that can do both, so that DPO on sentiment can be checked for
// side effects on counting. The records are exactly those of the two task generators with the same
// seed, shuffled together.
import * as countJudge from '../../../judges/count.mjs';
import * as sentimentJudge from '../../../judges/sentiment.mjs';
import { generateCount } from './count.js';
import { Prng } from './prng.js';
import { generateSentiment } from './sentiment.js';
import { checkCount, type SynthDataset } from './types.js';

export const MIXED_GENERATOR_VERSION = '2';

export interface MixedOptions {
  seed: number;
  /** Sentiment SFT records (the first N of `synth sentiment --n-train N`). */
  nSentiment: number;
  /** Count SFT records (the first N of `synth count --n-train N`). */
  nCount: number;
}

export const MIXED_DEFAULTS: MixedOptions = { seed: 1, nSentiment: 8000, nCount: 4000 };

export function generateMixed(options: Partial<MixedOptions> = {}): SynthDataset {
  const o = { ...MIXED_DEFAULTS, ...options };
  checkCount('--seed', o.seed, 0, 0xffffffff);
  checkCount('--n-sentiment', o.nSentiment, 1, 1_000_000);
  checkCount('--n-count', o.nCount, 1, 1_000_000);
  // Small sizes for the files not used here keep this fast; each file has its own stream, so the
  // SFT records do not depend on them.
  const small = { nPrompts: 1, nEvalPrompts: 1, nPrefs: 1, nEvalPrefs: 1 };
  const sent = generateSentiment({ ...small, seed: o.seed, nTrain: o.nSentiment });
  const count = generateCount({ ...small, seed: o.seed, nTrain: o.nCount });
  const get = (ds: SynthDataset, name: string) => ds.files.find((f) => f.name === name)!.records;
  const mix = (name: string) => new Prng(o.seed, `mixed/${name}`).shuffle([...get(sent, name), ...get(count, name)]);
  return {
    task: 'mixed',
    generatorVersion: MIXED_GENERATOR_VERSION,
    seed: o.seed,
    options: { ...o },
    judge: { module: 'judges/sentiment.mjs + judges/count.mjs', name: `${sentimentJudge.name} + ${countJudge.name}`, version: `${sentimentJudge.version} + ${countJudge.version}` },
    files: [
      { name: 'sft.jsonl', kind: 'sft', description: `SFT corpus of both tasks, shuffled: ${o.nSentiment} sentiment + ${o.nCount} count records`, records: mix('sft.jsonl') },
      { name: 'sft_eval.jsonl', kind: 'sft', description: 'held-out SFT records of both tasks (eval prompts), shuffled', records: mix('sft_eval.jsonl') },
    ],
  };
}
