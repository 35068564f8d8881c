// LoRA (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language Models"): each targeted
// linear layer y = x Wᵀ gains a trainable low-rank update, y = x Wᵀ + (α/r) · x Aᵀ Bᵀ, with
// A [r, in] and B [out, r]; W stays frozen. Laid out as PEFT does it (peft/tuners/lora/layer.py),
// so an adapter directory loads with peft.PeftModel.from_pretrained:
//   - A initialised kaiming-uniform(a=√5), i.e. U(−1/√in, 1/√in); B zeros, so a fresh adapter
//     changes nothing;
//   - tensor names base_model.model.<module>.lora_A.weight / lora_B.weight in adapter_model.safetensors;
//   - adapter_config.json with peft_type LORA, r, lora_alpha, lora_dropout, target_modules and
//     fan_in_fan_out (true for GPT-2's Conv1D, whose weights are stored [in, out]).
// Dropout (lora_dropout) as PEFT applies it: on the input of the LoRA branch only,
// y = x Wᵀ + (α/r) · B(A(dropout(x))) (peft/tuners/lora/layer.py, Linear.forward), inverted scaling
// 1/(1−p) as torch.nn.Dropout. It is on only inside LoraAdapter.training(), which the training loop's
// loss runs under; evaluation, reference passes and generation see no dropout. Its masks are seeded
// from (stage seed, step, micro-batch, layer), never from a running RNG, so a run resumed from a
// checkpoint draws the masks an uninterrupted one draws.
import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { AlignflowError } from '../errors.js';
import { tensorSeed } from './tensor-seed.js';
import { deriveSeed } from './train/rng.js';
import type { CausalLM, LinearAdapter, LinearLayer } from './models/types.js';
import { SafetensorsReader, serializeSafetensors, type NamedTensor, type SafetensorsDtype } from './safetensors.js';

export const loraConfigSchema = z.strictObject({
  r: z.number().int().positive(),
  /** PEFT's lora_alpha (default 8, as PEFT); the update is scaled by alpha / r. */
  alpha: z.number().positive().optional(),
  dropout: z.number().min(0).lt(1).default(0),
  /** PEFT module names (q_proj, v_proj, c_attn, ...) or "all-linear". */
  target_modules: z.union([z.array(z.string().min(1)).min(1), z.literal('all-linear')]),
});
export type LoraConfig = z.input<typeof loraConfigSchema>;

/** `lora:` in a training stage's config. */
export const stageLoraSchema = loraConfigSchema;

/** Where in a run a training forward is: what seeds its dropout masks. */
export interface DropoutAt {
  /** The stage seed. */
  seed: number;
  /** Optimizer updates completed before this one. */
  step: number;
  /** The micro-batch within the step (0 .. grad_accum−1). */
  microBatch: number;
}

/**
 * The tf.random seed of one dropout mask: (stage seed, step, micro-batch, layer, call) mixed one
 * component at a time. `call` counts the forwards through the layer within one micro-batch (DPO
 * without precomputed references runs the policy more than once), so no two masks repeat.
 */
export function dropoutSeed(at: DropoutAt, layer: number, call: number): number {
  let s = deriveSeed(at.seed, 'lora_dropout');
  for (const i of [at.step, at.microBatch, layer, call]) s = tensorSeed(s, i);
  return s;
}

/** x · mask / (1 − p), mask ~ Bernoulli(1 − p) drawn from `seed` (torch.nn.functional.dropout). */
export function dropoutMask(shape: number[], p: number, seed: number): tf.Tensor {
  return tf.tidy(() => tf.mul(tf.cast(tf.greaterEqual(tf.randomUniform(shape, 0, 1, 'float32', seed), p), 'float32'), 1 / (1 - p)));
}

interface AdapterPair {
  layer: LinearLayer;
  /** Position among the adapted layers (a dropout seed component). */
  index: number;
  a: tf.Variable; // [r, in]
  b: tf.Variable; // [out, r]
}

