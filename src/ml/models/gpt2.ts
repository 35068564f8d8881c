// GPT-2, written to match transformers' GPT2LMHeadModel exactly (modeling_gpt2.py), nanoGPT style:
// parameter names and layouts are Hugging Face's, so model.safetensors maps 1:1 onto `params`.
// - Conv1D layers store weight as [in, out]: y = x @ W + b (no transpose).
// - GELU is "gelu_new", the tanh approximation (Hendrycks & Gimpel 2016):
//   0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³)))
// - attention scores are scaled by 1/√head_dim (scale_attn_weights), causal + padding masked.
// - the output head is tied to wte (no lm_head.weight).
// Dropout is not applied (training here is deterministic; see docs/engine-models.md).
import * as tf from '@tensorflow/tfjs';
import { AlignflowError } from '../../errors.js';
import { attend, disposeParams, forwardResult, keyPaddingMask, maskBias, tensorSeed } from './attention.js';
import { FUSED, fusedGeluNew, fusedLayerNorm } from '../kernels/fused.js';
import { z } from 'zod';
import type { ActivationModel, BaseModelConfig, CausalLM, ForwardOptions, ForwardResult, LinearAdapter, LinearLayer, ModelFamily } from './types.js';

/** config.json keys, exactly as transformers writes them for GPT-2. */
export interface Gpt2Config extends BaseModelConfig {
  model_type: 'gpt2';
  architectures?: string[];
  vocab_size: number;
  n_positions: number;
  n_ctx?: number;
  n_embd: number;
  n_layer: number;
  n_head: number;
  n_inner?: number | null;
  activation_function: string; // "gelu_new" (tanh approximation)
  layer_norm_epsilon: number;
  resid_pdrop?: number;
  embd_pdrop?: number;
  attn_pdrop?: number;
  initializer_range?: number;
  scale_attn_weights?: boolean;
  bos_token_id?: number;
  eos_token_id?: number;
}

let modelCounter = 0;

/** HF defaults for the keys a minimal config may omit (transformers' GPT2Config). */
export function gpt2ConfigDefaults(c: Partial<Gpt2Config>): Gpt2Config {
  return {
    activation_function: 'gelu_new',
    architectures: ['GPT2LMHeadModel'],
    attn_pdrop: 0.1,
    bos_token_id: (c.vocab_size ?? 50257) - 1,
    embd_pdrop: 0.1,
    eos_token_id: (c.vocab_size ?? 50257) - 1,
    initializer_range: 0.02,
    layer_norm_epsilon: 1e-5,
    model_type: 'gpt2',
    n_embd: 768,
    n_head: 12,
    n_inner: null,
    n_layer: 12,
    n_positions: 1024,
    reorder_and_upcast_attn: false,
    resid_pdrop: 0.1,
    scale_attn_by_inverse_layer_idx: false,
    scale_attn_weights: true,
    summary_activation: null,
    summary_first_dropout: 0.1,
    summary_proj_to_labels: true,
    summary_type: 'cls_index',
    summary_use_proj: true,
    torch_dtype: 'float32',
    use_cache: true,
    vocab_size: 50257,
    ...c,
  } as Gpt2Config;
}

/** Checks the keys the forward pass depends on; `file` names the source in errors. */
export function validateGpt2Config(c: Gpt2Config, file = 'config.json'): void {
  const issues: { file: string; field: string; reason: string }[] = [];
  const posInt = (k: keyof Gpt2Config) => {
    const v = c[k];
    if (!Number.isInteger(v) || (v as number) <= 0) issues.push({ file, field: String(k), reason: `must be a positive integer (got ${JSON.stringify(v)})` });
  };
  for (const k of ['vocab_size', 'n_positions', 'n_embd', 'n_layer', 'n_head'] as const) posInt(k);
  if (c.n_inner !== undefined && c.n_inner !== null && !(Number.isInteger(c.n_inner) && c.n_inner > 0)) {
    issues.push({ file, field: 'n_inner', reason: 'must be null or a positive integer' });
  }
  if (issues.length === 0 && c.n_embd % c.n_head !== 0) issues.push({ file, field: 'n_head', reason: `n_embd ${c.n_embd} is not divisible by n_head ${c.n_head}` });
  if (!['gelu_new', 'gelu_pytorch_tanh'].includes(c.activation_function)) {
    issues.push({ file, field: 'activation_function', reason: `"${c.activation_function}" is not supported (gelu_new / gelu_pytorch_tanh)` });
  }
  if (!(typeof c.layer_norm_epsilon === 'number' && c.layer_norm_epsilon > 0)) issues.push({ file, field: 'layer_norm_epsilon', reason: 'must be a positive number' });
  if (c.scale_attn_by_inverse_layer_idx) issues.push({ file, field: 'scale_attn_by_inverse_layer_idx', reason: 'true is not supported' });
  if (c.scale_attn_weights === false) issues.push({ file, field: 'scale_attn_weights', reason: 'false is not supported' });
  if (c.tie_word_embeddings === false) issues.push({ file, field: 'tie_word_embeddings', reason: 'untied output heads are not supported' });
  if (issues.length) throw new AlignflowError('input', `${file}: invalid GPT-2 config (${issues.map((i) => `${i.field}: ${i.reason}`).join('; ')})`, { issues });
}

