// `alignflow report RUN` and `alignflow compare RUN_A RUN_B [...]`: read runs' eval reports
// (reports table + artifact store) and print them, write the HTML, or open it.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import type { Command } from 'commander';
import { cliDb, printJson, printTable } from '../shared.js';
import { cliStore } from './artifacts.js';
import { latestRunReport, listSignoffs, runStageReports } from '../../eval/report-store.js';
import { renderReportHtml } from '../../eval/report-html.js';
import { compareReports, type Comparison } from '../../eval/compare.js';
import { renderCompareHtml } from '../../eval/compare-html.js';
import { fmt } from '../../eval/svg.js';
import type { EvalReport } from '../../eval/report-types.js';
import { usageError } from '../../errors.js';

export function summaryText(r: EvalReport): string {
  const rows = r.summary.map((s) => ({
    figure: s.label,
    candidate: s.display ?? fmt(s.value),
    '95% CI': s.lo !== null && s.hi !== null ? `[${fmt(s.lo)}, ${fmt(s.hi)}]` : '',
    baseline: fmt(s.baselineValue),
    flag: s.flag === 'better' ? 'better' : s.flag === 'worse' ? 'WORSE' : '',
  }));
  const cols = ['figure', 'candidate', '95% CI', 'baseline', 'flag'];
  const w = cols.map((c) => Math.max(c.length, ...rows.map((x) => String(x[c as keyof typeof x]).length)));
  const line = (v: string[]) => v.map((x, i) => x.padEnd(w[i]!)).join('  ').trimEnd();
  return [line(cols), ...rows.map((x) => line(cols.map((c) => String(x[c as keyof typeof x]))))].join('\n') + '\n';
}

function openFile(file: string): boolean {
  const cmd = process.platform === 'darwin' ? 'open' : process.platform === 'win32' ? 'cmd' : 'xdg-open';
  const args = process.platform === 'win32' ? ['/c', 'start', '', file] : [file];
  try {
    const child = spawn(cmd, args, { detached: true, stdio: 'ignore' });
    child.on('error', () => process.stderr.write(`could not open a browser (${cmd}); open ${file} yourself\n`));
    child.unref();
    return true;
  } catch {
    return false;
  }
}

export function comparisonText(c: Comparison): string {
  let out = '';
  const head = ['figure', ...c.runs.map((r, i) => (i === 0 ? r : `${r} (Δ)`))];
  const rows = c.rows.map((r) => [r.label, ...r.values.map((v, i) => (i === 0 ? fmt(v) : `${fmt(v)} (${r.deltas[i]! === null ? '–' : (r.deltas[i]! >= 0 ? '+' : '') + fmt(r.deltas[i]!)})`))]);
  const w = head.map((_, i) => Math.max(head[i]!.length, ...rows.map((r) => r[i]!.length)));
  const line = (v: string[]) => v.map((x, i) => x.padEnd(w[i]!)).join('  ').trimEnd();
  out += [line(head), ...rows.map(line)].join('\n') + '\n';
  if (c.frontier) {
    out += `\nReward–KL frontier (mean score by ${c.frontier.judge} vs KL k1, 95% intervals; * = on the frontier):\n`;
    const iv = (lo?: number, hi?: number) => (lo !== undefined && hi !== undefined ? ` [${fmt(lo)}, ${fmt(hi)}]` : '');
    const pw = Math.max(...c.frontier.points.map((p) => p.name.length));
    for (const p of c.frontier.points) out += `  ${p.pareto ? '*' : ' '} ${p.name.padEnd(pw)}  KL ${fmt(p.x)}${iv(p.xlo, p.xhi)}  score ${fmt(p.y)}${iv(p.ylo, p.yhi)}\n`;
  }
  for (const g of c.regressions) {
    out += `\nRegressions ${g.older} → ${g.newer} (vs ${g.baseline}, judge ${g.judge}): ${g.prompts.length} of ${g.shared} shared prompts lost that were won before; ${g.improvements} improved.\n`;
    for (const p of g.prompts.slice(0, 20)) out += `  - ${JSON.stringify(p.prompt.slice(0, 80))}\n      before: ${JSON.stringify(p.olderResponse.slice(0, 100))}\n      now:    ${JSON.stringify(p.newerResponse.slice(0, 100))}\n`;
    if (g.prompts.length > 20) out += `  … and ${g.prompts.length - 20} more (use --json)\n`;
  }
  return out;
}

