// `alignflow demo`: runs pipelines/demo.yaml (shipped with the package) with the embedded defaults —
// inline executor, SQLite under $ALIGNFLOW_HOME, the best tfjs backend — shows live progress, and
// ends with the summary table and the path of the HTML report. `--human` stops at the label stage
// and prints how to label in the browser instead. See docs/demo.md.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import YAML from 'yaml';
import { cliDb, printJson } from '../shared.js';
import { alignflowHome } from '../../config/paths.js';
import { AlignflowError, usageError } from '../../errors.js';
import type { Progress } from '../../stages/contract.js';
import type { SummaryRow, EvalReport } from '../../eval/report-types.js';

// ---------------------------------------------------------------- where the demo lives

/** The package root: the nearest directory above this module with alignflow's package.json (src/ or dist/ alike). */
export function packageRoot(from = path.dirname(fileURLToPath(import.meta.url))): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const pj = path.join(dir, 'package.json');
    if (fs.existsSync(pj)) {
      try {
        if ((JSON.parse(fs.readFileSync(pj, 'utf8')) as { name?: string }).name === 'alignflow') return dir;
      } catch {
        /* not ours; keep walking */
      }
    }
    if (path.dirname(dir) === dir) throw new AlignflowError('internal', `cannot find alignflow's package root above ${from}`);
  }
}

export const demoSpecPath = (root = packageRoot()) => path.join(root, 'pipelines', 'demo.yaml');

// ---------------------------------------------------------------- options → --set overrides

export interface DemoOptions {
  seed?: number;
  /** Multiplies SFT steps and reward/DPO epochs. */
  stepsScale?: number;
  /** The reduced demo (tests, a first look): fewer steps, prompts and pairs. */
  quick?: boolean;
  human?: boolean;
  /** Extra `--set` overrides, applied last. */
  sets?: string[];
}

interface RawStage {
  kind?: string;
  config?: Record<string, unknown>;
}

/** The `--quick` sizes: 30% of the SFT steps, a fifth of the collection prompts (so about a fifth of the reward/DPO steps), fewer eval prompts. */
export const QUICK = { sftScale: 0.3, collectPrompts: 600, evalPrompts: 120, evalPairs: 120, heldout: 50, countPrompts: 40 };

/**
 * The overrides that turn pipelines/demo.yaml into the requested demo: the seed, scaled steps, the
 * quick sizes and the human labeler. (Judge paths need none: they resolve against the spec file.)
 */
export function demoOverrides(specText: string, root: string, o: DemoOptions): string[] {
  const doc = YAML.parse(specText) as { stages: Record<string, RawStage> };
  const sets: string[] = [];
  const q = (v: string) => JSON.stringify(v); // a YAML-safe scalar for --set's YAML value
  if (o.seed !== undefined) sets.push(`seed=${o.seed}`);
  const scale = o.stepsScale ?? 1;
  const sftScale = scale * (o.quick ? QUICK.sftScale : 1);
  if (scale !== 1 || sftScale !== 1) {
    for (const [name, s] of Object.entries(doc.stages)) {
      const kind = s.kind ?? name;
      const c = s.config ?? {};
      if (kind === 'sft' && sftScale !== 1) {
        for (const k of ['max_steps', 'eval_every', 'checkpoint_every', 'warmup_steps'] as const) {
          if (typeof c[k] === 'number') sets.push(`stages.${name}.${k}=${Math.max(k === 'warmup_steps' ? 0 : 1, Math.round((c[k] as number) * sftScale))}`);
        }
      } else if ((kind === 'reward' || kind === 'dpo') && scale !== 1) {
        if (typeof c.steps === 'number') sets.push(`stages.${name}.steps=${Math.max(1, Math.round(c.steps * scale))}`);
        else sets.push(`stages.${name}.epochs=${+(((c.epochs as number | undefined) ?? 1) * scale).toFixed(4)}`);
      }
    }
  }
  if (o.quick) {
    for (const [name, s] of Object.entries(doc.stages)) {
      const kind = s.kind ?? name;
      if (kind === 'collect') sets.push(`stages.${name}.max_prompts=${QUICK.collectPrompts}`);
      if (kind === 'eval') {
        const isCount = JSON.stringify(s.config?.judges ?? []).includes('count');
        sets.push(`stages.${name}.max_prompts=${isCount ? QUICK.countPrompts : QUICK.evalPrompts}`);
        sets.push(`stages.${name}.max_pairs=${QUICK.evalPairs}`, `stages.${name}.max_heldout=${QUICK.heldout}`);
      }
    }
  }
  if (o.human) {
    for (const [name, s] of Object.entries(doc.stages)) {
      const kind = s.kind ?? name;
      // A person labels a few dozen pairs, not thousands: one pair from each of 32 prompts.
      if (kind === 'collect') sets.push(`stages.${name}.max_prompts=32`, `stages.${name}.max_pairs_per_prompt=1`);
      if (kind === 'label') sets.push(`stages.${name}.labeler=human`, `stages.${name}.guidelines=${q('Pick the more **positive** review continuation. Both bad or unreadable: choose "both bad".')}`);
    }
  }
  return [...sets, ...(o.sets ?? [])];
}