let adapterCounter = 0;

/** The PEFT state-dict name of a layer's A or B matrix. */
export function peftTensorName(layer: LinearLayer, which: 'A' | 'B'): string {
  return `base_model.model.${layer.weight.replace(/\.weight$/, '')}.lora_${which}.weight`;
}

export class LoraAdapter implements LinearAdapter {
  readonly pairs = new Map<string, AdapterPair>();
  readonly scale: number;
  readonly config: { r: number; alpha: number; dropout: number; target_modules: string[] | 'all-linear' };

  constructor(layers: LinearLayer[], cfg: LoraConfig, init: { seed: number } | { tensors: Map<string, NamedTensor> }) {
    const c = loraConfigSchema.parse(cfg);
    this.config = { r: c.r, alpha: c.alpha ?? 8, dropout: c.dropout, target_modules: c.target_modules };
    this.scale = this.config.alpha / c.r;
    const id = ++adapterCounter;
    let i = 0;
    for (const layer of layers) {
      let a: tf.Tensor;
      let b: tf.Tensor;
      if ('seed' in init) {
        const bound = 1 / Math.sqrt(layer.inFeatures);
        a = tf.randomUniform([c.r, layer.inFeatures], -bound, bound, 'float32', tensorSeed(init.seed, i++));
        b = tf.zeros([layer.outFeatures, c.r]);
      } else {
        const get = (w: 'A' | 'B', shape: number[]) => {
          const name = peftTensorName(layer, w);
          const t = init.tensors.get(name);
          if (!t) throw new AlignflowError('input', `adapter_model.safetensors: missing tensor ${name}`, { issues: [{ file: 'adapter_model.safetensors', field: name, reason: 'missing tensor' }] });
          if (t.shape.join() !== shape.join()) throw new AlignflowError('input', `adapter_model.safetensors: ${name} has shape [${t.shape}], expected [${shape}]`, { issues: [{ file: 'adapter_model.safetensors', field: name, reason: `shape [${t.shape}], expected [${shape}]` }] });
          return tf.tensor(t.data, t.shape, 'float32');
        };
        a = get('A', [c.r, layer.inFeatures]);
        b = get('B', [layer.outFeatures, c.r]);
      }
      this.pairs.set(layer.weight, { layer, index: this.pairs.size, a: tf.variable(a, true, `lora${id}/${peftTensorName(layer, 'A')}`), b: tf.variable(b, true, `lora${id}/${peftTensorName(layer, 'B')}`) });
      a.dispose();
      b.dispose();
    }
  }

  /** Dropout state while training() runs: where, and per layer the last input and its call number. */
  private dropoutAt: DropoutAt | undefined;
  private calls = new Map<number, { x: tf.Tensor; call: number }>();

  /**
   * Runs fn (a training micro-batch's loss) with adapter dropout on, its masks seeded from `at`.
   * Outside it (evaluation, references, generation) the adapters run without dropout.
   */
  training<T>(at: DropoutAt, fn: () => T): T {
    if (!(this.config.dropout > 0)) return fn();
    const saved = this.dropoutAt;
    this.dropoutAt = at;
    this.calls.clear();
    try {
      return fn();
    } finally {
      this.dropoutAt = saved;
      this.calls.clear();
    }
  }

  /** The mask seed of this forward through layer `p`: GPT-2's fused c_attn asks three times (q, k, v blocks) with one x, and gets one mask, as PEFT drops x once. */
  private maskSeed(p: AdapterPair, x: tf.Tensor): number {
    const prev = this.calls.get(p.index);
    const call = prev === undefined ? 0 : prev.x === x ? prev.call : prev.call + 1;
    this.calls.set(p.index, { x, call });
    return dropoutSeed(this.dropoutAt!, p.index, call);
  }

