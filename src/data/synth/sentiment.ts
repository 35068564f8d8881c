// The controlled-sentiment task, after Rafailov et al. 2023 ("Direct Preference Optimization"),
// §6.1: there, GPT-2 continues prefixes of IMDb reviews and a sentiment classifier is the
// ground-truth reward. Here the reviews are one or two short template sentences over a small
// vocabulary, of mixed sentiment, and judges/sentiment.mjs (a lexicon sum) is the ground truth,
// so a tiny model trained from scratch can learn the language in minutes and DPO has a clear,
// exactly measurable target: make the continuation positive.
import * as judge from '../../../judges/sentiment.mjs';
import { inputError } from '../../errors.js';
import { Prng } from './prng.js';
import { checkCount, distinctPrompts, promptIn, splitOf, type SynthDataset, type SynthFile, type TaskSizes } from './types.js';

// Bump when the output for a given seed and options changes.
export const SENTIMENT_GENERATOR_VERSION = '1';

export interface SentimentOptions extends TaskSizes {
  /**
   * Least |raw score difference| of a labeled pair; closer pairs are drawn again. 2 = at least the gap
   * between "good" and "bad" (or "great" and a neutral word): the pairs a labeler would call clear.
   */
  minMargin: number;
}

export const SENTIMENT_DEFAULTS: SentimentOptions = {
  seed: 1,
  nTrain: 8000,
  nSftEval: 500,
  nPrompts: 3000,
  nEvalPrompts: 400,
  nPrefs: 2000,
  nEvalPrefs: 400,
  minMargin: 2,
};

// Share of the prompt space (by hash) held out for evaluation and for pair collection.
const SHARES = { eval: 0.15, collect: 0.25 };

interface Noun {
  word: string;
  plural: boolean;
}
const SINGULAR = ['movie', 'film', 'show', 'story', 'plot', 'script', 'ending', 'acting', 'cast', 'soundtrack', 'music', 'dialogue', 'director', 'pacing', 'sequel', 'episode', 'finale', 'humor', 'writing', 'villain', 'hero', 'lead'];
const PLURAL = ['characters', 'actors', 'effects', 'visuals', 'songs', 'jokes', 'scenes', 'costumes'];
const NOUNS: Noun[] = [...SINGULAR.map((word) => ({ word, plural: false })), ...PLURAL.map((word) => ({ word, plural: true }))];
const DETS = { singular: ['the', 'this', 'that'], plural: ['the', 'these', 'those'] };
// Neutral noun modifiers: they only widen the prompt space.
const NOUN_MODS = ['new', 'first', 'final', 'main', 'second', 'whole', 'last', 'latest'];
const OPENERS = ['honestly,', 'overall,', 'frankly,', 'in short,', 'i think', 'i felt that', 'to me,', 'all in all,'];
type Tense = 'past' | 'present';
const COPULAS: Record<Tense, { singular: string[]; plural: string[] }> = {
  past: { singular: ['was', 'was', 'felt', 'seemed'], plural: ['were', 'were', 'felt', 'seemed'] },
  present: { singular: ['is', 'is', 'feels', 'seems'], plural: ['are', 'are', 'feel', 'seem'] },
};

const INTENSIFIER_WORDS = Object.keys(judge.INTENSIFIERS);
const POSITIVE_VERBS = Object.entries(judge.VERBS).filter(([, p]) => p > 0).map(([w]) => w);
const NEGATIVE_VERBS = Object.entries(judge.VERBS).filter(([, p]) => p < 0).map(([w]) => w);
const NEUTRAL_VERBS = Object.entries(judge.VERBS).filter(([, p]) => p === 0).map(([w]) => w);

type Sign = 1 | -1 | 0;

/** The opening of a review, which is also a prompt: [opener] det [modifier] noun [copula]. */
interface Opening {
  text: string;
  noun: Noun;
  tense: Tense;
  hasCopula: boolean;
}

function drawOpening(rng: Prng): Opening {
  const noun = rng.pick(NOUNS);
  const tense: Tense = rng.chance(0.65) ? 'past' : 'present';
  const words: string[] = [];
  if (rng.chance(0.3)) words.push(rng.pick(OPENERS));
  words.push(rng.pick(noun.plural ? DETS.plural : DETS.singular));
  if (rng.chance(0.3)) words.push(rng.pick(NOUN_MODS));
  words.push(noun.word);
  const hasCopula = rng.chance(0.75);
  if (hasCopula) words.push(rng.pick(COPULAS[tense][noun.plural ? 'plural' : 'singular']));
  return { text: words.join(' '), noun, tense, hasCopula };
}

const NOUN_BY_WORD = new Map(NOUNS.map((n) => [n.word, n]));
const TENSE_OF_COPULA = new Map<string, Tense>();
for (const tense of ['past', 'present'] as const) for (const w of [...COPULAS[tense].singular, ...COPULAS[tense].plural]) TENSE_OF_COPULA.set(w, tense);

