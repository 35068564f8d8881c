// The DPO stage: preference optimisation of a policy (the `model` input, usually the SFT model)
// against a frozen reference (the `reference` input, default the same model), with any loss of the
// DPO family (src/ml/losses). Reference log-probs are precomputed once and cached as an artifact.
//
// Inputs:  model (required), train (preference dataset, required), reference (model, optional),
//          eval (preference dataset, optional; default: eval_fraction of train).
// Outputs: model (the trained policy, HF layout; its metadata records losses and β, which the eval
//          stage's implicit rewards use), ref_logprobs (when a reference was used).
// Loading, the split, resume, checkpoints and the summary: ./training.ts.
import { z } from 'zod';
import { configError } from '../errors.js';
import type { ArtifactManifest } from '../store/types.js';
import type { StageContext } from './contract.js';
import { baseView, stageLoraSchema } from '../ml/lora.js';
import type { PairBatch, PairStats, PreparedPair, TruncationRule } from '../ml/preference-data.js';
import { dpoLossFn, ktoLossFn, ktoMetrics, type RefLogps } from '../ml/dpo.js';
import { loadOrComputeRefLogps, refLogpsKey, tokenizerFingerprint } from '../ml/ref-logprobs.js';
import { detectPreferenceWarnings, lossesNeedReference, preferenceLossNames, type PreferenceLossName } from '../ml/losses/index.js';
import { lmTrainee, loadModelInput } from './model-input.js';
import { pairBatchesAndEval, pairFields, preparePreferenceInput, truncationRule } from './preference-inputs.js';
import { trainingFields, trainingStage, type Trainee, type TrainingRun } from './training.js';
import { checkStageMemory } from './memory-check.js';

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
    /** Batch size of the one-off reference pass. */
    ref_batch_size: z.number().int().positive().default(16),
    /** Train LoRA adapters only; the reference is then the base with adapters off (no second copy). */
    lora: stageLoraSchema.optional(),
    ...pairFields,
    ...trainingFields({ lr: 5e-4, maxLength: 128, logEvery: 10, checkpointEvery: 50, evalFraction: 0.1 }),
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

type Policy = Trainee & ReturnType<typeof lmTrainee>;

/** A prepared pair with its reference log-probs (summed, chosen and rejected) when a reference is used. */
interface DpoUnit {
  pair: PreparedPair;
  ref?: [number, number];
}

interface DpoPrepared {
  train: DpoUnit[];
  eval?: DpoUnit[];
  stats: PairStats;
  evalStats?: PairStats;
  refOutputs: Record<string, ArtifactManifest>;
  refReused: boolean[];
}

/** The loss choice of a config: the listed losses, whether it is KTO, and whether it needs a reference. */
function lossPlan(cfg: DpoConfig) {
  const all = dpoLosses(cfg);
  const kto = isKto(all);
  const losses = pairLosses(all);
  return { all, kto, losses, needRef: kto || lossesNeedReference(losses) };
}

const referenceInput = (ctx: StageContext<DpoConfig>, cfg: DpoConfig): ArtifactManifest | undefined => (cfg.use_reference ? (ctx.inputs.reference ?? ctx.inputs.model) : undefined);

const refsOf = (units: readonly DpoUnit[]): RefLogps | undefined =>
  units.length > 0 && units[0]!.ref ? { chosen: Float32Array.from(units.map((u) => u.ref![0])), rejected: Float32Array.from(units.map((u) => u.ref![1])) } : undefined;

/** Reference log-probs of a dataset's prepared pairs: looked up by key, computed only on a miss. */
async function withReference(run: TrainingRun<DpoConfig>, policy: Policy, ds: ArtifactManifest, pairs: PreparedPair[], label: string, rule: TruncationRule, out: DpoPrepared): Promise<DpoUnit[]> {
  const { ctx, cfg } = run;
  const plan = lossPlan(cfg);
  const refInput = referenceInput(ctx, cfg);
  if (!plan.needRef || !refInput) return pairs.map((pair) => ({ pair }));
  const tok = policy.tokenizer!;
  const r = await loadOrComputeRefLogps({
    store: ctx.store,
    key: refLogpsKey({ dataset: ds.id, reference: refInput.id, tokenizer: tokenizerFingerprint(tok.json, tok.chatTemplate, cfg.add_eos), rule, ...(plan.kto ? { variant: 'kto-unpaired-kl-prev' } : {}) }),
    prepared: pairs,
    batchSize: cfg.ref_batch_size,
    padId: tok.padTokenId ?? 0,
    loadReference: async () => {
      ctx.log.info(`computing reference log-probs for ${label} (${pairs.length} pairs)`);
      if (refInput.id === policy.artifact.id) return policy.adapter ? baseView(policy.model) : (await loadModelInput(ctx, 'model')).model;
      return (await loadModelInput(ctx, 'reference')).model;
    },
    onProgress: (d, n) => ctx.progress({ step: 0, total: 1, message: `reference log-probs ${label}: ${d}/${n}` }),
  });
  if (r.reused) ctx.log.info(`reference log-probs for ${label}: reusing artifact ${r.artifact.id} (the reference model is not run)`);
  out.refReused.push(r.reused);
  out.refOutputs[label === 'train' ? 'ref_logprobs' : `ref_logprobs_${label}`] = r.artifact;
  return pairs.map((pair, i) => ({ pair, ref: [r.ref.chosen[i]!, r.ref.rejected[i]!] }));
}

