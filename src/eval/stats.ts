// Win rates and their uncertainty. Pure functions, no I/O.
//
// Scoring convention (AlpacaEval, Chatbot Arena): a win counts 1, a tie ½, a loss 0, so the win
// rate is (wins + ½·ties) / (wins + ties + losses). Errors (a judge that threw or returned an
// invalid verdict) are never counted as ties: they are excluded from the rate and reported apart.
import { Rng } from '../ml/train/rng.js';

export type Verdict = 'win' | 'tie' | 'loss';

export interface Interval {
  value: number;
  lo: number;
  hi: number;
  /** 0.95 for a 95% interval. */
  level: number;
  method: 'percentile-bootstrap' | 'wilson' | 'normal' | 'none';
  /** Bootstrap resamples, when method is a bootstrap. */
  resamples?: number;
  seed?: number;
}

export const verdictScore = (v: Verdict): number => (v === 'win' ? 1 : v === 'tie' ? 0.5 : 0);

export function mean(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  let s = 0;
  for (const x of xs) s += x;
  return s / xs.length;
}

/** Sample standard deviation (n − 1). */
export function stdev(xs: readonly number[]): number {
  if (xs.length < 2) return 0;
  const m = mean(xs);
  let s = 0;
  for (const x of xs) s += (x - m) * (x - m);
  return Math.sqrt(s / (xs.length - 1));
}

/** Quantile of sorted data, linear interpolation between order statistics (R type 7 / numpy default). */
export function quantileSorted(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const h = (sorted.length - 1) * q;
  const lo = Math.floor(h);
  const hi = Math.ceil(h);
  return sorted[lo]! + (h - lo) * (sorted[hi]! - sorted[lo]!);
}

/** Inverse standard normal CDF (Acklam's rational approximation, |error| < 1.2e-9). */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) throw new RangeError(`normalQuantile needs 0 < p < 1, got ${p}`);
  const a = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
  const b = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
  const c = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
  const pl = 0.02425;
  if (p < pl) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) / ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1);
  }
  if (p > 1 - pl) return -normalQuantile(1 - p);
  const q = p - 0.5;
  const r = q * q;
  return ((((((a[0]! * r + a[1]!) * r + a[2]!) * r + a[3]!) * r + a[4]!) * r + a[5]!) * q) /
    (((((b[0]! * r + b[1]!) * r + b[2]!) * r + b[3]!) * r + b[4]!) * r + 1);
}

/** Wilson score interval for a binomial proportion (Wilson 1927); used as the analytic check. */
export function wilsonInterval(successes: number, n: number, level = 0.95): Interval {
  const z = normalQuantile(1 - (1 - level) / 2);
  const p = successes / n;
  const denom = 1 + (z * z) / n;
  const centre = (p + (z * z) / (2 * n)) / denom;
  const half = (z * Math.sqrt((p * (1 - p)) / n + (z * z) / (4 * n * n))) / denom;
  return { value: p, lo: centre - half, hi: centre + half, level, method: 'wilson' };
}

export interface BootstrapOptions {
  resamples?: number; // default 2000
  level?: number; // default 0.95
  seed?: number; // default 0
}

/**
 * Percentile bootstrap (Efron & Tibshirani 1993, ch. 13) of `stat` over units (here: prompts).
 * Resampling whole prompts keeps the two orders of a pairwise comparison, and several baselines'
 * comparisons on the same prompt, together, so their correlation is respected.
 */
export function bootstrap<T>(units: readonly T[], stat: (sample: T[]) => number, opts: BootstrapOptions = {}): Interval {
  const resamples = opts.resamples ?? 2000;
  const level = opts.level ?? 0.95;
  const seed = opts.seed ?? 0;
  const value = stat(units.slice());
  if (units.length === 0) return { value: NaN, lo: NaN, hi: NaN, level, method: 'none' };
  const rng = new Rng(seed);
  const stats: number[] = [];
  const sample: T[] = new Array(units.length);
  for (let r = 0; r < resamples; r++) {
    for (let i = 0; i < units.length; i++) sample[i] = units[rng.int(units.length)]!;
    const s = stat(sample);
    if (Number.isFinite(s)) stats.push(s);
  }
  stats.sort((x, y) => x - y);
  const alpha = (1 - level) / 2;
  return { value, lo: quantileSorted(stats, alpha), hi: quantileSorted(stats, 1 - alpha), level, method: 'percentile-bootstrap', resamples, seed };
}

