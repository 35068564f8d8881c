// The Llama family, written to match transformers' modeling_llama.py / modeling_mistral.py /
// modeling_qwen2.py / modeling_qwen3.py; parameter names and layouts are Hugging Face's
// ("model.layers.0.self_attn.q_proj.weight", torch.nn.Linear [out, in]: y = x Wᵀ + b).
// - RMSNorm (Zhang & Sennrich 2019): x · rsqrt(mean(x²) + eps) · w.
// - Rotary position embeddings (Su et al. 2021) in the rotate-half convention: the first and second
//   halves of each head form the pairs; inv_freq_i = θ^(−2i/d), scaled by rope type (default,
//   linear, llama3: transformers' modeling_rope_utils.py).
// - Grouped-query attention (Ainslie et al. 2023): query head h reads key/value head ⌊h·KV/H⌋.
// - SwiGLU MLP (Shazeer 2020): down(silu(gate(x)) · up(x)).
// - Per-family options: q/k/v(/o) biases (qwen2; llama/qwen3 attention_bias), mlp_bias (llama),
//   per-head RMSNorm of q and k before the rotation (qwen3), explicit head_dim, tied or untied head.
// Dropout is not applied (see docs/engine-models.md).
import * as tf from '@tensorflow/tfjs';
import { AlignflowError, type InputIssue } from '../../errors.js';
import { attend, disposeParams, forwardResult, keyPaddingMask, maskBias, tensorSeed } from './attention.js';
import { z } from 'zod';
import type { ActivationModel, BaseModelConfig, CausalLM, ForwardOptions, ForwardResult, LinearAdapter, LinearLayer, ModelFamily } from './types.js';
import { FUSED } from '../kernels/fused.js';

export type LlamaModelType = 'llama' | 'mistral' | 'qwen2' | 'qwen3';

/** config.json keys of the four families, as transformers writes them. */
export interface LlamaConfig extends BaseModelConfig {
  model_type: LlamaModelType;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  head_dim?: number | null;
  max_position_embeddings: number;
  rms_norm_eps: number;
  hidden_act: string;
  /** transformers < 5 */
  rope_theta?: number;
  rope_scaling?: Record<string, unknown> | null;
  /** transformers ≥ 5: { rope_type, rope_theta, factor, ... } */
  rope_parameters?: Record<string, unknown> | null;
  attention_bias?: boolean;
  mlp_bias?: boolean;
  sliding_window?: number | null;
  use_sliding_window?: boolean;
}

interface FamilyTraits {
  architecture: string;
  rewardArchitecture: string;
  /** Biases on q/k/v regardless of attention_bias (Qwen2). */
  qkvBias: boolean;
  /** attention_bias puts a bias on o_proj too (Llama, Qwen3). */
  attentionBiasKey: boolean;
  mlpBiasKey: boolean;
  qkNorm: boolean;
  /** sliding_window applies without use_sliding_window (Mistral). */
  slidingAlways: boolean;
  defaults: Record<string, unknown>;
}

const COMMON_DEFAULTS = { hidden_act: 'silu', initializer_range: 0.02, rms_norm_eps: 1e-6, tie_word_embeddings: false, use_cache: true, attention_dropout: 0 };

