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
import { PRESETS } from '../ml/models/registry.js';
import { initContextLength, initKeyIssues, initModel, resolveInitConfig } from '../ml/models/init.js';

const tokenizerSchema = z.strictObject({
  type: z.enum(['bpe', 'bytes']),
  vocab_size: z.number().int().min(257).max(1_000_000).optional(),
  dataset: z.string().min(1),
});

// The family's config keys (gpt2: n_layer, n_embd, …; llama: hidden_size, num_hidden_layers, …) are
// checked by ml/models/init.ts, which knows each family's keys.
export const modelInitConfigSchema = z
  .looseObject({
    preset: z.string().optional(),
    model_type: z.string().optional(),
    tokenizer: tokenizerSchema,
    /** Overrides the run-derived seed of the initial weights. */
    seed: z.number().int().nonnegative().optional(),
  })
  .superRefine((v, ctx) => {
    const { preset, tokenizer: _t, seed: _s, ...keys } = v;
    const raw = { ...(preset && PRESETS[preset] ? PRESETS[preset] : {}), ...keys };
    if (preset !== undefined && !PRESETS[preset]) ctx.addIssue({ code: 'custom', path: ['preset'], message: `unknown preset "${preset}" (${Object.keys(PRESETS).join(', ')})` });
    for (const i of initKeyIssues(raw, 'model.fresh')) ctx.addIssue({ code: 'custom', path: i.field ? [i.field] : [], message: i.reason });
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
    const { bytesTokenizer, trainBpeTokenizer } = await import('../ml/tokenizer/index.js');
    const { saveModelDir } = await import('../ml/models/io.js');
    const { preset, tokenizer: tcfg, seed: seedOverride, ...keys } = c;
    const { raw, family } = resolveInitConfig(preset, keys, 'model_init');
    const nPositions = initContextLength(raw, family);

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
    const { model, config } = await initModel(raw, family, { tokenizer: tok, seed: seedOverride ?? ctx.seed, where: 'model.fresh', vocabFromTokenizer: true });
    try {
      const out = path.join(ctx.workDir, 'model');
      saveModelDir(model, tok, out);
      let parameters = 0;
      for (const v of model.params.values()) parameters += v.size;
      const files = fs.readdirSync(out).sort().map((f) => ({ path: f, sourceFile: path.join(out, f) }));
      const summary = { model_type: config.model_type, parameters, vocab_size: tok.vocabSize, context_length: nPositions, tokenizer: tcfg.type };
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