export interface WinTally {
  wins: number;
  ties: number;
  losses: number;
  /** Comparisons whose judge failed: not in the rate. */
  errors: number;
  /** wins + ties + losses */
  n: number;
}

export function tally(verdicts: readonly (Verdict | 'error')[]): WinTally {
  const t: WinTally = { wins: 0, ties: 0, losses: 0, errors: 0, n: 0 };
  for (const v of verdicts) {
    if (v === 'win') t.wins++;
    else if (v === 'tie') t.ties++;
    else if (v === 'loss') t.losses++;
    else t.errors++;
  }
  t.n = t.wins + t.ties + t.losses;
  return t;
}

/** (wins + ½ ties) / n; NaN when nothing was judged. */
export function winRateOf(t: WinTally): number {
  return t.n === 0 ? NaN : (t.wins + 0.5 * t.ties) / t.n;
}

/**
 * Win rate over prompts with a 95% percentile-bootstrap interval. Each prompt's score is the mean
 * of its valid verdicts (1, ½, 0) — with both orders judged that is the average of the two — and
 * the win rate is the mean over prompts that have at least one valid verdict.
 */
export function winRateCI(perPrompt: readonly (readonly (Verdict | 'error')[])[], opts: BootstrapOptions = {}): Interval & WinTally {
  const scores: number[] = [];
  for (const vs of perPrompt) {
    const valid = vs.filter((v): v is Verdict => v !== 'error');
    if (valid.length > 0) scores.push(mean(valid.map(verdictScore)));
  }
  const t = tally(perPrompt.flat());
  const ci = bootstrap(scores, mean, opts);
  return { ...ci, ...t };
}

/** Mean with a bootstrap interval (rewards, lengths). */
export function meanCI(xs: readonly number[], opts: BootstrapOptions = {}): Interval {
  return bootstrap(xs, mean, opts);
}

export interface OrderConsistency {
  /** Prompts judged in both orders with two valid verdicts. */
  n: number;
  /** Both orders gave the same verdict about the candidate (both win, both tie, or both loss). */
  consistent: number;
  rate: number;
}

/**
 * Order consistency of a pairwise judge (Zheng et al. 2023, "Judging LLM-as-a-Judge", §3.3): each
 * comparison is made with the candidate shown first and second; verdicts are expressed from the
 * candidate's side, so an unbiased judge gives the same verdict in both orders.
 */
export function orderConsistency(pairs: readonly { forward: Verdict | 'error'; backward: Verdict | 'error' }[]): OrderConsistency {
  let n = 0;
  let consistent = 0;
  for (const p of pairs) {
    if (p.forward === 'error' || p.backward === 'error') continue;
    n++;
    if (p.forward === p.backward) consistent++;
  }
  return { n, consistent, rate: n === 0 ? NaN : consistent / n };
}

export interface Histogram {
  edges: number[]; // bins + 1 edges
  counts: number[];
}

/** Fixed-width histogram; pass a shared [min, max] so two models' histograms line up. */
export function histogram(xs: readonly number[], bins = 20, range?: [number, number]): Histogram {
  const finite = xs.filter(Number.isFinite);
  let [lo, hi] = range ?? [Math.min(...finite), Math.max(...finite)];
  if (finite.length === 0 && !range) [lo, hi] = [0, 1];
  if (hi === lo) [lo, hi] = [lo - 0.5, hi + 0.5];
  const w = (hi - lo) / bins;
  const edges = Array.from({ length: bins + 1 }, (_, i) => lo + i * w);
  const counts = new Array<number>(bins).fill(0);
  for (const x of finite) {
    if (x < lo || x > hi) continue;
    counts[Math.min(bins - 1, Math.floor((x - lo) / w))]!++;
  }
  return { edges, counts };
}