/** Every parameter's HF name and shape, in HF's order. */
export function gpt2ParamShapes(c: Gpt2Config): Map<string, number[]> {
  const C = c.n_embd;
  const inner = c.n_inner ?? 4 * C;
  const m = new Map<string, number[]>();
  m.set('transformer.wte.weight', [c.vocab_size, C]);
  m.set('transformer.wpe.weight', [c.n_positions, C]);
  for (let i = 0; i < c.n_layer; i++) {
    const p = `transformer.h.${i}.`;
    m.set(p + 'ln_1.weight', [C]);
    m.set(p + 'ln_1.bias', [C]);
    m.set(p + 'attn.c_attn.weight', [C, 3 * C]);
    m.set(p + 'attn.c_attn.bias', [3 * C]);
    m.set(p + 'attn.c_proj.weight', [C, C]);
    m.set(p + 'attn.c_proj.bias', [C]);
    m.set(p + 'ln_2.weight', [C]);
    m.set(p + 'ln_2.bias', [C]);
    m.set(p + 'mlp.c_fc.weight', [C, inner]);
    m.set(p + 'mlp.c_fc.bias', [inner]);
    m.set(p + 'mlp.c_proj.weight', [inner, C]);
    m.set(p + 'mlp.c_proj.bias', [C]);
  }
  m.set('transformer.ln_f.weight', [C]);
  m.set('transformer.ln_f.bias', [C]);
  return m;
}

/** y = x W + b for Conv1D weights [in, out]; x is 2-D so the product stays on the fast path. */
function linear(x: tf.Tensor2D, w: tf.Tensor, b: tf.Tensor): tf.Tensor2D {
  return tf.add(tf.matMul(x, w as tf.Tensor2D), b);
}

/** torch.nn.LayerNorm over the last axis (biased variance, ε inside the root). */
export function layerNorm(x: tf.Tensor2D, g: tf.Tensor, b: tf.Tensor, eps: number): tf.Tensor2D {
  const fused = fusedLayerNorm(x, g, b, eps); // one pass on the native backend
  if (fused) return fused;
  const mean = tf.mean(x, -1, true);
  const d = tf.sub(x, mean);
  const variance = tf.mean(tf.mul(d, d), -1, true); // biased, as torch.nn.LayerNorm
  return tf.add(tf.mul(tf.mul(d, tf.rsqrt(tf.add(variance, eps))), g), b);
}

const GELU_C = Math.sqrt(2 / Math.PI);
/** gelu_new; x*x*x rather than pow (pow is slow on wasm). */
export function geluNew(x: tf.Tensor): tf.Tensor {
  const fused = fusedGeluNew(x); // one pass on the native backend
  if (fused) return fused;
  const inner = tf.mul(tf.add(x, tf.mul(tf.mul(tf.mul(x, x), x), 0.044715)), GELU_C);
  return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(inner), 1));
}

export class Gpt2Model implements CausalLM {
  readonly config: Gpt2Config;
  readonly params: Map<string, tf.Variable>;
  private readonly headDim: number;
  adapter?: LinearAdapter;

