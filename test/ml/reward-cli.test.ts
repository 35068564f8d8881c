// `alignflow score --reward-model` end to end: a real CLI process, a fresh ALIGNFLOW_HOME, a
// dataset imported through the CLI and a reward model directory; the printed rewards must equal
// the library's scores.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { initBackend } from '../../src/ml/backend.js';
import { bytesTokenizer } from '../../src/ml/tokenizer/index.js';
import { createGpt2 } from '../../src/ml/models/gpt2.js';
import { saveModelDir } from '../../src/ml/models/io.js';
import { createRewardModel, saveRewardModelDir, scoreWithRewardModel } from '../../src/ml/reward.js';
import { tmpDir } from '../helpers/tmp.js';

before(async () => {
  await initBackend();
});

const cli = (home: string, args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { encoding: 'utf8', env: { ...process.env, ALIGNFLOW_HOME: home } });

test('alignflow score --reward-model DIR --dataset NAME --json prints chosen/rejected rewards', async () => {
  const home = tmpDir();
  const tok = bytesTokenizer();
  const rm = createRewardModel(createGpt2({ vocab_size: tok.vocabSize, n_positions: 48, n_embd: 16, n_layer: 1, n_head: 2 }, 4), { seed: 1, padTokenId: tok.padTokenId! });
  const dir = path.join(home, 'rm');
  saveRewardModelDir(rm, tok, dir);
  const rows = [
    { prompt: 'q a:', chosen: ' yes+', rejected: ' no-' },
    { prompt: 'q bb:', chosen: ' ok', rejected: ' nope, never' },
  ];
  const file = path.join(home, 'prefs.jsonl');
  fs.writeFileSync(file, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  const imp = cli(home, ['datasets', 'import', file, '--name', 'prefs']);
  assert.equal(imp.status, 0, imp.stderr);
  const res = cli(home, ['score', '--reward-model', dir, '--dataset', 'prefs', '--json']);
  assert.equal(res.status, 0, res.stderr);
  const out = JSON.parse(res.stdout);
  assert.equal(out.records, 2);
  const eos = tok.eosToken!;
  const expect = await scoreWithRewardModel(
    rm,
    rows.flatMap((r) => [
      { promptIds: tok.encode(r.prompt), completionIds: tok.encode(r.chosen + eos) },
      { promptIds: tok.encode(r.prompt), completionIds: tok.encode(r.rejected + eos) },
    ]),
  );
  out.scores.forEach((s: any, i: number) => {
    assert.ok(Math.abs(s.chosen_reward - expect[2 * i]!.reward) < 1e-5);
    assert.ok(Math.abs(s.rejected_reward - expect[2 * i + 1]!.reward) < 1e-5);
    assert.ok(Math.abs(s.margin - (s.chosen_reward - s.rejected_reward)) < 1e-9);
  });
  // both --model and --reward-model: a usage error (exit 2)
  const both = cli(home, ['score', '--reward-model', dir, '--model', dir, '--dataset', 'prefs']);
  assert.equal(both.status, 2);
  // a plain language model is not a reward model: an input error naming the architecture
  const lmDir = path.join(home, 'lm');
  saveModelDir(rm.base, tok, lmDir);
  const notRm = cli(home, ['score', '--reward-model', lmDir, '--dataset', 'prefs']);
  assert.equal(notRm.status, 2);
  assert.match(notRm.stderr, /not a reward model/);
  rm.dispose();
});