  delta(weight: string, x: tf.Tensor2D, cols?: { start: number; size: number }): tf.Tensor2D | undefined {
    const p = this.pairs.get(weight);
    if (!p) return undefined;
    const xd = this.dropoutAt ? (tf.mul(x, dropoutMask(x.shape, this.config.dropout, this.maskSeed(p, x))) as tf.Tensor2D) : x;
    // The scale goes on the r-wide product: a multiply keeps its input for the backward pass, and
    // scaling the out-wide result kept an [N, out] copy per adapted layer (the tape grew with LoRA).
    const xa = tf.mul(tf.matMul(xd, p.a, false, true), this.scale) as tf.Tensor2D; // [N, r]
    const b = cols ? tf.slice(p.b, [cols.start, 0], [cols.size, p.b.shape[1]!]) : p.b;
    return tf.matMul(xa, b as tf.Tensor2D, false, true) as tf.Tensor2D;
  }

  /** The trainable variables, by PEFT tensor name. */
  get params(): Map<string, tf.Variable> {
    const m = new Map<string, tf.Variable>();
    for (const p of this.pairs.values()) {
      m.set(peftTensorName(p.layer, 'A'), p.a);
      m.set(peftTensorName(p.layer, 'B'), p.b);
    }
    return m;
  }

  get parameterCount(): number {
    let n = 0;
    for (const v of this.params.values()) n += v.size;
    return n;
  }

  tensors(): Map<string, NamedTensor> {
    const m = new Map<string, NamedTensor>();
    for (const [n, v] of this.params) m.set(n, { shape: v.shape.slice(), data: v.dataSync() as Float32Array });
    return m;
  }

  dispose(): void {
    for (const p of this.pairs.values()) {
      p.a.dispose();
      p.b.dispose();
    }
    this.pairs.clear();
  }
}

/** The model's linear layers that `target_modules` selects (PEFT matches the last name component; "all-linear": every one). */
export function targetLayers(model: CausalLM, target: string[] | 'all-linear'): LinearLayer[] {
  const all = model.linearLayers();
  if (target === 'all-linear') return all;
  const known = new Set(all.map((l) => l.module));
  const unknown = target.filter((t) => !known.has(t));
  if (unknown.length) {
    throw new AlignflowError('config', `lora.target_modules: ${unknown.map((u) => `"${u}"`).join(', ')} ${unknown.length > 1 ? 'are' : 'is'} not a linear layer of this ${model.config.model_type} model (it has ${[...known].join(', ')})`);
  }
  return all.filter((l) => target.includes(l.module));
}

/** Attaches fresh adapters (B = 0, so outputs are unchanged) to `model` and returns them. */
export function attachLora(model: CausalLM, cfg: LoraConfig, seed = 0): LoraAdapter {
  const c = loraConfigSchema.parse(cfg);
  const adapter = new LoraAdapter(targetLayers(model, c.target_modules), c, { seed });
  model.adapter = adapter;
  return adapter;
}

/** Runs fn with the model's adapters switched off (the DPO reference: the base model, no second copy). */
export function withAdaptersOff<T>(model: CausalLM, fn: () => T): T {
  const saved = model.adapter;
  model.adapter = undefined;
  try {
    return fn();
  } finally {
    model.adapter = saved;
  }
}

/** W + (α/r)·B·A (transposed for fan_in_fan_out weights), per adapted layer: the merged weights. */
export function mergedTensors(model: CausalLM, adapter: LoraAdapter): Map<string, NamedTensor> {
  const out = new Map<string, NamedTensor>();
  for (const [name, v] of model.params) {
    const p = adapter.pairs.get(name);
    const merged = p
      ? tf.tidy(() => {
          const ba = tf.mul(tf.matMul(p.b, p.a), adapter.scale); // [out, in]
          return tf.add(v, p.layer.fanInFanOut ? tf.transpose(ba) : ba);
        })
      : undefined;
    out.set(name, { shape: v.shape.slice(), data: (merged ?? v).dataSync() as Float32Array });
    merged?.dispose();
  }
  return out;
}

export const ADAPTER_CONFIG = 'adapter_config.json';
export const ADAPTER_WEIGHTS = 'adapter_model.safetensors';

