// pipelines/llama-dpo-lora.yaml as a user runs it (issue 14, item 7), scaled down: a small random
// Llama made by `models init --family llama --chat-template chatml`, LoRA SFT → LoRA DPO and a LoRA
// reward model → eval (sampling with the KV cache, the reward model), then the outputs exported for
// peft (an adapter with PEFT's names) and transformers (merged, with the chat template the model was
// trained with; the reward model as LlamaForSequenceClassification), and `generate` on the export.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { loadStages, getStage } from '../../src/stages/index.js';
import { loadSpecFile } from '../../src/config/spec.js';
import { parseSafetensors } from '../../src/ml/safetensors.js';
import { tmpDir } from '../helpers/tmp.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const specFile = path.join(root, 'pipelines', 'llama-dpo-lora.yaml');
const home = tmpDir();
const cli = (...args: string[]) => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { cwd: root, encoding: 'utf8', env: { ...process.env, ALIGNFLOW_HOME: path.join(home, 'state') }, timeout: 240_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
};
const readJson = (f: string) => JSON.parse(fs.readFileSync(f, 'utf8')) as Record<string, any>;

test('the spec trains LoRA adapters (PEFT module names) in sft, dpo and reward, from a model directory', async () => {
  await loadStages();
  // models/llama-tiny is made by the command in the spec's header; the datasets must exist
  const spec = loadSpecFile(specFile, { lookup: getStage, checkPaths: false });
  for (const d of Object.values(spec.datasets)) assert.ok(fs.existsSync((d as { path: string }).path), JSON.stringify(d));
  const byName = new Map(spec.stages.map((s) => [s.name, s]));
  assert.deepEqual([...byName.keys()], ['sft', 'dpo', 'reward', 'eval']);
  for (const name of ['sft', 'dpo', 'reward']) {
    const lora = (byName.get(name)!.config as Record<string, any>).lora;
    assert.ok(lora && lora.r > 0, `${name} has lora`);
    for (const m of lora.target_modules as string[]) assert.match(m, /^(q|k|v|o|gate|up|down)_proj$/, `${name}: ${m}`);
  }
  assert.equal((spec.model as { path?: string }).path, path.join(root, 'models', 'llama-tiny'));
});

