// pipelines/frontier.yaml validates (every stage kind, every field), and the --quick overrides
// written in docs/rl.md apply: the one `--set` on the anchored eval config reaches every eval
// stage, every online stage gets its reduced step count, and the methods are the ones documented.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadStages, getStage } from '../../../src/stages/index.js';
import { loadSpecFile } from '../../../src/config/spec.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const specFile = path.join(root, 'pipelines', 'frontier.yaml');

/** The `--set k=v` arguments of the --quick command block in docs/rl.md. */
function documentedQuickSets(): string[] {
  const doc = fs.readFileSync(path.join(root, 'docs', 'rl.md'), 'utf8');
  const block = doc.slice(doc.indexOf('`--quick` sizes'));
  const code = block.slice(block.indexOf('```') + 3, block.indexOf('```', block.indexOf('```') + 3));
  return [...code.matchAll(/--set (\S+)/g)].map((m) => m[1]!);
}

test('the frontier spec validates, and the documented --quick overrides reach every stage they should', async () => {
  await loadStages();
  const full = loadSpecFile(specFile, { lookup: getStage });
  const kinds = (k: string) => full.stages.filter((s) => s.kind === k);
  const cfgOf = (spec: typeof full, name: string) => spec.stages.find((s) => s.name === name)!.config as Record<string, any>;
  assert.deepEqual(kinds('dpo').map((s) => [(s.config as any).loss, (s.config as any).beta, (s.config as any).lr]), [['sigmoid', 0.05, 1e-4], ['sigmoid', 0.1, 1e-4], ['sigmoid', 0.1, 2e-4], ['ipo', 0.1, 1e-4]]);
  const reward = (s: { config: unknown }) => ((s.config as any).rewards[0].type === 'reward_model' ? 'rm' : 'judge');
  assert.deepEqual(kinds('rl').map((s) => [(s.config as any).advantage, reward(s), (s.config as any).beta, (s.config as any).kl_in]), [
    ['rloo', 'rm', 0.1, 'reward'], ['grpo', 'rm', 0.1, 'reward'], ['rloo', 'judge', 0.05, 'reward'], ['rloo', 'judge', 0.1, 'reward'], ['grpo', 'judge', 0.1, 'reward'], ['grpo', 'judge', 0.2, 'reward'],
  ]);
  assert.deepEqual(kinds('online_dpo').map((s) => (s.config as any).judge.type ?? 'module'), ['reward_model', 'module']);
  // one eval per trained model, each against the SFT model as reference and baseline
  const trained = full.stages.filter((s) => ['dpo', 'rl', 'online_dpo'].includes(s.kind)).map((s) => s.name);
  const evals = kinds('eval');
  assert.equal(evals.length, trained.length);
  for (const name of trained) assert.ok(evals.some((e) => e.name === `eval_${name}`), name);
  for (const e of evals) assert.equal((e.config as any).judges[0].module, path.join(root, 'judges', 'sentiment.mjs'));
  // one sampling seed for every eval: every model is compared with the same SFT answers
  assert.deepEqual([...new Set(evals.map((e) => (e.config as any).sampling.seed))], [2024]);

  const sets = documentedQuickSets();
  assert.ok(sets.length >= 10, `found ${sets.length} --set in docs/rl.md`);
  const quick = loadSpecFile(specFile, { lookup: getStage, sets });
  assert.equal(cfgOf(quick, 'sft').max_steps, 180);
  assert.equal(cfgOf(quick, 'collect').max_prompts, 600);
  for (const e of evals) assert.equal(cfgOf(quick, e.name).max_prompts, 120, e.name);
  for (const s of [...kinds('rl'), ...kinds('online_dpo')]) assert.equal(cfgOf(quick, s.name).max_steps, 60, s.name);
  for (const s of [...kinds('rl'), ...kinds('online_dpo')]) assert.equal(cfgOf(full, s.name).max_steps, 300);
});
