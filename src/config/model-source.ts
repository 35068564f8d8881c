// What a user means by a model reference that is not a usable directory, and what to tell them:
// a Hugging Face Hub id (never fetched), a directory holding only PyTorch weights (safetensors
// needed), or a path that does not exist. One place, used by spec validation and by the
// `--model` option of generate/score, so both say the same thing.
import fs from 'node:fs';
import path from 'node:path';

/** Looks like `gpt2` or `openai-community/gpt2`: a Hub id, not a path the user typed as one. */
export function looksLikeHubId(ref: string): boolean {
  return /^[A-Za-z0-9][\w.-]*(\/[A-Za-z0-9][\w.-]*)?$/.test(ref) && !ref.startsWith('.') && !/\.(ya?ml|json|jsonl|safetensors)$/i.test(ref);
}

export function hubIdHint(ref: string): string {
  const dir = `./${ref.split('/').pop()}`;
  return (
    `alignflow does not download models from the Hugging Face Hub. Download "${ref}" yourself ` +
    `(\`huggingface-cli download ${ref} --local-dir ${dir}\`) and give the directory (${dir}), ` +
    'or import it once (`alignflow models import DIR --name NAME`) and give its name or artifact id'
  );
}

/**
 * Why `dir` (an existing directory) cannot be loaded as a model, or undefined when it has
 * safetensors weights. alignflow reads safetensors only: a pickle (`pytorch_model.bin`) can run
 * code when loaded and needs PyTorch to read.
 */
export function modelDirProblem(dir: string): string | undefined {
  const files = listDir(dir);
  if (typeof files === 'string') return files;
  if (files.some((f) => f.endsWith('.safetensors') || f === 'model.safetensors.index.json')) return undefined;
  return pytorchOnlyProblem(dir) ?? `${dir} has no model.safetensors (a Hugging Face model directory: config.json, model.safetensors, tokenizer.json)`;
}

/** The conversion advice when `dir` holds PyTorch weights and no safetensors; undefined otherwise. */
export function pytorchOnlyProblem(dir: string): string | undefined {
  const files = listDir(dir);
  if (typeof files === 'string' || files.some((f) => f.endsWith('.safetensors'))) return undefined;
  const torch = files.find((f) => /^pytorch_model.*\.bin$/.test(f) || f.endsWith('.pt') || f.endsWith('.pth'));
  if (!torch) return undefined;
  const abs = path.resolve(dir);
  return (
    `${dir} has ${torch} but no model.safetensors: alignflow reads safetensors weights only. Convert once with Python ` +
    `(transformers installed): python -c "from transformers import AutoModelForCausalLM as M; ` +
    `d='${abs}'; M.from_pretrained(d).save_pretrained(d, safe_serialization=True)" ` +
    '(a reward model: AutoModelForSequenceClassification)'
  );
}

function listDir(dir: string): string[] | string {
  try {
    return fs.readdirSync(dir);
  } catch (err) {
    return `cannot read ${dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`;
  }
}

/** The message for a model reference that is neither a directory nor a known artifact or name. */
export function missingModelMessage(ref: string, resolvedPath: string): string {
  if (looksLikeHubId(ref) && !fs.existsSync(resolvedPath)) return `model directory ${resolvedPath} does not exist, and "${ref}" is not the name of an imported model. ${hubIdHint(ref)}`;
  return `model directory ${resolvedPath} does not exist`;
}