export const LLAMA_TRAITS: Record<LlamaModelType, FamilyTraits> = {
  llama: {
    architecture: 'LlamaForCausalLM',
    rewardArchitecture: 'LlamaForSequenceClassification',
    qkvBias: false,
    attentionBiasKey: true,
    mlpBiasKey: true,
    qkNorm: false,
    slidingAlways: false,
    defaults: { vocab_size: 32000, hidden_size: 4096, intermediate_size: 11008, num_hidden_layers: 32, num_attention_heads: 32, max_position_embeddings: 2048, attention_bias: false, mlp_bias: false, bos_token_id: 1, eos_token_id: 2, pretraining_tp: 1 },
  },
  mistral: {
    architecture: 'MistralForCausalLM',
    rewardArchitecture: 'MistralForSequenceClassification',
    qkvBias: false,
    attentionBiasKey: false,
    mlpBiasKey: false,
    qkNorm: false,
    slidingAlways: true,
    defaults: { vocab_size: 32000, hidden_size: 4096, intermediate_size: 14336, num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 8, max_position_embeddings: 4096 * 32, sliding_window: 4096, bos_token_id: 1, eos_token_id: 2 },
  },
  qwen2: {
    architecture: 'Qwen2ForCausalLM',
    rewardArchitecture: 'Qwen2ForSequenceClassification',
    qkvBias: true,
    attentionBiasKey: false,
    mlpBiasKey: false,
    qkNorm: false,
    slidingAlways: false,
    defaults: { vocab_size: 151936, hidden_size: 4096, intermediate_size: 22016, num_hidden_layers: 32, num_attention_heads: 32, max_position_embeddings: 32768, use_sliding_window: false, sliding_window: 4096, max_window_layers: 28 },
  },
  qwen3: {
    architecture: 'Qwen3ForCausalLM',
    rewardArchitecture: 'Qwen3ForSequenceClassification',
    qkvBias: false,
    attentionBiasKey: true,
    mlpBiasKey: false,
    qkNorm: true,
    slidingAlways: false,
    defaults: { vocab_size: 151936, hidden_size: 4096, intermediate_size: 22016, num_hidden_layers: 32, num_attention_heads: 32, head_dim: 128, max_position_embeddings: 32768, attention_bias: false, use_sliding_window: false, sliding_window: null, max_window_layers: 28 },
  },
};

export function isLlamaModelType(t: string): t is LlamaModelType {
  return Object.prototype.hasOwnProperty.call(LLAMA_TRAITS, t);
}

/** transformers' defaults for the keys a config may omit. */
export function llamaConfigDefaults(raw: Record<string, unknown>): LlamaConfig {
  const mt = raw.model_type as LlamaModelType;
  const t = LLAMA_TRAITS[mt];
  const c = { ...COMMON_DEFAULTS, ...t.defaults, architectures: [t.architecture], ...raw } as unknown as LlamaConfig;
  c.num_key_value_heads ??= c.num_attention_heads;
  if (c.rope_parameters == null && c.rope_theta === undefined) c.rope_theta = 10000;
  return c;
}

export interface RopeSpec {
  type: 'default' | 'linear' | 'llama3';
  theta: number;
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalContext: number;
}

/** The rotary settings from either config style (rope_theta + rope_scaling, or transformers 5's rope_parameters). */
export function ropeSpec(c: LlamaConfig, file = 'config.json'): RopeSpec {
  const params = (c.rope_parameters ?? c.rope_scaling ?? {}) as Record<string, unknown>;
  const field = c.rope_parameters ? 'rope_parameters' : 'rope_scaling';
  const type = String(params.rope_type ?? params.type ?? 'default');
  const theta = Number(params.rope_theta ?? c.rope_theta ?? 10000);
  const bad = (reason: string, f = field) => new AlignflowError('input', `${file}: ${f}: ${reason}`, { issues: [{ file, field: f, reason }] });
  if (!['default', 'linear', 'llama3'].includes(type)) throw bad(`rope type "${type}" is not supported (default, linear, llama3)`);
  if (!(theta > 0)) throw bad('rope_theta must be a positive number');
  const factor = Number(params.factor ?? 1);
  if (type !== 'default' && !(factor > 0)) throw bad('factor must be a positive number');
  const spec: RopeSpec = {
    type: type as RopeSpec['type'],
    theta,
    factor,
    lowFreqFactor: Number(params.low_freq_factor ?? 1),
    highFreqFactor: Number(params.high_freq_factor ?? 4),
    originalContext: Number(params.original_max_position_embeddings ?? 8192),
  };
  if (type === 'llama3' && !(spec.highFreqFactor > spec.lowFreqFactor && spec.originalContext > 0)) throw bad('llama3 needs high_freq_factor > low_freq_factor and original_max_position_embeddings > 0');
  return spec;
}

