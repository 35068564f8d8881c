// The rl stage end to end on real parts (SQLite store, imported prompt datasets, a tiny byte-level
// GPT-2, a rule judge module): RLOO raises the judge's held-out mean score on a toy task with a
// verifiable reward, a run cancelled and resumed from its checkpoint ends bit-identical to an
// uninterrupted one, and bad configs fail before anything trains.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { initBackend } from '../../../src/ml/backend.js';
import { rlStage } from '../../../src/stages/rl.js';
import { env, modelArtifact, datasetArtifact, stageContext } from '../dpo-stage-helpers.js';

const judge = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../fixtures/rl/letters.mjs');

before(async () => {
  await initBackend();
});

const prompts = (n: number, off = 0) => Array.from({ length: n }, (_, i) => ({ prompt: `q${i + off}:` }));

test('rl stage (RLOO): the verifiable reward goes up, with TRL-named metrics and progress', async () => {
  const e = env();
  const model = await modelArtifact(e, 5);
  const train = await datasetArtifact(e, 'rl-train', prompts(32));
  const evalDs = await datasetArtifact(e, 'rl-eval', prompts(24, 100));
  const config = { rewards: [{ type: 'judge', module: judge }], num_generations: 4, batch_size: 4, max_new_tokens: 6, max_length: 24, max_steps: 30, lr: 1e-2, beta: 0.01, eval_every: 30, log_every: 5 };
  const r = stageContext(e, 'rl', config, { model, train, eval: evalDs });
  const out = await rlStage.run(r.ctx as never);
  assert.equal(out.status, 'done');
  if (out.status !== 'done') return;
  const s = out.summary as any;
  const before = s.eval_start['eval_objective/scores'];
  const after = s.eval['eval_objective/scores'];
  assert.ok(after > before + 0.1, `held-out letter fraction ${before} → ${after}`);
  const first = r.metrics.find((m) => 'objective/scores' in m.values)!.values['objective/scores']!;
  const last = r.metrics.filter((m) => 'objective/scores' in m.values).at(-1)!.values['objective/scores']!;
  assert.ok(last > first, `training scores ${first} → ${last}`);
  const trainPoint = r.metrics.find((m) => 'objective/scores' in m.values)!.values;
  for (const n of ['objective/kl', 'objective/entropy', 'objective/rlhf_reward', 'policy/clipfrac', 'val/num_eos_tokens', 'completions/mean_length']) assert.ok(n in trainPoint, n);
  assert.equal(s.advantage, 'rloo');
  assert.equal(s.kl_in, 'reward');
  assert.equal(s.steps, 30);
  assert.equal((out.outputs.model!.metadata as any).stage, 'rl');
});

test('rl stage (GRPO, KL in the loss): cancelled and resumed from its checkpoint ends bit-identical', async () => {
  const e = env();
  const model = await modelArtifact(e, 6);
  const train = await datasetArtifact(e, 'rl-resume', prompts(12));
  const config = { advantage: 'grpo', rewards: [{ type: 'judge', module: judge, weight: 2 }], num_generations: 3, batch_size: 2, max_new_tokens: 5, max_length: 24, max_steps: 6, lr: 3e-3, beta: 0.05, checkpoint_every: 3, missing_eos_penalty: 0.1 };
  const whole = stageContext(e, 'rl', config, { model, train }, 'whole');
  const a = await rlStage.run(whole.ctx as never);
  const cut = stageContext(e, 'rl', config, { model, train }, 'cut', { abortAtStep: 3 });
  await assert.rejects(rlStage.run(cut.ctx as never), (err: any) => err.kind === 'cancelled');
  assert.deepEqual(cut.checkpoints.map((c) => c.step), [3]);
  const resumed = stageContext(e, 'rl', config, { model, train }, 'cut', { checkpoints: cut.checkpoints });
  const b = await rlStage.run(resumed.ctx as never);
  assert.ok(resumed.logs.some((l) => /resuming from the checkpoint of step 3/.test(l.msg)));
  assert.ok(a.status === 'done' && b.status === 'done');
  if (a.status !== 'done' || b.status !== 'done') return;
  const wa = await e.store.readFile(a.outputs.model!.id, 'model.safetensors');
  const wb = await e.store.readFile(b.outputs.model!.id, 'model.safetensors');
  assert.ok(Buffer.compare(wa, wb) === 0, 'final weights differ');
  // the metrics after the resume are the uninterrupted run's
  const tail = (ms: { step: number; values: Record<string, number> }[]) => ms.filter((m) => m.step > 3).map((m) => m.values['objective/scores']);
  assert.equal(tail(whole.metrics).length, 3);
  assert.deepEqual(tail(resumed.metrics), tail(whole.metrics));
});

