// The `alignflow` command tree. Each command group lives in its own module under ./commands and is
// imported only when it is the one asked for: some pull in tfjs or BullMQ, which cost seconds to load.
import type { Command as CommandType } from 'commander';
import { Command } from 'commander';
import { ALIGNFLOW_VERSION } from '../version.js';

type CommandModule = { register(program: CommandType): void };

/** Top-level command name → the module that registers it. */
const modules: Record<string, () => Promise<CommandModule>> = {
  demo: () => import('./commands/demo.js'),
  doctor: () => import('./commands/doctor.js'),
  datasets: () => import('./commands/datasets.js'),
  artifacts: () => import('./commands/artifacts.js'),
  models: () => import('./commands/models.js'),
  generate: () => import('./commands/generate.js'),
  score: () => import('./commands/score.js'),
  run: () => import('./commands/runs.js'),
  submit: () => import('./commands/runs.js'),
  runs: () => import('./commands/runs.js'),
  worker: () => import('./commands/worker.js'),
  serve: () => import('./commands/serve.js'),
  users: () => import('./commands/users.js'),
  labels: () => import('./commands/labels.js'),
  report: () => import('./commands/report.js'),
  compare: () => import('./commands/report.js'),
  synth: () => import('./commands/synth.js'),
};

export async function buildProgram(argv: string[] = process.argv): Promise<Command> {
  const program = new Command('alignflow')
    .description('Alignment fine-tuning: SFT → preference pairs → reward model → DPO → evaluation')
    .version(ALIGNFLOW_VERSION)
    .option('--verbose', 'print stack traces and debug logs');
  const asked = argv.slice(2).find((a) => !a.startsWith('-'));
  // The whole program is needed for --help, `help` and unknown commands (commander's suggestions).
  const loaders = asked && modules[asked] ? [modules[asked]!] : [...new Set(Object.values(modules))];
  const loaded = new Set<CommandModule>();
  for (const load of loaders) {
    const m = await load();
    if (loaded.has(m)) continue;
    loaded.add(m);
    m.register(program);
  }
  return program;
}