/**
 * inv_freq_i = θ^(−2i/d), i < d/2, with the rope type's scaling (transformers' _compute_linear_scaling_rope_parameters
 * and _compute_llama3_parameters): linear divides every frequency by `factor`; llama3 divides the low
 * frequencies (wavelength > original context / low_freq_factor) by `factor`, keeps the high ones
 * (wavelength < original context / high_freq_factor) and interpolates smoothly in between.
 */
export function ropeInvFreq(headDim: number, r: RopeSpec): Float64Array {
  const half = headDim / 2;
  const inv = new Float64Array(half);
  for (let i = 0; i < half; i++) inv[i] = 1 / Math.pow(r.theta, (2 * i) / headDim);
  if (r.type === 'linear') for (let i = 0; i < half; i++) inv[i]! /= r.factor;
  if (r.type === 'llama3') {
    const lowWavelen = r.originalContext / r.lowFreqFactor;
    const highWavelen = r.originalContext / r.highFreqFactor;
    for (let i = 0; i < half; i++) {
      const f = inv[i]!;
      const wavelen = (2 * Math.PI) / f;
      if (wavelen < highWavelen) continue;
      if (wavelen > lowWavelen) inv[i] = f / r.factor;
      else {
        const smooth = (r.originalContext / wavelen - r.lowFreqFactor) / (r.highFreqFactor - r.lowFreqFactor);
        inv[i] = (1 - smooth) * (f / r.factor) + smooth * f;
      }
    }
  }
  return inv;
}

/** cos and sin of position·inv_freq for each [B, T] position: two [B, 1, T, d/2] tensors (call inside tidy). */
export function ropeAngles(positions: tf.Tensor2D, invFreq: Float64Array): { cos: tf.Tensor4D; sin: tf.Tensor4D } {
  const [B, T] = positions.shape;
  const half = invFreq.length;
  const ang = tf.mul(tf.reshape(tf.cast(positions, 'float32'), [B, 1, T, 1]), tf.tensor4d(Float32Array.from(invFreq), [1, 1, 1, half]));
  return { cos: tf.cos(ang) as tf.Tensor4D, sin: tf.sin(ang) as tf.Tensor4D };
}

/** x·cos + rotate_half(x)·sin with rotate_half(x) = [−x₂, x₁] on x [B, H, T, D]. */
export function applyRope(x: tf.Tensor4D, cos: tf.Tensor4D, sin: tf.Tensor4D): tf.Tensor4D {
  const [B, H, T, D] = x.shape;
  const h = D / 2;
  const x1 = tf.slice(x, [0, 0, 0, 0], [B, H, T, h]);
  const x2 = tf.slice(x, [0, 0, 0, h], [B, H, T, h]);
  return tf.concat([tf.sub(tf.mul(x1, cos), tf.mul(x2, sin)), tf.add(tf.mul(x2, cos), tf.mul(x1, sin))], 3) as tf.Tensor4D;
}

/** RMSNorm over the last axis (transformers' LlamaRMSNorm). */
export function rmsNorm<T extends tf.Tensor>(x: T, w: tf.Tensor, eps: number): T {
  const variance = tf.mean(tf.mul(x, x), -1, true);
  return tf.mul(tf.mul(x, tf.rsqrt(tf.add(variance, eps))), w) as T;
}

export function llamaHeadDim(c: LlamaConfig): number {
  return c.head_dim ?? c.hidden_size / c.num_attention_heads;
}

/** The window beyond which attention would differ (undefined: full attention). */
export function slidingWindow(c: LlamaConfig): number | undefined {
  const t = LLAMA_TRAITS[c.model_type];
  const on = t.slidingAlways || c.use_sliding_window === true;
  return on && typeof c.sliding_window === 'number' ? c.sliding_window : undefined;
}