/** Reads an opening back from its text, so a completion agrees with its prompt's noun and copula. */
function parseOpening(rng: Prng, text: string): Opening {
  const words = text.split(' ');
  const noun = words.map((w) => NOUN_BY_WORD.get(w)).findLast((n) => n !== undefined);
  if (!noun) throw inputError(`not a sentiment-task prompt (no known subject): ${JSON.stringify(text)}`);
  const copulaTense = TENSE_OF_COPULA.get(words[words.length - 1]!);
  // A copula-less prompt leaves the tense open: draw it.
  return { text, noun, hasCopula: copulaTense !== undefined, tense: copulaTense ?? (rng.chance(0.65) ? 'past' : 'present') };
}
function drawPromptText(rng: Prng): string {
  return drawOpening(rng).text;
}

function adjective(rng: Prng, sign: Sign, not?: string): string {
  if (sign === 0) return rng.pick(judge.ADJECTIVES.neutral);
  const groups = sign > 0 ? judge.ADJECTIVES.positive : judge.ADJECTIVES.negative;
  for (;;) {
    const w = rng.pick(groups[rng.pick([1, 2, 3] as const)]);
    if (w !== not) return w;
  }
}

// After "not" only the common boosters read naturally ("not very good", never "not slightly good").
const BOOSTERS_AFTER_NOT = ['very', 'really', 'so'];

function maybeIntensifier(rng: Prng, p: number, words: readonly string[] = INTENSIFIER_WORDS): string[] {
  return rng.chance(p) ? [rng.pick(words)] : [];
}

/** "[not] [intensifier] adjective [and [intensifier] adjective]" whose sentiment has the sign given. */
function predicate(rng: Prng, sign: Sign): string {
  const words: string[] = [];
  let first: string;
  if (sign !== 0 && rng.chance(0.12)) {
    // Negation of the opposite polarity keeps the intended sign: "not bad" reads positive.
    words.push('not', ...maybeIntensifier(rng, 0.25, BOOSTERS_AFTER_NOT));
    first = adjective(rng, (-sign) as Sign);
  } else {
    words.push(...maybeIntensifier(rng, 0.3));
    first = adjective(rng, sign);
  }
  words.push(first);
  if (rng.chance(0.3)) {
    const second: Sign = sign !== 0 && rng.chance(0.85) ? sign : 0;
    words.push('and', ...maybeIntensifier(rng, 0.3), adjective(rng, second, first));
  }
  return words.join(' ');
}

function clauseSign(rng: Prng, latent: Sign): Sign {
  if (latent === 0) return rng.chance(0.5) ? 1 : -1;
  return rng.weighted<Sign>([
    [latent, 0.8],
    [0, 0.1],
    [(-latent) as Sign, 0.1],
  ]);
}

function secondSentence(rng: Prng, sign: Sign, firstSign: Sign, exclude: Noun, tense: Tense): string {
  const connector = sign !== firstSign && sign !== 0 && firstSign !== 0 ? rng.pick(['but ', 'but ', '']) : rng.pick(['and ', 'also, ', '', '']);
  let body: string;
  if (rng.chance(0.6)) {
    let noun = rng.pick(NOUNS);
    while (noun.word === exclude.word) noun = rng.pick(NOUNS);
    const cop = rng.pick(COPULAS[tense][noun.plural ? 'plural' : 'singular']);
    body = `the ${noun.word} ${cop} ${predicate(rng, sign)}`;
  } else {
    const verb = rng.pick(sign > 0 ? POSITIVE_VERBS : sign < 0 ? NEGATIVE_VERBS : NEUTRAL_VERBS);
    let object = 'it';
    if (rng.chance(0.5)) {
      let noun = rng.pick(NOUNS);
      while (noun.word === exclude.word) noun = rng.pick(NOUNS);
      object = `the ${noun.word}`;
    }
    body = `i ${verb} ${object}`;
  }
  return connector + body + '.';
}

/**
 * A continuation of the opening: the rest of the first sentence, then (60% of the time, always
 * when the review is mixed) a second sentence. `latent` is the review's overall sentiment:
 * positive, negative or mixed (0: the two sentences disagree).
 */
function continuation(rng: Prng, opening: Opening, latent: Sign): string {
  const words: string[] = [];
  if (!opening.hasCopula) words.push(rng.pick(COPULAS[opening.tense][opening.noun.plural ? 'plural' : 'singular']));
  const s1 = clauseSign(rng, latent);
  words.push(predicate(rng, s1) + '.');
  if (latent === 0 || rng.chance(0.6)) {
    const s2: Sign = latent === 0 ? ((-s1 || 1) as Sign) : clauseSign(rng, latent);
    words.push(secondSentence(rng, s2, s1, opening.noun, opening.tense));
  }
  return ' ' + words.join(' ');
}

function drawLatent(rng: Prng): Sign {
  return rng.weighted<Sign>([
    [1, 0.4],
    [-1, 0.4],
    [0, 0.2],
  ]);
}

/**
 * A completion drawn from the corpus distribution: what an SFT model that learned the corpus
 * samples. `latent` forces the review's overall sentiment (1 positive, −1 negative, 0 mixed), e.g.
 * to estimate what a policy that learned "always positive" would score.
 */
