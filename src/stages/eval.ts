// The `eval` stage: compares a candidate policy with one or more baselines and writes an
// 'eval-report' artifact (report.json + a self-contained report.html).
//
// Inputs (roles):
//   model            the candidate policy (required)
//   baseline[_X]     baseline policies; label "X" (or "baseline") — e.g. baseline_sft, baseline_round1
//   reference        the reference policy for KL and implicit rewards (default: the first baseline)
//   prompts          a prompt dataset (required): responses are sampled for each prompt
//   pairs            a preference dataset: eval_rewards/* of the policy and reward-model accuracy
//   heldout          an SFT dataset: held-out loss / perplexity of every model
//   train[_X]        training datasets (any kind): contamination check against the eval prompts
//   reward_model[_X] reward models, used as pointwise judges
// Rule judges come from config.judges (modules exporting score() and/or judge()); a `human` judge
// there sends (prompt, candidate answer, baseline answer) pairs to the labeling service and the
// stage answers 'waiting' until they are labeled (src/eval/human.ts). While it waits, the samples
// and every machine-computed figure are kept in a checkpoint of the stage (eval-state.json), so a
// re-invocation never samples again: it only looks at the batch.
//
// Training curves: the handler has no SQL. The orchestrator's context gives `history()`; without
// it (a bare context) the report has no curves and `alignflow report` / the server fill them in
// from the metrics table when the report is viewed.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import type { RunHistory, StageContext, StageHandler, StageOutcome } from './contract.js';
import type { ArtifactManifest } from '../store/types.js';
import { AlignflowError } from '../errors.js';
import { ALIGNFLOW_VERSION, ENGINE_VERSION } from '../version.js';
import { readDatasetRecords, datasetMetadata } from '../data/datasets.js';
import type { Content, PreferenceRecord, SftRecord } from '../data/formats.js';
import { sftRecordText } from '../ml/train/records.js';
import { tokenizePreferenceRecord } from './preference-inputs.js';
import { loadModelArtifact } from '../ml/models/store.js';
import { loadRewardModelDir, scoreWithRewardModel, type RewardModel } from '../ml/reward.js';
import type { TextTokenizer } from '../ml/tokenizer/tokenizer.js';
import type { CausalLM } from '../ml/models/types.js';
import { generate, stopTokenIds } from '../ml/generate.js';
import { completionLogps } from '../ml/logprobs.js';
import { initBackend } from '../ml/backend.js';
import { deriveSeed } from '../ml/train/rng.js';
import { completionTokenLogps } from '../eval/token-logps.js';
import { loadRuleJudge, safeJudge, safeScore, JudgeError, type RuleJudge } from '../eval/judges.js';
import { contamination } from '../eval/contamination.js';
import { buildReport, type RawEval } from '../eval/build.js';
import { renderReportHtml } from '../eval/report-html.js';
import type { CandidateVerdict, DatasetRef, JudgeRef, Judgment, ModelRef, SamplingSettings } from '../eval/report-types.js';
import type { Curve, ReportWarning } from '../eval/warnings.js';
import type { KlSample } from '../eval/kl.js';
import { implicitRewardRule, preferenceLossNames, type ImplicitRewardRule, type PreferenceLossName } from '../ml/losses/index.js';
import { humanJudgments, planHumanPairs } from '../eval/human.js';
import { checkHumanBatch } from './human-batch.js';
import { requireLabeling } from '../labeling/port.js';

const ruleJudgeSchema = z.object({
  type: z.literal('rule'),
  /** Path of the judge module, relative to the spec file or judges_dir (the spec validation makes it absolute). */
  module: z.string().min(1),
  /** Overrides the module's own name in the report. */
  name: z.string().min(1).optional(),
  /** 'score': pointwise; 'pairwise': judge(prompt, a, b) in both orders; default: what the module exports (score preferred). */
  mode: z.enum(['score', 'pairwise', 'both']).optional(),
}).strict();

export const DEFAULT_HUMAN_GUIDELINES = 'Two answers to the same prompt, from two different models, in random order. Pick the better answer; "tie" if they are equally good, "both bad" if neither is acceptable.';

/** Human labels through the labeling service (one batch per eval stage). */
const humanJudgeSchema = z.object({
  type: z.literal('human'),
  /** The judge's name in the report. */
  name: z.string().min(1).max(100).default('human'),
  /** Labels wanted per comparison; several labels of a prompt average into its score. */
  quota: z.number().int().min(1).max(100).default(1),
  guidelines: z.string().max(20_000).default(DEFAULT_HUMAN_GUIDELINES),
  lease_seconds: z.number().int().min(1).max(86_400).default(600),
  /** How often the orchestrator asks the waiting stage again. */
  poll_ms: z.number().int().min(100).max(3_600_000).default(5_000),
}).strict();

const judgeSchema = z.discriminatedUnion('type', [ruleJudgeSchema, humanJudgeSchema]);
export type HumanJudgeConfig = z.infer<typeof humanJudgeSchema>;
type RuleJudgeConfig = z.infer<typeof ruleJudgeSchema>;