/**
 * A LoRA-trained reward model keeps, beside its merged weights, the PEFT SEQ_CLS adapter it was
 * trained as (adapters + score head): `models export` writes these out as adapter_config.json /
 * adapter_model.safetensors. Other names than PEFT's, so no loader takes the merged directory for an
 * unmerged base + adapter.
 */
export const SEQ_CLS_ADAPTER_CONFIG = 'seq_cls_adapter_config.json';
export const SEQ_CLS_ADAPTER_WEIGHTS = 'seq_cls_adapter_model.safetensors';

/**
 * The state-dict name PEFT gives a module of modules_to_save (the reward model's `score` head) in
 * adapter_model.safetensors: base_model.model.score.weight, without the modules_to_save.default
 * wrapper (peft/utils/save_and_load.py get_peft_model_state_dict; checked with peft 0.21's save_pretrained).
 */
export function peftSavedModuleName(param: string): string {
  return `base_model.model.${param}`;
}

/** adapter_config.json as PEFT writes it for a LoRA adapter (SEQ_CLS: the reward head in modules_to_save). */
export function adapterConfigJson(model: CausalLM, adapter: LoraAdapter, baseModel: string, taskType: 'CAUSAL_LM' | 'SEQ_CLS' = 'CAUSAL_LM', modulesToSave: string[] | null = null): string {
  const modules = [...new Set([...adapter.pairs.values()].map((p) => p.layer.module))].sort();
  const fanInFanOut = [...adapter.pairs.values()].some((p) => p.layer.fanInFanOut);
  const c = {
    alpha_pattern: {},
    auto_mapping: null,
    base_model_name_or_path: baseModel,
    bias: 'none',
    fan_in_fan_out: fanInFanOut,
    inference_mode: true,
    init_lora_weights: true,
    layers_pattern: null,
    layers_to_transform: null,
    lora_alpha: adapter.config.alpha,
    lora_dropout: adapter.config.dropout,
    modules_to_save: modulesToSave,
    peft_type: 'LORA',
    r: adapter.config.r,
    rank_pattern: {},
    revision: null,
    target_modules: modules,
    task_type: taskType,
    use_dora: false,
    use_rslora: false,
  };
  void model;
  return JSON.stringify(c, null, 2) + '\n';
}

/** Writes adapter_config.json and adapter_model.safetensors (PEFT names) into `dir`. */
export function writeAdapterFiles(dir: string, model: CausalLM, adapter: LoraAdapter, baseModel: string, dtype: SafetensorsDtype = 'F32'): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, ADAPTER_CONFIG), adapterConfigJson(model, adapter, baseModel));
  fs.writeFileSync(path.join(dir, ADAPTER_WEIGHTS), serializeSafetensors(adapter.tensors(), { dtype, metadata: { format: 'pt' } }));
}

/**
 * Writes a reward model's PEFT SEQ_CLS adapter (SEQ_CLS_ADAPTER_* names) into `dir`: the LoRA
 * matrices plus the trained head saved whole (modules_to_save), so
 * PeftModel.from_pretrained(AutoModelForSequenceClassification.from_pretrained(base, num_labels=1), dir)
 * is the reward model.
 */
export function writeSeqClsAdapterFiles(dir: string, model: CausalLM, adapter: LoraAdapter, head: Map<string, NamedTensor>, baseModel: string, dtype: SafetensorsDtype = 'F32'): void {
  const modules = [...new Set([...head.keys()].map((n) => n.replace(/\.(weight|bias)$/, '')))];
  const tensors = adapter.tensors();
  for (const [n, t] of head) tensors.set(peftSavedModuleName(n), t);
  fs.writeFileSync(path.join(dir, SEQ_CLS_ADAPTER_CONFIG), adapterConfigJson(model, adapter, baseModel, 'SEQ_CLS', modules));
  fs.writeFileSync(path.join(dir, SEQ_CLS_ADAPTER_WEIGHTS), serializeSafetensors(tensors, { dtype, metadata: { format: 'pt' } }));
}