export function sampleCompletion(rng: Prng, prompt: string, latent?: -1 | 0 | 1): string {
  return continuation(rng, parseOpening(rng, prompt), latent ?? drawLatent(rng));
}

/** Every opening the generator can write is a prompt; this draws one from its distribution. */
export function samplePrompt(rng: Prng): string {
  return drawPromptText(rng);
}

export function validateSentimentOptions(o: SentimentOptions): SentimentOptions {
  checkCount('--seed', o.seed, 0, 0xffffffff);
  checkCount('--n-train', o.nTrain, 1, 1_000_000);
  checkCount('--n-sft-eval', o.nSftEval, 1, 100_000);
  checkCount('--n-prompts', o.nPrompts, 1, 20_000);
  checkCount('--n-eval-prompts', o.nEvalPrompts, 1, 10_000);
  checkCount('--n-prefs', o.nPrefs, 1, 1_000_000);
  checkCount('--n-eval-prefs', o.nEvalPrefs, 1, 100_000);
  if (!(Number.isFinite(o.minMargin) && o.minMargin >= 0 && o.minMargin <= 6)) {
    throw inputError(`--min-margin must be a number from 0 to 6, got ${o.minMargin}`);
  }
  return o;
}

function preferencePairs(rng: Prng, n: number, drawPrompt: () => string, minMargin: number): Record<string, string>[] {
  const out: Record<string, string>[] = [];
  while (out.length < n) {
    const prompt = drawPrompt();
    const a = sampleCompletion(rng, prompt);
    const b = sampleCompletion(rng, prompt);
    const ra = judge.rawScore(prompt + ' ' + a);
    const rb = judge.rawScore(prompt + ' ' + b);
    // Ties and near-ties carry no label worth learning from; draw again.
    if (a === b || Math.abs(ra - rb) < Math.max(minMargin, 1e-9)) continue;
    out.push(ra > rb ? { prompt, chosen: a, rejected: b } : { prompt, chosen: b, rejected: a });
  }
  return out;
}

export function generateSentiment(options: Partial<SentimentOptions> = {}): SynthDataset {
  const o = validateSentimentOptions({ ...SENTIMENT_DEFAULTS, ...options });
  const inSplit = (split: string) => (p: string) => splitOf(o.seed, p, SHARES) === split;
  // One stream per file, so changing one file's size leaves the others as they were.
  const stream = (name: string) => new Prng(o.seed, `sentiment/${name}`);

  const sftRng = stream('sft');
  const sft = Array.from({ length: o.nTrain }, () => {
    const prompt = promptIn(sftRng, drawPromptText, inSplit('sft'));
    return { prompt, completion: sampleCompletion(sftRng, prompt) };
  });
  const sftEvalRng = stream('sft_eval');
  const sftEval = Array.from({ length: o.nSftEval }, () => {
    const prompt = promptIn(sftEvalRng, drawPromptText, inSplit('eval'));
    return { prompt, completion: sampleCompletion(sftEvalRng, prompt) };
  });
  const prompts = distinctPrompts(stream('prompts'), o.nPrompts, drawPromptText, inSplit('collect'), '--n-prompts');
  const evalPrompts = distinctPrompts(stream('eval_prompts'), o.nEvalPrompts, drawPromptText, inSplit('eval'), '--n-eval-prompts');
  const prefsRng = stream('prefs');
  const prefs = preferencePairs(prefsRng, o.nPrefs, () => promptIn(prefsRng, drawPromptText, inSplit('collect')), o.minMargin);
  const evalPrefsRng = stream('eval_prefs');
  const evalPrefs = preferencePairs(evalPrefsRng, o.nEvalPrefs, () => promptIn(evalPrefsRng, drawPromptText, inSplit('eval')), o.minMargin);

  const files: SynthFile[] = [
    { name: 'sft.jsonl', kind: 'sft', description: 'SFT corpus: review openings and their continuations, mixed sentiment (training prompts)', records: sft },
    { name: 'sft_eval.jsonl', kind: 'sft', description: 'held-out SFT records on eval prompts (eval loss / perplexity)', records: sftEval },
    { name: 'prompts.jsonl', kind: 'prompt', description: 'distinct prompts for pair collection (disjoint from SFT and eval prompts)', records: prompts.map((prompt) => ({ prompt })) },
    { name: 'eval_prompts.jsonl', kind: 'prompt', description: 'distinct held-out prompts for evaluation', records: evalPrompts.map((prompt) => ({ prompt })) },
    { name: 'prefs.jsonl', kind: 'preference', description: `judge-labeled pairs of corpus continuations on collection prompts (|raw score gap| >= ${o.minMargin})`, records: prefs },
    { name: 'eval_prefs.jsonl', kind: 'preference', description: `judge-labeled held-out pairs on eval prompts (|raw score gap| >= ${o.minMargin})`, records: evalPrefs },
  ];
  return {
    task: 'sentiment',
    generatorVersion: SENTIMENT_GENERATOR_VERSION,
    seed: o.seed,
    options: { ...o },
    judge: { module: 'judges/sentiment.mjs', name: judge.name, version: judge.version },
    files,
  };
}