export const evalConfigSchema = z.object({
  judges: z.array(judgeSchema).refine((js) => js.filter((j) => j.type === 'human').length <= 1, 'at most one human judge per eval stage (it owns the stage\'s label batch)').default([]),
  sampling: z.object({
    temperature: z.number().min(0).default(1),
    top_k: z.number().int().min(0).default(0),
    top_p: z.number().gt(0).max(1).default(1),
    max_new_tokens: z.number().int().min(1).max(4096).default(48),
    /**
     * The sampling seed itself (default: derived from the run seed and the stage name). Eval stages
     * that share it sample the same baseline answers, so a frontier of several models is measured
     * against one set of SFT answers, not one set per stage.
     */
    seed: z.number().int().min(0).max(2 ** 31 - 1).optional(),
  }).strict().default({ temperature: 1, top_k: 0, top_p: 1, max_new_tokens: 48 }),
  /** Use only the first N eval prompts / pairs / held-out records (0: all). */
  max_prompts: z.number().int().min(0).default(0),
  max_pairs: z.number().int().min(0).default(0),
  max_heldout: z.number().int().min(0).default(0),
  /**
   * Overrides β of the implicit rewards. By default the eval uses the β (and the losses' reward
   * definition) the candidate's DPO stage recorded in its model artifact.
   */
  beta: z.number().gt(0).optional(),
  /**
   * Append the tokenizer's EOS to every completion that is scored (eval pairs, and samples scored by
   * a reward model), as the DPO and reward stages do in training (their `add_eos`, TRL's default):
   * a reward model reads its score at the last token, and a DPO policy's implicit reward includes
   * what it learned about where an answer ends. Set it to the training stages' `add_eos`.
   */
  add_eos: z.boolean().default(true),
  bootstrap_resamples: z.number().int().min(100).max(100_000).default(2000),
  batch_size: z.number().int().min(1).max(512).default(8),
  /** Pointwise verdicts: |score difference| ≤ this is a tie. */
  tie_epsilon: z.number().min(0).default(0),
  /** Base directory for relative judge module paths, relative to the spec file (default: the spec file's folder). */
  judges_dir: z.string().optional(),
  /** Configs of upstream stages to record in the report's provenance (the orchestrator may fill this). */
  stage_configs: z.record(z.string(), z.unknown()).default({}),
}).strict();

export type EvalConfig = z.infer<typeof evalConfigSchema>;

export type EvalStageContext = StageContext<EvalConfig>;

function promptText(c: Content | undefined, where: string): string {
  if (typeof c === 'string') return c;
  if (Array.isArray(c)) {
    // Conversational prompts: the user turns' text, in order (no chat template applied).
    return c.map((m) => m.content).join('\n');
  }
  throw new AlignflowError('input', `${where}: record has no prompt`);
}

async function readPrompts(ctx: StageContext, id: string, max: number): Promise<string[]> {
  const out: string[] = [];
  for await (const r of readDatasetRecords(ctx.store, id)) {
    const rec = r as Record<string, unknown>;
    if (!('prompt' in rec)) throw new AlignflowError('config', `eval input "prompts" (${id}) has records without a prompt; give a prompt or prompt-completion dataset`);
    out.push(promptText(rec.prompt as Content, `dataset ${id}, record ${out.length + 1}`));
    if (max && out.length >= max) break;
  }
  if (out.length === 0) throw new AlignflowError('input', `eval prompt dataset ${id} is empty`);
  return out;
}

/** Prompts of any dataset (for contamination); records without a prompt field are skipped. */
async function datasetPrompts(ctx: StageContext, id: string): Promise<string[]> {
  const out: string[] = [];
  for await (const r of readDatasetRecords(ctx.store, id)) {
    const p = (r as { prompt?: Content }).prompt;
    if (typeof p === 'string') out.push(p);
    else if (Array.isArray(p)) out.push(p.map((m) => m.content).join('\n'));
  }
  return out;
}

/** Eval pairs as token ids, tokenized exactly as the DPO and reward stages tokenize their training pairs. */
function pairTokens(tok: TextTokenizer, pairs: readonly PreferenceRecord[], addEos: boolean) {
  const t = pairs.map((rec, i) => tokenizePreferenceRecord(tok, rec, { addEos }, 'eval pairs', i + 1).pair);
  return {
    c: t.map((p) => ({ promptIds: p.promptIds, completionIds: p.chosenIds })),
    r: t.map((p) => ({ promptIds: p.promptIds, completionIds: p.rejectedIds })),
  };
}

interface Loaded {
  model: CausalLM;
  tok: TextTokenizer;
}

async function loadPolicy(ctx: StageContext, m: ArtifactManifest, role: string): Promise<Loaded> {
  const l = await loadModelArtifact(ctx.store, m.id, { scratchDir: ctx.workDir });
  if (!l.tokenizer) {
    l.model.dispose();
    throw new AlignflowError('config', `eval input "${role}" (${m.id}) has no tokenizer.json`);
  }
  return { model: l.model, tok: l.tokenizer };
}

/**
 * Everything the stage computes with the models: the samples, machine judges' verdicts and scores,
 * KL, held-out loss, implicit rewards. Plain JSON, so a stage that waits for human labels keeps it
 * in a checkpoint and builds the report from it later without loading a model again.
 */
