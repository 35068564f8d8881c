// Validating a stage's `config` block: shared by every stage handler.
import type { ZodType } from 'zod';
import { AlignflowError } from '../errors.js';

/** zod parse → a 'config' AlignflowError naming each bad field (never retried). */
export function parseStageConfig<T>(schema: ZodType<T>, raw: unknown, stage: string): T {
  const r = schema.safeParse(raw ?? {});
  if (r.success) return r.data;
  const issues = r.error.issues.map((i) => ({ field: i.path.join('.'), reason: i.message }));
  throw new AlignflowError('config', `stage "${stage}": invalid config: ${issues.map((i) => `${i.field || '(root)'}: ${i.reason}`).join('; ')}`, { issues });
}