export function validateLlamaConfig(c: LlamaConfig, file = 'config.json'): void {
  const issues: InputIssue[] = [];
  const posInt = (k: keyof LlamaConfig) => {
    const v = c[k];
    if (!Number.isInteger(v) || (v as number) <= 0) issues.push({ file, field: String(k), reason: `must be a positive integer (got ${JSON.stringify(v)})` });
  };
  for (const k of ['vocab_size', 'hidden_size', 'intermediate_size', 'num_hidden_layers', 'num_attention_heads', 'num_key_value_heads', 'max_position_embeddings'] as const) posInt(k);
  if (c.head_dim !== undefined && c.head_dim !== null) posInt('head_dim');
  if (issues.length === 0) {
    if (c.num_attention_heads % c.num_key_value_heads !== 0) issues.push({ file, field: 'num_key_value_heads', reason: `num_attention_heads ${c.num_attention_heads} is not a multiple of num_key_value_heads ${c.num_key_value_heads}` });
    const hd = llamaHeadDim(c);
    if (!Number.isInteger(hd) || hd % 2 !== 0) issues.push({ file, field: 'head_dim', reason: `head dimension ${hd} must be an even integer (hidden_size / num_attention_heads unless head_dim is given)` });
  }
  if (c.hidden_act !== 'silu') issues.push({ file, field: 'hidden_act', reason: `"${c.hidden_act}" is not supported (silu)` });
  if (!(typeof c.rms_norm_eps === 'number' && c.rms_norm_eps > 0)) issues.push({ file, field: 'rms_norm_eps', reason: 'must be a positive number' });
  if ((c.pretraining_tp ?? 1) !== 1) issues.push({ file, field: 'pretraining_tp', reason: 'only 1 is supported' });
  try {
    ropeSpec(c, file);
  } catch (e) {
    issues.push(...(e instanceof AlignflowError && e.issues.length ? e.issues : [{ file, reason: (e as Error).message }]));
  }
  if (issues.length) throw new AlignflowError('input', `${file}: invalid ${c.model_type} config (${issues.map((i) => `${i.field}: ${i.reason}`).join('; ')})`, { issues });
}

function hasAttnBias(c: LlamaConfig): { qkv: boolean; o: boolean } {
  const t = LLAMA_TRAITS[c.model_type];
  const ab = t.attentionBiasKey && c.attention_bias === true;
  return { qkv: t.qkvBias || ab, o: ab };
}

/** Every parameter's HF name and shape, in transformers' order. `head: false` leaves out an untied lm_head (sequence classification). */
export function llamaParamShapes(c: LlamaConfig, opts: { head?: boolean } = {}): Map<string, number[]> {
  const C = c.hidden_size;
  const D = llamaHeadDim(c);
  const H = c.num_attention_heads;
  const KV = c.num_key_value_heads;
  const I = c.intermediate_size;
  const bias = hasAttnBias(c);
  const mlpBias = LLAMA_TRAITS[c.model_type].mlpBiasKey && c.mlp_bias === true;
  const m = new Map<string, number[]>();
  m.set('model.embed_tokens.weight', [c.vocab_size, C]);
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const p = `model.layers.${i}.`;
    const lin = (name: string, out: number, inp: number, b: boolean) => {
      m.set(`${p}${name}.weight`, [out, inp]);
      if (b) m.set(`${p}${name}.bias`, [out]);
    };
    lin('self_attn.q_proj', H * D, C, bias.qkv);
    lin('self_attn.k_proj', KV * D, C, bias.qkv);
    lin('self_attn.v_proj', KV * D, C, bias.qkv);
    lin('self_attn.o_proj', C, H * D, bias.o);
    if (LLAMA_TRAITS[c.model_type].qkNorm) {
      m.set(p + 'self_attn.q_norm.weight', [D]);
      m.set(p + 'self_attn.k_norm.weight', [D]);
    }
    lin('mlp.gate_proj', I, C, mlpBias);
    lin('mlp.up_proj', I, C, mlpBias);
    lin('mlp.down_proj', C, I, mlpBias);
    m.set(p + 'input_layernorm.weight', [C]);
    m.set(p + 'post_attention_layernorm.weight', [C]);
  }
  m.set('model.norm.weight', [C]);
  if (c.tie_word_embeddings === false && opts.head !== false) m.set('lm_head.weight', [c.vocab_size, C]);
  return m;
}

