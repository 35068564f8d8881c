// Rule judge: does a response follow a counting instruction exactly? For prompts such as
// "list three fruits:" or "name 4 colors:", a compliant response is a comma-separated list of
// exactly that many distinct members of the category, single lower-case words, optionally ending
// with a period: " apple, pear, plum." — a verifiable answer, so compliance is a fact, not an opinion.
//
// A judge module is plain JavaScript (ESM) so it loads with no build step. It exports `name`,
// `version` and `score(prompt, response) → number` (here 1 compliant, 0 not). See docs/synth.md.
//
// The categories below are also what `alignflow synth count` writes lists from.

export const name = 'count-list';
export const version = '2';

/**
 * Six members per category; no word belongs to two categories. Kept small on purpose: a tiny model
 * trained from scratch for a few minutes must learn which words belong to which category.
 */
export const CATEGORIES = Object.freeze({
  fruits: Object.freeze(['apple', 'pear', 'plum', 'peach', 'grape', 'lemon']),
  colors: Object.freeze(['red', 'blue', 'green', 'yellow', 'black', 'white']),
  animals: Object.freeze(['cat', 'dog', 'horse', 'cow', 'fox', 'wolf']),
  tools: Object.freeze(['hammer', 'saw', 'drill', 'axe', 'rake', 'shovel']),
});

/** Instruction verbs the prompts use. */
export const INSTRUCTION_VERBS = Object.freeze(['list', 'name', 'write', 'give', 'pick', 'choose']);

/** Counts as words; digits are read too. */
export const NUMBER_WORDS = Object.freeze({ two: 2, three: 3, four: 4, five: 5 });

export const MIN_COUNT = 2;
export const MAX_COUNT = 5;

const PROMPT_RE = /^\s*([a-z]+)\s+([a-z]+|\d+)\s+([a-z]+)\s*:\s*$/;

function requireString(value, what) {
  if (typeof value !== 'string') {
    const got = value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value;
    throw new TypeError(`${name} judge: ${what} must be a string, got ${got}`);
  }
}

/** Reads "list three fruits:" as { n: 3, category: 'fruits' }; null when it is not such an instruction. */
export function parseInstruction(prompt) {
  requireString(prompt, 'prompt');
  const m = PROMPT_RE.exec(prompt.toLowerCase());
  if (!m) return null;
  const [, verb, count, category] = m;
  if (!INSTRUCTION_VERBS.includes(verb)) return null;
  const n = /^\d+$/.test(count) ? Number(count) : NUMBER_WORDS[count];
  if (n === undefined || n < MIN_COUNT || n > MAX_COUNT) return null;
  if (!Object.hasOwn(CATEGORIES, category)) return null;
  return { n, category };
}

/**
 * Checks a response against its instruction and says why it fails. Rules: items separated by
 * commas (spaces around them ignored), an optional final period, every item one lower-case word
 * from the category, no repeats, exactly n items.
 */
export function check(prompt, response) {
  requireString(response, 'response');
  const instr = parseInstruction(prompt);
  if (!instr) throw new Error(`${name} judge: not a counting instruction: ${JSON.stringify(prompt)}`);
  const problems = [];
  const body = response.trim().replace(/\.$/, '');
  const items = body === '' ? [] : body.split(',').map((s) => s.trim());
  const members = CATEGORIES[instr.category];
  if (items.some((it) => !/^[a-z]+$/.test(it))) problems.push('format: not a comma-separated list of single lower-case words');
  if (items.length !== instr.n) problems.push(`count: ${items.length} items, expected ${instr.n}`);
  const outside = items.filter((it) => /^[a-z]+$/.test(it) && !members.includes(it));
  if (outside.length > 0) problems.push(`category: not ${instr.category}: ${outside.join(', ')}`);
  if (new Set(items).size !== items.length) problems.push('repeat: an item appears twice');
  return { ok: problems.length === 0, expected: instr.n, category: instr.category, items, problems };
}

/** 1 when the response complies exactly, 0 otherwise; throws on a prompt that is not an instruction. */
export function score(prompt, response) {
  return check(prompt, response).ok ? 1 : 0;
}
