// Several runs' eval reports side by side: the same figures in one table with deltas against the
// first run, and the per-prompt regressions between consecutive runs (prompts where the newer
// candidate lost and the older one won, against the same baseline label and judge). Prompts are
// matched by text, so runs evaluated on the same prompt set line up even if the order differs.
import type { EvalReport, SummaryRow } from './report-types.js';
import { promptOutcome } from './report-html.js';

export interface CompareRow {
  key: string;
  label: string;
  values: (number | null)[];
  /** values[i] − values[0] */
  deltas: (number | null)[];
  intervals: ([number, number] | null)[];
  higherIsBetter: boolean | null;
}

export interface Regression {
  older: string;
  newer: string;
  baseline: string;
  judge: string;
  prompts: { prompt: string; olderResponse: string; newerResponse: string; baselineResponse: string }[];
  /** Prompts judged in both runs for this comparison. */
  shared: number;
  /** And the reverse: newer won where older lost. */
  improvements: number;
}

export interface FrontierPoint {
  name: string;
  /** KL(model ‖ reference), k1, nats per answer, with its 95% interval. */
  x: number;
  xlo?: number;
  xhi?: number;
  /** Mean score of the model's answers by the judge, with its 95% interval. */
  y: number;
  ylo?: number;
  yhi?: number;
  /** No other point has KL ≤ and reward ≥ with one of them strict. */
  pareto: boolean;
}

/** The reward–KL frontier (Rafailov et al. 2023, Fig. 2): one point per report, plus the baseline at KL 0. */
export interface Frontier {
  judge: string;
  points: FrontierPoint[];
}

export interface Comparison {
  runs: string[];
  rows: CompareRow[];
  regressions: Regression[];
  /** Present when the reports have a KL and a judge's mean score. */
  frontier?: Frontier;
}

const ci = (lo: number | null, hi: number | null, k: 'x' | 'y') => (lo !== null && hi !== null ? { [`${k}lo`]: lo, [`${k}hi`]: hi } : {});

/** Marks the points no other point dominates (lower or equal KL and higher or equal reward, one strict). */
export function paretoFlags(ps: readonly { x: number; y: number }[]): boolean[] {
  return ps.map((p) => !ps.some((q) => q !== p && q.x <= p.x && q.y >= p.y && (q.x < p.x || q.y > p.y)));
}

/**
 * The reward–KL points of the reports: x = the `kl` row (k1 against the eval's reference), y = the
 * `reward/<judge>` row (the first judge of the first report unless `judge` is given). The first
 * report's baseline score is added at KL 0 when its baseline is the reference (the usual SFT).
 */
export function rewardKlFrontier(items: { runId: string; report: EvalReport }[], judge?: string): Frontier | undefined {
  const first = items[0]?.report.summary.find((r) => r.key.startsWith('reward/') && (judge === undefined || r.key === `reward/${judge}`));
  if (!first) return undefined;
  const key = first.key;
  const pts: Omit<FrontierPoint, 'pareto'>[] = [];
  if (first.baselineValue !== null) pts.push({ name: 'baseline', x: 0, y: first.baselineValue });
  for (const it of items) {
    const y = it.report.summary.find((r) => r.key === key);
    const x = it.report.summary.find((r) => r.key === 'kl');
    if (!y || !x || y.value === null || x.value === null) continue;
    pts.push({ name: it.runId, x: x.value, y: y.value, ...ci(x.lo, x.hi, 'x'), ...ci(y.lo, y.hi, 'y') });
  }
  if (pts.length < 2) return undefined;
  const flags = paretoFlags(pts);
  return { judge: key.slice('reward/'.length), points: pts.map((p, i) => ({ ...p, pareto: flags[i]! })) };
}

export function compareReports(items: { runId: string; report: EvalReport }[]): Comparison {
  const keys: { key: string; label: string; higherIsBetter: boolean | null }[] = [];
  for (const it of items) for (const r of it.report.summary) if (!keys.some((k) => k.key === r.key)) keys.push({ key: r.key, label: r.label, higherIsBetter: r.higherIsBetter });
  const rows: CompareRow[] = keys.map((k) => {
    const found: (SummaryRow | undefined)[] = items.map((it) => it.report.summary.find((r) => r.key === k.key));
    const values = found.map((r) => r?.value ?? null);
    const v0 = values[0] ?? null;
    return {
      key: k.key,
      label: k.label,
      values,
      deltas: values.map((v) => (v === null || v0 === null ? null : v - v0)),
      intervals: found.map((r) => (r && r.lo !== null && r.hi !== null ? [r.lo, r.hi] as [number, number] : null)),
      higherIsBetter: k.higherIsBetter,
    };
  });
  const regressions: Regression[] = [];
  for (let i = 1; i < items.length; i++) {
    const older = items[i - 1]!;
    const newer = items[i]!;
    for (const c of newer.report.comparisons) {
      if (!older.report.comparisons.some((o) => o.baseline === c.baseline && o.judge === c.judge)) continue;
      const oldByText = new Map(older.report.samples.map((s) => [s.text, s]));
      let shared = 0;
      let improvements = 0;
      const prompts: Regression['prompts'] = [];
      for (const s of newer.report.samples) {
        const o = oldByText.get(s.text);
        if (!o) continue;
        const on = promptOutcome(s, c.baseline, c.judge);
        const oo = promptOutcome(o, c.baseline, c.judge);
        if (on === 'none' || oo === 'none') continue;
        shared++;
        if (on === 'loss' && oo === 'win') {
          prompts.push({ prompt: s.text, olderResponse: o.responses.candidate?.text ?? '', newerResponse: s.responses.candidate?.text ?? '', baselineResponse: s.responses[c.baseline]?.text ?? '' });
        }
        if (on === 'win' && oo === 'loss') improvements++;
      }
      regressions.push({ older: older.runId, newer: newer.runId, baseline: c.baseline, judge: c.judge, prompts, shared, improvements });
    }
  }
  const frontier = rewardKlFrontier(items);
  return { runs: items.map((i) => i.runId), rows, regressions, ...(frontier ? { frontier } : {}) };
}