let modelCounter = 0;

export class LlamaModel implements CausalLM {
  readonly config: LlamaConfig;
  readonly params: Map<string, tf.Variable>;
  adapter?: LinearAdapter;
  private readonly headDim: number;
  private readonly invFreq: Float64Array;
  private readonly hasHead: boolean;

  /** Takes the tensors as given (HF names, validated); they become the model's variables. `head: false`: no untied lm_head (reward body). */
  constructor(config: LlamaConfig, weights: Map<string, tf.Tensor>, opts: { head?: boolean } = {}) {
    validateLlamaConfig(config);
    this.config = config;
    this.headDim = llamaHeadDim(config);
    this.invFreq = ropeInvFreq(this.headDim, ropeSpec(config));
    this.hasHead = config.tie_word_embeddings !== false || opts.head !== false;
    const id = ++modelCounter;
    this.params = new Map();
    for (const [name, shape] of llamaParamShapes(config, opts)) {
      const w = weights.get(name);
      if (!w) throw new AlignflowError('internal', `LlamaModel: missing tensor ${name}`);
      if (w.shape.join() !== shape.join()) throw new AlignflowError('internal', `LlamaModel: ${name} has shape [${w.shape}], expected [${shape}]`);
      this.params.set(name, tf.variable(w, true, `l${id}/${name}`));
    }
  }

  get contextLength(): number {
    return this.config.max_position_embeddings;
  }
  get hiddenSize(): number {
    return this.config.hidden_size;
  }
  get vocabSize(): number {
    return this.config.vocab_size;
  }

  expectedShapes(): Map<string, number[]> {
    return llamaParamShapes(this.config, { head: this.hasHead });
  }

  linearLayers(): LinearLayer[] {
    const out: LinearLayer[] = [];
    for (const [name, shape] of this.expectedShapes()) {
      const m = /^model\.layers\.\d+\.(?:self_attn|mlp)\.(\w+_proj)\.weight$/.exec(name);
      if (m) out.push({ weight: name, module: m[1]!, inFeatures: shape[1]!, outFeatures: shape[0]!, fanInFanOut: false });
    }
    return out;
  }

  private p(name: string): tf.Variable {
    return this.params.get(name)!;
  }

  /** y = x Wᵀ (+ b), plus the adapter's delta when one targets W. */
  private lin(x: tf.Tensor2D, name: string): tf.Tensor2D {
    let y: tf.Tensor2D = tf.matMul(x, this.p(name + '.weight') as tf.Tensor2D, false, true);
    const b = this.params.get(name + '.bias');
    if (b) y = tf.add(y, b);
    const d = this.adapter?.delta(name + '.weight', x);
    return d ? tf.add(y, d) : y;
  }

  forward(ids: tf.Tensor2D, opts: ForwardOptions = {}): ForwardResult {
    return this.run(ids, opts, true);
  }

  hiddenStates(ids: tf.Tensor2D, opts: ForwardOptions = {}): tf.Tensor3D {
    return this.run(ids, { ...opts, useCache: false }, false).hidden;
  }