// ---------------------------------------------------------------- the summary

export interface DemoSummary {
  runId: string;
  status: string;
  wallSeconds: number;
  backend: string | null;
  winRate: Interval | null;
  /** The same win rate with the answers' length difference regressed out (AlpacaEval 2 method). */
  lcWinRate: Interval | null;
  rewardModelWinRate: Interval | null;
  meanScore: { dpo: number | null; sft: number | null };
  evalRewardsAccuracy: Interval | null;
  rewardModelAccuracy: Interval | null;
  kl: number | null;
  klK3: number | null;
  heldoutLoss: { dpo: number | null; sft: number | null };
  countCompliance: { dpo: Interval | null; sft: number | null };
  meanLength: { dpo: number | null; sft: number | null };
  pairs: number | null;
  report: string | null;
  countReport: string | null;
}

export interface Interval {
  value: number;
  lo: number | null;
  hi: number | null;
}

const iv = (r: SummaryRow | undefined): Interval | null => (r && r.value !== null ? { value: r.value, lo: r.lo, hi: r.hi } : null);

/** Reads the figures the demo prints from the eval reports (sentiment and count). */
export function summarize(report: EvalReport | undefined, countReport: EvalReport | undefined): Omit<DemoSummary, 'runId' | 'status' | 'wallSeconds' | 'pairs' | 'report' | 'countReport'> {
  const rows = report?.summary ?? [];
  const rule = report?.judges.find((j) => j.kind === 'rule' && !j.pairwise)?.name;
  const rm = report?.judges.find((j) => j.kind === 'reward_model')?.name;
  const row = (k: string) => rows.find((r) => r.key === k);
  const base = report?.models.find((m) => m.role === 'baseline')?.label ?? 'sft';
  const score = rule ? row(`reward/${rule}`) : undefined;
  const held = row('heldout_loss');
  const len = row('mean_length');
  const cRows = countReport?.summary ?? [];
  const cRule = countReport?.judges.find((j) => j.kind === 'rule' && !j.pairwise)?.name;
  const comp = cRule ? cRows.find((r) => r.key === `reward/${cRule}`) : undefined;
  return {
    backend: report?.provenance.backend ?? null,
    winRate: rule ? iv(row(`win_rate/${base}/${rule}`)) : null,
    lcWinRate: rule ? iv(row(`lc_win_rate/${base}/${rule}`)) : null,
    rewardModelWinRate: rm ? iv(row(`win_rate/${base}/${rm}`)) : null,
    meanScore: { dpo: score?.value ?? null, sft: score?.baselineValue ?? null },
    evalRewardsAccuracy: iv(row('eval_rewards/accuracies')),
    rewardModelAccuracy: rm ? iv(row(`rm_accuracy/${rm}`)) : null,
    kl: row('kl')?.value ?? null,
    klK3: row('kl_k3')?.value ?? null,
    heldoutLoss: { dpo: held?.value ?? null, sft: held?.baselineValue ?? null },
    countCompliance: { dpo: iv(comp), sft: comp?.baselineValue ?? null },
    meanLength: { dpo: len?.value ?? null, sft: len?.baselineValue ?? null },
  };
}

const f = (x: number | null | undefined, d = 3) => (x === null || x === undefined || !Number.isFinite(x) ? '—' : x.toFixed(d));
const ci = (i: Interval | null, d = 3) => (i ? `${f(i.value, d)}  [${f(i.lo, d)}, ${f(i.hi, d)}]` : '—');

