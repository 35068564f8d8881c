// Resolves a --model argument for generate/score: a model directory on disk, or a model (or
// checkpoint) artifact id / unique prefix in $ALIGNFLOW_HOME.
import fs from 'node:fs';
import { alignflowHome, tmpDir } from '../../config/paths.js';
import { AlignflowError } from '../../errors.js';
import { loadModelDir, type LoadedModel } from '../../ml/models/io.js';
import { loadModelArtifact } from '../../ml/models/store.js';
import { resolveArtifactId } from '../../store/registry.js';
import { cliDb } from '../shared.js';
import { cliStore } from './artifacts.js';

export async function loadModelRef(ref: string): Promise<LoadedModel & { ref: string }> {
  let loaded: LoadedModel;
  if (fs.existsSync(ref) && fs.statSync(ref).isDirectory()) loaded = await loadModelDir(ref);
  else loaded = await loadModelArtifact(cliStore(), resolveArtifactId(cliDb(), ref), { scratchDir: tmpDir(alignflowHome()) });
  if (!loaded.tokenizer) {
    loaded.model.dispose();
    throw new AlignflowError('input', `model ${ref} has no tokenizer.json: generate and score need one`);
  }
  return { ...loaded, ref };
}