export interface EvalState extends Omit<RawEval, 'provenance' | 'createdAt' | 'curves' | 'errorExamples'> {
  schema: typeof EVAL_STATE_SCHEMA;
  /** sha256 of the stage's inputs, config and seed: a saved state is only reused for the same. */
  fingerprint: string;
  sampling: SamplingSettings;
  backend: string;
}
export const EVAL_STATE_SCHEMA = 'alignflow.eval-state/1';
const EVAL_STATE_FILE = 'eval-state.json';

function stateFingerprint(ctx: StageContext, cfg: EvalConfig): string {
  const inputs = Object.fromEntries(Object.entries(ctx.inputs).map(([r, m]): [string, string] => [r, m.id]).sort((x, y) => (x[0] < y[0] ? -1 : 1)));
  return crypto.createHash('sha256').update(JSON.stringify({ inputs, config: cfg, seed: ctx.seed })).digest('hex');
}

/** The models compared (candidate first, then baselines), the reference, and the input roles by purpose. */
interface EvalPlan {
  models: ModelRef[];
  manifestOf: (label: string) => ArtifactManifest;
  referenceM?: ArtifactManifest;
  rmRoles: string[];
  trainRoles: string[];
}

function planModels(ctx: StageContext, warnings: ReportWarning[]): EvalPlan {
  const inputs = ctx.inputs;
  const candidateM = inputs.model;
  if (!candidateM) throw new AlignflowError('config', 'eval stage needs a "model" input (the candidate policy)');
  if (!inputs.prompts) throw new AlignflowError('config', 'eval stage needs a "prompts" input (a prompt dataset)');
  const roles = (base: string) => Object.keys(inputs).filter((r) => r === base || r.startsWith(`${base}_`)).sort();
  const baselineRoles = roles('baseline');
  const models: ModelRef[] = [
    { label: 'candidate', role: 'candidate', artifactId: candidateM.id, name: candidateM.name },
    ...baselineRoles.map((r) => ({ label: r === 'baseline' ? 'baseline' : r.slice('baseline_'.length), role: 'baseline' as const, artifactId: inputs[r]!.id, name: inputs[r]!.name })),
  ];
  const referenceM = inputs.reference ?? (baselineRoles[0] ? inputs[baselineRoles[0]] : undefined);
  if (!referenceM) warnings.push({ code: 'other', severity: 'info', message: 'No reference or baseline model: KL and implicit rewards are not computed.' });
  return {
    models,
    manifestOf: (label) => (label === 'candidate' ? candidateM : inputs[label === 'baseline' ? 'baseline' : `baseline_${label}`]!),
    ...(referenceM ? { referenceM } : {}),
    rmRoles: roles('reward_model'),
    trainRoles: roles('train'),
  };
}

/**
 * The implicit-reward rule of the candidate: β and the losses its DPO stage recorded in the model
 * artifact (metadata `beta`, `losses`), so the eval reports the quantity training logged. The
 * config's `beta` overrides β; a model without that record (not from a DPO stage) gets sigmoid
 * DPO's rule with the config's β or 0.1.
 */
export function candidateRewardRule(candidate: ArtifactManifest, cfg: Pick<EvalConfig, 'beta'>, warnings: ReportWarning[]): ImplicitRewardRule {
  const md = candidate.metadata ?? {};
  const trainedBeta = typeof md.beta === 'number' && md.beta > 0 ? md.beta : undefined;
  const losses = Array.isArray(md.losses) ? (md.losses as unknown[]).filter((l): l is PreferenceLossName => typeof l === 'string' && (preferenceLossNames as readonly string[]).includes(l)) : [];
  if (cfg.beta !== undefined && trainedBeta !== undefined && cfg.beta !== trainedBeta) {
    warnings.push({ code: 'other', severity: 'info', message: `Implicit rewards use the eval config's β = ${cfg.beta}, not the β = ${trainedBeta} the candidate was trained with.` });
  }
  return implicitRewardRule({ beta: cfg.beta ?? trainedBeta ?? DEFAULT_BETA, losses: losses.length ? losses : ['sigmoid'] }, true);
}
const DEFAULT_BETA = 0.1;