  private run(ids: tf.Tensor2D, opts: ForwardOptions, withLogits: boolean): ForwardResult {
    const c = this.config;
    const [B, T] = ids.shape;
    const past = opts.cache?.length ?? 0;
    const S = past + T;
    if (S > c.max_position_embeddings) {
      throw new AlignflowError('input', `sequence of ${S} tokens is longer than the model's context (max_position_embeddings ${c.max_position_embeddings})`);
    }
    const window = slidingWindow(c);
    if (window !== undefined && S > window) {
      throw new AlignflowError('input', `sequence of ${S} tokens exceeds the model's sliding_window ${window}; alignflow computes full attention only, which would differ from ${c.model_type}'s windowed attention`);
    }
    if (withLogits && !this.hasHead) throw new AlignflowError('internal', 'this model was loaded without its lm_head (a reward body); it has no logits');
    if (opts.cache && opts.cache.layers.length !== c.num_hidden_layers) throw new AlignflowError('internal', 'KV cache has the wrong number of layers');
    const H = c.num_attention_heads;
    const KV = c.num_key_value_heads;
    const D = this.headDim;
    const C = c.hidden_size;
    const qkNorm = LLAMA_TRAITS[c.model_type].qkNorm;
    return tf.tidy((): tf.TensorContainer => {
      const keyMask = keyPaddingMask(opts, B, T, past);
      const positions = opts.positionIds ?? (tf.tile(tf.reshape(tf.range(past, S, 1, 'int32'), [1, T]), [B, 1]) as tf.Tensor2D);
      const { cos, sin } = ropeAngles(positions, this.invFreq);
      const bias = maskBias(T, past, keyMask);
      const scale = 1 / Math.sqrt(D);
      let x = tf.gather(this.p('model.embed_tokens.weight'), tf.reshape(ids, [-1])) as tf.Tensor2D; // [B*T, C]
      const newLayers: { k: tf.Tensor4D; v: tf.Tensor4D }[] = [];
      for (let i = 0; i < c.num_hidden_layers; i++) {
        const p = `model.layers.${i}.`;
        const h = rmsNorm(x, this.p(p + 'input_layernorm.weight'), c.rms_norm_eps);
        const heads = (t: tf.Tensor2D, n: number, norm?: string) => {
          let r = tf.reshape(t, [B, T, n, D]);
          if (norm) r = rmsNorm(r, this.p(norm), c.rms_norm_eps);
          return tf.transpose(r, [0, 2, 1, 3]) as tf.Tensor4D;
        };
        const q = applyRope(heads(this.lin(h, p + 'self_attn.q_proj'), H, qkNorm ? p + 'self_attn.q_norm.weight' : undefined), cos, sin);
        let k = applyRope(heads(this.lin(h, p + 'self_attn.k_proj'), KV, qkNorm ? p + 'self_attn.k_norm.weight' : undefined), cos, sin);
        let v = heads(this.lin(h, p + 'self_attn.v_proj'), KV);
        const cached = opts.cache?.layers[i];
        if (cached) {
          k = tf.concat([cached.k, k], 2) as tf.Tensor4D;
          v = tf.concat([cached.v, v], 2) as tf.Tensor4D;
        }
        if (opts.useCache) newLayers.push({ k, v });
        const att = attend(q, k, v, bias, scale); // [B, H, T, D]
        const merged = tf.reshape(tf.transpose(att, [0, 2, 1, 3]), [B * T, H * D]) as tf.Tensor2D;
        x = tf.add(x, this.lin(merged, p + 'self_attn.o_proj'));
        const h2 = rmsNorm(x, this.p(p + 'post_attention_layernorm.weight'), c.rms_norm_eps);
        const gate = this.lin(h2, p + 'mlp.gate_proj');
        const ff = tf.mul(tf.mul(gate, tf.sigmoid(gate)), this.lin(h2, p + 'mlp.up_proj')) as tf.Tensor2D; // silu(g) · u
        x = tf.add(x, this.lin(ff, p + 'mlp.down_proj'));
      }
      const hidden2 = rmsNorm(x, this.p('model.norm.weight'), c.rms_norm_eps);
      const head = withLogits ? (this.params.get('lm_head.weight') ?? this.p('model.embed_tokens.weight')) : undefined;
      return forwardResult(hidden2, { B, T, head, opts, layers: newLayers, length: S, keyMask });
    }) as unknown as ForwardResult;
  }

  dispose(): void {
    disposeParams(this.params);
  }
}

/**
 * A freshly initialised model, as transformers' _init_weights does for these families: normal(0,
 * initializer_range) for embeddings and Linear weights, zeros for biases, ones for RMSNorm weights.
 * Same seed → same weights on every backend (tf.randomNormal draws in JS).
 */