  /** Takes the tensors as given (HF names, already validated); they become the model's variables. */
  constructor(config: Gpt2Config, weights: Map<string, tf.Tensor>) {
    validateGpt2Config(config);
    this.config = config;
    this.headDim = config.n_embd / config.n_head;
    const id = ++modelCounter;
    this.params = new Map();
    for (const [name, shape] of gpt2ParamShapes(config)) {
      const w = weights.get(name);
      if (!w) throw new AlignflowError('internal', `Gpt2Model: missing tensor ${name}`);
      if (w.shape.join() !== shape.join()) throw new AlignflowError('internal', `Gpt2Model: ${name} has shape [${w.shape}], expected [${shape}]`);
      // variable names are global in tfjs: prefix them so several models can coexist (policy + reference)
      this.params.set(name, tf.variable(w, true, `m${id}/${name}`));
    }
  }

  expectedShapes(): Map<string, number[]> {
    return gpt2ParamShapes(this.config);
  }

  get contextLength(): number {
    return this.config.n_positions;
  }
  get hiddenSize(): number {
    return this.config.n_embd;
  }
  get vocabSize(): number {
    return this.config.vocab_size;
  }

  linearLayers(): LinearLayer[] {
    const C = this.config.n_embd;
    const inner = this.config.n_inner ?? 4 * C;
    const out: LinearLayer[] = [];
    for (let i = 0; i < this.config.n_layer; i++) {
      const p = `transformer.h.${i}.`;
      out.push({ weight: p + 'attn.c_attn.weight', module: 'c_attn', inFeatures: C, outFeatures: 3 * C, fanInFanOut: true });
      out.push({ weight: p + 'attn.c_proj.weight', module: 'c_proj', inFeatures: C, outFeatures: C, fanInFanOut: true });
      out.push({ weight: p + 'mlp.c_fc.weight', module: 'c_fc', inFeatures: C, outFeatures: inner, fanInFanOut: true });
      out.push({ weight: p + 'mlp.c_proj.weight', module: 'c_proj', inFeatures: inner, outFeatures: C, fanInFanOut: true });
    }
    return out;
  }

  hiddenStates(ids: tf.Tensor2D, opts: ForwardOptions = {}): tf.Tensor3D {
    return this.run(ids, { ...opts, useCache: false }, false).hidden;
  }

  /** y = x W + b, plus the adapter's delta when one targets W. */
  private lin(x: tf.Tensor2D, name: string, cols?: { start: number; size: number }): tf.Tensor2D {
    const w = this.p(name + '.weight');
    const b = this.p(name + '.bias');
    const y = cols ? linear(x, tf.slice(w, [0, cols.start], [w.shape[0]!, cols.size]), tf.slice(b, [cols.start], [cols.size])) : linear(x, w, b);
    const d = this.adapter?.delta(name + '.weight', x, cols);
    return d ? tf.add(y, d) : y;
  }

  private p(name: string): tf.Variable {
    return this.params.get(name)!;
  }

  forward(ids: tf.Tensor2D, opts: ForwardOptions = {}): ForwardResult {
    return this.run(ids, opts, true);
  }

