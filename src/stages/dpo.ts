// The DPO stage: preference optimisation of a policy (the `model` input, usually the SFT model)
// against a frozen reference (the `reference` input, default the same model), with any loss of the
// DPO family (src/ml/losses). Reference log-probs are precomputed once and cached as an artifact.
//
// Inputs:  model (required), train (preference dataset, required), reference (model, optional),
//          eval (preference dataset, optional; default: eval_fraction of train).
// Outputs: model (the trained policy, HF layout), ref_logprobs (when a reference was used).
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import * as tf from '@tensorflow/tfjs';
import { checkStageMemory } from './memory-check.js';
import { BOUNDARY_NOTE } from '../ml/tokenizer/pairs.js';
import { AlignflowError, configError } from '../errors.js';
import type { ArtifactManifest } from '../store/types.js';
import type { StageContext, StageHandler, StageOutcome } from './contract.js';
import { saveModelDir } from '../ml/models/io.js';
import { attachStageLora, baseView, loraConfigSchema } from '../ml/lora.js';
import { train, evaluateLoss } from '../ml/train/loop.js';
import { checkpointArtifact, readCheckpoint, type TrainerCheckpoint } from '../ml/train/checkpoint.js';
import { preparePairs, prepareUnpaired, PairBatches, sequentialPairBatches, type PreparedPair, type TruncationRule } from '../ml/preference-data.js';
import { dpoLossFn, ktoLossFn, ktoMetrics, type RefLogps } from '../ml/dpo.js';
import { loadOrComputeRefLogps, refLogpsKey, tokenizerFingerprint } from '../ml/ref-logprobs.js';
import { detectPreferenceWarnings, lossesNeedReference, preferenceLossNames, withPrefix, type MetricPoint, type PreferenceLossName } from '../ml/losses/index.js';
import { dirFiles, loadModelInput, pairTrainOptions, pairTrainingFields, parseStageConfig, splitPositions, subset, tokenizePreferenceDataset, tokenizeUnpairedDataset } from './preference-inputs.js';

const lossName = z.enum([...preferenceLossNames, 'kto']);

export const dpoConfigSchema = z
  .object({
    /** β > 0 (TRL's beta). */
    beta: z.number().positive().default(0.1),
    /** One loss or several (TRL's loss_type), combined with loss_weights. */
    loss: z.union([lossName, z.array(lossName).min(1)]).default('sigmoid'),
    loss_weights: z.array(z.number().nonnegative()).optional(),
    /** ε for sigmoid (conservative DPO), robust and simpo: [0, 0.5). */
    label_smoothing: z.number().min(0).lt(0.5).default(0),
    simpo_gamma: z.number().default(0.5),
    /** λ of ORPO (TRL's ORPOConfig.beta). */
    orpo_lambda: z.number().positive().default(0.1),
    /** Adds rpo_alpha·NLL(chosen) (Pang et al. 2024). */
    rpo_alpha: z.number().nonnegative().optional(),
    /** KTO only (loss: kto): per-class weights (TRL's desirable_weight / undesirable_weight). */
    desirable_weight: z.number().positive().default(1),
    undesirable_weight: z.number().positive().default(1),
    /** false: no reference model even if one is given (only reference-free losses then). */
    use_reference: z.boolean().default(true),
    ...pairTrainingFields({ lr: 5e-4 }),
    /** Batch size of the one-off reference pass. */
    ref_batch_size: z.number().int().positive().default(16),
    seed: z.number().int().optional(),
    /** Train LoRA adapters only; the reference is then the base with adapters off (no second copy). */
    lora: loraConfigSchema.optional(),
  })
  .strict();

export type DpoConfig = z.infer<typeof dpoConfigSchema>;

export function dpoLosses(c: Pick<DpoConfig, 'loss'>): (PreferenceLossName | 'kto')[] {
  return Array.isArray(c.loss) ? [...c.loss] : [c.loss];
}

const isKto = (losses: readonly string[]) => losses.includes('kto');
const pairLosses = (losses: readonly (PreferenceLossName | 'kto')[]) => losses.filter((l): l is PreferenceLossName => l !== 'kto');

