// Turns the raw material of an evaluation (responses, judgments, log-probs) into the report's
// figures. Pure: the eval stage gathers the raw data with the engine and calls this; tests call it
// with synthetic data.
import { bootstrap, histogram, mean, orderConsistency, verdictScore, winRateCI, type Verdict } from './stats.js';
import { lengthControlledWinRate } from './length-control.js';
import { estimateKl, type KlSample } from './kl.js';
import { heldOutLoss } from './perplexity.js';
import { implicitRewardMetrics, pairImplicitRewards, rewardModelAccuracy, sigmoidRule, type PairLogps } from './preference.js';
import type { ImplicitRewardRule } from '../ml/losses/dpo.js';
import type { Contamination } from './contamination.js';
import { trainingWarnings, type Curve, type ReportWarning } from './warnings.js';
import {
  REPORT_SCHEMA,
  type ComparisonResult, type DatasetRef, type EvalReport, type Flag, type JudgeRef, type Judgment, type ModelRef,
  type ModelStats, type SampleRow, type SummaryRow,
} from './report-types.js';

export interface RawEval {
  provenance: EvalReport['provenance'];
  createdAt?: string;
  models: ModelRef[]; // the candidate first
  reference: EvalReport['reference'];
  datasets: DatasetRef[];
  judges: JudgeRef[];
  prompts: string[];
  /** responses[label][promptIndex] */
  responses: Record<string, { text: string; tokens: number | null }[]>;
  judgments: Judgment[];
  /** Pointwise scores: scores[judge][label][promptIndex]. */
  scores: Record<string, Record<string, (number | null)[]>>;
  kl?: Record<string, KlSample[]>;
  heldOut?: Record<string, { logp: number; tokens: number }[]>;
  /** `rule` absent (states written before it was recorded): the sigmoid-DPO rule with `beta`. */
  implicit?: Record<string, { pairs: PairLogps[]; beta: number; rule?: ImplicitRewardRule }>;
  rewardModelPairs?: Record<string, { chosen: number; rejected: number }[]>;
  contamination: Contamination | null;
  curves: Curve[];
  warnings: ReportWarning[];
  /** How many judge errors to keep as examples per comparison. */
  errorExamples?: number;
}

/** Implicit-reward metrics with bootstrap intervals over pairs for accuracy and margin. */
function implicitWithCI(pairs: PairLogps[], rule: ImplicitRewardRule, bs: { resamples: number; seed: number; level: number }) {
  const m = implicitRewardMetrics(pairs, rule);
  const r = pairImplicitRewards(pairs, rule);
  const margins = r.chosen.map((c, i) => c - r.rejected[i]!);
  return { ...m, accuracyCI: bootstrap(margins.map((x) => (x > 0 ? 1 : 0)), mean, bs), marginCI: bootstrap(margins, mean, bs) };
}

const flagFromInterval = (lo: number, hi: number, null_: number): Flag => (lo > null_ ? 'better' : hi < null_ ? 'worse' : 'neutral');
const num = (x: number | undefined | null): number | null => (x === undefined || x === null || !Number.isFinite(x) ? null : x);

