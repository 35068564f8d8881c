// The dataset formats of Hugging Face TRL (https://huggingface.co/docs/trl/dataset_formats):
// which fields each kind has, how a format is recognised, how a line is validated and how a
// record is written back out. Pure functions, no IO.
import type { DatasetKind } from '../store/schema.js';
import { datasetKinds } from '../store/schema.js';

export type { DatasetKind };
export { datasetKinds };

export type Role = 'system' | 'user' | 'assistant';
export interface Message {
  role: Role;
  content: string;
}
/** A string in the "standard" formats, a list of chat messages in the "conversational" ones. */
export type Content = string | Message[];

// SFT: language modeling (`text`), prompt-completion, or a whole conversation (`messages`).
export type SftRecord =
  | { text: string }
  | { prompt: string; completion: string }
  | { prompt: Message[]; completion: Message[] }
  | { messages: Message[] };
// Preference: explicit prompt, or implicit (the prompt is the common prefix of chosen/rejected).
// `margin` is the optional preference strength used by TRL's reward trainer.
export interface PreferenceRecord {
  prompt?: Content;
  chosen: Content;
  rejected: Content;
  margin?: number;
}
// Unpaired preference (KTO-style): one completion with a boolean desirability label.
export interface UnpairedRecord {
  prompt: Content;
  completion: Content;
  label: boolean;
}
export interface PromptRecord {
  prompt: Content;
}

export interface RecordByKind {
  sft: SftRecord;
  preference: PreferenceRecord;
  unpaired: UnpairedRecord;
  prompt: PromptRecord;
}
export type DatasetRecord = RecordByKind[DatasetKind];

export const datasetFormats = [
  'text',
  'prompt-completion',
  'conversational-prompt-completion',
  'messages',
  'explicit-prompt',
  'conversational-explicit-prompt',
  'implicit-prompt',
  'conversational-implicit-prompt',
  'unpaired',
  'conversational-unpaired',
  'prompt-only',
  'conversational-prompt-only',
] as const;
export type DatasetFormat = (typeof datasetFormats)[number];

export const formatKind: Record<DatasetFormat, DatasetKind> = {
  text: 'sft',
  'prompt-completion': 'sft',
  'conversational-prompt-completion': 'sft',
  messages: 'sft',
  'explicit-prompt': 'preference',
  'conversational-explicit-prompt': 'preference',
  'implicit-prompt': 'preference',
  'conversational-implicit-prompt': 'preference',
  unpaired: 'unpaired',
  'conversational-unpaired': 'unpaired',
  'prompt-only': 'prompt',
  'conversational-prompt-only': 'prompt',
};

/** The fields each format keeps, in the order they are written out. Other fields are dropped (and named in a warning). */
export const formatFields: Record<DatasetFormat, readonly string[]> = {
  text: ['text'],
  'prompt-completion': ['prompt', 'completion'],
  'conversational-prompt-completion': ['prompt', 'completion'],
  messages: ['messages'],
  'explicit-prompt': ['prompt', 'chosen', 'rejected', 'margin'],
  'conversational-explicit-prompt': ['prompt', 'chosen', 'rejected', 'margin'],
  'implicit-prompt': ['chosen', 'rejected', 'margin'],
  'conversational-implicit-prompt': ['chosen', 'rejected', 'margin'],
  unpaired: ['prompt', 'completion', 'label'],
  'conversational-unpaired': ['prompt', 'completion', 'label'],
  'prompt-only': ['prompt'],
  'conversational-prompt-only': ['prompt'],
};

export const isConversational = (f: DatasetFormat) => f.startsWith('conversational-') || f === 'messages';

const has = (o: Record<string, unknown>, k: string) => Object.prototype.hasOwnProperty.call(o, k);

/**
 * Recognises the format of one JSON object, within `kind` when given. Returns undefined when the
 * object has none of the fields that identify a format. Preference is tested first because a
 * preference line may also carry `prompt`; then unpaired (`label`), then the SFT shapes, then
 * prompt-only.
 */