/** The checks zod cannot express; every failure is a 'config' error (never retried). */
export function validateDpoConfig(c: DpoConfig, hasReference: boolean): void {
  const losses = dpoLosses(c);
  if (!(c.beta > 0)) throw configError(`dpo: beta must be > 0, got ${c.beta}`);
  if (!(c.label_smoothing >= 0 && c.label_smoothing < 0.5)) throw configError(`dpo: label_smoothing must be in [0, 0.5), got ${c.label_smoothing}`);
  if (c.loss_weights && c.loss_weights.length !== losses.length) {
    throw configError(`dpo: loss_weights has ${c.loss_weights.length} entries for ${losses.length} loss(es) (${losses.join(', ')})`);
  }
  if (new Set(losses).size !== losses.length) throw configError(`dpo: a loss is listed twice (${losses.join(', ')})`);
  if (isKto(losses)) {
    if (losses.length > 1) throw configError(`dpo: kto is a loss for unpaired data and cannot be combined with ${losses.filter((l) => l !== 'kto').join(', ')}`);
    if (c.rpo_alpha) throw configError('dpo: rpo_alpha does not apply to kto');
    if (!hasReference) throw configError('dpo: loss kto needs a reference model, but none is available (use_reference: false)');
  }
  if (lossesNeedReference(pairLosses(losses)) && !hasReference) {
    const need = losses.filter((l) => ['sigmoid', 'robust', 'hinge', 'ipo', 'ipo_sum'].includes(l));
    throw configError(`dpo: loss ${need.join(', ')} needs a reference model, but none is available (use_reference: false); use simpo or orpo for reference-free training`);
  }
  if (c.max_prompt_length !== undefined && c.max_prompt_length >= c.max_length) {
    throw configError(`dpo: max_prompt_length (${c.max_prompt_length}) must be smaller than max_length (${c.max_length})`);
  }
}

async function resumeFrom(ctx: StageContext<DpoConfig>): Promise<TrainerCheckpoint | undefined> {
  const c = await ctx.latestCheckpoint();
  if (!c) return undefined;
  ctx.log.info(`resuming from the checkpoint of step ${c.step}`);
  return readCheckpoint((f) => ctx.store.readFile(c.artifact.id, f));
}

