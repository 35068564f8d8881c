// The reward stage with `lora:`: only adapters and the score head train; the saved reward model has
// the adapters merged (the layout AutoModelForSequenceClassification loads without peft), so its
// targeted weights differ from the base's, its untargeted ones are the base's bits, and it ranks pairs.
// `models export` writes it as a PEFT SEQ_CLS adapter (adapters + score in modules_to_save) that gives
// the merged model's rewards on the base, or merged with --merge.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { initBackend } from '../../src/ml/backend.js';
import { rewardStage } from '../../src/stages/reward.js';
import * as tf from '@tensorflow/tfjs';
import { loadRewardModelDir, RewardModel, scoreWithRewardModel } from '../../src/ml/reward.js';
import { loadAdapterDir, SEQ_CLS_ADAPTER_CONFIG } from '../../src/ml/lora.js';
import { exportModelDir } from '../../src/ml/models/export.js';
import { loadModelDir } from '../../src/ml/models/io.js';
import { readSafetensors } from '../../src/ml/safetensors.js';
import { bytesTokenizer } from '../../src/ml/tokenizer/index.js';
import { env, modelArtifact, datasetArtifact, textPairs, stageContext } from './dpo-stage-helpers.js';

before(async () => {
  await initBackend();
});

test('reward stage with lora: adapters + score train, the output is merged and ranks pairs', { timeout: 300_000 }, async () => {
  const e = env();
  const model = await modelArtifact(e, 5);
  const train = await datasetArtifact(e, 'rm', textPairs(96, 4));
  const evalDs = await datasetArtifact(e, 'rm-eval', textPairs(32, 5));
  const r = stageContext(e, 'reward', { batch_size: 8, max_steps: 60, lr: 1e-2, schedule: 'constant', log_every: 10, lora: { r: 4, alpha: 8, target_modules: ['c_attn'] } }, { model, train, eval: evalDs });
  const out = await rewardStage.run(r.ctx as never);
  assert.equal(out.status, 'done');
  if (out.status !== 'done') return;
  const s = out.summary as { eval_start: { eval_accuracy: number }; eval: { eval_accuracy: number } };
  console.log(`reward stage with LoRA: eval_accuracy ${s.eval_start.eval_accuracy.toFixed(3)} → ${s.eval.eval_accuracy.toFixed(3)}`);
  assert.ok(s.eval.eval_accuracy > 0.8, `eval accuracy ${s.eval.eval_accuracy}`);
  const md = out.outputs.model!.metadata as { lora?: { r: number }; base_model?: string };
  assert.equal(md.lora?.r, 4);
  assert.equal(md.base_model, model.id);

  const baseDir = path.join(e.home, 'base');
  const rmDir = path.join(e.home, 'rm-out');
  await e.store.materialize(model.id, baseDir);
  await e.store.materialize(out.outputs.model!.id, rmDir);
  assert.equal(fs.existsSync(path.join(rmDir, 'adapter_config.json')), false, 'written merged, not as an adapter');
  assert.equal(fs.existsSync(path.join(rmDir, SEQ_CLS_ADAPTER_CONFIG)), true, 'its PEFT SEQ_CLS adapter is kept beside');
  const base = readSafetensors(path.join(baseDir, 'model.safetensors')).tensors;
  const rmT = readSafetensors(path.join(rmDir, 'model.safetensors')).tensors;
  const same = (n: string) => {
    const a = base.get(n)!.data as Float32Array;
    const b = rmT.get(n)!.data as Float32Array;
    return a.length === b.length && a.every((x, i) => x === b[i]);
  };
  assert.equal(same('transformer.h.0.attn.c_attn.weight'), false, 'the targeted layer carries the merged adapter');
  assert.equal(same('transformer.h.0.mlp.c_fc.weight'), true, 'an untargeted layer is the base, bit for bit');

  const { model: rm, tokenizer } = await loadRewardModelDir(rmDir);
  const tok = tokenizer ?? bytesTokenizer();
  const enc = (p: string, c: string) => ({ promptIds: tok.encode(p), completionIds: tok.encode(c) });
  const [good, bad] = await scoreWithRewardModel(rm, [enc('q abc:', ' ab+cd'), enc('q abc:', ' ab-cd')]);
  assert.ok(good!.reward > bad!.reward);

  // exported as a PEFT SEQ_CLS adapter: on the base it scores as the merged model does
  const peftDir = path.join(e.home, 'rm-peft');
  assert.equal(await exportModelDir(rmDir, peftDir, { basePath: 'my/base' }), 'peft-seq-cls-adapter');
  const acfg = JSON.parse(fs.readFileSync(path.join(peftDir, 'adapter_config.json'), 'utf8'));
  assert.equal(acfg.task_type, 'SEQ_CLS');
  assert.deepEqual(acfg.modules_to_save, ['score']);
  assert.equal(acfg.base_model_name_or_path, 'my/base');
  assert.deepEqual(acfg.target_modules, ['c_attn']);
  const names = [...readSafetensors(path.join(peftDir, 'adapter_model.safetensors')).tensors.keys()].sort();
  assert.equal(names[0], 'base_model.model.score.weight');
  assert.deepEqual(names.slice(1, 3), ['base_model.model.transformer.h.0.attn.c_attn.lora_A.weight', 'base_model.model.transformer.h.0.attn.c_attn.lora_B.weight']);
  assert.ok(names.slice(1).every((n) => /^base_model\.model\.transformer\.h\.\d+\.attn\.c_attn\.lora_[AB]\.weight$/.test(n)), names.join());
  assert.ok(!fs.readdirSync(peftDir).some((f) => f.startsWith('seq_cls_') || f === 'model.safetensors'));
  const { model: body } = await loadModelDir(baseDir);
  loadAdapterDir(peftDir, body);
  const head = readSafetensors(path.join(peftDir, 'adapter_model.safetensors')).tensors.get('base_model.model.score.weight')!;
  const viaPeft = new RewardModel(body, tf.variable(tf.tensor(head.data as Float32Array, head.shape)), rm.padTokenId);
  const rows = [enc('q abc:', ' ab+cd'), enc('q xy:', ' xy-z'), enc('q a:', ' a+')];
  const want = (await scoreWithRewardModel(rm, rows)).map((x) => x.reward);
  const got = (await scoreWithRewardModel(viaPeft, rows)).map((x) => x.reward);
  for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i]! - want[i]!) < 1e-5, `row ${i}: ${got[i]} vs ${want[i]}`);
  viaPeft.dispose();

  // --merge: the merged *ForSequenceClassification model, without the adapter files
  const mergedDir = path.join(e.home, 'rm-merged');
  assert.equal(await exportModelDir(rmDir, mergedDir, { merge: true }), 'reward');
  assert.ok(!fs.readdirSync(mergedDir).some((f) => f.includes('adapter')), fs.readdirSync(mergedDir).join());
  const { model: rm2 } = await loadRewardModelDir(mergedDir);
  assert.deepEqual((await scoreWithRewardModel(rm2, rows)).map((x) => x.reward), want);
  rm2.dispose();
  rm.dispose();
});

test('training stages take LoRA dropout in [0, 1), naming the field when it is out of range', async () => {
  const { rewardConfigSchema } = await import('../../src/stages/reward.js');
  const { sftConfigSchema } = await import('../../src/stages/sft.js');
  const { dpoConfigSchema } = await import('../../src/stages/dpo.js');
  for (const schema of [rewardConfigSchema, sftConfigSchema, dpoConfigSchema] as { safeParse(v: unknown): { success: boolean; error?: { issues: { path: PropertyKey[] }[] } } }[]) {
    assert.equal(schema.safeParse({ lora: { r: 4, dropout: 0.05, target_modules: ['c_attn'] } }).success, true);
    for (const bad of [1, -0.1]) {
      const r = schema.safeParse({ lora: { r: 4, dropout: bad, target_modules: ['c_attn'] } });
      assert.equal(r.success, false);
      assert.ok(r.error!.issues.some((i) => i.path.join('.') === 'lora.dropout'));
    }
  }
});