/** The eval data: prompts, the datasets' provenance, eval pairs, held-out records, contamination. */
async function readEvalData(ctx: StageContext, cfg: EvalConfig, plan: EvalPlan) {
  const inputs = ctx.inputs;
  const prompts = await readPrompts(ctx, inputs.prompts!.id, cfg.max_prompts);
  const datasets: DatasetRef[] = [];
  for (const role of ['prompts', 'pairs', 'heldout', ...plan.trainRoles]) {
    const m = inputs[role];
    if (!m) continue;
    const md = await datasetMetadata(ctx.store, m.id).catch(() => undefined);
    datasets.push({ role, artifactId: m.id, name: m.name, records: md?.records ?? 0 });
  }
  const evalPairs: PreferenceRecord[] = [];
  if (inputs.pairs) {
    for await (const r of readDatasetRecords(ctx.store, inputs.pairs.id, { kind: 'preference' })) {
      evalPairs.push(r);
      if (cfg.max_pairs && evalPairs.length >= cfg.max_pairs) break;
    }
  }
  const heldout: SftRecord[] = [];
  if (inputs.heldout) {
    for await (const r of readDatasetRecords(ctx.store, inputs.heldout.id, { kind: 'sft' })) {
      heldout.push(r);
      if (cfg.max_heldout && heldout.length >= cfg.max_heldout) break;
    }
  }
  let contam = null;
  if (plan.trainRoles.length) {
    const trainPrompts: string[] = [];
    for (const r of plan.trainRoles) trainPrompts.push(...(await datasetPrompts(ctx, inputs[r]!.id)));
    contam = contamination(prompts, trainPrompts);
  }
  return { prompts, datasets, evalPairs, heldout, contamination: contam };
}
type EvalData = Awaited<ReturnType<typeof readEvalData>>;

type LoadedRuleJudge = RuleJudge & { mode: 'score' | 'pairwise' | 'both' };
const rmName = (role: string) => (role === 'reward_model' ? 'reward_model' : role);

/** Rule judge modules, and the report's list of every machine judge (rule judges and reward models). */
async function loadJudges(ctx: StageContext, cfg: EvalConfig, plan: EvalPlan, warnings: ReportWarning[]): Promise<{ ruleJudges: LoadedRuleJudge[]; judgeRefs: JudgeRef[] }> {
  const ruleJudges: LoadedRuleJudge[] = [];
  for (const j of cfg.judges.filter((x): x is RuleJudgeConfig => x.type === 'rule')) {
    const rj = await loadRuleJudge(j.module, cfg.judges_dir ?? process.cwd());
    const mode = j.mode ?? (rj.score ? 'score' : 'pairwise');
    if ((mode !== 'pairwise' && !rj.score) || (mode !== 'score' && !rj.judge)) {
      throw new AlignflowError('config', `judge module ${j.module}: mode "${mode}" needs ${mode === 'score' ? 'score()' : 'judge()'}`);
    }
    ruleJudges.push({ ...rj, name: j.name ?? rj.name, mode });
  }
  const judgeRefs: JudgeRef[] = [];
  for (const j of ruleJudges) {
    if (j.mode !== 'pairwise') judgeRefs.push({ name: j.name, kind: 'rule', version: j.version, pairwise: false, source: `${path.basename(j.source)} sha256:${j.sha256}` });
    if (j.mode !== 'score') judgeRefs.push({ name: j.mode === 'both' ? `${j.name}/pairwise` : j.name, kind: 'rule', version: j.version, pairwise: true, source: `${path.basename(j.source)} sha256:${j.sha256}` });
  }
  for (const r of plan.rmRoles) judgeRefs.push({ name: rmName(r), kind: 'reward_model', version: ctx.inputs[r]!.id, pairwise: false, artifactId: ctx.inputs[r]!.id });
  if (judgeRefs.length === 0 && !cfg.judges.some((j) => j.type === 'human')) warnings.push({ code: 'other', severity: 'warn', message: 'No judge configured (no rule judge in config.judges, no reward_model input): no win rates.' });
  return { ruleJudges, judgeRefs };
}

/** Summed log-probs and token counts of the eval pairs' chosen and rejected completions under one model. */
async function pairLogpsOf(m: Loaded, evalPairs: readonly PreferenceRecord[], cfg: EvalConfig) {
  const { c, r } = pairTokens(m.tok, evalPairs, cfg.add_eos);
  const o = { batchSize: cfg.batch_size, padId: m.tok.padTokenId };
  return { chosen: await completionLogps(m.model, c, o), rejected: await completionLogps(m.model, r, o) };
}

/**
 * Samples every model's answers (one model loaded at a time; only the reference stays), and with
 * each: KL to the reference on its own samples, the eval pairs' implicit rewards, held-out loss.
 */
