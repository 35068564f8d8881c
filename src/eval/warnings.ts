import { detectPreferenceWarnings } from '../ml/losses/warnings.js';

// Training warnings read off the curves of earlier stages, shown at the top of the report.
//  - DPO loss stuck at ln 2: the sigmoid loss starts at −log σ(0) = ln 2 when policy = reference;
//    staying there means the policy never separated chosen from rejected.
//  - Likelihood displacement (Razin et al. 2024, "Unintentional Unalignment: Likelihood Displacement
//    in Direct Preference Optimization"): log π(chosen) falls during DPO even though the margin
//    grows, moving probability mass to responses that were in neither set.
//  (Those two come from src/ml/losses/warnings.ts.)
//  - NaN guard: a metric that reports skipped non-finite steps, or a non-finite value.

export interface Curve {
  stage: string;
  kind: string;
  metric: string;
  points: [number, number][];
}

export interface ReportWarning {
  code: 'dpo_loss_stuck' | 'likelihood_displacement' | 'nan_guard' | 'contamination' | 'judge_errors' | 'order_inconsistency' | 'missing_curves' | 'other';
  severity: 'info' | 'warn' | 'error';
  message: string;
  stage?: string;
}


export function trainingWarnings(curves: readonly Curve[]): ReportWarning[] {
  const out: ReportWarning[] = [];
  const byStage = new Map<string, Curve[]>();
  for (const c of curves) byStage.set(c.stage, [...(byStage.get(c.stage) ?? []), c]);
  for (const [stage, cs] of byStage) {
    const kind = cs[0]!.kind;
    if (kind === 'dpo') {
      // The preference helper's detectors, so training logs and the report say the same thing.
      const steps = new Map<number, Record<string, number>>();
      for (const c of cs) for (const [step, v] of c.points) steps.set(step, { ...(steps.get(step) ?? {}), [c.metric]: v });
      const history = [...steps.entries()].sort((a, b) => a[0] - b[0]).map(([step, values]) => ({ step, values }));
      for (const w of detectPreferenceWarnings(history)) {
        out.push({ code: w.code === 'loss_at_ln2' ? 'dpo_loss_stuck' : 'likelihood_displacement', severity: 'warn', stage, message: w.message });
      }
    }
    for (const c of cs) {
      const bad = c.points.filter((p) => !Number.isFinite(p[1]));
      const guard = /nan/i.test(c.metric) && c.points.some((p) => p[1] > 0);
      if (bad.length > 0 || guard) {
        out.push({ code: 'nan_guard', severity: 'error', stage, message: `NaN guard: ${guard ? `metric ${c.metric} reports ${Math.max(...c.points.map((p) => p[1]))} non-finite step(s)` : `${bad.length} non-finite value(s) of ${c.metric}`}.` });
      }
    }
  }
  return out;
}
