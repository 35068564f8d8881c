// Reports in the database: finding a run's latest eval report, the training curves of a run (from
// the metrics table), and sign-offs. Used by `alignflow report/compare` and the server; the eval
// stage itself never touches SQL.
import { randomUUID } from 'node:crypto';
import { and, asc, desc, eq } from 'drizzle-orm';
import type { Db } from '../store/db.js';
import type { ArtifactStore } from '../store/types.js';
import { artifacts, metrics, reports, runs, signoffs, stageOutputs, stages, users } from '../store/schema.js';
import { AlignflowError, notFound } from '../errors.js';
import { REPORT_SCHEMA, type EvalReport } from './report-types.js';
import { trainingWarnings, type Curve } from './warnings.js';
import type { SignoffView } from './report-html-types.js';

export interface StoredReport {
  runId: string;
  reportId: string;
  artifactId: string;
  stageId: string | null;
  report: EvalReport;
}

/** Resolves a run id, or a unique prefix of one, or a run name (newest run of that name). */
export function resolveRun(db: Db, ref: string): string {
  const exact = db.select({ id: runs.id }).from(runs).where(eq(runs.id, ref)).get();
  if (exact) return exact.id;
  const all = db.select({ id: runs.id, name: runs.name, createdAt: runs.createdAt }).from(runs).orderBy(desc(runs.createdAt)).all();
  const byPrefix = all.filter((r) => r.id.startsWith(ref));
  if (byPrefix.length === 1) return byPrefix[0]!.id;
  if (byPrefix.length > 1) throw new AlignflowError('usage', `run "${ref}" is ambiguous: ${byPrefix.slice(0, 5).map((r) => r.id).join(', ')}`);
  const byName = all.find((r) => r.name === ref);
  if (byName) return byName.id;
  throw notFound(`no run "${ref}"`);
}

/** eval-report artifacts produced by a run's stages, newest first. */
function runReportArtifacts(db: Db, runId: string): { artifactId: string; stageId: string; createdAt: number }[] {
  return db
    .select({ artifactId: artifacts.id, stageId: stageOutputs.stageId, createdAt: artifacts.createdAt })
    .from(stageOutputs)
    .innerJoin(stages, eq(stages.id, stageOutputs.stageId))
    .innerJoin(artifacts, eq(artifacts.id, stageOutputs.artifactId))
    .where(and(eq(stages.runId, runId), eq(artifacts.kind, 'eval-report')))
    .orderBy(desc(artifacts.createdAt))
    .all();
}

/**
 * The reports row of (run, artifact), created if the orchestrator has not made one: sign-offs
 * hang off it. Idempotent.
 */
export function ensureReportRow(db: Db, runId: string, artifactId: string, stageId: string | null, summary: unknown = null): string {
  const row = db.select({ id: reports.id }).from(reports).where(and(eq(reports.runId, runId), eq(reports.artifactId, artifactId))).get();
  if (row) return row.id;
  const id = 'rep-' + randomUUID().replaceAll('-', '').slice(0, 20);
  db.insert(reports).values({ id, runId, stageId, artifactId, summary: summary as never, createdAt: Date.now() }).run();
  return id;
}

export async function readReportArtifact(store: ArtifactStore, artifactId: string): Promise<EvalReport> {
  const buf = await store.readFile(artifactId, 'report.json');
  let r: EvalReport;
  try {
    r = JSON.parse(buf.toString('utf8')) as EvalReport;
  } catch (e) {
    throw new AlignflowError('integrity', `eval report ${artifactId}: report.json is not JSON (${(e as Error).message})`);
  }
  if (r?.schema !== REPORT_SCHEMA) throw new AlignflowError('integrity', `eval report ${artifactId}: unknown schema ${JSON.stringify(r?.schema)} (expected ${REPORT_SCHEMA})`);
  return r;
}

/** The run's latest eval report (reports table first, then the run's eval-report outputs). */
export async function latestRunReport(db: Db, store: ArtifactStore, runRef: string): Promise<StoredReport> {
  const runId = resolveRun(db, runRef);
  const row = db.select().from(reports).where(eq(reports.runId, runId)).orderBy(desc(reports.createdAt)).limit(1).get();
  let artifactId: string;
  let stageId: string | null;
  let reportId: string;
  if (row) {
    artifactId = row.artifactId;
    stageId = row.stageId;
    reportId = row.id;
  } else {
    const a = runReportArtifacts(db, runId)[0];
    if (!a) throw notFound(`run ${runId} has no eval report yet (does its pipeline have an eval stage, and has it finished?)`);
    artifactId = a.artifactId;
    stageId = a.stageId;
    reportId = ensureReportRow(db, runId, artifactId, stageId);
  }
  const report = await readReportArtifact(store, artifactId);
  return { runId, reportId, artifactId, stageId, report: withRunCurves(db, runId, report) };
}

