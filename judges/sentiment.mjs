// Rule judge: lexicon-based sentiment of a short review — the ground-truth "labeler" of the
// controlled-sentiment task (after Rafailov et al. 2023, "Direct Preference Optimization", §6.1,
// where a pretrained sentiment classifier scores IMDb continuations; here a lexicon plays that
// part so the task is small, exact and fully reproducible).
//
// A judge module is plain JavaScript (ESM) so it loads with no build step. It exports `name`,
// `version` and `score(prompt, response) → number` (higher is better). Copy this file as a
// starting point for your own judge; see docs/synth.md.
//
// The lexicon below is also what `alignflow synth sentiment` writes reviews from, so generator and
// judge can never disagree about a word.

export const name = 'sentiment-lexicon';
// Bump when the lexicon or the scoring rule changes: labels record the judge's name and version.
export const version = '1';

/** Adjectives by polarity strength (1 mild, 2 clear, 3 strong); the sign is the sentiment. */
export const ADJECTIVES = Object.freeze({
  positive: Object.freeze({
    1: Object.freeze(['good', 'nice', 'decent', 'solid', 'fun', 'pleasant', 'clever', 'sweet']),
    2: Object.freeze(['great', 'wonderful', 'excellent', 'beautiful', 'charming', 'delightful', 'moving', 'gripping']),
    3: Object.freeze(['brilliant', 'amazing', 'fantastic', 'superb', 'perfect', 'outstanding', 'masterful', 'stunning']),
  }),
  negative: Object.freeze({
    1: Object.freeze(['bad', 'weak', 'dull', 'flat', 'messy', 'silly', 'bland', 'slow']),
    2: Object.freeze(['boring', 'poor', 'awful', 'ugly', 'annoying', 'clumsy', 'tedious', 'lifeless']),
    3: Object.freeze(['terrible', 'horrible', 'dreadful', 'atrocious', 'unbearable', 'abysmal', 'pathetic', 'painful']),
  }),
  // Polarity 0: they consume a pending intensifier or negation but add nothing.
  neutral: Object.freeze(['long', 'short', 'loud', 'quiet', 'simple', 'strange', 'familiar', 'typical', 'serious', 'different']),
});

/** Verbs of the "i loved it." sentences, past tense as the generator writes them, with polarity. */
export const VERBS = Object.freeze({
  loved: 2,
  liked: 1,
  enjoyed: 1,
  adored: 3,
  admired: 2,
  hated: -2,
  disliked: -1,
  despised: -3,
  resented: -2,
  watched: 0,
  remember: 0,
});

/** Base forms, so "i did not like it" is read too (the generator does not write these). */
const VERB_BASES = Object.freeze({ love: 2, like: 1, enjoy: 1, adore: 3, admire: 2, hate: -2, dislike: -1, despise: -3, recommend: 1 });

/** Multipliers applied to the next lexicon word (boosters > 1, downtoners < 1). */
export const INTENSIFIERS = Object.freeze({
  very: 1.5,
  really: 1.5,
  truly: 1.5,
  so: 1.5,
  extremely: 2,
  incredibly: 2,
  somewhat: 0.5,
  slightly: 0.5,
});

/** Words that negate the next lexicon word within NEGATION_WINDOW words of the same clause. */
export const NEGATORS = Object.freeze(['not', 'never', 'hardly']);

// A negated word counts −0.5× its polarity: "not good" is mildly negative, "not terrible" mildly
// positive. A damped flip, as in VADER's N_SCALAR = −0.74 (Hutto & Gilbert 2014) and SO-CAL's
// shift negation (Taboada et al. 2011), rather than a full sign change.
export const NEGATION_FACTOR = -0.5;
export const NEGATION_WINDOW = 3;
// score = s / (|s| + SCALE): odd, monotone, in (−1, 1); SCALE is a typical single-clause |s|.
export const SCALE = 4;

/** Words that end a clause: negation and intensifiers never reach across them. */
const CLAUSE_BREAKS = new Set(['.', ',', '!', '?', ';', ':', 'and', 'but', 'or']);

const POLARITY = new Map();
for (const [sign, groups] of [[1, ADJECTIVES.positive], [-1, ADJECTIVES.negative]]) {
  for (const [strength, words] of Object.entries(groups)) for (const w of words) POLARITY.set(w, sign * Number(strength));
}
for (const w of ADJECTIVES.neutral) POLARITY.set(w, 0);
for (const [w, p] of Object.entries(VERBS)) POLARITY.set(w, p);
for (const [w, p] of Object.entries(VERB_BASES)) POLARITY.set(w, p);

/** Lower-cased words and punctuation marks; "wasn't" becomes "was" + "not". */
export function tokenize(text) {
  const out = [];
  for (const t of text.toLowerCase().match(/[a-z]+(?:'[a-z]+)?|[.,!?;:]/g) ?? []) {
    if (t.endsWith("n't")) {
      const stem = t.slice(0, -3);
      if (stem) out.push(stem === 'wo' ? 'will' : stem === 'ca' ? 'can' : stem);
      out.push('not');
    } else out.push(t);
  }
  return out;
}

/** Raw lexicon sum of a text: Σ polarity × intensifiers × (NEGATION_FACTOR if negated). */
export function rawScore(text) {
  let sum = 0;
  let mult = 1; // product of the intensifiers right before the next word
  let negatedAt = -1; // token index of a pending negator, −1 if none
  const tokens = tokenize(text);
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (CLAUSE_BREAKS.has(t)) {
      mult = 1;
      negatedAt = -1;
      continue;
    }
    if (NEGATORS.includes(t)) {
      negatedAt = i;
      mult = 1;
      continue;
    }
    const boost = INTENSIFIERS[t];
    if (boost !== undefined) {
      mult *= boost;
      continue;
    }
    const p = POLARITY.get(t);
    if (p !== undefined) {
      let v = p * mult;
      if (negatedAt >= 0 && i - negatedAt <= NEGATION_WINDOW) v *= NEGATION_FACTOR;
      sum += v;
      negatedAt = -1;
    }
    mult = 1; // an intensifier reaches only the word right after it
  }
  return sum;
}

/** Squashes a raw sum into (−1, 1), keeping its order. */
export function normalize(raw) {
  return raw / (Math.abs(raw) + SCALE);
}

function requireString(value, what) {
  if (typeof value !== 'string') {
    const got = value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value;
    throw new TypeError(`${name} judge: ${what} must be a string, got ${got}`);
  }
}

/**
 * Sentiment of the prompt and its continuation read as one text, in (−1, 1): > 0 positive,
 * < 0 negative, 0 neutral or unknown words only. The prompt counts because negation can cross
 * the boundary ("the movie was not" + " good."); the bundled prompts are neutral.
 */
export function score(prompt, response) {
  requireString(prompt, 'prompt');
  requireString(response, 'response');
  return normalize(rawScore(prompt + ' ' + response));
}

/** Every word the lexicon knows (for vocabulary statistics). */
export function lexiconWords() {
  return [...POLARITY.keys(), ...Object.keys(INTENSIFIERS), ...NEGATORS];
}