async function sampleAndScore(ctx: StageContext, cfg: EvalConfig, plan: EvalPlan, data: EvalData, rule: ImplicitRewardRule, sampling: SamplingSettings, warnings: ReportWarning[], progress: (m: string) => void) {
  const responses: RawEval['responses'] = {};
  const kl: Record<string, KlSample[]> = {};
  const heldOut: Record<string, { logp: number; tokens: number }[]> = {};
  const implicit: NonNullable<RawEval['implicit']> = {};
  const { prompts, evalPairs, heldout } = data;
  let reference: Loaded | undefined;
  try {
    if (plan.referenceM) reference = await loadPolicy(ctx, plan.referenceM, 'reference');
    // Reference log-probs of the eval pairs, computed once.
    const refPairs = reference && evalPairs.length ? await pairLogpsOf(reference, evalPairs, cfg) : undefined;
    for (const m of plan.models) {
      if (ctx.signal.aborted) throw new AlignflowError('cancelled', 'eval cancelled');
      const man = plan.manifestOf(m.label);
      const same = reference && plan.referenceM && man.id === plan.referenceM.id;
      const pol = same ? reference! : await loadPolicy(ctx, man, m.label);
      try {
        const promptIds = prompts.map((p) => pol.tok.encode(p));
        const gen = await generate(pol.model, promptIds, {
          maxNewTokens: cfg.sampling.max_new_tokens,
          temperature: cfg.sampling.temperature,
          topK: cfg.sampling.top_k || undefined,
          topP: cfg.sampling.top_p,
          seed: sampling.seed, // same seed for every model: differences come from the models, not the dice
          eosTokenId: stopTokenIds(pol.model, pol.tok),
          padTokenId: pol.tok.padTokenId,
          signal: ctx.signal,
        });
        if (gen.truncatedPrompts) warnings.push({ code: 'other', severity: 'info', message: `${gen.truncatedPrompts} prompt(s) were cut to fit ${m.label}'s context.` });
        const eos = pol.tok.eosTokenId;
        responses[m.label] = gen.tokens.map((t) => {
          const body = eos !== undefined && t[t.length - 1] === eos ? t.slice(0, -1) : t;
          return { text: pol.tok.decode(body, { skipSpecialTokens: true }), tokens: t.length };
        });
        // KL(model ‖ reference) on the model's own samples (the sampled ids, EOS included).
        if (reference) {
          const items = gen.tokens.map((t, i) => ({ promptIds: promptIds[i]!, completionIds: t }));
          const own = await completionTokenLogps(pol.model, items, { batchSize: cfg.batch_size, padId: pol.tok.padTokenId, signal: ctx.signal });
          const ref = same ? own : await completionTokenLogps(reference.model, items, { batchSize: cfg.batch_size, padId: reference.tok.padTokenId, signal: ctx.signal });
          kl[m.label] = own.map((o, i) => ({ policy: o, reference: ref[i]! }));
          if (refPairs) {
            const p = await pairLogpsOf(pol, evalPairs, cfg);
            implicit[m.label] = {
              beta: rule.beta,
              rule,
              pairs: p.chosen.map((x, i) => ({
                policyChosen: x.sum,
                policyRejected: p.rejected[i]!.sum,
                referenceChosen: refPairs.chosen[i]!.sum,
                referenceRejected: refPairs.rejected[i]!.sum,
                chosenTokens: x.tokens,
                rejectedTokens: p.rejected[i]!.tokens,
              })),
            };
          }
        }
        if (heldout.length) {
          // Tokenized as the SFT stage tokenizes its eval split, so the two held-out losses agree.
          const items = heldout.map((h) => {
            const t = sftRecordText(pol.tok, h, { addEos: cfg.add_eos });
            return { promptIds: pol.tok.encode(t.prompt), completionIds: pol.tok.encode(t.completion) };
          });
          heldOut[m.label] = (await completionLogps(pol.model, items, { batchSize: cfg.batch_size, padId: pol.tok.padTokenId })).map((x) => ({ logp: x.sum, tokens: x.tokens }));
        }
      } finally {
        if (!same) pol.model.dispose();
      }
      progress(`sampled and scored ${m.label}`);
    }
  } finally {
    reference?.model.dispose();
  }
  return { responses, kl: reference ? kl : undefined, heldOut: heldout.length ? heldOut : undefined, implicit: Object.keys(implicit).length ? implicit : undefined };
}

/** Verdicts of the candidate against each baseline, collected by the judging steps. */
class Verdicts {
  readonly scores: RawEval['scores'] = {};
  readonly judgments: Judgment[] = [];
  constructor(
    private readonly baselines: ModelRef[],
    private readonly nPrompts: number,
    private readonly tieEpsilon: number,
  ) {}

  /** Pointwise scores → win/tie/loss per prompt and baseline. */
  pointwise(judge: string, s: Record<string, (number | null)[]>, errs: Record<string, (string | null)[]>): void {
    this.scores[judge] = s;
    for (const b of this.baselines) {
      for (let i = 0; i < this.nPrompts; i++) {
        const a = s.candidate![i];
        const c = s[b.label]![i];
        const err = errs.candidate?.[i] ?? errs[b.label]?.[i];
        if (a === null || a === undefined || c === null || c === undefined) {
          this.judgments.push({ judge, baseline: b.label, prompt: i, order: 'single', verdict: 'error', error: err ?? 'no score' });
          continue;
        }
        const d = a - c;
        this.judgments.push({ judge, baseline: b.label, prompt: i, order: 'single', verdict: Math.abs(d) <= this.tieEpsilon ? 'tie' : d > 0 ? 'win' : 'loss', scores: { candidate: a, baseline: c } });
      }
    }
  }
}