/** Reads a PEFT LoRA adapter directory and attaches it to `model`. */
export function loadAdapterDir(dir: string, model: CausalLM): { adapter: LoraAdapter; baseModel: string | undefined } {
  const cfgFile = path.join(dir, ADAPTER_CONFIG);
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(fs.readFileSync(cfgFile, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new AlignflowError('input', `${cfgFile}: cannot read (${(e as Error).message})`);
  }
  if (raw.peft_type !== 'LORA') throw new AlignflowError('input', `${cfgFile}: peft_type ${JSON.stringify(raw.peft_type)} is not supported (LORA)`, { issues: [{ file: cfgFile, field: 'peft_type', reason: 'only LORA' }] });
  for (const k of ['use_dora', 'use_rslora'] as const) if (raw[k]) throw new AlignflowError('input', `${cfgFile}: ${k} true is not supported`, { issues: [{ file: cfgFile, field: k, reason: 'not supported' }] });
  const target = raw.target_modules;
  const cfg: LoraConfig = { r: Number(raw.r), alpha: Number(raw.lora_alpha ?? 8), dropout: Number(raw.lora_dropout ?? 0), target_modules: typeof target === 'string' ? (target === 'all-linear' ? 'all-linear' : [target]) : (target as string[]) };
  const reader = new SafetensorsReader(path.join(dir, ADAPTER_WEIGHTS));
  try {
    const tensors = new Map<string, NamedTensor>();
    for (const [n, e] of reader.entries) tensors.set(n.replace('.lora_A.default.weight', '.lora_A.weight').replace('.lora_B.default.weight', '.lora_B.weight'), { shape: e.shape, data: reader.read(n) });
    const adapter = new LoraAdapter(targetLayers(model, loraConfigSchema.parse(cfg).target_modules), cfg, { tensors });
    model.adapter = adapter;
    return { adapter, baseModel: typeof raw.base_model_name_or_path === 'string' ? raw.base_model_name_or_path : undefined };
  } finally {
    reader.close();
  }
}

/** Folds the adapters into the base weights (W += (α/r)·B·A) and removes them: the same function, no adapter. */
export function mergeInto(model: CausalLM, adapter: LoraAdapter): void {
  const merged = mergedTensors(model, adapter);
  for (const name of adapter.pairs.keys()) {
    const t = merged.get(name)!;
    const v = tf.tensor(t.data, t.shape, 'float32');
    model.params.get(name)!.assign(v);
    v.dispose();
  }
  if (model.adapter === adapter) model.adapter = undefined;
  adapter.dispose();
}

/**
 * The base model under its adapters, as a CausalLM of its own: forwards run with the adapters switched
 * off, and dispose() leaves the shared weights alone. This is the DPO reference with LoRA: no second
 * copy of the weights is loaded.
 */
export function baseView(model: CausalLM): CausalLM {
  return {
    config: model.config,
    params: model.params,
    get contextLength() {
      return model.contextLength;
    },
    get hiddenSize() {
      return model.hiddenSize;
    },
    get vocabSize() {
      return model.vocabSize;
    },
    forward: (ids, opts) => withAdaptersOff(model, () => model.forward(ids, opts)),
    hiddenStates: (ids, opts) => withAdaptersOff(model, () => model.hiddenStates(ids, opts)),
    linearLayers: () => model.linearLayers(),
    expectedShapes: () => model.expectedShapes(),
    dispose: () => undefined,
  };
}

/**
 * Attaches fresh adapters for a training stage. A model that already carries adapters (a LoRA SFT
 * model going into LoRA DPO) has them merged into its weights first, so the new stage trains on top.
 */
export function attachStageLora(model: CausalLM, cfg: LoraConfig, seed: number): LoraAdapter {
  if (model.adapter instanceof LoraAdapter) mergeInto(model, model.adapter);
  return attachLora(model, cfg, seed);
}