/** Training curves of a run from the metrics table: one per (stage, metric), eval stages left out. */
export function runCurves(db: Db, runId: string): Curve[] {
  const rows = db
    .select({ stage: stages.name, kind: stages.kind, name: metrics.name, step: metrics.step, value: metrics.value })
    .from(metrics)
    .innerJoin(stages, eq(stages.id, metrics.stageId))
    .where(eq(metrics.runId, runId))
    // Stages in the order they ran (pipeline order), then metric, then step.
    .orderBy(asc(stages.startedAt), asc(stages.name), asc(metrics.name), asc(metrics.step), asc(metrics.id))
    .all();
  const map = new Map<string, Curve>();
  for (const r of rows) {
    if (r.kind === 'eval') continue;
    const k = `${r.stage}\u0000${r.name}`;
    let c = map.get(k);
    if (!c) map.set(k, (c = { stage: r.stage, kind: r.kind, metric: r.name, points: [] }));
    const last = c.points[c.points.length - 1];
    if (last && last[0] === r.step) last[1] = r.value; // a re-logged step (resumed stage): keep the latest
    else c.points.push([r.step, r.value]);
  }
  return [...map.values()];
}

/** Fills a report's curves from the run's metrics when the eval stage had none (no history port). */
export function withRunCurves(db: Db, runId: string, report: EvalReport): EvalReport {
  if (report.curves.length > 0) return report;
  const curves = runCurves(db, runId);
  if (curves.length === 0) return report;
  return {
    ...report,
    curves,
    warnings: [...report.warnings.filter((w) => w.code !== 'missing_curves'), ...trainingWarnings(curves)],
  };
}

export function listSignoffs(db: Db, reportId: string): (SignoffView & { id: string })[] {
  return db
    .select({ id: signoffs.id, user: users.name, decision: signoffs.decision, comment: signoffs.comment, createdAt: signoffs.createdAt })
    .from(signoffs)
    .innerJoin(users, eq(users.id, signoffs.userId))
    .where(eq(signoffs.reportId, reportId))
    .orderBy(asc(signoffs.createdAt))
    .all();
}

export function addSignoff(db: Db, s: { reportId: string; userId: string; decision: 'approve' | 'reject'; comment: string }): string {
  if (s.decision !== 'approve' && s.decision !== 'reject') throw new AlignflowError('input', `decision must be "approve" or "reject", got ${JSON.stringify(s.decision)}`);
  if (s.comment.length > 10_000) throw new AlignflowError('input', 'comment is longer than 10000 characters');
  if (!db.select({ id: reports.id }).from(reports).where(eq(reports.id, s.reportId)).get()) throw notFound(`no report ${s.reportId}`);
  const id = 'so-' + randomUUID().replaceAll('-', '').slice(0, 20);
  db.insert(signoffs).values({ id, reportId: s.reportId, userId: s.userId, decision: s.decision, comment: s.comment, createdAt: Date.now() }).run();
  return id;
}

/**
 * The latest report of every eval stage of a run (or of the stages named), oldest stage first:
 * `alignflow compare --each-stage` and `RUN/STAGE` refs, e.g. the many evaluations of one
 * frontier run (pipelines/frontier.yaml).
 */
export async function runStageReports(db: Db, store: ArtifactStore, runRef: string, only?: string): Promise<(StoredReport & { stageName: string })[]> {
  const runId = resolveRun(db, runRef);
  const names = new Map(db.select({ id: stages.id, name: stages.name }).from(stages).where(eq(stages.runId, runId)).all().map((s) => [s.id, s.name]));
  const seen = new Set<string>();
  const picked = runReportArtifacts(db, runId).filter((a) => !seen.has(a.stageId) && (seen.add(a.stageId), true) && (only === undefined || names.get(a.stageId) === only));
  if (picked.length === 0) throw notFound(only === undefined ? `run ${runId} has no eval report yet` : `run ${runId} has no eval report from a stage named "${only}"`);
  const out: (StoredReport & { stageName: string })[] = [];
  for (const a of picked.reverse()) {
    const report = await readReportArtifact(store, a.artifactId);
    out.push({ runId, reportId: ensureReportRow(db, runId, a.artifactId, a.stageId), artifactId: a.artifactId, stageId: a.stageId, stageName: names.get(a.stageId) ?? a.stageId, report });
  }
  return out;
}