/** Rule judges: pointwise scores of every model's answers, and/or pairwise verdicts in both orders. */
async function judgeWithRules(ruleJudges: LoadedRuleJudge[], models: ModelRef[], prompts: string[], responses: RawEval['responses'], v: Verdicts): Promise<void> {
  const baselines = models.filter((m) => m.role === 'baseline');
  for (const j of ruleJudges) {
    if (j.mode !== 'pairwise') {
      const s: Record<string, (number | null)[]> = {};
      const errs: Record<string, (string | null)[]> = {};
      for (const m of models) {
        s[m.label] = [];
        errs[m.label] = [];
        for (let i = 0; i < prompts.length; i++) {
          try {
            s[m.label]!.push(await safeScore(j as { name: string; score: (p: string, r: string) => unknown }, prompts[i]!, responses[m.label]![i]!.text));
            errs[m.label]!.push(null);
          } catch (e) {
            if (!(e instanceof JudgeError)) throw e;
            s[m.label]!.push(null);
            errs[m.label]!.push(e.message);
          }
        }
      }
      v.pointwise(j.name, s, errs);
    }
    if (j.mode !== 'score') {
      const name = j.mode === 'both' ? `${j.name}/pairwise` : j.name;
      const judge = j as { name: string; judge: (p: string, a: string, b: string) => unknown };
      for (const b of baselines) {
        for (let i = 0; i < prompts.length; i++) {
          const cand = responses.candidate![i]!.text;
          const base = responses[b.label]![i]!.text;
          for (const order of ['forward', 'backward'] as const) {
            try {
              const verdict = order === 'forward' ? await safeJudge(judge, prompts[i]!, cand, base) : await safeJudge(judge, prompts[i]!, base, cand);
              const candSide = order === 'forward' ? 'a' : 'b';
              const cv: CandidateVerdict = verdict === 'tie' ? 'tie' : verdict === candSide ? 'win' : 'loss';
              v.judgments.push({ judge: name, baseline: b.label, prompt: i, order, verdict: cv });
            } catch (e) {
              if (!(e instanceof JudgeError)) throw e;
              v.judgments.push({ judge: name, baseline: b.label, prompt: i, order, verdict: 'error', error: e.message });
            }
          }
        }
      }
    }
  }
}

/** Reward models as pointwise judges of the answers, and their accuracy on the eval pairs. */
async function judgeWithRewardModels(ctx: StageContext, cfg: EvalConfig, plan: EvalPlan, data: EvalData, responses: RawEval['responses'], v: Verdicts) {
  const rmPairs: Record<string, { chosen: number; rejected: number }[]> = {};
  for (const role of plan.rmRoles) {
    const dir = path.join(ctx.workDir, `rm-${role}`);
    fs.mkdirSync(dir, { recursive: true });
    await ctx.store.materialize(ctx.inputs[role]!.id, dir);
    const { model: rm, tokenizer: tok } = await loadRewardModelDir(dir);
    try {
      if (!tok) throw new AlignflowError('config', `reward model ${ctx.inputs[role]!.id} has no tokenizer.json`);
      const s: Record<string, (number | null)[]> = {};
      const eos = cfg.add_eos && tok.eosTokenId !== undefined ? [tok.eosTokenId] : [];
      for (const m of plan.models) {
        const items = data.prompts.map((p, i) => ({ promptIds: tok.encode(p), completionIds: [...tok.encode(responses[m.label]![i]!.text), ...eos] }));
        s[m.label] = (await scoreWithRewardModel(rm as RewardModel, items, { batchSize: cfg.batch_size })).map((x) => x.reward);
      }
      v.pointwise(rmName(role), s, {});
      if (data.evalPairs.length) {
        const items = pairTokens(tok, data.evalPairs, cfg.add_eos);
        const c = await scoreWithRewardModel(rm, items.c, { batchSize: cfg.batch_size });
        const r = await scoreWithRewardModel(rm, items.r, { batchSize: cfg.batch_size });
        rmPairs[rmName(role)] = c.map((x, i) => ({ chosen: x.reward, rejected: r[i]!.reward }));
      }
    } finally {
      rm.dispose();
    }
  }
  return Object.keys(rmPairs).length ? rmPairs : undefined;
}

/** Everything the stage computes with the models, step by step (see EvalState). */
async function gather(ctx: EvalStageContext, cfg: EvalConfig): Promise<EvalState> {
  const backend = await initBackend();
  const warnings: ReportWarning[] = [];
  const plan = planModels(ctx, warnings);
  const rule = candidateRewardRule(ctx.inputs.model!, cfg, warnings);
  const data = await readEvalData(ctx, cfg, plan);
  const { ruleJudges, judgeRefs } = await loadJudges(ctx, cfg, plan, warnings);

  const total = plan.models.length + 2;
  let step = 0;
  const progress = (message: string) => ctx.progress({ step: ++step, total, message });
  const sampling: SamplingSettings = { temperature: cfg.sampling.temperature, top_k: cfg.sampling.top_k || null, top_p: cfg.sampling.top_p < 1 ? cfg.sampling.top_p : null, max_new_tokens: cfg.sampling.max_new_tokens, seed: cfg.sampling.seed ?? deriveSeed(ctx.seed, 'eval-sampling') };
  const sampled = await sampleAndScore(ctx, cfg, plan, data, rule, sampling, warnings, progress);

  const verdicts = new Verdicts(plan.models.filter((m) => m.role === 'baseline'), data.prompts.length, cfg.tie_epsilon);
  await judgeWithRules(ruleJudges, plan.models, data.prompts, sampled.responses, verdicts);
  const rewardModelPairs = await judgeWithRewardModels(ctx, cfg, plan, data, sampled.responses, verdicts);
  progress('judged');
  ctx.log.info(`eval: sampled and judged ${data.prompts.length} prompt(s) with ${plan.models.length} model(s)`);

  return {
    schema: EVAL_STATE_SCHEMA,
    fingerprint: stateFingerprint(ctx, cfg),
    sampling,
    backend: backend.name,
    models: plan.models,
    reference: plan.referenceM ? { artifactId: plan.referenceM.id, name: plan.referenceM.name } : null,
    datasets: data.datasets,
    judges: judgeRefs,
    prompts: data.prompts,
    responses: sampled.responses,
    judgments: verdicts.judgments,
    scores: verdicts.scores,
    kl: sampled.kl,
    heldOut: sampled.heldOut,
    implicit: sampled.implicit,
    rewardModelPairs,
    contamination: data.contamination,
    warnings,
  };
}