export function register(program: Command): void {
  program
    .command('report')
    .description("show a run's latest eval report: the summary table, or --json, or the HTML file (--out / --open)")
    .argument('<run>', 'run id (or a unique prefix, or a run name)')
    .option('--json', 'print report.json')
    .option('--out <file>', 'write the self-contained HTML report to FILE')
    .option('--open', 'write the HTML report to a temp file and open it in a browser')
    .action(async (runRef: string, opts: { json?: boolean; out?: string; open?: boolean }) => {
      if (opts.json && (opts.out || opts.open)) throw usageError('--json cannot be combined with --out or --open');
      const db = cliDb();
      const r = await latestRunReport(db, cliStore(), runRef);
      const signoffs = listSignoffs(db, r.reportId);
      if (opts.json) {
        printJson({ runId: r.runId, reportId: r.reportId, artifactId: r.artifactId, signoffs, report: r.report });
        return;
      }
      if (opts.out || opts.open) {
        const file = path.resolve(opts.out ?? path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'alignflow-report-')), `report-${r.runId}.html`));
        fs.mkdirSync(path.dirname(file), { recursive: true });
        fs.writeFileSync(file, renderReportHtml(r.report, { signoffs }));
        process.stdout.write(`${file}\n`);
        if (opts.open) openFile(file);
        return;
      }
      process.stdout.write(`Run ${r.runId} — eval report ${r.artifactId} (${r.report.createdAt})\n\n`);
      for (const w of r.report.warnings) process.stdout.write(`${w.severity === 'info' ? 'note' : w.severity}: ${w.message}\n`);
      if (r.report.warnings.length) process.stdout.write('\n');
      process.stdout.write(summaryText(r.report));
      if (signoffs.length) {
        process.stdout.write('\nSign-off:\n');
        printTable(signoffs.map((s) => ({ user: s.user, decision: s.decision, comment: s.comment, at: new Date(s.createdAt).toISOString() })));
      }
      process.stdout.write(`\nHTML: alignflow report ${r.runId} --out report.html\n`);
    });

  program
    .command('compare')
    .description('put several runs\' eval reports side by side: figures with deltas against the first run, per-prompt regressions, and the reward–KL frontier')
    .argument('<runs...>', 'run ids (oldest first); RUN/STAGE takes that eval stage\'s report')
    .option('--each-stage', 'take every eval stage\'s report of each run (e.g. one frontier run: pipelines/frontier.yaml)')
    .option('--json', 'print the comparison as JSON')
    .option('--out <file>', 'write the comparison as a self-contained HTML page')
    .action(async (refs: string[], opts: { json?: boolean; out?: string; eachStage?: boolean }) => {
      if (opts.json && opts.out) throw usageError('--json cannot be combined with --out');
      const db = cliDb();
      const store = cliStore();
      const items = [];
      for (const ref of refs) {
        const slash = ref.indexOf('/');
        if (opts.eachStage || slash > 0) {
          const stage = slash > 0 ? ref.slice(slash + 1) : undefined;
          const rs = await runStageReports(db, store, slash > 0 ? ref.slice(0, slash) : ref, stage);
          for (const r of rs) items.push({ runId: `${r.runId}/${r.stageName}`, report: r.report });
        } else {
          const r = await latestRunReport(db, store, ref);
          items.push({ runId: r.runId, report: r.report });
        }
      }
      // one run's stages: name them by stage alone (the run id is in every label otherwise)
      const runsSeen = new Set(items.map((i) => i.runId.split('/')[0]));
      if (runsSeen.size === 1 && items.every((i) => i.runId.includes('/'))) for (const i of items) i.runId = i.runId.slice(i.runId.indexOf('/') + 1);
      if (items.length < 2) throw usageError(`compare needs at least two reports, got ${items.length} (two runs, RUN/STAGE refs, or --each-stage on a run with several eval stages)`);
      const c = compareReports(items);
      if (opts.out) {
        const file = path.resolve(opts.out);
        fs.mkdirSync(path.dirname(file), { recursive: true });
        fs.writeFileSync(file, renderCompareHtml(c));
        process.stdout.write(`${file}\n`);
      } else if (opts.json) printJson(c);
      else process.stdout.write(comparisonText(c));
    });
}