export function detectFormat(obj: Record<string, unknown>, kind?: DatasetKind): DatasetFormat | undefined {
  const conv = (k: string) => Array.isArray(obj[k]);
  const k =
    kind ??
    (has(obj, 'chosen') || has(obj, 'rejected')
      ? 'preference'
      : has(obj, 'label')
        ? 'unpaired'
        : has(obj, 'messages') || has(obj, 'text') || has(obj, 'completion')
          ? 'sft'
          : has(obj, 'prompt')
            ? 'prompt'
            : undefined);
  switch (k) {
    case undefined:
      return undefined;
    case 'preference':
      if (has(obj, 'prompt')) return conv('prompt') ? 'conversational-explicit-prompt' : 'explicit-prompt';
      return conv('chosen') ? 'conversational-implicit-prompt' : 'implicit-prompt';
    case 'unpaired':
      return conv('prompt') ? 'conversational-unpaired' : 'unpaired';
    case 'sft':
      if (has(obj, 'messages')) return 'messages';
      if (has(obj, 'prompt') || has(obj, 'completion')) return conv('prompt') ? 'conversational-prompt-completion' : 'prompt-completion';
      return 'text';
    case 'prompt':
      return conv('prompt') ? 'conversational-prompt-only' : 'prompt-only';
  }
}

export interface FieldIssue {
  field?: string;
  reason: string;
}

export type Normalized =
  /** `dropped`: fields the format does not have (top level, and `prompt[].name` style inside messages). */
  | { ok: true; record: DatasetRecord; warnings: FieldIssue[]; dropped: string[] }
  | { ok: false; issues: FieldIssue[] };

/** Where a message list sits decides which role sequences are valid. */
type ListContext =
  | 'conversation' // messages, implicit-prompt chosen/rejected: system? (user assistant)+
  | 'prompt' // a conversational prompt: system? user (assistant user)*
  | 'response'; // completion / chosen / rejected after an explicit prompt: assistant (user assistant)*

const ROLES = new Set(['system', 'user', 'assistant']);

/**
 * A lone UTF-16 surrogate (JSON's "\ud800" without its pair) cannot be encoded as UTF-8, so the
 * tokenizer would see U+FFFD instead of what the file says: such a string is refused.
 */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

export function loneSurrogateAt(s: string): number {
  const m = LONE_SURROGATE.exec(s);
  return m ? m.index : -1;
}

/**
 * How empty strings are treated. Prompts, texts and messages must say something. An answer
 * (completion, chosen, rejected: 'answer') may be empty: a sampled model can end at once, and
 * TRL trains such an answer as EOS only, as our stages do. The one rule holds for data from
 * outside and for our own stages' outputs (the label stage keeps such pairs), so an exported
 * dataset always imports again.
 */
type Emptiness = 'refuse' | 'answer';

function checkString(v: unknown, field: string, issues: FieldIssue[], empty: Emptiness = 'refuse', warnings?: FieldIssue[]): string | undefined {
  if (v === undefined) {
    issues.push({ field, reason: 'missing' });
    return undefined;
  }
  if (typeof v !== 'string') {
    issues.push({ field, reason: `must be a string, got ${typeName(v)}` });
    return undefined;
  }
  const bad = loneSurrogateAt(v);
  if (bad >= 0) {
    const unit = v.charCodeAt(bad).toString(16);
    issues.push({ field, reason: `has an unpaired UTF-16 surrogate (\\u${unit} at character ${bad}), which cannot be encoded as UTF-8 for the tokenizer` });
    return undefined;
  }
  if (v.trim() === '') {
    if (empty === 'answer') {
      warnings?.push({ field, reason: 'is empty (legal: trained as an EOS-only answer, as TRL does)' });
      return v;
    }
    issues.push({ field, reason: 'is empty' });
    return undefined;
  }
  return v;
}