/** The saved state of an earlier invocation of this stage, checked against this one's inputs. */
async function loadState(ctx: StageContext, m: ArtifactManifest, fingerprint: string): Promise<EvalState> {
  let st: EvalState;
  try {
    st = JSON.parse((await ctx.store.readFile(m.id, EVAL_STATE_FILE)).toString('utf8')) as EvalState;
  } catch (e) {
    throw new AlignflowError('integrity', `eval stage ${ctx.stageName}: its saved samples (checkpoint ${m.id}) cannot be read: ${(e as Error).message}`);
  }
  if (st.schema !== EVAL_STATE_SCHEMA || st.fingerprint !== fingerprint) {
    throw new AlignflowError('integrity', `eval stage ${ctx.stageName}: checkpoint ${m.id} was saved for other inputs or another config; its label batch belongs to those samples (run the stage again with --force)`);
  }
  return st;
}

// JSON has no NaN/Infinity: they are stored as null (read back as "no value").
const stateJson = (st: EvalState) => JSON.stringify(st, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v));

export const evalStage: StageHandler<EvalConfig> = {
  kind: 'eval',
  configSchema: evalConfigSchema as unknown as z.ZodType<EvalConfig>,
  heavy: true,
  async run(rawCtx): Promise<StageOutcome> {
    const ctx = rawCtx as EvalStageContext;
    const cfg = evalConfigSchema.parse(ctx.config ?? {});
    const human = cfg.judges.find((j): j is HumanJudgeConfig => j.type === 'human');
    if (!human) return finish(ctx, cfg, await gather(ctx, cfg), []);

    // ---- human judge: sample once, then wait for the labels
    const port = requireLabeling(ctx.labeling);
    const fingerprint = stateFingerprint(ctx, cfg);
    const saved = await ctx.latestCheckpoint();
    let st: EvalState;
    if (saved) {
      st = await loadState(ctx, saved.artifact, fingerprint);
    } else {
      st = await gather(ctx, cfg);
      // Saved before the batch is filled: a crash in between re-plans the same pairs (same ids).
      await ctx.saveCheckpoint(0, {
        kind: 'checkpoint',
        name: `${ctx.stageName} samples`,
        files: [{ path: EVAL_STATE_FILE, data: Buffer.from(stateJson(st)) }],
        metadata: { evalState: EVAL_STATE_SCHEMA, fingerprint },
        inputs: st.models.map((m) => ({ artifactId: m.artifactId, role: m.role === 'candidate' ? 'model' : `baseline_${m.label}` })),
      });
    }
    const candidate = st.models.find((m) => m.role === 'candidate')!;
    const { plan, pairs } = planHumanPairs({
      stageId: ctx.stageId,
      seed: deriveSeed(ctx.seed, 'eval-human-sides'),
      prompts: st.prompts,
      responses: st.responses,
      candidate,
      baselines: st.models.filter((m) => m.role === 'baseline'),
      sampling: { temperature: st.sampling.temperature, top_k: st.sampling.top_k, top_p: st.sampling.top_p, max_new_tokens: st.sampling.max_new_tokens },
      samplingSeed: st.sampling.seed,
    });
    const batch = await port.ensureBatch({
      runId: ctx.runId,
      stageId: ctx.stageId,
      name: `${ctx.stageName} (${ctx.runId})`,
      guidelines: human.guidelines,
      quota: human.quota,
      goldRate: 0,
      leaseSeconds: human.lease_seconds,
    });
    if (batch.status === 'open') {
      const fill = await port.fillBatch(batch.id, pairs, { seed: deriveSeed(ctx.seed, 'eval-human-queue') });
      if (!fill.alreadyFilled && fill.added) ctx.log.info(`eval: label batch ${batch.id} holds ${fill.added} comparisons (${plan.identical.length} identical answer pair(s) are ties without asking)`);
    }
    const hs = await checkHumanBatch(ctx, port, batch.id, human.poll_ms);
    if (!hs.finished) return hs.outcome;
    const p = hs.progress;
    const raw = await port.rawLabels(batch.id);
    const hj = humanJudgments(human.name, plan, raw);
    ctx.log.info(`eval: ${hj.labels} human label(s) in (batch ${hs.reason === 'closed' ? 'closed by an admin' : 'complete'}); building the report from the samples saved in checkpoint ${saved?.artifact.id ?? '(this invocation)'}`);
    const annotators = new Set(raw.filter((l) => !l.is_gold).map((l) => l.annotator));
    const extra: ReportWarning[] = [];
    if (hj.unlabeled > 0) extra.push({ code: 'other', severity: 'warn', message: `The human label batch was closed with ${hj.unlabeled} of ${plan.entries.length} comparison(s) unlabeled; they are left out of the "${human.name}" win rate.` });
    if (plan.identical.length > 0) extra.push({ code: 'other', severity: 'info', message: `${plan.identical.length} comparison(s) where the candidate and the baseline gave the same answer counted as ties for "${human.name}" without asking labelers.` });
    st.judges.push({ name: human.name, kind: 'human', version: `batch:${batch.id}`, pairwise: false, source: `label batch ${batch.id}: ${hj.labels} label(s) by ${annotators.size} annotator(s), quota ${p.quota}, ${hs.reason === 'closed' ? 'closed by an admin' : 'quota reached'}` });
    st.judgments.push(...hj.judgments);
    return finish(ctx, cfg, st, extra, { batchId: batch.id, labels: hj.labels, unlabeled: hj.unlabeled });
  },
};