export const dpoStage: StageHandler<DpoConfig> = {
  kind: 'dpo',
  configSchema: dpoConfigSchema as unknown as z.ZodType<DpoConfig>,
  heavy: true,
  async run(ctx) {
    const cfg = parseStageConfig(dpoConfigSchema, ctx.config, ctx.stageName);
    const allLosses = dpoLosses(cfg);
    const kto = isKto(allLosses);
    const losses = pairLosses(allLosses);
    const needRef = kto || lossesNeedReference(losses);
    const refInput: ArtifactManifest | undefined = cfg.use_reference ? (ctx.inputs.reference ?? ctx.inputs.model) : undefined;
    validateDpoConfig(cfg, refInput !== undefined);
    if (kto && ctx.inputs.train?.kind === 'dataset') ctx.log.info('kto: training on unpaired examples (a preference dataset is unpaired: chosen → desirable, rejected → undesirable)');
    const trainDs = ctx.inputs.train;
    if (!trainDs) throw configError(`stage "${ctx.stageName}" needs a "train" input (a preference dataset)`);
    const seed = cfg.seed ?? ctx.seed;

    const policy = await loadModelInput(ctx, 'model');
    const adapter = cfg.lora ? attachStageLora(policy.model, cfg.lora, seed) : undefined;
    const tok = policy.tokenizer!;
    const padId = tok.padTokenId ?? 0;
    try {
      const nPos = policy.model.contextLength;
      const rule: TruncationRule = { maxLength: Math.min(cfg.max_length, nPos), ...(cfg.max_prompt_length ? { maxPromptLength: cfg.max_prompt_length } : {}) };
      if (cfg.max_length > nPos) ctx.log.warn(`max_length ${cfg.max_length} exceeds the model's context ${nPos}; using ${nPos}`);
      const tokFp = tokenizerFingerprint(tok.json, tok.chatTemplate, cfg.add_eos);

      // --- data: tokenize, apply the truncation rule, count what was dropped
      const prep = async (ds: ArtifactManifest, label: string) => {
        const t = kto ? await tokenizeUnpairedDataset(ctx.store, ds.id, tok, { addEos: cfg.add_eos }) : await tokenizePreferenceDataset(ctx.store, ds.id, tok, { addEos: cfg.add_eos });
        const p = kto ? prepareUnpaired((t as Awaited<ReturnType<typeof tokenizeUnpairedDataset>>).examples, rule) : preparePairs((t as Awaited<ReturnType<typeof tokenizePreferenceDataset>>).pairs, rule);
        const s = p.stats;
        ctx.log.info(
          `${label}: ${s.total} pairs, ${s.kept} kept; dropped ${s.droppedPromptTooLong} whose prompt fills max_length ${rule.maxLength}, ` +
            `skipped ${s.droppedIdentical} with chosen == rejected, ${s.droppedEmpty} with an empty completion; truncated ${s.promptTruncated} prompts, ${s.completionTruncated} completions`,
        );
        if (t.prefixMismatches) ctx.log.warn(`${label}: ${t.prefixMismatches} records merge a token across the prompt/completion boundary (${BOUNDARY_NOTE})`);
        return { ...p, prefixMismatches: t.prefixMismatches };
      };
      const trainPrep = await prep(trainDs, 'train');
      if (trainPrep.pairs.length === 0) throw new AlignflowError('input', `dpo: no usable preference pairs in dataset ${trainDs.id} (see the counts in the log)`);
      const evalDs = ctx.inputs.eval;
      const evalPrep = evalDs ? await prep(evalDs, 'eval') : undefined;

      // --- reference log-probs: looked up by key, computed only on a miss
      const refOutputs: Record<string, ArtifactManifest> = {};
      const refReused: boolean[] = [];
      const refFor = async (ds: ArtifactManifest, prepared: PreparedPair[], label: string): Promise<RefLogps | undefined> => {
        if (!needRef || !refInput) return undefined;
        const r = await loadOrComputeRefLogps({
          store: ctx.store,
          key: refLogpsKey({ dataset: ds.id, reference: refInput.id, tokenizer: tokFp, rule, ...(kto ? { variant: 'kto-unpaired-kl-prev' } : {}) }),
          prepared,
          batchSize: cfg.ref_batch_size,
          padId,
          loadReference: async () => {
            ctx.log.info(`computing reference log-probs for ${label} (${prepared.length} pairs)`);
            if (refInput.id === policy.artifact.id) return adapter ? baseView(policy.model) : (await loadModelInput(ctx, 'model')).model;
            return (await loadModelInput(ctx, 'reference')).model;
          },
          onProgress: (d, n) => ctx.progress({ step: 0, total: 1, message: `reference log-probs ${label}: ${d}/${n}` }),
        });
        if (r.reused) ctx.log.info(`reference log-probs for ${label}: reusing artifact ${r.artifact.id} (the reference model is not run)`);
        refReused.push(r.reused);
        refOutputs[label === 'train' ? 'ref_logprobs' : `ref_logprobs_${label}`] = r.artifact;
        return r.ref;
      };
      const trainRef = await refFor(trainDs, trainPrep.pairs, 'train');
      const evalRefSep = evalDs && evalPrep ? await refFor(evalDs, evalPrep.pairs, 'eval') : undefined;

      let trainPairs: PreparedPair[];
      let evalPairs: PreparedPair[];
      let trainRefSub: RefLogps | undefined;
      let evalRefSub: RefLogps | undefined;
      const pick = (ref: RefLogps | undefined, pos: number[]) =>
        ref ? { chosen: Float32Array.from(pos.map((p) => ref.chosen[p]!)), rejected: Float32Array.from(pos.map((p) => ref.rejected[p]!)) } : undefined;
      if (evalPrep) {
        trainPairs = trainPrep.pairs;
        trainRefSub = trainRef;
        evalPairs = evalPrep.pairs;
        evalRefSub = evalRefSep;
      } else {
        const split = splitPositions(trainPrep.pairs.length, cfg.eval_fraction, seed);
        trainPairs = subset(trainPrep.pairs, split.train);
        evalPairs = subset(trainPrep.pairs, split.eval);
        trainRefSub = pick(trainRef, split.train);
        evalRefSub = pick(trainRef, split.eval);
      }

      // --- training
      await checkStageMemory('dpo', policy.model, 2 * cfg.batch_size, cfg.max_length);
      const perStep = cfg.batch_size * cfg.grad_accum;
      const steps = cfg.max_steps ?? Math.max(1, Math.ceil((cfg.epochs * trainPairs.length) / perStep));
      const evalEvery = cfg.eval_every ?? Math.max(1, Math.ceil(steps / 4));
      const lossCfg = {
        beta: cfg.beta,
        losses,
        ...(cfg.loss_weights ? { weights: cfg.loss_weights } : {}),
        labelSmoothing: cfg.label_smoothing,
        simpoGamma: cfg.simpo_gamma,
        orpoLambda: cfg.orpo_lambda,
        ...(cfg.rpo_alpha ? { rpoAlpha: cfg.rpo_alpha } : {}),
      };
      const evalBs = cfg.eval_batch_size ?? cfg.batch_size * 2;
      const ktoCfg = { beta: cfg.beta, desirableWeight: cfg.desirable_weight, undesirableWeight: cfg.undesirable_weight };
      const lossFnFor = (ref: RefLogps | undefined) => (kto ? ktoLossFn(policy.model, ktoCfg, ref!) : dpoLossFn(policy.model, lossCfg, ref));
      const shape = (m: Record<string, number>, prefix = '') => (kto ? ktoMetrics(m, prefix) : m);
      const evalFn =
        evalPairs.length > 0
          ? async () => {
              const r = await evaluateLoss(sequentialPairBatches(evalPairs, evalBs, padId), lossFnFor(evalRefSub));
              return shape(withPrefix({ loss: r.loss, ...r.metrics }, 'eval_'), 'eval_');
            }
          : undefined;
      const history: MetricPoint[] = [];
      const evals: MetricPoint[] = [];
      const t0 = Date.now();
      const resume = await resumeFrom(ctx);
      const extraFiles = () => {
        const d = path.join(ctx.workDir, 'ckpt-extra');
        fs.rmSync(d, { recursive: true, force: true });
        fs.mkdirSync(d, { recursive: true });
        for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'generation_config.json']) {
          const src = path.join(policy.dir, f);
          if (fs.existsSync(src)) fs.copyFileSync(src, path.join(d, f));
        }
        return dirFiles(d);
      };
      const result = await train({
        params: adapter ? adapter.params : policy.model.params,
        lossFn: lossFnFor(trainRefSub),
        data: new PairBatches(trainPairs, cfg.batch_size, cfg.grad_accum, padId, seed),
        ...pairTrainOptions(cfg, steps, seed),
        evalEvery,
        evalAtStart: true,
        ...(evalFn ? { evalFn } : {}),
        checkpointEvery: cfg.checkpoint_every,
        onCheckpoint: async (ck) => {
          await ctx.saveCheckpoint(ck.state.step, checkpointArtifact(ck, { name: `${ctx.stageName} step ${ck.state.step}`, extra: extraFiles() }), ck.state.evalLoss);
        },
        ...(resume ? { resume } : {}),
        onMetrics: (step, raw) => {
          const m = raw.grad_norm === undefined ? raw : shape(raw);
          ctx.metrics(step, m);
          (Object.keys(m).some((k) => k.startsWith('eval_')) ? evals : history).push({ step, values: m });
        },
        onProgress: (p) => ctx.progress({ step: p.step, total: p.total, metrics: p.metrics }),
        signal: ctx.signal,
      });

      // --- warnings (logs now, the report later from the summary)
      const warnings = [...detectPreferenceWarnings(history), ...detectPreferenceWarnings(evals, { prefix: 'eval_' })];
      const sigmoidLike = !kto && losses.every((l) => l === 'sigmoid' || l === 'robust') && !cfg.rpo_alpha;
      const shown = warnings.filter((w) => w.code !== 'loss_at_ln2' || sigmoidLike);
      for (const w of shown) ctx.log.warn(w.message);

      // --- output: the trained policy as a model directory
      const outDir = path.join(ctx.workDir, 'model-out');
      saveModelDir(policy.model, tok, outDir, { baseModel: policy.artifact.id });
      const model = await ctx.store.put({
        kind: 'model',
        name: `${ctx.stageName} (dpo ${allLosses.join('+')}, β ${cfg.beta})`,
        files: dirFiles(outDir),
        metadata: { stage: 'dpo', losses: allLosses, beta: cfg.beta, steps: result.step, base: policy.artifact.id, reference: needRef && refInput ? refInput.id : null, ...(adapter ? { lora: adapter.config, base_model: policy.artifact.id } : {}) },
        inputs: [
          { artifactId: policy.artifact.id, role: 'base_model' },
          { artifactId: trainDs.id, role: 'train' },
          ...(needRef && refInput && refInput.id !== policy.artifact.id ? [{ artifactId: refInput.id, role: 'reference' }] : []),
          ...Object.values(refOutputs).map((a) => ({ artifactId: a.id, role: 'ref_logprobs' })),
        ],
      });
      const lastEval = result.evals.at(-1)?.metrics ?? {};
      const firstEval = result.evals[0]?.metrics ?? {};
      const out: StageOutcome = {
        status: 'done',
        outputs: { model, ...refOutputs },
        summary: {
          steps: result.step,
          seconds: (Date.now() - t0) / 1000,
          backend: tf.getBackend(),
          losses: allLosses,
          beta: cfg.beta,
          pairs: { train: trainPairs.length, eval: evalPairs.length, stats: trainPrep.stats, ...(evalPrep ? { eval_stats: evalPrep.stats } : {}) },
          reference: needRef ? { artifact: refInput?.id ?? null, reused: refReused.length > 0 && refReused.every(Boolean) } : null,
          metrics: kto ? ktoMetrics(result.metrics) : result.metrics,
          eval_start: firstEval,
          eval: lastEval,
          warnings: shown,
        },
      };
      return out;
    } finally {
      policy.model.dispose();
    }
  },
};