test('rl stage: invalid configs fail as config errors naming the field', async () => {
  const e = env();
  const model = await modelArtifact(e, 7);
  const train = await datasetArtifact(e, 'rl-bad', prompts(4));
  const bad = async (config: object, re: RegExp) => {
    const r = stageContext(e, 'rl', config, { model, train });
    await assert.rejects(rlStage.run(r.ctx as never), (err: any) => err.kind === 'config' && re.test(err.message), JSON.stringify(config));
  };
  const rewards = [{ type: 'judge', module: judge }];
  await bad({}, /rewards/);
  await bad({ rewards, num_generations: 1 }, /num_generations/);
  await bad({ rewards, kl_estimator: 'k4' }, /kl_estimator/);
  await bad({ rewards, rloo_kk: 4 }, /rloo_kk/);
  await bad({ rewards, num_ppo_epochs: 2, checkpoint_every: 3 }, /multiple of num_ppo_epochs/);
  await bad({ rewards, max_new_tokens: 30, max_length: 24 }, /max_new_tokens/);
  await bad({ rewards: [{ type: 'reward_model' }] }, /reward_model/);
  await bad({ rewards, reward_clip_range: [1, 0] }, /reward_clip_range/);
});

test('rl stage: LoRA (reference = adapters off: KL exactly 0 before the first update) and a weighted reward model + judge', async () => {
  const { createGpt2 } = await import('../../../src/ml/models/gpt2.js');
  const { createRewardModel, saveRewardModelDir } = await import('../../../src/ml/reward.js');
  const { bytesTokenizer } = await import('../../../src/ml/tokenizer/index.js');
  const { dirFiles } = await import('../../../src/store/dir-files.js');
  const e = env();
  const model = await modelArtifact(e, 8);
  const train = await datasetArtifact(e, 'rl-lora', prompts(8));
  const tok = bytesTokenizer();
  const base = createGpt2({ vocab_size: tok.vocabSize, n_positions: 48, n_embd: 16, n_layer: 1, n_head: 2, eos_token_id: tok.eosTokenId, bos_token_id: tok.eosTokenId }, 9);
  const rm = createRewardModel(base, { seed: 9, padTokenId: tok.eosTokenId! });
  const dir = path.join(e.home, 'rm');
  saveRewardModelDir(rm, tok, dir);
  rm.dispose();
  const reward = await e.store.put({ kind: 'model', name: 'rm', files: dirFiles(dir) });
  const config = { lora: { r: 4, alpha: 8, target_modules: 'all-linear' }, rewards: [{ type: 'reward_model', weight: 0.5 }, { type: 'judge', module: judge }], num_generations: 2, batch_size: 2, max_new_tokens: 4, max_length: 24, max_steps: 2, lr: 1e-2, log_every: 1 };
  const r = stageContext(e, 'rl', config, { model, train, reward_model: reward });
  const out = await rlStage.run(r.ctx as never);
  assert.equal(out.status, 'done');
  if (out.status !== 'done') return;
  const points = r.metrics.filter((m) => 'objective/kl' in m.values);
  assert.equal(points[0]!.values['objective/kl'], 0, 'the first rollout is sampled before any update: policy = reference');
  assert.ok(points[1]!.values['objective/kl'] !== 0, 'after an update the policy differs from the reference');
  const meta = out.outputs.model!.metadata as any;
  assert.deepEqual(meta.rewards, [`reward_model:${reward.id}`, 'judge:letters']);
  assert.ok(meta.lora);
  const { lineageEdges } = await import('../../../src/store/schema.js');
  const edges = e.db.select().from(lineageEdges).all().filter((x) => x.artifactId === out.outputs.model!.id);
  assert.ok(edges.some((x) => x.inputArtifactId === reward.id && x.role === 'reward_model'), JSON.stringify(edges));
});