export function buildReport(raw: RawEval): EvalReport {
  const { resamples, seed, level } = raw.provenance.bootstrap;
  const bs = { resamples, seed, level };
  const candidate = raw.models.find((m) => m.role === 'candidate');
  if (!candidate) throw new RangeError('buildReport: no candidate model');
  const baselines = raw.models.filter((m) => m.role === 'baseline');
  const n = raw.prompts.length;
  const lengthOf = (label: string, i: number) => raw.responses[label]?.[i]?.text.length ?? 0;

  const comparisons: ComparisonResult[] = [];
  for (const b of baselines) {
    for (const j of raw.judges) {
      const js = raw.judgments.filter((x) => x.baseline === b.label && x.judge === j.name);
      if (js.length === 0) continue;
      const perPrompt: (Verdict | 'error')[][] = Array.from({ length: n }, () => []);
      for (const x of js) perPrompt[x.prompt]!.push(x.verdict);
      const wr = winRateCI(perPrompt, bs);
      // Length control on prompt-level preferences (the mean of the valid verdicts of each prompt).
      const units: { y: number; d: number }[] = [];
      perPrompt.forEach((vs, i) => {
        const valid = vs.filter((v): v is Verdict => v !== 'error');
        if (valid.length) units.push({ y: mean(valid.map(verdictScore)), d: lengthOf(candidate.label, i) - lengthOf(b.label, i) });
      });
      const lcOf = (u: { y: number; d: number }[]) => lengthControlledWinRate(u.map((x) => x.y), u.map((x) => x.d)).value;
      const lc = lengthControlledWinRate(units.map((x) => x.y), units.map((x) => x.d));
      const lcCi = bootstrap(units, lcOf, bs);
      let oc = null;
      if (j.pairwise) {
        const byPrompt = new Map<number, { forward: Verdict | 'error'; backward: Verdict | 'error' }>();
        for (const x of js) {
          if (x.order === 'single') continue;
          const e = byPrompt.get(x.prompt) ?? { forward: 'error', backward: 'error' };
          e[x.order] = x.verdict;
          byPrompt.set(x.prompt, e);
        }
        oc = orderConsistency([...byPrompt.values()]);
      }
      const idx = [...new Set(js.map((x) => x.prompt))];
      comparisons.push({
        baseline: b.label,
        judge: j.name,
        winRate: wr,
        lcWinRate: { ...lc, lo: lcCi.lo, hi: lcCi.hi },
        orderConsistency: oc,
        meanLength: { candidate: mean(idx.map((i) => lengthOf(candidate.label, i))), baseline: mean(idx.map((i) => lengthOf(b.label, i))) },
        errorExamples: js.filter((x) => x.verdict === 'error').slice(0, raw.errorExamples ?? 10).map((x) => ({ prompt: x.prompt, order: x.order, message: x.error ?? 'invalid verdict' })),
        flag: flagFromInterval(wr.lo, wr.hi, 0.5),
      });
    }
  }

  // Shared histogram range per judge so candidate and baselines line up.
  const modelStats: ModelStats[] = raw.models.map((m) => {
    const rs = raw.responses[m.label] ?? [];
    const toks = rs.map((r) => r.tokens).filter((t): t is number => t !== null);
    const rewards = Object.entries(raw.scores).flatMap(([judge, byModel]) => {
      const xs = (byModel[m.label] ?? []).filter((x): x is number => x !== null && Number.isFinite(x));
      if (xs.length === 0) return [];
      const all = Object.values(byModel).flat().filter((x): x is number => x !== null && Number.isFinite(x));
      return [{ judge, mean: bootstrap(xs, mean, bs), histogram: histogram(xs, 20, [Math.min(...all), Math.max(...all)]) }];
    });
    const klS = raw.kl?.[m.label];
    const ho = raw.heldOut?.[m.label];
    const imp = raw.implicit?.[m.label];
    return {
      label: m.label,
      meanLength: mean(rs.map((r) => r.text.length)),
      meanTokens: toks.length ? mean(toks) : null,
      rewards,
      kl: klS && klS.length ? estimateKl(klS, bs) : null,
      heldOut: ho && ho.length ? heldOutLoss(ho) : null,
      implicitReward: imp && imp.pairs.length ? implicitWithCI(imp.pairs, imp.rule ?? sigmoidRule(imp.beta), bs) : null,
    };
  });

  const rmAcc = Object.entries(raw.rewardModelPairs ?? {}).map(([judge, s]) => ({
    judge,
    ...rewardModelAccuracy(s),
    accuracyCI: bootstrap(s.map((x) => (x.chosen > x.rejected ? 1 : 0)), mean, bs),
  }));

  const warnings: ReportWarning[] = [...raw.warnings, ...trainingWarnings(raw.curves)];
  if (raw.contamination && raw.contamination.overlapping > 0) {
    warnings.unshift({ code: 'contamination', severity: 'warn', message: `Contamination: ${raw.contamination.overlapping} of ${raw.contamination.evalPrompts} eval prompts (${(100 * raw.contamination.rate).toFixed(1)}%) also appear in the training prompts; their results overstate generalisation.` });
  }
  for (const c of comparisons) {
    if (c.winRate.errors > 0) {
      warnings.push({ code: 'judge_errors', severity: 'error', message: `Judge "${c.judge}" failed ${c.winRate.errors} comparison(s) against ${c.baseline} (not counted as ties; first: ${c.errorExamples[0]?.message ?? '?'}).` });
    }
    if (c.orderConsistency && c.orderConsistency.n > 0 && c.orderConsistency.rate < 0.8) {
      warnings.push({ code: 'order_inconsistency', severity: 'warn', message: `Judge "${c.judge}" gave the same verdict in both orders on only ${(100 * c.orderConsistency.rate).toFixed(0)}% of prompts: it is biased by position.` });
    }
  }
  if (raw.curves.length === 0) warnings.push({ code: 'missing_curves', severity: 'info', message: 'No training curves were available to this evaluation.' });

  // The same warning can come from a stage's log and from the curves: keep one.
  const seen = new Set<string>();
  const uniqueWarnings = warnings.filter((w) => (seen.has(w.message) ? false : (seen.add(w.message), true)));

  const contaminated = new Set(raw.contamination?.indices ?? []);
  const samples: SampleRow[] = raw.prompts.map((text, i) => ({
    prompt: i,
    text,
    contaminated: contaminated.has(i),
    responses: Object.fromEntries(raw.models.map((m) => {
      const r = raw.responses[m.label]?.[i];
      const scores: Record<string, number> = {};
      for (const [judge, byModel] of Object.entries(raw.scores)) {
        const s = byModel[m.label]?.[i];
        if (s !== null && s !== undefined && Number.isFinite(s)) scores[judge] = s;
      }
      return [m.label, { text: r?.text ?? '', length: r?.text.length ?? 0, tokens: r?.tokens ?? null, scores }];
    })),
    judgments: raw.judgments.filter((x) => x.prompt === i),
  }));

  const report: EvalReport = {
    schema: REPORT_SCHEMA,
    createdAt: raw.createdAt ?? new Date().toISOString(),
    provenance: raw.provenance,
    models: raw.models,
    reference: raw.reference,
    datasets: raw.datasets,
    judges: raw.judges,
    comparisons,
    modelStats,
    rewardModelAccuracy: rmAcc,
    contamination: raw.contamination,
    summary: [],
    curves: raw.curves,
    warnings: uniqueWarnings,
    samples,
  };
  report.summary = summaryRows(report);
  return report;
}

