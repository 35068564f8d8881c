// A stage's model input: materialised into the attempt's work dir and loaded.
import fs from 'node:fs';
import path from 'node:path';
import { AlignflowError } from '../errors.js';
import type { ArtifactManifest } from '../store/types.js';
import type { StageContext } from './contract.js';
import { loadModelDir, saveModelDir, type LoadedModel } from '../ml/models/io.js';
import { attachStageLora, type LoraConfig } from '../ml/lora.js';

/** Materialises the model artifact of input `role` and loads it (tokenizer required). */
export async function loadModelInput(ctx: StageContext<unknown>, role: string): Promise<LoadedModel & { artifact: ArtifactManifest }> {
  const artifact = ctx.inputs[role];
  if (!artifact) throw new AlignflowError('config', `stage "${ctx.stageName}" needs a "${role}" input (a model)`);
  if (artifact.kind !== 'model' && artifact.kind !== 'checkpoint') {
    throw new AlignflowError('config', `input "${role}" of stage "${ctx.stageName}" is a ${artifact.kind} artifact, not a model`);
  }
  const dir = path.join(ctx.workDir, `input-${role}`);
  fs.mkdirSync(dir, { recursive: true });
  await ctx.store.materialize(artifact.id, dir);
  const loaded = await loadModelDir(dir, { requireTokenizer: true });
  return { ...loaded, artifact };
}

/**
 * A causal LM trained by a stage: all its weights, or only LoRA adapters when `lora` is given (the
 * output is then the base plus an adapter). Saved as a model directory that records its base.
 */
export function lmTrainee(m: LoadedModel & { artifact: ArtifactManifest }, lora: LoraConfig | undefined, seed: number) {
  const adapter = lora ? attachStageLora(m.model, lora, seed) : undefined;
  return {
    ...m,
    adapter,
    params: adapter ? adapter.params : m.model.params,
    save: (dir: string) => saveModelDir(m.model, m.tokenizer, dir, { baseModel: m.artifact.id }),
    // the adapter's variables are not among the model's params: disposed here, or every LoRA run leaks them
    dispose: () => {
      adapter?.dispose();
      m.model.dispose();
    },
    /** Artifact metadata of a LoRA run (none otherwise). */
    loraMetadata: (): Record<string, unknown> => (adapter ? { lora: adapter.config, base_model: m.artifact.id } : {}),
  };
}