  private run(ids: tf.Tensor2D, opts: ForwardOptions, withLogits: boolean): ForwardResult {
    const c = this.config;
    const [B, T] = ids.shape;
    const past = opts.cache?.length ?? 0;
    const S = past + T;
    if (!opts.positionIds && S > c.n_positions) {
      throw new AlignflowError('input', `sequence of ${S} tokens is longer than the model's context (n_positions ${c.n_positions})`);
    }
    if (opts.cache && opts.cache.layers.length !== c.n_layer) throw new AlignflowError('internal', 'KV cache has the wrong number of layers');
    return tf.tidy((): tf.TensorContainer => {
      const keyMask = keyPaddingMask(opts, B, T, past);

      const flatIds = tf.reshape(ids, [-1]);
      let x = tf.gather(this.p('transformer.wte.weight'), flatIds) as tf.Tensor2D; // [B*T, C]
      if (opts.positionIds) {
        x = tf.add(x, tf.gather(this.p('transformer.wpe.weight'), tf.reshape(tf.cast(opts.positionIds, 'int32'), [-1])));
      } else {
        const pos = tf.gather(this.p('transformer.wpe.weight'), tf.range(past, S, 1, 'int32')); // [T, C]
        x = tf.reshape(tf.add(tf.reshape(x, [B, T, c.n_embd]), pos), [B * T, c.n_embd]);
      }

      const bias = maskBias(T, past, keyMask);
      const scale = 1 / Math.sqrt(this.headDim);
      const newLayers: { k: tf.Tensor4D; v: tf.Tensor4D }[] = [];
      for (let i = 0; i < c.n_layer; i++) {
        const p = `transformer.h.${i}.`;
        const h = layerNorm(x, this.p(p + 'ln_1.weight'), this.p(p + 'ln_1.bias'), c.layer_norm_epsilon);
        // q, k, v from column blocks of c_attn's [C, 3C] weight: splitting the small weight instead of
        // the [B*T, 3C] activations avoids a strided copy (and its gradient) per layer, and never
        // builds the 5-D [B, T, 3, H, D] tensor whose transpose is ~100x slower on wasm
        const C = c.n_embd;
        const proj = (j: number) => this.lin(h, p + 'attn.c_attn', { start: j * C, size: C });
        const [q2, k2, v2] = [proj(0), proj(1), proj(2)];
        const heads = (t: tf.Tensor2D) => tf.transpose(tf.reshape(t, [B, T, c.n_head, this.headDim]), [0, 2, 1, 3]) as tf.Tensor4D;
        const q = heads(q2);
        let k = heads(k2);
        let v = heads(v2);
        const cached = opts.cache?.layers[i];
        if (cached) {
          k = tf.concat([cached.k, k], 2) as tf.Tensor4D;
          v = tf.concat([cached.v, v], 2) as tf.Tensor4D;
        }
        if (opts.useCache) newLayers.push({ k, v });
        const att = attend(q, k, v, bias, scale); // softmax(q kᵀ·scale + bias) v: [B, H, T, D]
        const merged = tf.reshape(tf.transpose(att, [0, 2, 1, 3]), [B * T, c.n_embd]) as tf.Tensor2D;
        x = tf.add(x, this.lin(merged, p + 'attn.c_proj'));
        const h2 = layerNorm(x, this.p(p + 'ln_2.weight'), this.p(p + 'ln_2.bias'), c.layer_norm_epsilon);
        const ff = geluNew(this.lin(h2, p + 'mlp.c_fc')) as tf.Tensor2D;
        x = tf.add(x, this.lin(ff, p + 'mlp.c_proj'));
      }
      const hidden2 = layerNorm(x, this.p('transformer.ln_f.weight'), this.p('transformer.ln_f.bias'), c.layer_norm_epsilon);
      return forwardResult(hidden2, { B, T, head: withLogits ? this.p('transformer.wte.weight') : undefined, opts, layers: newLayers, length: S, keyMask });
    }) as unknown as ForwardResult;
  }

  dispose(): void {
    disposeParams(this.params);
  }
}

/**
 * A freshly initialised GPT-2, as transformers' GPT2PreTrainedModel._init_weights does: normal(0,
 * initializer_range) for embeddings and Conv1D weights, c_proj weights scaled by 1/√(2·n_layer)
 * (GPT-2 paper, §2.3), LayerNorm ones/zeros, biases zero. Same seed → same weights on every backend
 * (tf.randomNormal draws in JS).
 */
export function createGpt2(config: Partial<Gpt2Config>, seed = 0): Gpt2Model {
  const c = gpt2ConfigDefaults(config);
  validateGpt2Config(c, 'model config');
  const std = c.initializer_range ?? 0.02;
  const weights = new Map<string, tf.Tensor>();
  let i = 0;
  for (const [name, shape] of gpt2ParamShapes(c)) {
    const leaf = name.split('.').slice(-2).join('.');
    let t: tf.Tensor;
    if (name.endsWith('.bias')) t = tf.zeros(shape);
    else if (/ln_\d\.weight$|ln_f\.weight$/.test(name)) t = tf.ones(shape);
    else {
      const s = leaf === 'c_proj.weight' ? std / Math.sqrt(2 * c.n_layer) : std;
      t = tf.randomNormal(shape, 0, s, 'float32', tensorSeed(seed, i));
    }
    i++;
    weights.set(name, t);
  }
  const m = new Gpt2Model(c, weights);
  for (const t of weights.values()) t.dispose();
  return m;
}

const pos = () => z.number().int().positive().optional();
const prob = () => z.number().min(0).max(1).optional();