export function summaryTable(s: DemoSummary): string {
  const rows: [string, string, string][] = [
    ['win rate DPO vs SFT, ground-truth judge (95% CI)', ci(s.winRate), s.winRate?.lo != null ? (s.winRate.lo > 0.7 ? 'target > 0.7: met' : 'target > 0.7: not met') : ''],
    ['  length-controlled (95% CI)', ci(s.lcWinRate), ''],
    ['win rate DPO vs SFT, reward model (95% CI)', ci(s.rewardModelWinRate), ''],
    ['mean sentiment score, DPO / SFT', `${f(s.meanScore.dpo)} / ${f(s.meanScore.sft)}`, 'judge score in (−1, 1)'],
    ['eval_rewards/accuracies, held-out pairs (95% CI)', ci(s.evalRewardsAccuracy), s.evalRewardsAccuracy ? (s.evalRewardsAccuracy.value > 0.9 ? 'target > 0.9: met' : 'target > 0.9: not met') : ''],
    ['reward-model accuracy, held-out pairs (95% CI)', ci(s.rewardModelAccuracy), ''],
    ['KL(DPO ‖ SFT), nats per answer (k1 / k3)', `${f(s.kl)} / ${f(s.klK3)}`, ''],
    ['held-out SFT loss, DPO / SFT (nats/token)', `${f(s.heldoutLoss.dpo)} / ${f(s.heldoutLoss.sft)}`, ''],
    ['count-task compliance, SFT → DPO', `${f(s.countCompliance.sft)} → ${f(s.countCompliance.dpo?.value)}`, s.countCompliance.dpo ? `DPO 95% CI [${f(s.countCompliance.dpo.lo)}, ${f(s.countCompliance.dpo.hi)}]` : ''],
    ['mean answer length, DPO / SFT (characters)', `${f(s.meanLength.dpo, 1)} / ${f(s.meanLength.sft, 1)}`, ''],
    ['preference pairs labeled by the judge', s.pairs === null ? '—' : String(s.pairs), ''],
    ['wall time', `${(s.wallSeconds / 60).toFixed(1)} min (${Math.round(s.wallSeconds)} s)`, `backend ${s.backend ?? '?'}`],
  ];
  const w0 = Math.max(...rows.map((r) => r[0].length));
  const w1 = Math.max(...rows.map((r) => r[1].length));
  return rows.map(([a, b, c]) => `  ${a.padEnd(w0)}  ${b.padEnd(w1)}  ${c}`.trimEnd()).join('\n') + '\n';
}

// ---------------------------------------------------------------- running it

export interface DemoResult {
  runId: string;
  status: string;
  summary?: DemoSummary;
  /** --human: the run waits at the label stage. */
  waitingForLabels?: { stage: string; pairs: number | null };
}

interface RunEnv {
  db: ReturnType<typeof cliDb>;
  home: string;
  json: boolean;
  concurrency: number;
}

