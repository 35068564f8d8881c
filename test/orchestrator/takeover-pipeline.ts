// The pipeline both takeover tests kill mid-stage (inline in takeover.test.ts, BullMQ in
// takeover-bullmq.test.ts), and its uninterrupted run, the reference a taken-over run must equal.
import assert from 'node:assert/strict';
import path from 'node:path';
import { tmpDir } from '../helpers/tmp.js';
import { writeFile } from './helpers.js';

type Cli = (home: string, args: string[]) => { code: number | null; out: string; err: string };

/** Writes the data and spec into `dir`; metrics every step, checkpoints every 4, so a crash after step 6 re-runs steps 5 and 6. */
export function writeTakeoverPipeline(dir: string, name: string): string {
  writeFile(dir, 'data.jsonl', '{"text":"takeover"}\n');
  return writeFile(dir, 'p.yaml', `
name: ${name}
datasets: { data: data.jsonl }
stages:
  a: { kind: count, inputs: { data: datasets.data }, config: { steps: 14, step_ms: 250, checkpoint_every: 4 } }
  b: { kind: join, inputs: { x: a } }
`);
}

/** The pipeline run inline, uninterrupted, in a fresh home: its metric points (one a step) and its run snapshot. */
export function uninterruptedRun(cli: Cli, spec: string): { metrics: unknown[]; snapshot: { stages: { outputs: unknown }[] } } {
  const home = path.join(tmpDir(), 'home');
  const clean = cli(home, ['run', spec, '--json']);
  assert.equal(clean.code, 0, clean.err);
  const runId = JSON.parse(clean.out).id as string;
  const metrics = JSON.parse(cli(home, ['runs', 'metrics', runId, '--json']).out) as unknown[];
  assert.equal(metrics.length, 14, 'one loss point per step');
  return { metrics, snapshot: JSON.parse(cli(home, ['runs', 'show', runId, '--json']).out) };
}
