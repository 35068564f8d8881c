// The implicit `model_init` stage behind a pipeline's `model: { fresh: … }` section (src/config/
// spec.ts names it; the spec loader validates `fresh` against this schema). It trains the
// tokenizer on the `train` dataset (byte-level BPE of `vocab_size` tokens, or the 256 bytes),
// creates a freshly initialised model of that vocabulary from the run-derived seed, and stores
// both as one 'model' artifact in Hugging Face layout — the `model` input of the first stage.
// Written by the demo helper (issue 8), which needed a fresh base model; see docs/demo.md.
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { AlignflowError } from '../errors.js';
import type { StageHandler } from './contract.js';
import { readDatasetRecords } from '../data/datasets.js';
import type { Content } from '../data/formats.js';

const tokenizerSchema = z.strictObject({
  type: z.enum(['bpe', 'bytes']),
  vocab_size: z.number().int().min(257).max(1_000_000).optional(),
  dataset: z.string().min(1),
});

export const modelInitConfigSchema = z.strictObject({
  preset: z.string().optional(),
  model_type: z.string().optional(),
  n_layer: z.number().int().positive().optional(),
  n_head: z.number().int().positive().optional(),
  n_embd: z.number().int().positive().optional(),
  n_positions: z.number().int().positive().optional(),
  n_inner: z.number().int().positive().nullable().optional(),
  activation_function: z.string().optional(),
  resid_pdrop: z.number().min(0).max(1).optional(),
  embd_pdrop: z.number().min(0).max(1).optional(),
  attn_pdrop: z.number().min(0).max(1).optional(),
  layer_norm_epsilon: z.number().positive().optional(),
  initializer_range: z.number().positive().optional(),
  tokenizer: tokenizerSchema,
  /** Overrides the run-derived seed of the initial weights. */
  seed: z.number().int().nonnegative().optional(),
});

export type ModelInitConfig = z.infer<typeof modelInitConfigSchema>;

const text = (c: Content | undefined): string => (c === undefined ? '' : typeof c === 'string' ? c : c.map((m) => m.content).join('\n'));

/** The texts of any dataset record, as the model will see them (prompt + continuation). */
export function recordTexts(r: Record<string, unknown>): string[] {
  const p = text(r.prompt as Content | undefined);
  if (typeof r.text === 'string') return [r.text];
  if (Array.isArray(r.messages)) return [text(r.messages as Content)];
  if (r.completion !== undefined) return [p + text(r.completion as Content)];
  if (r.chosen !== undefined) return [p + text(r.chosen as Content), p + text(r.rejected as Content)];
  return p ? [p] : [];
}

export const modelInitStage: StageHandler<ModelInitConfig> = {
  kind: 'model_init',
  configSchema: modelInitConfigSchema as unknown as z.ZodType<ModelInitConfig>,
  heavy: true,
  async run(ctx) {
    const c = modelInitConfigSchema.parse(ctx.config);
    const [{ PRESETS, modelFamily, knownModelTypes }, { bytesTokenizer, trainBpeTokenizer }, { initBackend }, { saveModelDir }] = await Promise.all([
      import('../ml/models/registry.js'),
      import('../ml/tokenizer/index.js'),
      import('../ml/backend.js'),
      import('../ml/models/io.js'),
    ]);
    const { preset, tokenizer: tcfg, seed: seedOverride, ...keys } = c;
    let raw: Record<string, unknown> = {};
    if (preset !== undefined) {
      const p = PRESETS[preset];
      if (!p) throw new AlignflowError('config', `model_init: unknown preset "${preset}" (${Object.keys(PRESETS).join(', ')})`);
      raw = { ...p };
    }
    raw = { ...raw, ...Object.fromEntries(Object.entries(keys).filter(([, v]) => v !== undefined)) };
    raw.model_type ??= 'gpt2';
    const family = modelFamily(String(raw.model_type));
    if (!family) throw new AlignflowError('config', `model_init: unknown model_type "${String(raw.model_type)}" (alignflow supports ${knownModelTypes().join(', ')})`);
    const nPositions = Number(raw.n_positions ?? 1024);

    let tok;
    if (tcfg.type === 'bytes') tok = bytesTokenizer({ modelMaxLength: nPositions });
    else {
      const ds = ctx.inputs.train;
      if (!ds) throw new AlignflowError('config', 'model_init: a bpe tokenizer needs the `train` dataset input');
      const texts: string[] = [];
      for await (const r of readDatasetRecords(ctx.store, ds.id)) texts.push(...recordTexts(r as Record<string, unknown>));
      if (texts.length === 0) throw new AlignflowError('input', `model_init: dataset ${ds.id} has no text to train the tokenizer on`);
      const vocabSize = tcfg.vocab_size ?? Number(raw.vocab_size ?? 512);
      ctx.log.info(`training a ${vocabSize}-token byte-level BPE on ${texts.length} texts`);
      tok = trainBpeTokenizer(texts, { vocabSize, modelMaxLength: nPositions });
    }
    raw.vocab_size = tok.vocabSize;
    if (tok.eosTokenId !== undefined) {
      raw.bos_token_id ??= tok.bosTokenId ?? tok.eosTokenId;
      raw.eos_token_id ??= tok.eosTokenId;
    }
    const config = family.withDefaults(raw);
    family.validate(config, 'model.fresh');
    await initBackend();
    const model = family.create(config, seedOverride ?? ctx.seed);
    try {
      const out = path.join(ctx.workDir, 'model');
      saveModelDir(model, tok, out);
      let parameters = 0;
      for (const v of model.params.values()) parameters += v.size;
      const files = fs.readdirSync(out).sort().map((f) => ({ path: f, sourceFile: path.join(out, f) }));
      const summary = { model_type: config.model_type, parameters, vocab_size: tok.vocabSize, n_positions: nPositions, tokenizer: tcfg.type };
      ctx.progress({ step: 1, total: 1, message: `${parameters} parameters` });
      const manifest = await ctx.store.put({
        kind: 'model',
        name: ctx.stageName,
        files,
        metadata: { source: 'model_init', ...summary },
        inputs: ctx.inputs.train ? [{ artifactId: ctx.inputs.train.id, role: 'train' }] : [],
      });
      return { status: 'done', outputs: { model: manifest }, summary };
    } finally {
      model.dispose();
    }
  },
};
