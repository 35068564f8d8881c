// What tfjs's gradient tape holds for one SFT micro-batch: tf.memory().numBytes at the end of the
// forward inside tf.variableGrads, less what was held before (the quantity src/ml/memory.ts's
// activation constants are fitted to), beside the estimate (held / estimate must stay ≤ 1).
//   ALIGNFLOW_BACKEND=native npx tsx scripts/measure-activations.ts [cases.json]
// cases.json: [{ "name", "config": {model_type, ...}, "rows", "seqLen", "lora"?: {r, target_modules} }];
// without it, one small Llama. scripts/fixtures/activation-shapes.json holds the 145 shapes the Llama
// family's constants were fitted on (its last case, Qwen2.5-0.5B's widths, exceeds wasm's 4 GiB heap).
// Prints one JSON line per case.
import fs from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/ml/backend.js';
import { collate } from '../src/ml/train/data.js';
import { causalLmLoss } from '../src/ml/train/lm-loss.js';
import { estimateTrainingMemory, trainsFused } from '../src/ml/memory.js';
import { familyOf } from '../src/ml/models/registry.js';
import { parameterCount } from '../src/ml/models/estimate.js';
import { attachLora, type LoraConfig } from '../src/ml/lora.js';

interface Case {
  name: string;
  config: Record<string, unknown>;
  rows: number;
  seqLen: number;
  lora?: LoraConfig;
}

const L = (o: Record<string, unknown>) => ({ model_type: 'llama', max_position_embeddings: 512, tie_word_embeddings: true, ...o });
const DEFAULT: Case[] = [
  { name: 'A', config: L({ vocab_size: 512, hidden_size: 128, intermediate_size: 384, num_hidden_layers: 4, num_attention_heads: 4, num_key_value_heads: 2 }), rows: 4, seqLen: 128 },
];

const cases: Case[] = process.argv[2] ? JSON.parse(fs.readFileSync(process.argv[2], 'utf8')) : DEFAULT;
const info = await initBackend();
for (const c of cases) {
  const f = familyOf(c.config as never);
  const config = f.withDefaults(c.config);
  const model = f.create(config, 0);
  const adapter = c.lora ? attachLora(model, c.lora, 1) : undefined;
  const vars = [...(adapter ? adapter.params : model.params).values()];
  const V = f.shape(config).vocabSize;
  const batch = collate(Array.from({ length: c.rows }, (_, r) => ({ ids: Array.from({ length: c.seqLen }, (_, i) => (i * 7 + r) % V), lossMask: Array<number>(c.seqLen).fill(1) })), 0);
  const base = tf.memory().numBytes;
  let held = 0;
  const t0 = Date.now();
  const { value, grads } = tf.variableGrads(() => {
    const l = causalLmLoss(model, batch).loss;
    held = tf.memory().numBytes - base;
    return l;
  }, vars);
  const ms = Date.now() - t0;
  value.dispose();
  tf.dispose(Object.values(grads));
  const fused = info.name === 'native' && trainsFused(config.model_type);
  let loraOutputs = 0;
  for (const p of adapter?.pairs.values() ?? []) loraOutputs += p.layer.outFeatures + adapter!.config.r;
  const e = estimateTrainingMemory({ model: f.shape(config), activationModel: f.activationModel, loraOutputs, params: parameterCount(config), rows: c.rows, seqLen: c.seqLen, fused });
  process.stdout.write(JSON.stringify({ name: c.name, backend: info.name, fused, shape: f.shape(config), rows: c.rows, seqLen: c.seqLen, lora: c.lora ?? null, held, estimate: e.activations, ratio: +(held / e.activations).toFixed(4), ms }) + '\n');
  adapter?.dispose();
  model.dispose();
}
