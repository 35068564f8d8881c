// A finished run with an eval report registered as its eval stage's output, in a test server's
// database: enough for the report routes and pages without training anything.
import { createLocalStore } from '../../src/store/artifacts.js';
import { runs, stageOutputs, stages } from '../../src/store/schema.js';
import { renderReportHtml } from '../../src/eval/report-html.js';
import type { EvalReport } from '../../src/eval/report-types.js';
import type { Db } from '../../src/store/db.js';

export async function seedReportRun(db: Db, home: string, runId: string, createdAt: number, report: EvalReport): Promise<EvalReport> {
  db.insert(runs).values({ id: runId, name: `demo ${runId}`, spec: { stages: [] }, specHash: runId, status: 'succeeded', executor: 'inline', createdAt, finishedAt: createdAt + 1000 }).run();
  for (const [name, kind] of [['dpo', 'dpo'], ['eval', 'eval']] as const) {
    db.insert(stages).values({ id: `${runId}-${name}`, runId, name, kind, config: {}, dependsOn: [], state: 'succeeded' }).run();
  }
  const r = { ...report, curves: [], provenance: { ...report.provenance, runId } };
  const m = await createLocalStore(db, home).put({
    kind: 'eval-report',
    name: 'eval report',
    files: [{ path: 'report.json', data: Buffer.from(JSON.stringify(r)) }, { path: 'report.html', data: Buffer.from(renderReportHtml(r)) }],
    metadata: { runId },
  });
  db.insert(stageOutputs).values({ stageId: `${runId}-eval`, artifactId: m.id, role: 'report' }).run();
  return r;
}
