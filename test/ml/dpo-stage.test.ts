// The dpo and reward stage handlers end to end on real parts (SQLite store, imported datasets, a
// saved model, the tfjs backend): learning, bad-input accounting, reference log-probs reuse, and
// configuration errors.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { initBackend } from '../../src/ml/backend.js';
import { dpoStage } from '../../src/stages/dpo.js';
import { rewardStage } from '../../src/stages/reward.js';
import { loadRewardModelDir, scoreWithRewardModel } from '../../src/ml/reward.js';
import { bytesTokenizer } from '../../src/ml/tokenizer/index.js';
import { env, modelArtifact, textPairs, datasetArtifact, stageContext } from './dpo-stage-helpers.js';

before(async () => {
  await initBackend();
});

test('dpo stage: learns, counts bad pairs, caches reference log-probs, second run reuses them', async () => {
  const e = env();
  const model = await modelArtifact(e);
  const rows = [
    ...textPairs(96, 1),
    { prompt: 'q ' + 'x'.repeat(60) + ':', chosen: ' a+', rejected: ' a-' }, // prompt fills max_length
    { prompt: 'q same:', chosen: ' abc', rejected: ' abc' }, // chosen == rejected
  ];
  const train = await datasetArtifact(e, 'prefs', rows);
  const evalDs = await datasetArtifact(e, 'prefs-eval', textPairs(32, 2));
  const config = { beta: 0.1, loss: 'sigmoid', max_length: 40, batch_size: 8, max_steps: 30, lr: 3e-3, schedule: 'constant', log_every: 5, checkpoint_every: 15 };
  const t0 = Date.now();
  const r1 = stageContext(e, 'dpo', config, { model, train, eval: evalDs });
  const out = await dpoStage.run(r1.ctx as never);
  const secs = (Date.now() - t0) / 1000;
  assert.equal(out.status, 'done');
  if (out.status !== 'done') return;
  const s = out.summary as any;
  console.log(`dpo stage: eval_rewards/accuracies ${s.eval_start['eval_rewards/accuracies']} → ${s.eval['eval_rewards/accuracies']}, eval_loss ${s.eval_start.eval_loss.toFixed(4)} → ${s.eval.eval_loss.toFixed(4)}, ${s.steps} steps, ${secs.toFixed(1)} s`);
  assert.equal(s.data.pairs.total, 98);
  assert.equal(s.data.pairs.droppedPromptTooLong, 1);
  assert.equal(s.data.pairs.droppedIdentical, 1);
  assert.equal(s.units.train, 96);
  assert.equal(s.eval_start['eval_rewards/accuracies'], 0);
  assert.ok(Math.abs(s.eval_start.eval_loss - Math.LN2) < 1e-5);
  assert.ok(s.eval['eval_rewards/accuracies'] > 0.9, `eval accuracy ${s.eval['eval_rewards/accuracies']}`);
  assert.equal(s.reference.reused, false);
  assert.ok(out.outputs.model && out.outputs.ref_logprobs && out.outputs.ref_logprobs_eval);
  // TRL's metric names, logged with eval_ prefixes on the eval split
  const names = new Set(r1.metrics.flatMap((m) => Object.keys(m.values)));
  for (const n of ['loss', 'grad_norm', 'learning_rate', 'rewards/chosen', 'rewards/rejected', 'rewards/accuracies', 'rewards/margins', 'logps/chosen', 'logps/rejected']) {
    assert.ok(names.has(n), n);
    if (n !== 'grad_norm' && n !== 'learning_rate') assert.ok(names.has('eval_' + n), 'eval_' + n);
  }
  assert.equal(r1.checkpoints.length, 2);
  assert.ok(r1.logs.some((l) => /dropped 1 whose prompt fills max_length/.test(l.msg) && /skipped 1 with chosen == rejected/.test(l.msg)));
  assert.equal((await e.store.findByMetadata('ref-logprobs', 'key_hash', (await e.store.get(out.outputs.ref_logprobs!.id)).metadata.key_hash as string)).length, 1);

  // second run, same key (dataset, reference, tokenizer, max length, rule): reference log-probs are read
  // (no eval input this time: the eval split is carved out of train, reference values subsetted)
  const r2 = stageContext(e, 'dpo', { ...config, max_steps: 2, beta: 0.2, eval_fraction: 0.25 }, { model, train }, 'dpo2');
  const out2 = await dpoStage.run(r2.ctx as never);
  assert.equal(out2.status, 'done');
  if (out2.status !== 'done') return;
  assert.equal((out2.summary as any).reference.reused, true);
  assert.equal(out2.outputs.ref_logprobs!.id, out.outputs.ref_logprobs!.id);
  assert.ok(r2.logs.some((l) => /reusing artifact/.test(l.msg)));
  assert.ok(!r2.logs.some((l) => /computing reference log-probs/.test(l.msg)));
  const s2 = out2.summary as any;
  assert.deepEqual([s2.units.train, s2.units.eval], [72, 24]);
  // the eval split starts where any policy == reference run starts: loss ln 2, accuracy 0
  assert.ok(Math.abs(s2.eval_start.eval_loss - Math.LN2) < 1e-5);
  assert.equal(s2.eval_start['eval_rewards/accuracies'], 0);

  // a reference-free loss needs no reference pass and makes no ref artifact
  const r3 = stageContext(e, 'dpo', { ...config, loss: 'simpo', beta: 2, max_steps: 2 }, { model, train, eval: evalDs }, 'simpo');
  const out3 = await dpoStage.run(r3.ctx as never);
  assert.ok(out3.status === 'done' && !out3.outputs.ref_logprobs);
});