async function finish(ctx: EvalStageContext, cfg: EvalConfig, st: EvalState, extraWarnings: ReportWarning[], humanSummary?: Record<string, unknown>): Promise<StageOutcome> {
  const inputs = ctx.inputs;
  const rmRoles = Object.keys(inputs).filter((r) => r === 'reward_model' || r.startsWith('reward_model_')).sort();
  const warnings = [...st.warnings, ...extraWarnings];
  // ---- history from the orchestrator (optional)
  let history: RunHistory = { curves: [] };
  if (typeof ctx.history === 'function') {
    try {
      history = await ctx.history();
    } catch (e) {
      warnings.push({ code: 'missing_curves', severity: 'warn', message: `Training curves could not be read: ${(e as Error).message}` });
    }
  }
  for (const w of history.warnings ?? []) warnings.push({ code: 'other', severity: 'warn', stage: w.stage, message: w.message });

  const report = buildReport({
    provenance: {
      alignflowVersion: ALIGNFLOW_VERSION,
      engineVersion: ENGINE_VERSION,
      runId: ctx.runId,
      stageId: ctx.stageId,
      stageName: ctx.stageName,
      seed: ctx.seed,
      config: cfg,
      stageConfigs: { ...(history.stageConfigs ?? {}), ...cfg.stage_configs },
      sampling: st.sampling,
      bootstrap: { resamples: cfg.bootstrap_resamples, seed: deriveSeed(ctx.seed, 'eval-bootstrap'), level: 0.95 },
      backend: st.backend,
    },
    models: st.models,
    reference: st.reference,
    datasets: st.datasets,
    judges: st.judges,
    prompts: st.prompts,
    responses: st.responses,
    judgments: st.judgments,
    scores: st.scores,
    kl: st.kl,
    heldOut: st.heldOut,
    implicit: st.implicit,
    rewardModelPairs: st.rewardModelPairs,
    contamination: st.contamination,
    curves: history.curves,
    warnings,
  });
  const json = JSON.stringify(report, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2);
  const html = renderReportHtml(report);
  for (const w of report.warnings) (w.severity === 'info' ? ctx.log.info : ctx.log.warn)(w.message);

  const headline: Record<string, number> = {};
  for (const r of report.summary) if (r.value !== null && Number.isFinite(r.value) && !r.display) headline[`eval/${r.key}`] = r.value;
  ctx.metrics(0, headline);
  const manifest = await ctx.store.put({
    kind: 'eval-report',
    name: `${ctx.stageName} report`,
    files: [
      { path: 'report.json', data: Buffer.from(json) },
      { path: 'report.html', data: Buffer.from(html) },
    ],
    metadata: { schema: report.schema, summary: compactSummary(report.summary), warnings: report.warnings.length },
    inputs: [
      ...st.models.map((m) => ({ artifactId: m.artifactId, role: m.role === 'candidate' ? 'model' : `baseline_${m.label}` })),
      ...st.datasets.map((d) => ({ artifactId: d.artifactId, role: d.role })),
      ...(inputs.reference ? [{ artifactId: inputs.reference.id, role: 'reference' }] : []),
      ...rmRoles.map((r) => ({ artifactId: inputs[r]!.id, role: r })),
    ].filter((x, i, a) => a.findIndex((y) => y.artifactId === x.artifactId && y.role === x.role) === i),
  });
  ctx.progress({ step: st.models.length + 2, total: st.models.length + 2, message: 'report written' });
  const summary = compactSummary(report.summary);
  return { status: 'done', outputs: { report: manifest }, summary: humanSummary ? { ...summary, human: humanSummary } : summary };
}

/** The headline figures as a flat object (artifact metadata, the reports table, the CLI). */
export function compactSummary(rows: { key: string; value: number | null; lo: number | null; hi: number | null; flag: string }[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const r of rows) out[r.key] = { value: r.value, lo: r.lo, hi: r.hi, flag: r.flag };
  return out;
}

export default evalStage;
