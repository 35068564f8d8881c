// The one memory check every training stage makes before its first step (src/ml/memory.ts).
import type { CausalLM } from '../ml/models/types.js';
import { initBackend } from '../ml/backend.js';
import { assertTrainingFits, trainsFused } from '../ml/memory.js';
import { familyOf } from '../ml/models/registry.js';

export async function checkStageMemory(stage: string, model: CausalLM, rows: number, maxLength: number): Promise<void> {
  const backend = (await initBackend()).name;
  let params = 0;
  for (const v of model.params.values()) params += v.size;
  assertTrainingFits(stage, { model: familyOf(model.config).shape(model.config), params, rows, seqLen: maxLength, fused: backend === 'native' && trainsFused(model.config.model_type) }, backend);
}