test('dpo stage: configuration errors are AlignflowError kind config', async () => {
  const e = env();
  const model = await modelArtifact(e);
  const train = await datasetArtifact(e, 'p', textPairs(8, 3));
  const bad = async (config: object, re: RegExp) => {
    const r = stageContext(e, 'dpo', config, { model, train });
    await assert.rejects(dpoStage.run(r.ctx as never), (err: any) => err.kind === 'config' && re.test(err.message), JSON.stringify(config));
  };
  await bad({ beta: 0 }, /beta/);
  await bad({ beta: -1 }, /beta/);
  await bad({ label_smoothing: 0.5 }, /label_smoothing/);
  await bad({ label_smoothing: -0.1 }, /label_smoothing/);
  await bad({ loss: 'sigmoid', use_reference: false }, /needs a reference/);
  await bad({ loss: ['ipo', 'sft'], use_reference: false }, /needs a reference/);
  await bad({ loss: ['sigmoid', 'sft'], loss_weights: [1] }, /loss_weights/);
  await bad({ loss: 'nope' }, /loss/);
  await bad({ betta: 0.1 }, /betta|unrecognized/i);
});

test('reward stage: eval accuracy > 0.9, saved as GPT2ForSequenceClassification, scores texts', async () => {
  const e = env();
  const model = await modelArtifact(e, 5);
  const train = await datasetArtifact(e, 'rm', [...textPairs(96, 4).map((p, i) => (i % 2 ? { ...p, margin: 0.5 } : p))]);
  const evalDs = await datasetArtifact(e, 'rm-eval', textPairs(32, 5));
  const t0 = Date.now();
  const r = stageContext(e, 'reward', { batch_size: 8, max_steps: 40, lr: 3e-3, schedule: 'constant', center_rewards_coefficient: 0.01, log_every: 10 }, { model, train, eval: evalDs });
  const out = await rewardStage.run(r.ctx as never);
  assert.equal(out.status, 'done');
  if (out.status !== 'done') return;
  const s = out.summary as any;
  console.log(`reward stage: eval_accuracy ${s.eval_start.eval_accuracy.toFixed(3)} → ${s.eval.eval_accuracy.toFixed(3)}, eval_loss ${s.eval_start.eval_loss.toFixed(4)} → ${s.eval.eval_loss.toFixed(4)}, ${s.steps} steps, ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  assert.ok(s.eval.eval_accuracy > 0.9);
  const names = new Set(r.metrics.flatMap((m) => Object.keys(m.values)));
  for (const n of ['accuracy', 'margin', 'min_reward', 'mean_reward', 'max_reward', 'loss']) assert.ok(names.has(n) && names.has('eval_' + n), n);
  const dir = path.join(e.home, 'rm-out');
  await e.store.materialize(out.outputs.model!.id, dir);
  const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  assert.deepEqual(cfg.architectures, ['GPT2ForSequenceClassification']);
  const { model: rm, tokenizer } = await loadRewardModelDir(dir);
  const tok = tokenizer ?? bytesTokenizer();
  const enc = (p: string, c: string) => ({ promptIds: tok.encode(p), completionIds: tok.encode(c) });
  const [good, badScore] = await scoreWithRewardModel(rm, [enc('q abc:', ' ab+cd'), enc('q abc:', ' ab-cd')]);
  assert.ok(good!.reward > badScore!.reward);
  rm.dispose();
});

test('dpo stage with loss kto: unpaired dataset, cached reference (variant key), TRL KTO metrics', async () => {
  const e = env();
  const model = await modelArtifact(e, 7);
  const rows = textPairs(48, 9).flatMap((p) => [
    { prompt: p.prompt, completion: p.chosen, label: true },
    { prompt: p.prompt, completion: p.rejected, label: false },
  ]);
  const train = await datasetArtifact(e, 'unpaired', rows);
  const r = stageContext(e, 'dpo', { loss: 'kto', beta: 0.1, max_length: 40, batch_size: 16, max_steps: 20, lr: 3e-3, schedule: 'constant', eval_fraction: 0.25, log_every: 5, undesirable_weight: 1.2 }, { model, train });
  const out = await dpoStage.run(r.ctx as never);
  assert.equal(out.status, 'done');
  if (out.status !== 'done') return;
  const s = out.summary as any;
  console.log(`kto stage: eval_rewards/margins ${s.eval_start['eval_rewards/margins'].toFixed(3)} → ${s.eval['eval_rewards/margins'].toFixed(3)}, eval_loss ${s.eval_start.eval_loss.toFixed(4)} → ${s.eval.eval_loss.toFixed(4)}`);
  assert.ok(out.outputs.ref_logprobs);
  assert.ok(s.eval['eval_rewards/margins'] > 0);
  assert.ok(s.eval.eval_loss < s.eval_start.eval_loss);
  const names = new Set(r.metrics.flatMap((m) => Object.keys(m.values)));
  for (const n of ['kl', 'rewards/chosen', 'rewards/rejected', 'rewards/margins', 'logps/chosen', 'logps/rejected', 'eval_kl']) assert.ok(names.has(n), n);
  assert.ok(![...names].some((n) => n.endsWith('_sum')), 'sums are turned into class means');
  // the kto reference cache is keyed apart from the pairwise one
  assert.match(String((out.outputs.ref_logprobs!.metadata as any).key.truncation), /kto/);
  const bad = stageContext(e, 'dpo', { loss: ['kto', 'sigmoid'] }, { model, train });
  await assert.rejects(dpoStage.run(bad.ctx as never), (err: any) => err.kind === 'config' && /cannot be combined/.test(err.message));
  const noRef = stageContext(e, 'dpo', { loss: 'kto', use_reference: false }, { model, train });
  await assert.rejects(dpoStage.run(noRef.ctx as never), (err: any) => err.kind === 'config' && /needs a reference/.test(err.message));
});

test('dpo stage: cancelled at a step and resumed from its checkpoint ends bit-identical to an uninterrupted run', async () => {
  const e = env();
  const model = await modelArtifact(e, 3);
  const train = await datasetArtifact(e, 'resume', textPairs(40, 13));
  const config = { loss: ['sigmoid', 'sft'], loss_weights: [1, 0.2], beta: 0.1, max_length: 40, batch_size: 4, grad_accum: 2, max_steps: 6, lr: 1e-3, checkpoint_every: 3, eval_fraction: 0.2 };
  const whole = stageContext(e, 'dpo', config, { model, train }, 'whole');
  const a = await dpoStage.run(whole.ctx as never);
  const cut = stageContext(e, 'dpo', config, { model, train }, 'cut', { abortAtStep: 3 });
  await assert.rejects(dpoStage.run(cut.ctx as never), (err: any) => err.kind === 'cancelled');
  assert.deepEqual(cut.checkpoints.map((c) => c.step), [3]);
  const resumed = stageContext(e, 'dpo', config, { model, train }, 'cut', { checkpoints: cut.checkpoints });
  const b = await dpoStage.run(resumed.ctx as never);
  assert.ok(resumed.logs.some((l) => /resuming from the checkpoint of step 3/.test(l.msg)));
  assert.ok(a.status === 'done' && b.status === 'done');
  if (a.status !== 'done' || b.status !== 'done') return;
  const wa = await e.store.readFile(a.outputs.model!.id, 'model.safetensors');
  const wb = await e.store.readFile(b.outputs.model!.id, 'model.safetensors');
  assert.ok(Buffer.compare(wa, wb) === 0, 'final weights differ');
  assert.equal(a.outputs.model!.id, b.outputs.model!.id);
});

test('dpo stage: a policy that never moves is reported (loss stays at ln 2)', async () => {
  const e = env();
  const model = await modelArtifact(e, 11);
  const train = await datasetArtifact(e, 'still', textPairs(24, 17));
  const r = stageContext(e, 'dpo', { max_length: 40, batch_size: 4, max_steps: 6, lr: 1e-12, log_every: 1, eval_fraction: 0 }, { model, train });
  const out = await dpoStage.run(r.ctx as never);
  assert.equal(out.status, 'done');
  const warn = r.logs.filter((l) => l.level === 'warn' && /ln 2/.test(l.msg));
  assert.equal(warn.length, 1, JSON.stringify(r.logs.filter((l) => l.level === 'warn')));
  assert.equal(((out as any).summary.warnings as any[])[0].code, 'loss_at_ln2');
});
