// The one memory check every training stage makes before its first step (src/ml/memory.ts).
import type { CausalLM } from '../ml/models/types.js';
import { initBackend } from '../ml/backend.js';
import { assertTrainingFits } from '../ml/memory.js';

export async function checkStageMemory(stage: string, model: CausalLM, rows: number, maxLength: number): Promise<void> {
  const backend = (await initBackend()).name;
  let params = 0;
  for (const v of model.params.values()) params += v.size;
  const c = model.config as unknown as { vocab_size: number; n_positions: number; n_embd: number; n_layer: number; n_head: number };
  assertTrainingFits(stage, { model: c, params, rows, seqLen: maxLength }, backend);
}