function checkMessages(v: unknown, field: string, ctx: ListContext, issues: FieldIssue[], extra?: Set<string>, warnings?: FieldIssue[]): Message[] | undefined {
  if (v === undefined) {
    issues.push({ field, reason: 'missing' });
    return undefined;
  }
  if (!Array.isArray(v)) {
    issues.push({ field, reason: `must be a list of messages, got ${typeName(v)}` });
    return undefined;
  }
  if (v.length === 0) {
    issues.push({ field, reason: 'is empty' });
    return undefined;
  }
  const out: Message[] = [];
  const before = issues.length;
  v.forEach((m: unknown, i) => {
    const at = `${field}[${i}]`;
    if (typeof m !== 'object' || m === null || Array.isArray(m)) {
      issues.push({ field: at, reason: `must be an object with "role" and "content", got ${typeName(m)}` });
      return;
    }
    const { role, content, ...rest } = m as Record<string, unknown>;
    for (const k of Object.keys(rest)) extra?.add(`${field}[].${k}`);
    if (typeof role !== 'string' || !ROLES.has(role)) {
      issues.push({ field: `${at}.role`, reason: role === undefined ? 'missing' : `must be "system", "user" or "assistant", got ${JSON.stringify(role)}` });
      return;
    }
    // In an answer, the final assistant message may be empty (see Emptiness); an empty system message is
    // valid data anywhere (it replaces a template's default system prompt, e.g. SmolLM2's).
    const answerEnd = ctx === 'response' && role === 'assistant' && i === v.length - 1;
    const c = role === 'system' && content === '' ? '' : checkString(content, `${at}.content`, issues, answerEnd ? 'answer' : 'refuse', warnings);
    if (c !== undefined) out.push({ role: role as Role, content: c });
  });
  if (issues.length > before) return undefined;
  const order = roleOrderProblem(out, ctx);
  if (order) {
    issues.push({ field, reason: order });
    return undefined;
  }
  return out;
}

/** Checks the role sequence; returns a reason or undefined. */
export function roleOrderProblem(msgs: Message[], ctx: ListContext): string | undefined {
  const roles = msgs.map((m) => m.role);
  let i = 0;
  if (ctx !== 'response' && roles[0] === 'system') i = 1;
  if (roles.slice(i).includes('system')) return `role order: "system" may only be the first message (roles: ${roles.join(', ')})`;
  const first = ctx === 'response' ? 'assistant' : 'user';
  const last = ctx === 'prompt' ? 'user' : 'assistant';
  if (i >= roles.length) return `role order: no ${first} message after "system"`;
  for (let j = i; j < roles.length; j++) {
    const want = (j - i) % 2 === 0 ? first : first === 'user' ? 'assistant' : 'user';
    if (roles[j] !== want) return `role order: message ${j} is "${roles[j]}" where "${want}" was expected (roles: ${roles.join(', ')})`;
  }
  if (roles[roles.length - 1] !== last) return `role order: must end with a "${last}" message (roles: ${roles.join(', ')})`;
  return undefined;
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

/**
 * Validates one parsed JSON value against `format` and returns the canonical record (only the
 * format's fields, in the format's order) or every problem found on the line. A line whose shape
 * belongs to another format (a `prompt` in an implicit-prompt file, a message list in a string
 * file) is an error, so one file is always one format.
 */
export function normalizeRecord(value: unknown, format: DatasetFormat): Normalized {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, issues: [{ reason: `line must be a JSON object, got ${typeName(value)}` }] };
  }
  const obj = value as Record<string, unknown>;
  const issues: FieldIssue[] = [];
  const warnings: FieldIssue[] = [];
  const dropped = new Set<string>();
  const conv = isConversational(format);
  const stepwise = stepwiseProblem(obj);
  if (stepwise) return { ok: false, issues: [stepwise] };
  const known = new Set(formatFields[format]);
  for (const k of Object.keys(obj)) if (!known.has(k)) dropped.add(k);
  const content = (field: string, ctx: ListContext, empty: Emptiness = 'refuse') => {
    const v = obj[field];
    if (conv && v !== undefined && typeof v === 'string') {
      issues.push({ field, reason: `is a string but the file's format is ${format} (message lists)` });
      return undefined;
    }
    if (!conv && Array.isArray(v)) {
      issues.push({ field, reason: `is a message list but the file's format is ${format} (strings)` });
      return undefined;
    }
    return conv ? checkMessages(v, field, ctx, issues, dropped, warnings) : checkString(v, field, issues, empty, warnings);
  };
  const forbid = (field: string) => {
    if (has(obj, field)) issues.push({ field, reason: `is not allowed in the file's format ${format}` });
  };

  let record: DatasetRecord | undefined;
  switch (format) {
    case 'text': {
      const text = checkString(obj.text, 'text', issues, 'refuse');
      record = { text: text! };
      break;
    }
    case 'messages': {
      const messages = checkMessages(obj.messages, 'messages', 'conversation', issues, dropped, warnings);
      record = { messages: messages! };
      break;
    }
    case 'prompt-completion':
    case 'conversational-prompt-completion': {
      const prompt = content('prompt', 'prompt');
      const completion = content('completion', 'response', 'answer');
      record = { prompt, completion } as SftRecord;
      break;
    }
    case 'explicit-prompt':
    case 'conversational-explicit-prompt':
    case 'implicit-prompt':
    case 'conversational-implicit-prompt': {
      const explicit = format.endsWith('explicit-prompt');
      const prompt = explicit ? content('prompt', 'prompt') : (forbid('prompt'), undefined);
      const ctx: ListContext = explicit ? 'response' : 'conversation';
      // Implicit prompt: chosen and rejected hold the prompt too, so they cannot be empty.
      const empty: Emptiness = explicit ? 'answer' : 'refuse';
      const chosen = content('chosen', ctx, empty);
      const rejected = content('rejected', ctx, empty);
      const rec: PreferenceRecord = { ...(explicit ? { prompt: prompt! } : {}), chosen: chosen!, rejected: rejected! };
      if (obj.margin !== undefined && obj.margin !== null) {
        if (typeof obj.margin !== 'number' || !Number.isFinite(obj.margin)) issues.push({ field: 'margin', reason: `must be a finite number, got ${typeName(obj.margin)}` });
        else rec.margin = obj.margin;
      }
      if (chosen !== undefined && rejected !== undefined && JSON.stringify(chosen) === JSON.stringify(rejected)) {
        warnings.push({ field: 'rejected', reason: 'identical to chosen (the pair teaches nothing)' });
      }
      record = rec;
      break;
    }
    case 'unpaired':
    case 'conversational-unpaired': {
      const prompt = content('prompt', 'prompt');
      const completion = content('completion', 'response', 'answer');
      if (typeof obj.label !== 'boolean') issues.push({ field: 'label', reason: obj.label === undefined ? 'missing' : `must be true or false, got ${typeName(obj.label)}` });
      record = { prompt: prompt!, completion: completion!, label: obj.label as boolean };
      break;
    }
    case 'prompt-only':
    case 'conversational-prompt-only': {
      const prompt = content('prompt', 'prompt');
      record = { prompt: prompt! };
      break;
    }
  }
  if (issues.length > 0) return { ok: false, issues };
  return { ok: true, record: record!, warnings, dropped: [...dropped] };
}