/**
 * What the gradient tape holds (src/ml/memory.ts), fitted to tf.memory() at the end of the SFT forward
 * inside variableGrads. Unfused, on two shapes (d 128 / 4 layers / T 128 / V 512: 258.6 MB for 8 rows;
 * d 256 / 2 layers / T 64 / V 2000: 161.1 MB), rounded up: about 80·d floats a token and layer (layer
 * norms, q/k/v and their head transposes, MLP and GELU pieces), the attention maps 8·H·T (scores,
 * masked scores, softmax), the head 16·V (logits and their log-softmax pieces). With the native
 * backend's fused kernels (layer norm, GELU, attention softmax, token log-probs; src/ml/kernels/fused.ts),
 * fitted the same way on six shapes (d 64–256, 1–4 layers, T 32–128, V 256–8000; all within 11%),
 * plus 40·d a token outside the layers (embeddings, final norm).
 */
export const GPT2_ACTIVATIONS: ActivationModel = {
  // lora: what a LoRA adapter adds (scripts/measure-activations.ts on four GPT-2 shapes, r 8–16, c_attn
  // alone and all-linear, native and wasm: 3.0–3.6 a token per adapted output and rank unit, the
  // adapter's product and the sum with the base output both kept), rounded up. parameter (unfused
  // tape only): the weights' views the tape counts, which left the unfused estimate 3% under
  // tf.memory() on small shapes; the fused constants already cover them.
  tape: { hidden: 80, attention: 8, vocab: 16, lora: 4, parameter: 1 },
  fused: { kernel: FUSED.layerNorm, hidden: 29, attention: 2, vocab: 2.5, outside: 40, lora: 4 },
};

/** The registry entry: model_type gpt2. */
export const gpt2Family: ModelFamily = {
  modelType: 'gpt2',
  architecture: 'GPT2LMHeadModel',
  rewardArchitecture: 'GPT2ForSequenceClassification',
  withDefaults: (raw) => gpt2ConfigDefaults(raw as Partial<Gpt2Config>),
  validate: (c, file) => validateGpt2Config(c as Gpt2Config, file),
  paramShapes: (c) => gpt2ParamShapes(c as Gpt2Config),
  canonicalName: (n) => (n.startsWith('transformer.') || n === 'lm_head.weight' ? n : `transformer.${n}`),
  // older checkpoints carry the causal-mask buffers attn.bias [1,1,n,n] and attn.masked_bias
  ignoredTensor: (n) => /^transformer\.h\.\d+\.attn\.(bias|masked_bias)$/.test(n),
  tiedHead: () => ({ head: 'lm_head.weight', embedding: 'transformer.wte.weight' }),
  shape: (raw) => {
    const c = raw as Gpt2Config;
    return { layers: c.n_layer, hiddenSize: c.n_embd, heads: c.n_head, kvHeads: c.n_head, headDim: c.n_embd / c.n_head, intermediateSize: c.n_inner ?? 4 * c.n_embd, contextLength: c.n_positions, vocabSize: c.vocab_size, tiedHead: true };
  },
  activationModel: GPT2_ACTIVATIONS,
  weightsInOut: true,
  initKeys: {
    n_layer: pos(),
    n_head: pos(),
    n_embd: pos(),
    n_positions: pos(),
    n_inner: z.number().int().positive().nullable().optional(),
    activation_function: z.string().optional(),
    resid_pdrop: prob(),
    embd_pdrop: prob(),
    attn_pdrop: prob(),
    layer_norm_epsilon: z.number().positive().optional(),
    initializer_range: z.number().positive().optional(),
  },
  fromWeights: (c, w) => new Gpt2Model(c as Gpt2Config, w),
  create: (c, seed) => createGpt2(c as Gpt2Config, seed),
};

/** Named GPT-2 configs for `models init --preset`. */
export const GPT2_PRESETS: Record<string, Record<string, unknown>> = {
  // the reference model of the benchmarks (issue 3): vocab 512, 128 wide, 4 layers, 4 heads, 128 context
  'gpt2-tiny': { model_type: 'gpt2', vocab_size: 512, n_positions: 128, n_embd: 128, n_layer: 4, n_head: 4 },
  'gpt2-micro': { model_type: 'gpt2', vocab_size: 260, n_positions: 64, n_embd: 32, n_layer: 2, n_head: 2 },
  'gpt2-small': { model_type: 'gpt2', vocab_size: 50257, n_positions: 1024, n_embd: 768, n_layer: 12, n_head: 12 },
};
