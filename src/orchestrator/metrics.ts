// Reading a run's logged training metrics for people and scripts (`runs metrics`, `runs show
// --json`). A cached stage reports the points of the stage whose outputs it reused.
import { asc, eq, inArray } from 'drizzle-orm';
import type { Db } from '../store/db.js';
import { metrics } from '../store/schema.js';
import { notFound } from '../errors.js';
import { runStages } from './runs.js';

export interface MetricPoint {
  stage: string;
  step: number;
  name: string;
  value: number;
}

/** Every metric point of a run (or of one stage), ordered by stage, then step, then name. */
export function runMetrics(db: Db, runId: string, opts: { stage?: string } = {}): MetricPoint[] {
  const all = runStages(db, runId);
  const rows = opts.stage === undefined ? all : all.filter((s) => s.name === opts.stage);
  if (opts.stage !== undefined && rows.length === 0) {
    throw notFound(`run ${runId} has no stage named "${opts.stage}" (stages: ${all.map((s) => s.name).join(', ')})`);
  }
  const sourceOf = new Map(rows.map((s) => [s.cachedFromStageId ?? s.id, s.name]));
  if (sourceOf.size === 0) return [];
  const points = db
    .select({ stageId: metrics.stageId, step: metrics.step, name: metrics.name, value: metrics.value })
    .from(metrics)
    .where(inArray(metrics.stageId, [...sourceOf.keys()]))
    .orderBy(asc(metrics.step), asc(metrics.name), asc(metrics.id))
    .all();
  const order = new Map(rows.map((s, i) => [s.name, i]));
  return points
    .map((p) => ({ stage: sourceOf.get(p.stageId)!, step: p.step, name: p.name, value: p.value }))
    .sort((a, b) => order.get(a.stage)! - order.get(b.stage)! || a.step - b.step || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** The last logged value of each metric of one stage row: training ones and `eval_` ones apart. */
export function finalMetrics(db: Db, stage: { id: string; cachedFromStageId: string | null }): { final: Record<string, number>; eval: Record<string, number> } {
  const source = stage.cachedFromStageId ?? stage.id;
  const final: Record<string, number> = {};
  const evalM: Record<string, number> = {};
  for (const m of db.select().from(metrics).where(eq(metrics.stageId, source)).orderBy(asc(metrics.step), asc(metrics.id)).all()) {
    (m.name.startsWith('eval_') || m.name.startsWith('eval/') ? evalM : final)[m.name] = m.value;
  }
  return { final, eval: evalM };
}

/** Metric points as CSV (stage,step,name,value), RFC 4180 quoting where a field needs it. */
export function metricsCsv(points: MetricPoint[]): string {
  const q = (s: string) => (/[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
  return ['stage,step,name,value', ...points.map((p) => `${q(p.stage)},${p.step},${q(p.name)},${p.value}`)].join('\n') + '\n';
}
