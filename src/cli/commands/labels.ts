// `alignflow labels ls|stats|export|close`: label batches of a run (or a batch id).
import path from 'node:path';
import type { Command } from 'commander';
import { cliDb, printJson, printTable } from '../shared.js';
import { notFound, usageError } from '../../errors.js';
import { batchProgress, closeBatch, listBatches, type Batch } from '../../labeling/batches.js';
import { batchStats, type BatchStats } from '../../labeling/stats.js';
import { exportBatch } from '../../labeling/export.js';
import { resolutions, type Resolution } from '../../labeling/resolve.js';
import type { Db } from '../../store/db.js';

/** The batches of a run id, or the one batch with this id. */
function batchesOf(db: Db, ref: string): Batch[] {
  const byRun = listBatches(db, { runId: ref });
  if (byRun.length) return byRun;
  const one = listBatches(db).filter((b) => b.id === ref);
  if (one.length) return one;
  throw notFound(`no label batch for "${ref}" (give a run id or a batch id; \`alignflow labels ls\` lists them)`);
}

const f3 = (x: number | null) => (x === null ? '—' : x.toFixed(3));
const pct = (x: number | null) => (x === null ? '—' : (100 * x).toFixed(1) + '%');

function printStats(b: Batch, s: BatchStats): void {
  const p = s.progress;
  const out = process.stdout;
  out.write(`batch ${b.id}  "${b.name}"  ${b.status}\n`);
  out.write(`  progress      ${p.done}/${p.total} labels, ${p.completePairs}/${p.pairs} pairs complete (quota ${p.quota}), ${p.goldPairs} gold, ${s.skips} skips, ${p.liveLeases} live leases\n`);
  out.write(`  decisions     a ${s.decisions.a}, b ${s.decisions.b}, tie ${s.decisions.tie}, both bad ${s.decisions.both_bad}\n`);
  out.write(`  agreement     Krippendorff's α ${f3(s.alpha)}, mean pairwise Cohen's κ ${f3(s.kappa.mean)} (${s.kappa.pairs.length} annotator pairs)\n`);
  if (s.ranking) {
    out.write(`  rankings      ${b.kind} batch, pair rule ${b.pairRule}; mean Kendall's τ-b ${f3(s.ranking.meanTau)} (${s.ranking.comparisons} comparisons), answer pairs ordered alike ${pct(s.ranking.pairwiseAgreement)}; the figures above are over answer pairs\n`);
  }
  const sg = s.suggestions;
  if (sg.shown) {
    // Anchoring: labels equal to the pre-annotation shown (a ranking: the same order exactly).
    out.write(`  suggestions   followed ${sg.followed}/${sg.shown} (${pct(sg.rate)})${s.ranking ? `, mean Kendall's τ-b label vs suggestion ${f3(sg.meanTau)} (${sg.tauLabels} labels)` : ''}\n`);
    printTable(sg.byAnnotator.map((f) => ({ annotator: f.annotator, followed: `${f.followed}/${f.shown}`, rate: pct(f.rate), ...(s.ranking ? { tau_b: f3(f.meanTau) } : {}) })));
  }
  out.write(`  position bias left side wins ${pct(s.positionBias.leftWinRate)} of ${s.positionBias.decided} decided labels (z ${s.positionBias.z === null ? '—' : s.positionBias.z.toFixed(2)})\n`);
  if (s.gold.length) {
    out.write('  gold accuracy\n');
    // Ranking batches: correct = top-1 match with the gold ranking; τ-b to it beside.
    printTable(s.gold.map((g) => ({ annotator: g.annotator, correct: `${g.correct}/${g.total}`, accuracy: pct(g.accuracy), ...(g.meanTau !== undefined ? { tau_b: f3(g.meanTau) } : {}) })));
  }
  if (s.time.length) {
    out.write('  time per label\n');
    printTable(s.time.map((t) => ({ annotator: t.annotator, labels: t.labels, median_s: t.medianMs === null ? '—' : (t.medianMs / 1000).toFixed(1) })));
  }
  if (s.disputed.length) {
    out.write('  most disputed pairs\n');
    printTable(s.disputed.slice(0, 10).map((d) => ({ pair: d.pairId, labels: d.labels, votes: Object.entries(d.counts).map(([k, v]) => `${k}:${v}`).join(' '), prompt: d.prompt.replace(/\s+/g, ' ').slice(0, 60) })));
  }
}

export function register(program: Command): void {
  const labels = program.command('labels').description('label batches: progress, agreement, export');

  labels
    .command('ls')
    .description('list label batches')
    .option('--run <id>', 'only this run')
    .option('--json', 'print JSON')
    .action((o: { run?: string; json?: boolean }) => {
      const db = cliDb();
      const rows = listBatches(db, o.run ? { runId: o.run } : {}).map((b) => {
        const p = batchProgress(db, b.id);
        return { id: b.id, name: b.name, run: b.runId, status: b.status, quota: b.quota, pairs: p.pairs, gold: p.goldPairs, progress: `${p.done}/${p.total}` };
      });
      if (o.json) return printJson(rows);
      printTable(rows);
    });

  labels
    .command('stats')
    .argument('<run>', 'run id (r-…)')
    .description("progress, Krippendorff's α, Cohen's κ, gold accuracy, position bias, time per label, disputed pairs")
    .option('--json', 'print JSON')
    .action((ref: string, o: { json?: boolean }) => {
      const db = cliDb();
      const bs = batchesOf(db, ref);
      if (o.json) return printJson(bs.map((b) => ({ batch: b, stats: batchStats(db, b.id) })));
      bs.forEach((b, i) => {
        if (i) process.stdout.write('\n');
        printStats(b, batchStats(db, b.id));
      });
    });

  labels
    .command('export')
    .argument('<run>', 'run id (r-…)')
    .description('write preferences.jsonl (TRL prompt/chosen/rejected; ties, both-bad and splits excluded), labels.jsonl (raw, with annotator ids), rankings.jsonl (ranking batches) and README.md (a Hugging Face dataset card: the folder loads with datasets.load_dataset)')
    .requiredOption('--out <dir>', 'output directory (one sub-directory per batch when the run has several)')
    .option('--resolution <mode>', `how several labels become one preference: ${resolutions.join(' | ')}`, 'majority')
    .option('--json', 'print JSON')
    .action((ref: string, o: { out: string; resolution: string; json?: boolean }) => {
      if (!(resolutions as readonly string[]).includes(o.resolution)) throw usageError(`--resolution must be one of ${resolutions.join(', ')}`);
      const db = cliDb();
      const bs = batchesOf(db, ref);
      const results = bs.map((b) => ({ batch: b.id, ...exportBatch(db, b.id, bs.length === 1 ? o.out : path.join(o.out, b.id), o.resolution as Resolution) }));
      if (o.json) return printJson(results);
      for (const r of results) {
        process.stdout.write(`${r.batch}: ${r.records} preference records → ${r.preferences}\n  ${r.labelCount} raw labels → ${r.labels}\n${'rankings' in r && r.rankings ? `  raw rankings → ${r.rankings}\n` : ''}  Hugging Face dataset card → ${r.card}\n  excluded: ${r.excluded.tie} tie, ${r.excluded.both_bad} both bad, ${r.excluded.split} split, ${r.excluded.no_labels} unlabeled (resolution: ${r.resolution})\n`);
      }
    });

  labels
    .command('close')
    .argument('<batch>', 'labeling batch id')
    .description('close a batch: no more assignments; late submissions are refused')
    .action((id: string) => {
      const b = closeBatch(cliDb(), id);
      process.stdout.write(`closed ${b.id}\n`);
    });
}
