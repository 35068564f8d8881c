// The demo end to end, at the reduced size (`alignflow demo --quick`), through the real CLI in a
// child process started from a directory outside the checkout, with its own ALIGNFLOW_HOME: every
// stage must succeed, the HTML report must exist, and alignment must move the right way. The full
// demo's figures (win rate CI > 0.7 etc.) are measured by hand, not here (docs/demo.md).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { tmpDir } from '../helpers/tmp.js';
import { demoOverrides, packageRoot, demoSpecPath, summaryTable, type DemoSummary } from '../../src/cli/commands/demo.js';
import { loadStages, getStage } from '../../src/stages/index.js';
import { loadSpecFile } from '../../src/config/spec.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const cli = path.join(root, 'bin', 'alignflow.js');

test('the demo spec is found from the package root and validates with every override', async () => {
  assert.equal(packageRoot(), root);
  assert.equal(packageRoot(path.join(root, 'src', 'cli', 'commands')), root);
  const text = fs.readFileSync(demoSpecPath(), 'utf8');
  await loadStages();
  for (const o of [{}, { quick: true }, { human: true }, { seed: 7, stepsScale: 0.5 }]) {
    const sets = demoOverrides(text, root, o);
    const spec = loadSpecFile(demoSpecPath(), { sets, lookup: getStage });
    const byName = new Map(spec.stages.map((s) => [s.name, s.config as Record<string, unknown>]));
    // judges resolve against the spec file into absolute paths, so the demo runs from any directory
    assert.equal(byName.get('label')!.judge, path.join(root, 'judges', 'sentiment.mjs'));
    assert.ok(fs.existsSync(byName.get('label')!.judge as string));
    assert.deepEqual(byName.get('eval')!.judges, [{ type: 'rule', module: path.join(root, 'judges', 'sentiment.mjs') }]);
    assert.equal(byName.get('label')!.labeler, 'human' in o ? 'human' : 'rule');
    if ('seed' in o) assert.equal(spec.seed, 7);
    if ('stepsScale' in o) assert.equal(byName.get('sft')!.max_steps, 300);
    if ('quick' in o) assert.ok((byName.get('sft')!.max_steps as number) < 600 && (byName.get('collect')!.max_prompts as number) < 3000);
  }
  const stages = loadSpecFile(demoSpecPath(), { lookup: getStage }).stages;
  const cfg = (name: string) => stages.find((s) => s.name === name)!.config as { beta?: number; loss: string };
  // The recipe: sigmoid DPO with β 0.1. The eval stages name no β of their own: implicit
  // rewards use the one the DPO model artifact records (a config β would override it).
  assert.equal(cfg('dpo').loss, 'sigmoid');
  assert.equal(cfg('dpo').beta, 0.1);
  assert.equal(cfg('eval').beta, undefined);
  assert.equal(cfg('eval_count').beta, undefined);
});

test('summaryTable prints every figure and the targets', () => {
  const s: DemoSummary = {
    runId: 'r-x', status: 'succeeded', wallSeconds: 300, backend: 'wasm', pairs: 480,
    winRate: { value: 0.85, lo: 0.81, hi: 0.88 }, lcWinRate: { value: 0.8, lo: 0.75, hi: 0.85 }, rewardModelWinRate: { value: 0.9, lo: 0.87, hi: 0.93 },
    meanScore: { dpo: 0.5, sft: 0 }, evalRewardsAccuracy: { value: 0.95, lo: 0.93, hi: 0.97 }, rewardModelAccuracy: { value: 0.9, lo: 0.87, hi: 0.93 },
    kl: 3.2, klK3: 2.1, heldoutLoss: { dpo: 1.1, sft: 0.9 }, countCompliance: { dpo: { value: 0.3, lo: 0.2, hi: 0.4 }, sft: 0.3 },
    meanLength: { dpo: 40, sft: 35 }, report: '/x.html', countReport: null,
  };
  const t = summaryTable(s);
  assert.match(t, /0\.850 {2}\[0\.810, 0\.880\] {2}target > 0\.7: met/);
  assert.match(t, /eval_rewards\/accuracies.*0\.950.*target > 0\.9: met/);
  assert.match(t, /count-task compliance, SFT → DPO\s+0\.300 → 0\.300/);
  assert.match(t, /5\.0 min/);
  assert.match(summaryTable({ ...s, winRate: { value: 0.6, lo: 0.55, hi: 0.65 } }), /target > 0\.7: not met/);
});

test('alignflow demo --quick runs end to end from another directory and improves on the SFT model', { timeout: 900_000 }, () => {
  const home = path.join(tmpDir(), 'home');
  const cwd = tmpDir(); // not the checkout: the pipeline and judges must be found from the package root
  const env = { ...process.env, ALIGNFLOW_HOME: home };
  const r = spawnSync(process.execPath, [cli, 'demo', '--quick', '--json'], { cwd, env, encoding: 'utf8', timeout: 880_000 });
  assert.equal(r.status, 0, `demo exited ${r.status}\nstdout: ${r.stdout}\nstderr: ${r.stderr.slice(-4000)}`);
  const s = JSON.parse(r.stdout) as DemoSummary;
  assert.equal(s.status, 'succeeded');
  // every stage succeeded (none cached: a fresh home)
  const show = spawnSync(process.execPath, [cli, 'runs', 'show', s.runId, '--json'], { cwd, env, encoding: 'utf8' });
  assert.equal(show.status, 0, show.stderr);
  const snap = JSON.parse(show.stdout) as { status: string; stages: { name: string; state: string }[] };
  assert.deepEqual(snap.stages.map((x) => x.name).sort(), ['collect', 'dpo', 'eval', 'eval_count', 'label', 'model', 'reward', 'sft']);
  for (const st of snap.stages) assert.equal(st.state, 'succeeded', `stage ${st.name} is ${st.state}`);
  // the report exists, is HTML, and lives under the temp home
  assert.ok(s.report && s.report.startsWith(home) && fs.existsSync(s.report), `report ${s.report}`);
  assert.match(fs.readFileSync(s.report, 'utf8').slice(0, 200), /<!doctype html>/i);
  // every figure of the summary is there
  assert.ok(s.winRate && s.rewardModelWinRate && s.evalRewardsAccuracy && s.rewardModelAccuracy, JSON.stringify(s));
  assert.ok(typeof s.kl === 'number' && Number.isFinite(s.kl));
  assert.ok(s.countCompliance.dpo && typeof s.countCompliance.sft === 'number');
  assert.ok((s.pairs ?? 0) > 20, `only ${s.pairs} labeled pairs`);
  // and alignment moved the right way
  // (measured at this size: win rate 0.68 [0.60, 0.76], eval_rewards/accuracies 0.82)
  assert.ok(s.winRate.value > 0.5, `the DPO model does not beat the SFT model: win rate ${JSON.stringify(s.winRate)}`);
  assert.ok(s.evalRewardsAccuracy.value > 0.5, `implicit-reward accuracy ${JSON.stringify(s.evalRewardsAccuracy)} is not above chance`);
  // no files were written to the working directory
  assert.deepEqual(fs.readdirSync(cwd), []);
});