/** Submits and drives the demo run to its end (or, with --human, to the label stage). */
export async function runDemo(o: DemoOptions, env: RunEnv): Promise<DemoResult> {
  const [{ loadStages, getStage }, { loadSpecFile }, { createLocalStore }, { getRun, runStages, cancelRun }, { submitRun }, { driveRun }, { runLine, stageLine }, { initBackend }] = await Promise.all([
    import('../../stages/index.js'),
    import('../../config/spec.js'),
    import('../../store/artifacts.js'),
    import('../../orchestrator/runs.js'),
    import('../../orchestrator/submit.js'),
    import('../../orchestrator/executors/inline.js'),
    import('../../orchestrator/follow.js'),
    import('../../ml/backend.js'),
  ]);
  const root = packageRoot();
  const specFile = demoSpecPath(root);
  const sets = demoOverrides(fs.readFileSync(specFile, 'utf8'), root, o);
  await loadStages();
  const spec = loadSpecFile(specFile, { sets, lookup: getStage });
  const backend = await initBackend(); // fail here, before any state is written, if no backend starts
  const { db, home } = env;
  const store = createLocalStore(db, home);
  const started = Date.now();
  const { runId } = await submitRun({ db, store }, spec, { executor: 'inline', specPath: specFile });
  const log = (s: string) => (env.json ? process.stderr : process.stdout).write(s);
  log(`alignflow demo: run ${runId}, seed ${spec.seed}, backend ${backend.name}, home ${home}\n`);

  // Live display: one line per stage, redrawn in place on a terminal, state changes otherwise.
  const out = env.json ? process.stderr : process.stdout;
  const tty = !!out.isTTY;
  const live = new Map<string, Progress>();
  const lastState = new Map<string, string>();
  let drawn = 0;
  const liveRow = (s: ReturnType<typeof runStages>[number]) => {
    const p = live.get(s.name);
    return p && s.state === 'running' ? { ...s, progress: { ...((s.progress as object) ?? {}), ...p } } : s;
  };
  const draw = () => {
    const st = runStages(db, runId);
    if (tty) {
      const lines = [runLine(db, runId), ...st.map((s) => '  ' + stageLine(liveRow(s)))];
      if (drawn) out.write(`\x1b[${drawn}A`);
      for (const l of lines) out.write('\x1b[2K' + l + '\n');
      drawn = lines.length;
    } else {
      for (const s of st) {
        if (lastState.get(s.id) !== s.state) {
          lastState.set(s.id, s.state);
          out.write(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${stageLine(s)}\n`);
        }
      }
    }
  };

  const stop = new AbortController();
  let waitingFor: string | undefined;
  const timer = setInterval(() => {
    draw();
    if (o.human) {
      const w = runStages(db, runId).find((s) => s.kind === 'label' && s.state === 'waiting');
      if (w && !stop.signal.aborted) {
        waitingFor = w.name;
        stop.abort(); // the label stage waits for people: stop driving, the run stays resumable
      }
    }
  }, tty ? 300 : 1000);
  let interrupted = false;
  const onSigint = () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    process.stderr.write('\ncancelling the demo run (Ctrl-C again to quit at once)…\n');
    cancelRun(db, runId);
  };
  process.on('SIGINT', onSigint);
  let status: string;
  try {
    status = await driveRun({ db, store, home }, runId, { signal: stop.signal, concurrency: env.concurrency, onProgress: (name, p) => live.set(name, p) });
  } finally {
    clearInterval(timer);
    draw();
    process.off('SIGINT', onSigint);
  }
  status = getRun(db, runId).status;
  const stagesNow = runStages(db, runId);

  if (o.human && waitingFor) {
    const labelRow = stagesNow.find((s) => s.name === waitingFor);
    const total = (labelRow?.progress as { total?: number } | null)?.total ?? null;
    return { runId, status, waitingForLabels: { stage: waitingFor, pairs: total } };
  }

  const outputsOf = (name: string) => ((stagesNow.find((s) => s.name === name)?.progress as { outputs?: Record<string, string> } | null)?.outputs ?? {});
  const readReport = async (stage: string): Promise<{ report: EvalReport; id: string } | undefined> => {
    const id = outputsOf(stage).report;
    if (!id) return undefined;
    return { report: JSON.parse((await store.readFile(id, 'report.json')).toString('utf8')) as EvalReport, id };
  };
  const evalStages = spec.stages.filter((s) => s.kind === 'eval');
  const isCount = (s: (typeof evalStages)[number]) => JSON.stringify((s.config as { judges?: unknown }).judges ?? []).includes('count');
  const main = evalStages.find((s) => !isCount(s));
  const count = evalStages.find((s) => isCount(s));
  const rep = main && status === 'succeeded' ? await readReport(main.name) : undefined;
  const crep = count && status === 'succeeded' ? await readReport(count.name) : undefined;
  const reportsDir = path.join(home, 'reports');
  const writeHtml = async (r: { id: string } | undefined, suffix: string) => {
    if (!r) return null;
    fs.mkdirSync(reportsDir, { recursive: true });
    const file = path.join(reportsDir, `demo-${runId}${suffix}.html`);
    fs.writeFileSync(file, await store.readFile(r.id, 'report.html'));
    return file;
  };
  const collectStage = spec.stages.find((s) => s.kind === 'label');
  let pairs: number | null = null;
  const labeled = collectStage ? outputsOf(collectStage.name).dataset : undefined;
  if (labeled) {
    const { datasetMetadata } = await import('../../data/datasets.js');
    pairs = (await datasetMetadata(store, labeled).catch(() => undefined))?.records ?? null;
  }
  const summary: DemoSummary = {
    runId,
    status,
    wallSeconds: (Date.now() - started) / 1000,
    pairs,
    ...summarize(rep?.report, crep?.report),
    report: await writeHtml(rep, ''),
    countReport: await writeHtml(crep, '-count'),
  };
  return { runId, status, summary };
}

function humanInstructions(r: DemoResult, home: string): string {
  const homeEnv = process.env.ALIGNFLOW_HOME ? '' : `ALIGNFLOW_HOME=${home} `;
  return [
    '',
    `The run ${r.runId} is waiting at the label stage "${r.waitingForLabels!.stage}"${r.waitingForLabels!.pairs ? ` (${r.waitingForLabels!.pairs} labels wanted)` : ''}.`,
    'Label the pairs in the browser:',
    '',
    `  1. start the server (keep it running):   ${homeEnv}alignflow serve --port 8765`,
    `  2. create a labeler and copy its token:  ${homeEnv}alignflow users add alice --role labeler`,
    `     (and an admin to watch progress:      ${homeEnv}alignflow users add admin --role admin)`,
    '  3. open the labeling UI:                 http://127.0.0.1:8765/   and sign in with the token',
    `  4. continue the run (it trains once every pair is labeled):   ${homeEnv}alignflow runs drive ${r.runId}`,
    `  5. then the report:                      ${homeEnv}alignflow report ${r.runId}`,
    '',
    `(Progress meanwhile: alignflow labels stats ${r.runId}. An admin may close the batch early: alignflow labels ls, alignflow labels close BATCH.)`,
    '',
  ].join('\n');
}

export function register(program: Command): void {
  program
    .command('demo')
    .description('run the bundled end-to-end demo: fresh GPT-2 → SFT → collect → label (rule judge) → reward model + DPO → eval report')
    .option('--seed <n>', 'run seed (every stage derives its seed from it)')
    .option('--steps-scale <f>', 'multiply the SFT steps and reward/DPO epochs by F (e.g. 0.5 for a faster, weaker run)')
    .option('--quick', 'a reduced demo (about a quarter of the training and of the prompts): a first look, and the automated test')
    .option('--human', 'stop at the label stage and label the pairs yourself in the web UI')
    .option('--set <key=value>', 'override a field of pipelines/demo.yaml, e.g. stages.dpo.beta=0.2 (repeatable)', (v: string, p: string[]) => [...p, v], [] as string[])
    .option('--concurrency <n>', 'stages run at once when independent (default: 2 on machines with 2+ cores)')
    .option('--json', 'print the summary as JSON (progress goes to stderr)')
    .action(async (opts: { seed?: string; stepsScale?: string; quick?: boolean; human?: boolean; set: string[]; concurrency?: string; json?: boolean }) => {
      const num = (v: string | undefined, name: string, ok: (x: number) => boolean) => {
        if (v === undefined) return undefined;
        const x = Number(v);
        if (!Number.isFinite(x) || !ok(x)) throw usageError(`--${name}: bad value "${v}"`);
        return x;
      };
      const seed = num(opts.seed, 'seed', (x) => Number.isInteger(x) && x >= 0 && x < 2 ** 31);
      const stepsScale = num(opts.stepsScale, 'steps-scale', (x) => x > 0 && x <= 100);
      const concurrency = num(opts.concurrency, 'concurrency', (x) => Number.isInteger(x) && x >= 1 && x <= 16) ?? (os.availableParallelism() >= 2 ? 2 : 1);
      const home = path.resolve(alignflowHome());
      const r = await runDemo(
        { ...(seed !== undefined ? { seed } : {}), ...(stepsScale !== undefined ? { stepsScale } : {}), quick: !!opts.quick, human: !!opts.human, sets: opts.set },
        { db: cliDb(), home, json: !!opts.json, concurrency },
      );
      if (r.waitingForLabels) {
        if (opts.json) printJson({ runId: r.runId, status: r.status, waitingForLabels: r.waitingForLabels, url: 'http://127.0.0.1:8765/' });
        else process.stdout.write(humanInstructions(r, home));
        return;
      }
      const s = r.summary!;
      if (opts.json) printJson(s);
      else {
        process.stdout.write(`\nalignflow demo — run ${r.runId} ${r.status}\n\n`);
        if (r.status === 'succeeded') {
          process.stdout.write(summaryTable(s));
          process.stdout.write(`\nHTML report: ${s.report}\n`);
          if (s.countReport) process.stdout.write(`count-task report: ${s.countReport}\n`);
          process.stdout.write(`More: alignflow report ${r.runId}   ·   alignflow runs show ${r.runId}\n`);
        } else process.stdout.write(`See why: alignflow runs show ${r.runId}   ·   alignflow runs logs ${r.runId}\nContinue it: alignflow runs resume ${r.runId}\n`);
      }
      process.exitCode = r.status === 'succeeded' ? 0 : 1;
    });
}
