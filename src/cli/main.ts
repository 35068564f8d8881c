#!/usr/bin/env node
// The `alignflow` command. Each command group lives in its own module under ./commands.
import { Command } from 'commander';
import { ALIGNFLOW_VERSION } from '../version.js';
import { runCli } from './shared.js';
import * as doctor from './commands/doctor.js';
import * as datasets from './commands/datasets.js';
import * as artifacts from './commands/artifacts.js';
import * as models from './commands/models.js';
import * as generate from './commands/generate.js';
import * as score from './commands/score.js';
import * as runs from './commands/runs.js';
import * as worker from './commands/worker.js';
import * as serve from './commands/serve.js';
import * as users from './commands/users.js';
import * as labels from './commands/labels.js';
import * as report from './commands/report.js';
import * as synth from './commands/synth.js';
import * as demo from './commands/demo.js';

export function buildProgram(): Command {
  const program = new Command('alignflow')
    .description('Alignment fine-tuning: SFT → preference pairs → reward model → DPO → evaluation')
    .version(ALIGNFLOW_VERSION)
    .option('--verbose', 'print stack traces and debug logs');
  for (const m of [demo, doctor, datasets, artifacts, models, generate, score, runs, worker, serve, users, labels, report, synth]) {
    m.register(program);
  }
  return program;
}

await runCli(buildProgram(), process.argv);
