// Learning-rate schedules: pure functions of the optimizer step, so that a resumed run gets the
// same rate as an uninterrupted one from the step number alone.
//
// Matches transformers' get_cosine_schedule_with_warmup / get_constant_schedule_with_warmup /
// get_linear_schedule_with_warmup (and "cosine_with_min_lr"): `step` is the number of optimizer
// updates already taken, so with warm-up the very first update uses lr·0/warmup = 0, exactly as
// Hugging Face's LambdaLR does.

export type ScheduleKind = 'cosine' | 'constant' | 'linear';

export interface ScheduleConfig {
  /** Peak learning rate. */
  lr: number;
  kind: ScheduleKind;
  warmupSteps: number;
  /** Total optimizer steps of the run (decay reaches its floor here). */
  totalSteps: number;
  /** Floor of the decay as a fraction of `lr` (cosine and linear); default 0. */
  minLrRatio?: number;
}

export function validateSchedule(c: ScheduleConfig): void {
  const bad = (m: string) => new RangeError(`schedule: ${m}`);
  if (!(Number.isFinite(c.lr) && c.lr >= 0)) throw bad(`lr must be ≥ 0, got ${c.lr}`);
  if (!['cosine', 'constant', 'linear'].includes(c.kind)) throw bad(`unknown kind "${String(c.kind)}"`);
  if (!(Number.isInteger(c.warmupSteps) && c.warmupSteps >= 0)) throw bad(`warmupSteps must be an integer ≥ 0`);
  if (!(Number.isInteger(c.totalSteps) && c.totalSteps >= 1)) throw bad(`totalSteps must be an integer ≥ 1`);
  const r = c.minLrRatio ?? 0;
  if (!(r >= 0 && r <= 1)) throw bad(`minLrRatio must be in [0, 1], got ${r}`);
}

/** The learning rate for the update taken after `step` previous updates (0-based). */
export function learningRateAt(c: ScheduleConfig, step: number): number {
  const warm = c.warmupSteps;
  if (step < warm) return (c.lr * step) / Math.max(1, warm);
  if (c.kind === 'constant') return c.lr;
  const minR = c.minLrRatio ?? 0;
  const progress = Math.min(1, (step - warm) / Math.max(1, c.totalSteps - warm));
  // cosine: 0.5·(1 + cos(π·progress)) (Loshchilov & Hutter, SGDR 2017, one cycle, no restarts)
  const factor = c.kind === 'cosine' ? 0.5 * (1 + Math.cos(Math.PI * progress)) : 1 - progress;
  return c.lr * (minR + (1 - minR) * Math.max(0, factor));
}

/** How long and how fast to train, as every training stage configures it. */
export interface StepPlan {
  /** Optimizer updates; when absent, `epochs` over the training units. */
  maxSteps?: number;
  epochs?: number;
  batchSize: number;
  gradAccum: number;
}

/** Optimizer updates of a run: maxSteps, or ⌈epochs · units / (batchSize · gradAccum)⌉ (at least 1). */
export function totalTrainingSteps(p: StepPlan, units: number): number {
  if (p.maxSteps !== undefined) return p.maxSteps;
  return Math.max(1, Math.ceil(((p.epochs ?? 1) * units) / (p.batchSize * p.gradAccum)));
}

/**
 * Warm-up updates: `warmupSteps` when given, else ⌈warmupRatio · totalSteps⌉ — transformers'
 * TrainingArguments.get_warmup_steps rounds up (math.ceil), so a small ratio still warms up.
 */
export function warmupStepsFor(w: { warmupSteps?: number; warmupRatio?: number }, totalSteps: number): number {
  return w.warmupSteps ?? Math.ceil((w.warmupRatio ?? 0) * totalSteps);
}