export const dpoStage = trainingStage<DpoConfig, Policy, DpoUnit, PairBatch, DpoPrepared>({
  kind: 'dpo',
  configSchema: dpoConfigSchema as unknown as z.ZodType<DpoConfig>,
  validate({ ctx, cfg }) {
    validateDpoConfig(cfg, referenceInput(ctx, cfg) !== undefined);
    if (lossPlan(cfg).kto && ctx.inputs.train?.kind === 'dataset') ctx.log.info('kto: training on unpaired examples (a preference dataset is unpaired: chosen → desirable, rejected → undesirable)');
  },
  async load({ ctx, cfg, seed }) {
    const policy = lmTrainee(await loadModelInput(ctx, 'model'), cfg.lora, seed);
    await checkStageMemory('dpo', policy.model, 2 * cfg.batch_size, cfg.max_length);
    return policy;
  },
  async prepare(run, policy) {
    const { ctx, cfg } = run;
    const rule = truncationRule(ctx, cfg, policy.model.contextLength);
    const o = { rule, addEos: cfg.add_eos, unpaired: lossPlan(cfg).kto };
    const train = await preparePreferenceInput(ctx, ctx.inputs.train!.id, policy.tokenizer!, { ...o, label: 'train' });
    const evalDs = ctx.inputs.eval;
    const evalIn = evalDs ? await preparePreferenceInput(ctx, evalDs.id, policy.tokenizer!, { ...o, label: 'eval' }) : undefined;
    const out: DpoPrepared = { train: [], stats: train.stats, refOutputs: {}, refReused: [] };
    out.train = await withReference(run, policy, ctx.inputs.train!, train.pairs, 'train', rule, out);
    if (evalDs && evalIn) {
      out.eval = await withReference(run, policy, evalDs, evalIn.pairs, 'eval', rule, out);
      out.evalStats = evalIn.stats;
    }
    return out;
  },
  task({ cfg, seed }, policy, split, prepared) {
    const { kto, losses } = lossPlan(cfg);
    const lossCfg = {
      beta: cfg.beta,
      losses,
      ...(cfg.loss_weights ? { weights: cfg.loss_weights } : {}),
      labelSmoothing: cfg.label_smoothing,
      simpoGamma: cfg.simpo_gamma,
      orpoLambda: cfg.orpo_lambda,
      ...(cfg.rpo_alpha ? { rpoAlpha: cfg.rpo_alpha } : {}),
    };
    const ktoCfg = { beta: cfg.beta, desirableWeight: cfg.desirable_weight, undesirableWeight: cfg.undesirable_weight };
    const refs = { train: refsOf(split.train), eval: refsOf(split.eval) };
    const lossFor = (which: 'train' | 'eval') => (kto ? ktoLossFn(policy.model, ktoCfg, refs[which]!) : dpoLossFn(policy.model, lossCfg, refs[which]));
    const pairs = { train: split.train.map((u) => u.pair), eval: split.eval.map((u) => u.pair) };
    const shapeEval = (m: Record<string, number>) => (kto ? ktoMetrics(m, 'eval_') : m);
    return {
      params: policy.params,
      ...pairBatchesAndEval(cfg, seed, policy.tokenizer!.padTokenId ?? 0, pairs, lossFor, shapeEval),
      stats: { pairs: prepared.stats, ...(prepared.evalStats ? { eval_pairs: prepared.evalStats } : {}) },
      ...(kto ? { trainMetrics: (m: Record<string, number>) => ktoMetrics(m) } : {}),
    };
  },
  finish({ ctx, cfg }, r, prepared) {
    const { all, kto, losses, needRef } = lossPlan(cfg);
    const refInput = referenceInput(ctx, cfg);
    // warnings: logged now, shown by the report later from the summary
    const warnings = [...detectPreferenceWarnings(r.history), ...detectPreferenceWarnings(r.evals, { prefix: 'eval_' })];
    const sigmoidLike = !kto && losses.every((l) => l === 'sigmoid' || l === 'robust') && !cfg.rpo_alpha;
    const shown = warnings.filter((w) => w.code !== 'loss_at_ln2' || sigmoidLike);
    for (const w of shown) ctx.log.warn(w.message);
    const reference = needRef && refInput ? refInput.id : null;
    return {
      name: `${ctx.stageName} (dpo ${all.join('+')}, β ${cfg.beta})`,
      metadata: { losses: all, beta: cfg.beta, reference, ...r.trainee.loraMetadata() },
      inputs: [
        ...(reference && reference !== r.trainee.artifact.id ? [{ artifactId: reference, role: 'reference' }] : []),
        ...Object.values(prepared.refOutputs).map((a) => ({ artifactId: a.id, role: 'ref_logprobs' })),
      ],
      outputs: prepared.refOutputs,
      summary: {
        losses: all,
        beta: cfg.beta,
        reference: needRef ? { artifact: refInput?.id ?? null, reused: prepared.refReused.length > 0 && prepared.refReused.every(Boolean) } : null,
        warnings: shown,
      },
    };
  },
});
