// Resolves a --model argument for generate/score: a model directory on disk, or a model (or
// checkpoint) artifact id / unique prefix / name in $ALIGNFLOW_HOME.
import fs from 'node:fs';
import path from 'node:path';
import { missingModelMessage, modelDirProblem } from '../../config/model-source.js';
import { modelIdByName } from '../model-names.js';
import { alignflowHome, tmpDir } from '../../config/paths.js';
import { AlignflowError } from '../../errors.js';
import { loadModelDir, type LoadedModel } from '../../ml/models/io.js';
import { loadModelArtifact } from '../../ml/models/store.js';
import { resolveArtifactId } from '../../store/registry.js';
import { cliDb } from '../shared.js';
import { cliStore } from './artifacts.js';

/**
 * A directory (checked for safetensors weights), an artifact id or unique prefix, or the name of
 * an imported model; anything else is refused with what to do (a Hub id is never fetched).
 */
export async function loadModelRef(ref: string): Promise<LoadedModel & { ref: string }> {
  let loaded: LoadedModel;
  if (fs.existsSync(ref) && fs.statSync(ref).isDirectory()) {
    const problem = modelDirProblem(ref);
    if (problem) throw new AlignflowError('input', problem);
    loaded = await loadModelDir(ref);
  } else {
    const db = cliDb();
    let id: string;
    try {
      id = resolveArtifactId(db, ref);
    } catch (err) {
      const named = err instanceof AlignflowError && err.kind === 'not_found' ? modelIdByName(db, ref) : undefined;
      if (!named) throw err instanceof AlignflowError && err.kind === 'not_found' ? new AlignflowError('not_found', missingModelMessage(ref, path.resolve(ref))) : err;
      id = named;
    }
    loaded = await loadModelArtifact(cliStore(), id, { scratchDir: tmpDir(alignflowHome()) });
  }
  if (!loaded.tokenizer) {
    loaded.model.dispose();
    throw new AlignflowError('input', `model ${ref} has no tokenizer.json: generate and score need one`);
  }
  return { ...loaded, ref };
}