export function createLlama(raw: Record<string, unknown>, seed = 0): LlamaModel {
  const c = llamaConfigDefaults(raw);
  validateLlamaConfig(c, 'model config');
  const std = c.initializer_range ?? 0.02;
  const weights = new Map<string, tf.Tensor>();
  let i = 0;
  for (const [name, shape] of llamaParamShapes(c)) {
    let t: tf.Tensor;
    if (name.endsWith('.bias')) t = tf.zeros(shape);
    else if (/norm\.weight$|layernorm\.weight$/.test(name)) t = tf.ones(shape);
    else t = tf.randomNormal(shape, 0, std, 'float32', tensorSeed(seed, i));
    i++;
    weights.set(name, t);
  }
  const m = new LlamaModel(c, weights);
  for (const t of weights.values()) t.dispose();
  return m;
}

const pos = () => z.number().int().positive().optional();

const llamaInitKeys: z.ZodRawShape = {
  hidden_size: pos(),
  intermediate_size: pos(),
  num_hidden_layers: pos(),
  num_attention_heads: pos(),
  num_key_value_heads: pos(),
  head_dim: pos(),
  max_position_embeddings: pos(),
  rms_norm_eps: z.number().positive().optional(),
  rope_theta: z.number().positive().optional(),
  rope_scaling: z.record(z.string(), z.unknown()).nullable().optional(),
  rope_parameters: z.record(z.string(), z.unknown()).nullable().optional(),
  tie_word_embeddings: z.boolean().optional(),
  attention_bias: z.boolean().optional(),
  mlp_bias: z.boolean().optional(),
  sliding_window: z.number().int().positive().nullable().optional(),
  initializer_range: z.number().positive().optional(),
};

/**
 * What the gradient tape holds for these blocks (src/ml/memory.ts; the formula at TapeConstants),
 * fitted by least squares to tf.memory() at the end of the SFT forward inside variableGrads on 145
 * shapes per backend (scripts/measure-activations.ts: hidden 32–896, intermediate 64–4864, 2–14 heads,
 * 1–8 kv heads, head dim 8–64, T 16–512, V 256–151936, 1–4 layers, llama / mistral / qwen2 / qwen3,
 * tied and untied heads, LoRA r 4–32 on all or some projections), every one within 3% of the fit, then
 * raised about 4.5% and rounded up: estimate / measured 1.02–1.13 on all of them. The terms, floats:
 * the residual stream and RMSNorm pieces ~21·C a token and layer; SwiGLU ~6·I (gate, up, silu pieces);
 * the q and k/v projections with their rotary halves and head transposes ~14–15.6·H·Dh and 9–10·KV·Dh
 * (Qwen2's q/k/v biases the upper end, which llama's attention_bias takes too; Qwen3's per-head q/k
 * norms ~19.5 and ~13.5); attention maps 3.8·H·T unfused (scores, scaled, softmax), 1.6·H·T with the
 * native fused softmax, which grouped heads (KV < H) do not take (+2.9·H·T); the head 2·V with the
 * native fused token log-probs, 8.9·V unfused; every weight once and a tied embedding twice (the
 * tape's views of them: the gather and the head); LoRA 3.5 a token per adapted output and rank unit
 * (its product with B and the sum with the base output stay alive; refitted on the 28 LoRA shapes
 * once the scale moved to the r-wide x·Aᵀ).
 */
const LLAMA_ACTIVATIONS: ActivationModel = {
  tape: { hidden: 21.9, intermediate: 6.3, query: 16, keyValue: 10.5, attention: 4, groupedAttention: 0.8, vocab: 9.3, outside: 5.7, position: 3.4, lora: 3.5, parameter: 1 },
  fused: { kernel: FUSED.tokenLogp, hidden: 21.9, intermediate: 6.4, query: 16.3, keyValue: 10.4, attention: 1.7, groupedAttention: 3.1, vocab: 2.2, outside: 5.9, position: 2.9, lora: 3.5, parameter: 1 },
};
/** Qwen3: per-head RMSNorm of q and k before the rotation. */
const QK_NORM_ACTIVATIONS: ActivationModel = {
  tape: { ...LLAMA_ACTIVATIONS.tape, query: 21, keyValue: 13.9 },
  fused: { ...LLAMA_ACTIVATIONS.fused!, query: 21, keyValue: 14.1 },
};