test('llama-dpo-lora runs end to end on a small random Llama; its models export for peft and transformers and generate', { timeout: 300_000 }, () => {
  const modelDir = path.join(home, 'llama');
  const init = cli('models', 'init', '--family', 'llama', '--config', JSON.stringify({ vocab_size: 260, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 64, tie_word_embeddings: true }), '--chat-template', 'chatml', '--out', modelDir);
  assert.equal(init.code, 0, init.err);
  const template = readJson(path.join(modelDir, 'tokenizer_config.json')).chat_template as string;
  assert.match(template, /<\|im_start\|>/);

  const small = [
    'stages.sft.max_steps=3', 'stages.sft.eval_every=3', 'stages.sft.checkpoint_every=3', 'stages.sft.warmup_steps=0',
    'stages.dpo.max_steps=2', 'stages.dpo.eval_every=2', 'stages.dpo.checkpoint_every=2',
    'stages.reward.max_steps=2', 'stages.reward.checkpoint_every=2',
    'stages.eval.max_prompts=4', 'stages.eval.max_heldout=4', 'stages.eval.max_pairs=8', 'stages.eval.sampling.max_new_tokens=4',
  ].flatMap((s) => ['--set', s]);
  const run = cli('run', specFile, '--set', `model=${modelDir}`, ...small);
  assert.equal(run.code, 0, run.out + run.err);
  assert.match(run.out, /succeeded, 4\/4 stages done/);
  // LoRA DPO's reference is the SFT model with the new adapters off: before the first step policy and
  // reference agree, so the loss is ln 2
  const runId = /run (r-[\w-]+) \(llama-dpo-lora\) succeeded/.exec(run.out)![1]!;
  const metrics = JSON.parse(cli('runs', 'metrics', runId, '--stage', 'dpo', '--json').out) as { step: number; name: string; value: number }[];
  const first = metrics.find((m) => m.step === 0 && m.name === 'eval_loss')!;
  assert.ok(Math.abs(first.value - Math.LN2) < 1e-5, `DPO eval_loss at step 0: ${first.value}`);

  const models = JSON.parse(cli('models', 'ls', '--json').out) as { id: string; name: string; model_type?: string; layers?: number }[];
  const idOf = (prefix: string) => models.find((m) => m.name.startsWith(prefix))!.id;
  const [sft, dpo, reward] = [idOf('sft'), idOf('dpo'), idOf('reward')];
  // models ls reads the family and shape of stage-made models (LoRA ones too) from their config.json
  const row = (id: string) => models.find((m) => m.id === id)!;
  for (const id of [sft, dpo]) assert.deepEqual([row(id).model_type, row(id).layers], ['llama', 2], JSON.stringify(row(id)));
  assert.equal(row(reward).model_type, 'llama (reward)');

  // the DPO model as a PEFT adapter: PEFT's file and tensor names, the yaml's targets, its base recorded
  const peftDir = path.join(home, 'dpo-peft');
  assert.equal(cli('models', 'export', dpo, '--out', peftDir, '--base-path', 'HuggingFaceTB/SmolLM2-135M-Instruct').code, 0);
  const acfg = readJson(path.join(peftDir, 'adapter_config.json'));
  assert.equal(acfg.peft_type, 'LORA');
  assert.equal(acfg.task_type, 'CAUSAL_LM');
  assert.equal(acfg.base_model_name_or_path, 'HuggingFaceTB/SmolLM2-135M-Instruct');
  assert.deepEqual([...acfg.target_modules].sort(), ['down_proj', 'o_proj', 'q_proj', 'up_proj', 'v_proj']);
  const names = [...parseSafetensors(fs.readFileSync(path.join(peftDir, 'adapter_model.safetensors'))).tensors.keys()];
  assert.ok(names.includes('base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight'), names.join(', '));
  assert.ok(names.every((n) => /^base_model\.model\.model\.layers\.\d+\.(self_attn|mlp)\.\w+_proj\.lora_[AB]\.weight$/.test(n)), names.join(', '));
  assert.ok(!fs.existsSync(path.join(peftDir, 'model.safetensors')), 'an adapter directory holds no base weights');
  const meta = (JSON.parse(cli('models', 'show', dpo, '--json').out) as { metadata?: Record<string, unknown> }).metadata ?? {};
  assert.equal(meta.base_model ?? meta.base, sft, 'the LoRA model records its base model id');

  // merged: a full LlamaForCausalLM with the chat template it was trained with
  const mergedDir = path.join(home, 'dpo-merged');
  assert.equal(cli('models', 'export', dpo, '--merge', '--dtype', 'bf16', '--out', mergedDir).code, 0);
  const mcfg = readJson(path.join(mergedDir, 'config.json'));
  assert.deepEqual(mcfg.architectures, ['LlamaForCausalLM']);
  assert.equal(mcfg.num_key_value_heads, 2);
  assert.equal(readJson(path.join(mergedDir, 'tokenizer_config.json')).chat_template, template);
  const merged = parseSafetensors(fs.readFileSync(path.join(mergedDir, 'model.safetensors')));
  assert.equal(merged.tensors.get('model.layers.0.self_attn.q_proj.weight')!.dtype, 'BF16');
  assert.ok(![...merged.tensors.keys()].some((n) => n.includes('lora')));

  // the reward model merged: LlamaForSequenceClassification, score.weight and no lm_head
  const rmDir = path.join(home, 'rm-merged');
  assert.equal(cli('models', 'export', reward, '--merge', '--out', rmDir).code, 0);
  const rcfg = readJson(path.join(rmDir, 'config.json'));
  assert.deepEqual(rcfg.architectures, ['LlamaForSequenceClassification']);
  assert.equal(rcfg.num_labels ?? Object.keys(rcfg.id2label ?? { 0: 0 }).length, 1);
  assert.equal(typeof rcfg.pad_token_id, 'number');
  const rnames = [...parseSafetensors(fs.readFileSync(path.join(rmDir, 'model.safetensors'))).tensors.keys()];
  assert.ok(rnames.includes('score.weight') && !rnames.includes('lm_head.weight'), rnames.join(', '));
  // ... and it imports back as a model artifact (validated as the reward model it is)
  const imp = cli('models', 'import', rmDir, '--json');
  assert.equal(imp.code, 0, imp.err);
  assert.equal((JSON.parse(imp.out) as { metadata: Record<string, unknown> }).metadata.architecture, 'LlamaForSequenceClassification');

  // generation from the exported directory: two prompts of different lengths, greedy, KV cache = no cache
  const gen = (...extra: string[]) => cli('generate', '--model', mergedDir, '--prompt', 'the movie was', '--prompt', 'a', '--max-new-tokens', '5', '--temperature', '0', '--json', ...extra);
  const g = gen();
  assert.equal(g.code, 0, g.err);
  const res = (JSON.parse(g.out) as { results: { completions: { token_ids: number[] }[] }[] }).results;
  assert.equal(res.length, 2);
  for (const r of res) assert.ok(r.completions[0]!.token_ids.length >= 1 && r.completions[0]!.token_ids.length <= 5);
  assert.deepEqual((JSON.parse(gen('--no-cache').out) as { results: unknown }).results, res);
});