/** The summary table: every headline figure with its interval and a flag against the baseline. */
export function summaryRows(r: EvalReport): SummaryRow[] {
  const rows: SummaryRow[] = [];
  const cand = r.models.find((m) => m.role === 'candidate')!;
  const stats = (label: string) => r.modelStats.find((s) => s.label === label);
  const firstBaseline = r.models.find((m) => m.role === 'baseline');
  for (const c of r.comparisons) {
    rows.push({
      key: `win_rate/${c.baseline}/${c.judge}`,
      label: `Win rate vs ${c.baseline} (${c.judge})`,
      explain: `Share of eval prompts where the ${c.judge} judge preferred the candidate's answer over ${c.baseline}'s (ties count ½); green if the whole 95% interval is above 0.5.`,
      value: num(c.winRate.value), lo: num(c.winRate.lo), hi: num(c.winRate.hi), baselineValue: 0.5, flag: c.flag, higherIsBetter: true,
    });
    rows.push({
      key: `lc_win_rate/${c.baseline}/${c.judge}`,
      label: `Length-controlled win rate vs ${c.baseline} (${c.judge})`,
      explain: 'The win rate predicted if both answers had the same length, which removes a judge\'s taste for longer answers (AlpacaEval 2 method).',
      value: num(c.lcWinRate.value), lo: num(c.lcWinRate.lo), hi: num(c.lcWinRate.hi), baselineValue: 0.5,
      flag: flagFromInterval(c.lcWinRate.lo, c.lcWinRate.hi, 0.5), higherIsBetter: true,
    });
    rows.push({
      key: `wins_ties_losses/${c.baseline}/${c.judge}`,
      label: `Wins / ties / losses / judge errors vs ${c.baseline} (${c.judge})`,
      explain: `Counts of individual comparisons${c.orderConsistency ? ' (each prompt judged in both orders)' : ''}; judge errors are excluded from the win rate, never counted as ties.`,
      value: c.winRate.wins, lo: null, hi: null, baselineValue: null, flag: c.winRate.errors > 0 ? 'worse' : 'neutral', higherIsBetter: null,
      display: `${c.winRate.wins} / ${c.winRate.ties} / ${c.winRate.losses} / ${c.winRate.errors}`,
    });
    if (c.orderConsistency) {
      rows.push({
        key: `order_consistency/${c.baseline}/${c.judge}`,
        label: `Order consistency of ${c.judge} vs ${c.baseline}`,
        explain: 'Share of prompts where the pairwise judge gave the same verdict with the answers shown in either order; low values mean a position bias.',
        value: num(c.orderConsistency.rate), lo: null, hi: null, baselineValue: null, flag: c.orderConsistency.rate < 0.8 ? 'worse' : 'neutral', higherIsBetter: true,
      });
    }
  }
  const cs = stats(cand.label);
  const bsStats = firstBaseline ? stats(firstBaseline.label) : undefined;
  for (const rw of cs?.rewards ?? []) {
    const b = bsStats?.rewards.find((x) => x.judge === rw.judge);
    rows.push({
      key: `reward/${rw.judge}`,
      label: `Mean score by ${rw.judge}`,
      explain: `Average score the ${rw.judge} judge gave the candidate's answers (95% interval over prompts), beside ${firstBaseline?.label ?? 'the baseline'}'s.`,
      value: num(rw.mean.value), lo: num(rw.mean.lo), hi: num(rw.mean.hi), baselineValue: num(b?.mean.value),
      flag: b ? flagFromInterval(rw.mean.lo, rw.mean.hi, b.mean.value) : 'neutral', higherIsBetter: true,
    });
  }
  if (cs?.kl) {
    rows.push({
      key: 'kl',
      label: 'KL(candidate ‖ reference), nats per answer',
      explain: 'How far the candidate drifted from the reference model on its own answers (mean log-probability ratio); 0 means unchanged, large values mean it may have over-optimised.',
      value: num(cs.kl.k1.value), lo: num(cs.kl.k1.lo), hi: num(cs.kl.k1.hi), baselineValue: num(bsStats?.kl?.k1.value), flag: 'neutral', higherIsBetter: null,
    });
    rows.push({
      key: 'kl_k3',
      label: 'KL(candidate ‖ reference), k3 estimator',
      explain: 'The same KL with a lower-variance estimator that is never negative (Schulman\'s k3).',
      value: num(cs.kl.k3.value), lo: num(cs.kl.k3.lo), hi: num(cs.kl.k3.hi), baselineValue: num(bsStats?.kl?.k3.value), flag: 'neutral', higherIsBetter: null,
    });
  }
  if (cs?.implicitReward) {
    const ir = cs.implicitReward;
    rows.push({
      key: 'eval_rewards/accuracies',
      label: 'eval_rewards/accuracies',
      explain: 'On held-out preference pairs, the share where the candidate raised the preferred answer\'s likelihood (relative to the reference) more than the rejected one\'s.',
      value: num(ir['eval_rewards/accuracies']), lo: num(ir.accuracyCI.lo), hi: num(ir.accuracyCI.hi), baselineValue: 0.5, flag: flagFromInterval(ir.accuracyCI.lo, ir.accuracyCI.hi, 0.5), higherIsBetter: true,
    });
    rows.push({
      key: 'eval_rewards/margins',
      label: 'eval_rewards/margins',
      explain: `Mean implicit-reward gap β·Δlog-ratio between preferred and rejected answers on held-out pairs (β = ${ir.beta}).`,
      value: num(ir['eval_rewards/margins']), lo: num(ir.marginCI.lo), hi: num(ir.marginCI.hi), baselineValue: 0, flag: flagFromInterval(ir.marginCI.lo, ir.marginCI.hi, 0), higherIsBetter: true,
    });
    rows.push({ key: 'eval_rewards/chosen', label: 'eval_rewards/chosen', explain: 'Mean implicit reward of the preferred answers.', value: num(ir['eval_rewards/chosen']), lo: null, hi: null, baselineValue: null, flag: 'neutral', higherIsBetter: null });
    rows.push({ key: 'eval_rewards/rejected', label: 'eval_rewards/rejected', explain: 'Mean implicit reward of the rejected answers.', value: num(ir['eval_rewards/rejected']), lo: null, hi: null, baselineValue: null, flag: 'neutral', higherIsBetter: null });
  }
  for (const rm of r.rewardModelAccuracy) {
    rows.push({
      key: `rm_accuracy/${rm.judge}`,
      label: `Reward-model accuracy (${rm.judge})`,
      explain: 'Share of held-out preference pairs where the reward model scored the preferred answer higher.',
      value: num(rm.accuracy), lo: num(rm.accuracyCI.lo), hi: num(rm.accuracyCI.hi), baselineValue: 0.5, flag: flagFromInterval(rm.accuracyCI.lo, rm.accuracyCI.hi, 0.5), higherIsBetter: true,
    });
  }
  if (cs?.heldOut) {
    const b = bsStats?.heldOut;
    rows.push({
      key: 'heldout_loss',
      label: 'Held-out SFT loss (nats/token)',
      explain: 'Average negative log-likelihood of held-out reference texts; a rise against the baseline means lost language-modelling capability.',
      value: num(cs.heldOut.loss), lo: null, hi: null, baselineValue: num(b?.loss),
      flag: b ? (cs.heldOut.loss > b.loss + 0.05 ? 'worse' : cs.heldOut.loss < b.loss - 0.05 ? 'better' : 'neutral') : 'neutral', higherIsBetter: false,
    });
    rows.push({
      key: 'perplexity',
      label: 'Held-out perplexity',
      explain: 'exp(held-out loss): the effective number of equally likely next tokens; lower is better.',
      value: num(cs.heldOut.perplexity), lo: null, hi: null, baselineValue: num(b?.perplexity), flag: 'neutral', higherIsBetter: false,
    });
  }
  if (cs) {
    rows.push({
      key: 'mean_length',
      label: 'Mean answer length (characters)',
      explain: 'Average length of the candidate\'s answers beside the baseline\'s: a large rise can inflate judge preferences.',
      value: num(cs.meanLength), lo: null, hi: null, baselineValue: num(bsStats?.meanLength), flag: 'neutral', higherIsBetter: null,
    });
  }
  if (r.contamination) {
    rows.push({
      key: 'contamination',
      label: 'Eval prompts also in training',
      explain: 'Eval prompts that appear (after normalising case and spaces) among the training prompts; should be 0.',
      value: r.contamination.overlapping, lo: null, hi: null, baselineValue: null, flag: r.contamination.overlapping > 0 ? 'worse' : 'neutral', higherIsBetter: false,
    });
  }
  return rows;
}
