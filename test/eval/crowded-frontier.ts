// A crowded reward–KL frontier for the chart tests: the shape of pipelines/frontier.yaml's eval
// stages (11 models plus the SFT baseline at KL 0), most at KL 0.2–2 with scores 0.4–0.55, two at
// the very same point, and one that drifted to KL 27 (length hacking) while the rest stay under 6.
import type { EvalReport, SummaryRow } from '../../src/eval/report-types.js';

const row = (key: string, value: number, lo: number | null, hi: number | null, baselineValue: number | null = null): SummaryRow => ({ key, label: key, explain: '', value, lo, hi, baselineValue, flag: 'neutral', higherIsBetter: null });

/** [stage, KL, mean score] */
export const CROWDED: [string, number, number][] = [
  ['eval_dpo_b005', 0.21, 0.47],
  ['eval_dpo_b01', 0.19, 0.52],
  ['eval_dpo_b03', 0.21, 0.5],
  ['eval_ipo_b01', 0.48, 0.51],
  ['eval_online_dpo_rm_b01', 0.74, 0.5],
  ['eval_online_dpo_gt_b01', 0.39, 0.46],
  ['eval_rloo_b002', 27, 0.43],
  ['eval_rloo_b005', 5.2, 0.45],
  ['eval_rloo_b02', 1.2, 0.49],
  ['eval_grpo_b005', 0.93, 0.55],
  ['eval_rloo_gt_b005', 0.2, 0.52],
  ['eval_rloo_gt_b005_seed2', 0.2, 0.52],
  ['eval_grpo_b01', 1.9, 0.53],
];

export function crowdedItems(prefix = 'frontier/'): { runId: string; report: EvalReport }[] {
  return CROWDED.map(([stage, kl, score]) => ({
    runId: prefix + stage,
    report: { summary: [row('reward/sentiment', score, score - 0.04, score + 0.04, 0.41), row('kl', kl, Math.max(-0.02, kl * 0.6 - 0.05), kl * 1.4 + 0.05)], comparisons: [], samples: [] } as unknown as EvalReport,
  }));
}