/**
 * TRL's stepwise-supervision format (prompt, completions: [steps], labels: [booleans]) trains a
 * process reward model, which alignflow does not have. Its lines have a `prompt`, so without this
 * check they would be imported as prompt-only and the steps and labels silently lost.
 */
export function stepwiseProblem(obj: Record<string, unknown>): FieldIssue | undefined {
  if (!has(obj, 'completions') && !has(obj, 'labels')) return undefined;
  if (has(obj, 'completion') || has(obj, 'chosen') || has(obj, 'messages')) return undefined;
  return {
    field: has(obj, 'completions') ? 'completions' : 'labels',
    reason:
      "looks like TRL's stepwise-supervision format (prompt, completions, labels), which alignflow does not support (it has no process reward model trainer); " +
      'nothing was imported. For preference training, convert each line to prompt/chosen/rejected; to use only the prompts, remove the completions and labels fields',
  };
}

/** One record as a JSONL line (no newline): the format's fields in their fixed order, messages as {role, content}. */
export function serializeRecord(record: DatasetRecord, format: DatasetFormat): string {
  const r = record as unknown as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const f of formatFields[format]) {
    const v = r[f];
    if (v === undefined) continue;
    out[f] = Array.isArray(v) ? (v as Message[]).map((m) => ({ role: m.role, content: m.content })) : v;
  }
  return JSON.stringify(out);
}

export function isDatasetKind(s: string): s is DatasetKind {
  return (datasetKinds as readonly string[]).includes(s);
}
