// "Did you mean" for spec validation: the fields a zod schema accepts, the closest one to a
// mistyped field, and the names TRL and transformers use for the same settings. Pure functions,
// applied once at the validation layer, so no stage schema needs its own aliases.
import type { ZodType } from 'zod';

/**
 * TRL / transformers TrainingArguments names → alignflow's (trl/trainer/*_config.py,
 * transformers/training_args.py). Suggested only when the schema has the alignflow name: the
 * settings mean the same thing, but a pipeline spec keeps one spelling, so they are named in the
 * error rather than accepted silently under two names (which would also split the cache key).
 */
export const TRL_NAMES: Readonly<Record<string, string>> = {
  learning_rate: 'lr',
  num_train_epochs: 'epochs',
  per_device_train_batch_size: 'batch_size',
  train_batch_size: 'batch_size',
  per_device_eval_batch_size: 'eval_batch_size',
  gradient_accumulation_steps: 'grad_accum',
  loss_type: 'loss',
  lr_scheduler_type: 'schedule',
  logging_steps: 'log_every',
  save_steps: 'checkpoint_every',
  eval_steps: 'eval_every',
  save_total_limit: 'keep_checkpoints',
  max_seq_length: 'max_length',
};

/** Levenshtein distance (insert, delete, substitute: cost 1). */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}

/** The candidate closest to `word`, if it is close enough to be a typo (≤ 1/3 of its length, at least 1). */
export function closest(word: string, candidates: Iterable<string>): string | undefined {
  const limit = Math.max(1, Math.floor(word.length / 3));
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestD || (d === bestD && best !== undefined && c < best)) {
      best = c;
      bestD = d;
    }
  }
  return bestD <= limit ? best : undefined;
}

type Def = { type: string; shape?: Record<string, ZodType>; innerType?: ZodType; in?: ZodType; out?: ZodType; options?: ZodType[]; left?: ZodType; right?: ZodType };
const defOf = (s: unknown): Def | undefined => (s as { _zod?: { def?: Def } })?._zod?.def;

/**
 * The keys an object schema accepts, looking through wrappers (default, optional, pipe,
 * preprocess, refinements) and unions (all branches' keys). Empty for non-object schemas.
 */
export function schemaKeys(schema: unknown, depth = 0): string[] {
  const def = defOf(schema);
  if (!def || depth > 20) return [];
  switch (def.type) {
    case 'object':
      return Object.keys(def.shape ?? {});
    case 'union':
      return [...new Set((def.options ?? []).flatMap((o) => schemaKeys(o, depth + 1)))];
    case 'intersection':
      return [...new Set([...schemaKeys(def.left, depth + 1), ...schemaKeys(def.right, depth + 1)])];
    case 'pipe':
      return [...new Set([...schemaKeys(def.in, depth + 1), ...schemaKeys(def.out, depth + 1)])];
    default:
      return def.innerType ? schemaKeys(def.innerType, depth + 1) : [];
  }
}

/** The object schema at `path` inside `schema` (for nested config blocks), or undefined. */
export function schemaAt(schema: unknown, path: readonly (string | number)[]): unknown {
  let cur: unknown = schema;
  for (const key of path) {
    const def = unwrap(cur);
    if (!def) return undefined;
    if (def.type === 'object' && typeof key === 'string') cur = def.shape?.[key];
    else if (def.type === 'union') cur = (def.options ?? []).map((o) => schemaAt(o, [key])).find(Boolean);
    else return undefined;
  }
  return cur;
}

function unwrap(schema: unknown, depth = 0): Def | undefined {
  const def = defOf(schema);
  if (!def || depth > 20) return def;
  if (def.type === 'pipe') return unwrap(def.in, depth + 1)?.type === 'object' ? unwrap(def.in, depth + 1) : unwrap(def.out, depth + 1);
  if (def.innerType && def.type !== 'object' && def.type !== 'union') return unwrap(def.innerType, depth + 1);
  return def;
}

/** The error text for an unknown field: its TRL/transformers equivalent, or the closest known field. */
export function unknownFieldReason(field: string, known: readonly string[]): string {
  const base = `unknown field "${field}"`;
  const trl = TRL_NAMES[field];
  if (trl && trl !== field && known.includes(trl)) return `${base}: that is TRL's name; alignflow calls it "${trl}"`;
  const near = closest(field, known);
  if (near) return `${base}; did you mean "${near}"?`;
  return known.length ? `${base} (known: ${[...known].sort().join(', ')})` : base;
}

/** The error text for an unknown stage kind, listing the valid ones. */
export function unknownKindReason(kind: string, kinds: readonly string[]): string {
  const near = closest(kind, kinds);
  const list = kinds.length ? ` (stage kinds: ${[...kinds].sort().join(', ')})` : '';
  return `unknown stage kind "${kind}"${near ? `; did you mean "${near}"?` : ''}${list}`;
}
