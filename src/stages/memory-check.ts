// The one memory check every training stage makes before its first step (src/ml/memory.ts).
import type { CausalLM } from '../ml/models/types.js';
import { initBackend } from '../ml/backend.js';
import { assertTrainingFits, trainsFused } from '../ml/memory.js';
import { familyOf } from '../ml/models/registry.js';
import { LoraAdapter } from '../ml/lora.js';

export async function checkStageMemory(stage: string, model: CausalLM, rows: number, maxLength: number): Promise<void> {
  const backend = (await initBackend()).name;
  let params = 0;
  for (const v of model.params.values()) params += v.size;
  // LoRA adapters keep their delta (x·Aᵀ and its product with B) for each adapted output
  let loraOutputs = 0;
  if (model.adapter instanceof LoraAdapter) for (const p of model.adapter.pairs.values()) loraOutputs += p.layer.outFeatures + model.adapter.config.r;
  const family = familyOf(model.config);
  assertTrainingFits(stage, { model: family.shape(model.config), activationModel: family.activationModel, loraOutputs, params, rows, seqLen: maxLength, fused: backend === 'native' && trainsFused(model.config.model_type) }, backend);
}
