// `alignflow synth sentiment|count --out DIR`: writes a seeded synthetic task (TRL-format JSONL
// files + manifest.json) whose ground truth is a rule judge in judges/. Same seed and options →
// byte-identical files.
import path from 'node:path';
import type { Command } from 'commander';
import { usageError } from '../../errors.js';
import { printJson, printTable } from '../shared.js';
import {
  COUNT_DEFAULTS,
  generateCount,
  generateMixed,
  MIXED_DEFAULTS,
  generateSentiment,
  renderDataset,
  SENTIMENT_DEFAULTS,
  writeDataset,
  type RenderedFile,
  type SynthDataset,
} from '../../data/synth/index.js';

const number = (flag: string) => (value: string) => {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw usageError(`${flag} expects a number, got "${value}"`);
  return n;
};

interface CommonOpts {
  out: string;
  json?: boolean;
}

// Option flag ↔ generator option, shared by both tasks.
const COMMON: [flag: string, key: string, help: string][] = [
  ['--seed', 'seed', 'seed of every random choice (uint32)'],
  ['--n-train', 'nTrain', 'SFT records (training prompts)'],
  ['--n-sft-eval', 'nSftEval', 'held-out SFT records (eval prompts)'],
  ['--n-prompts', 'nPrompts', 'distinct prompts for pair collection'],
  ['--n-eval-prompts', 'nEvalPrompts', 'distinct held-out eval prompts'],
  ['--n-prefs', 'nPrefs', 'judge-labeled preference pairs on collection prompts'],
  ['--n-eval-prefs', 'nEvalPrefs', 'judge-labeled held-out preference pairs'],
];

/** The command that regenerates exactly these files, every option spelled out. */
function regenerateCommand(ds: SynthDataset, flags: [string, string][]): string {
  const parts = flags.map(([flag, key]) => `${flag} ${ds.options[key]}`);
  return `alignflow synth ${ds.task} ${parts.join(' ')} --out <dir>`;
}

function report(files: RenderedFile[], dir: string, json: boolean | undefined): void {
  const rows = files.map((f) => ({ file: path.join(dir, f.name), kind: f.kind, records: f.records, bytes: f.bytes, sha256: f.sha256.slice(0, 12) }));
  if (json) {
    printJson({ dir, files: files.map((f) => ({ file: path.join(dir, f.name), kind: f.kind, records: f.records, bytes: f.bytes, sha256: f.sha256 })) });
    return;
  }
  printTable(rows);
  const total = files.reduce((n, f) => n + f.bytes, 0);
  process.stdout.write(`wrote ${files.length} files (${(total / 1024).toFixed(0)} KiB) to ${dir}\n`);
}

/** Renders the dataset and writes it; the same path for both tasks. */
export function synthesize(ds: SynthDataset, flags: [string, string][], out: string): RenderedFile[] {
  const files = renderDataset(ds, regenerateCommand(ds, flags));
  writeDataset(files, out);
  return files;
}

export const SENTIMENT_FLAGS: [string, string][] = [...COMMON.map(([f, k]) => [f, k] as [string, string]), ['--min-margin', 'minMargin']];
export const MIXED_FLAGS: [string, string][] = [
  ['--seed', 'seed'],
  ['--n-sentiment', 'nSentiment'],
  ['--n-count', 'nCount'],
];
export const COUNT_FLAGS: [string, string][] = [...COMMON.map(([f, k]) => [f, k] as [string, string]), ['--error-rate', 'errorRate']];

export function register(program: Command): void {
  const synth = program
    .command('synth')
    .description('write a seeded synthetic task (SFT corpus, prompts, judge-labeled pairs) in TRL JSONL formats')
    .addHelpText('after', '\nThe ground truth of each task is a rule judge in judges/ (see docs/synth.md).')
    // runCli sets exitOverride on the root only, after commands exist; without it here commander
    // exits with code 1 on a usage error in a subcommand instead of throwing to runCli (exit 2).
    .exitOverride();

  const withCommon = (cmd: Command, defaults: Record<string, number>) => {
    cmd.requiredOption('--out <dir>', 'directory to write the files into (created if missing)');
    for (const [flag, key, help] of COMMON) cmd.option(`${flag} <n>`, `${help} (default ${defaults[key]})`, number(flag));
    cmd.option('--json', 'print what was written as JSON');
    return cmd.exitOverride();
  };
  const pickOptions = (opts: Record<string, unknown>, keys: string[]) =>
    Object.fromEntries(keys.filter((k) => opts[k] !== undefined).map((k) => [k, opts[k] as number]));

  withCommon(
    synth.command('sentiment').description('controlled-sentiment task (after the DPO paper, §6.1): reviews of mixed sentiment, judged by a lexicon'),
    SENTIMENT_DEFAULTS as unknown as Record<string, number>,
  )
    .option('--min-margin <x>', `least |raw score gap| of a labeled pair (default ${SENTIMENT_DEFAULTS.minMargin})`, number('--min-margin'))
    .action((opts: CommonOpts & Record<string, unknown>) => {
      const ds = generateSentiment(pickOptions(opts, SENTIMENT_FLAGS.map(([, k]) => k)));
      report(synthesize(ds, SENTIMENT_FLAGS, opts.out), opts.out, opts.json);
    });

  withCommon(
    synth.command('count').description('counting task: "list three fruits:" instructions whose compliance a rule judge checks'),
    COUNT_DEFAULTS as unknown as Record<string, number>,
  )
    .option('--error-rate <x>', `share of SFT completions that break the instruction (default ${COUNT_DEFAULTS.errorRate})`, number('--error-rate'))
    .action((opts: CommonOpts & Record<string, unknown>) => {
      const ds = generateCount(pickOptions(opts, COUNT_FLAGS.map(([, k]) => k)));
      report(synthesize(ds, COUNT_FLAGS, opts.out), opts.out, opts.json);
    });

  synth
    .command('mixed')
    .description('one SFT corpus of both tasks (sentiment + count, shuffled), for a model that learns both')
    .requiredOption('--out <dir>', 'directory to write the files into (created if missing)')
    .option('--seed <n>', `seed of both generators and of the shuffle (default ${MIXED_DEFAULTS.seed})`, number('--seed'))
    .option('--n-sentiment <n>', `sentiment SFT records (default ${MIXED_DEFAULTS.nSentiment})`, number('--n-sentiment'))
    .option('--n-count <n>', `count SFT records (default ${MIXED_DEFAULTS.nCount})`, number('--n-count'))
    .option('--json', 'print what was written as JSON')
    .exitOverride()
    .action((opts: CommonOpts & Record<string, unknown>) => {
      const ds = generateMixed(pickOptions(opts, MIXED_FLAGS.map(([, k]) => k)));
      report(synthesize(ds, MIXED_FLAGS, opts.out), opts.out, opts.json);
    });
}
