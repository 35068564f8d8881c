// `alignflow models export`: a model directory (materialised from an artifact) written out in the
// form asked for: as it is, in another dtype, a LoRA model as a PEFT adapter directory or merged
// into its base weights. Reward models keep their *ForSequenceClassification layout; a LoRA-trained
// one is a PEFT SEQ_CLS adapter (adapters + score head in modules_to_save), or merged with --merge.
import fs from 'node:fs';
import path from 'node:path';
import { AlignflowError } from '../../errors.js';
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS, LoraAdapter, mergedTensors, SEQ_CLS_ADAPTER_CONFIG, SEQ_CLS_ADAPTER_WEIGHTS } from '../lora.js';
import { isRewardModelConfig, loadRewardModelDir, saveRewardModelDir } from '../reward.js';
import { SafetensorsReader, serializeSafetensors, type NamedTensor, type SafetensorsDtype } from '../safetensors.js';
import { loadTokenizerDir, saveTokenizerDir } from '../tokenizer/tokenizer.js';
import { loadModelDir, saveModelDir, writeDirAtomically } from './io.js';

export interface ExportOptions {
  /** Weights' dtype (default: float32 when anything is rewritten, else as stored). */
  dtype?: SafetensorsDtype;
  /** A LoRA model: fold the adapters into the base weights (a full model) instead of a PEFT adapter directory. */
  merge?: boolean;
  /** A LoRA model: base_model_name_or_path to write into adapter_config.json (a hub id or path of the base). */
  basePath?: string;
}

export type ExportKind = 'copy' | 'full' | 'reward' | 'peft-adapter' | 'peft-seq-cls-adapter' | 'merged';

export async function exportModelDir(src: string, out: string, o: ExportOptions = {}): Promise<ExportKind> {
  const cfg = JSON.parse(fs.readFileSync(path.join(src, 'config.json'), 'utf8')) as Record<string, unknown>;
  if (isRewardModelConfig(cfg)) {
    // a LoRA-trained reward model: its PEFT SEQ_CLS adapter (adapters + score head), or with --merge the merged model
    const seqCls = fs.existsSync(path.join(src, SEQ_CLS_ADAPTER_CONFIG));
    if (o.merge && !seqCls) throw new AlignflowError('usage', '--merge: this reward model has no LoRA adapter');
    if (seqCls && !o.merge) {
      writeAdapterDir(src, out, SEQ_CLS_ADAPTER_CONFIG, SEQ_CLS_ADAPTER_WEIGHTS, o);
      return 'peft-seq-cls-adapter';
    }
    const { model, tokenizer } = await loadRewardModelDir(src);
    try {
      saveRewardModelDir(model, tokenizer, out, { dtype: o.dtype });
    } finally {
      model.dispose();
    }
    return 'reward';
  }
  const isLora = fs.existsSync(path.join(src, ADAPTER_CONFIG));
  if (o.merge && !isLora) throw new AlignflowError('usage', '--merge: this model has no LoRA adapter');
  if (isLora && o.merge) {
    const { model, tokenizer } = await loadModelDir(src);
    try {
      const adapter = model.adapter as LoraAdapter;
      const tensors = mergedTensors(model, adapter);
      adapter.dispose();
      model.adapter = undefined;
      saveModelDir(model, tokenizer, out, { tensors, dtype: o.dtype });
      return 'merged';
    } finally {
      model.dispose();
    }
  }
  if (isLora) {
    writeAdapterDir(src, out, ADAPTER_CONFIG, ADAPTER_WEIGHTS, o);
    return 'peft-adapter';
  }
  if (o.dtype) {
    const { model, tokenizer } = await loadModelDir(src);
    try {
      saveModelDir(model, tokenizer, out, { dtype: o.dtype });
    } finally {
      model.dispose();
    }
    return 'full';
  }
  writeDirAtomically(out, (tmp) => fs.cpSync(src, tmp, { recursive: true }));
  return 'copy';
}

/**
 * What peft.PeftModel.from_pretrained(base, dir) reads: adapter_config.json and
 * adapter_model.safetensors (from the model directory's `cfgFile` / `weightsFile`), and the tokenizer
 * the adapter was trained with.
 */
function writeAdapterDir(src: string, out: string, cfgFile: string, weightsFile: string, o: ExportOptions): void {
  const tok = fs.existsSync(path.join(src, 'tokenizer.json')) ? loadTokenizerDir(src) : undefined;
  const adapterCfg = JSON.parse(fs.readFileSync(path.join(src, cfgFile), 'utf8')) as Record<string, unknown>;
  if (o.basePath) adapterCfg.base_model_name_or_path = o.basePath;
  const reader = new SafetensorsReader(path.join(src, weightsFile));
  const tensors = new Map<string, NamedTensor>();
  try {
    for (const [n, e] of reader.entries) tensors.set(n, { shape: e.shape, data: reader.read(n) });
  } finally {
    reader.close();
  }
  writeDirAtomically(out, (tmp) => {
    if (tok) saveTokenizerDir(tok, tmp);
    for (const f of ['generation_config.json', 'config.json']) if (fs.existsSync(path.join(tmp, f))) fs.rmSync(path.join(tmp, f));
    fs.writeFileSync(path.join(tmp, ADAPTER_CONFIG), JSON.stringify(adapterCfg, null, 2) + '\n');
    fs.writeFileSync(path.join(tmp, ADAPTER_WEIGHTS), serializeSafetensors(tensors, { dtype: o.dtype ?? 'F32', metadata: { format: 'pt' } }));
  });
}

export function parseDtype(v: string | undefined): SafetensorsDtype | undefined {
  if (v === undefined) return undefined;
  const d = ({ fp32: 'F32', float32: 'F32', fp16: 'F16', float16: 'F16', bf16: 'BF16', bfloat16: 'BF16' } as Record<string, SafetensorsDtype>)[v.toLowerCase()];
  if (!d) throw new AlignflowError('usage', `--dtype must be fp32, fp16 or bf16 (got "${v}")`);
  return d;
}