/** The registry entry of one model_type of the family. */
export function llamaFamily(modelType: LlamaModelType): ModelFamily {
  const t = LLAMA_TRAITS[modelType];
  return {
    modelType,
    architecture: t.architecture,
    rewardArchitecture: t.rewardArchitecture,
    withDefaults: (raw) => llamaConfigDefaults(raw),
    validate: (c, file) => validateLlamaConfig(c as LlamaConfig, file),
    paramShapes: (c, o) => llamaParamShapes(c as LlamaConfig, o),
    canonicalName: (n) => n,
    ignoredTensor: (n) => /\.rotary_emb\.inv_freq$/.test(n),
    tiedHead: (c) => (c.tie_word_embeddings === false ? undefined : { head: 'lm_head.weight', embedding: 'model.embed_tokens.weight' }),
    shape: (raw) => {
      const c = raw as LlamaConfig;
      return {
        layers: c.num_hidden_layers,
        hiddenSize: c.hidden_size,
        heads: c.num_attention_heads,
        kvHeads: c.num_key_value_heads,
        headDim: llamaHeadDim(c),
        intermediateSize: c.intermediate_size,
        contextLength: c.max_position_embeddings,
        vocabSize: c.vocab_size,
        tiedHead: c.tie_word_embeddings !== false,
      };
    },
    activationModel: t.qkNorm ? QK_NORM_ACTIVATIONS : LLAMA_ACTIVATIONS,
    initKeys: llamaInitKeys,
    fromWeights: (c, w, o) => new LlamaModel(c as LlamaConfig, w, o),
    create: (c, seed) => createLlama(c, seed),
  };
}

/** Named Llama-family configs for `models init --preset` and `models show`. */
export const LLAMA_PRESETS: Record<string, Record<string, unknown>> = {
  // a small random Llama for examples and tests (SmolLM2's layout: tied head, GQA, rope_theta 1e5)
  'llama-tiny': { model_type: 'llama', vocab_size: 512, hidden_size: 128, intermediate_size: 384, num_hidden_layers: 4, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 256, rms_norm_eps: 1e-5, rope_theta: 100000, tie_word_embeddings: true },
  // the shapes of real checkpoints (config.json of HuggingFaceTB/SmolLM2-135M/360M-Instruct, Qwen/Qwen2.5-0.5B-Instruct), for estimates
  'smollm2-135m': { model_type: 'llama', vocab_size: 49152, hidden_size: 576, intermediate_size: 1536, num_hidden_layers: 30, num_attention_heads: 9, num_key_value_heads: 3, max_position_embeddings: 8192, rms_norm_eps: 1e-5, rope_theta: 100000, tie_word_embeddings: true, bos_token_id: 1, eos_token_id: 2 },
  'smollm2-360m': { model_type: 'llama', vocab_size: 49152, hidden_size: 960, intermediate_size: 2560, num_hidden_layers: 32, num_attention_heads: 15, num_key_value_heads: 5, max_position_embeddings: 8192, rms_norm_eps: 1e-5, rope_theta: 100000, tie_word_embeddings: true, bos_token_id: 1, eos_token_id: 2 },
  'qwen2.5-0.5b': { model_type: 'qwen2', vocab_size: 151936, hidden_size: 896, intermediate_size: 4864, num_hidden_layers: 24, num_attention_heads: 14, num_key_value_heads: 2, max_position_embeddings: 32768, rms_norm_eps: 1e-6, rope_theta: 1000000, tie_word_embeddings: true, bos_token_id: 151643, eos_token_id: 151645 },
};
