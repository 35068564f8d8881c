// Quality measures over preference labels. Pure functions: no database, no clock.
import type { LabelDecision } from '../store/schema.js';

/** One label as the quality measures see it. */
export interface LabelObs {
  pairId: string;
  annotator: string;
  decision: LabelDecision;
  /** Which response was shown on the left ('a' | 'b'), when known. */
  shownLeft?: 'a' | 'b' | null;
  durationMs?: number | null;
  strength?: number | null;
}

/**
 * Krippendorff's α for nominal data.
 * Source: K. Krippendorff, "Computing Krippendorff's Alpha-Reliability" (2011), section C:
 *   coincidences o_ck = Σ_u Σ_{i≠j in u} [v_i=c][v_j=k] / (m_u − 1)  over units with m_u ≥ 2 values,
 *   n_c = Σ_k o_ck, n = Σ_c n_c,
 *   α = 1 − (n − 1) · Σ_{c≠k} o_ck / Σ_{c≠k} n_c · n_k.
 * `units` holds the values given to each unit (missing values simply absent). Returns null when
 * fewer than two pairable values exist or every value is the same (expected disagreement 0).
 */
export function krippendorffAlphaNominal(units: readonly (readonly string[])[]): number | null {
  const o = new Map<string, Map<string, number>>();
  const add = (c: string, k: string, w: number) => {
    let row = o.get(c);
    if (!row) o.set(c, (row = new Map()));
    row.set(k, (row.get(k) ?? 0) + w);
  };
  for (const u of units) {
    const m = u.length;
    if (m < 2) continue;
    for (let i = 0; i < m; i++) for (let j = 0; j < m; j++) if (i !== j) add(u[i]!, u[j]!, 1 / (m - 1));
  }
  const nc = new Map<string, number>();
  let n = 0;
  let observedOff = 0;
  for (const [c, row] of o) {
    for (const [k, w] of row) {
      nc.set(c, (nc.get(c) ?? 0) + w);
      n += w;
      if (c !== k) observedOff += w;
    }
  }
  if (n < 2) return null;
  let expectedOff = 0;
  for (const [c, a] of nc) for (const [k, b] of nc) if (c !== k) expectedOff += a * b;
  if (expectedOff === 0) return null;
  return 1 - ((n - 1) * observedOff) / expectedOff;
}

/**
 * Cohen's κ for two raters over the same items: κ = (p_o − p_e) / (1 − p_e), with p_e from each
 * rater's own marginal distribution (J. Cohen, 1960). Returns null with no items, or when p_e = 1
 * (both raters always gave the same single category: κ undefined).
 */
export function cohenKappa(pairs: readonly (readonly [string, string])[]): number | null {
  const n = pairs.length;
  if (n === 0) return null;
  let agree = 0;
  const m1 = new Map<string, number>();
  const m2 = new Map<string, number>();
  for (const [x, y] of pairs) {
    if (x === y) agree++;
    m1.set(x, (m1.get(x) ?? 0) + 1);
    m2.set(y, (m2.get(y) ?? 0) + 1);
  }
  const po = agree / n;
  let pe = 0;
  for (const [c, a] of m1) pe += (a / n) * ((m2.get(c) ?? 0) / n);
  if (pe >= 1) return null;
  return (po - pe) / (1 - pe);
}

export interface PairwiseKappa {
  a: string;
  b: string;
  items: number;
  kappa: number | null;
}

/** Cohen's κ for every pair of annotators that labeled at least `minItems` common pairs. */
export function pairwiseKappa(labels: readonly LabelObs[], minItems = 2): { pairs: PairwiseKappa[]; mean: number | null } {
  const by = new Map<string, Map<string, string>>(); // annotator → pair → decision
  for (const l of labels) {
    let m = by.get(l.annotator);
    if (!m) by.set(l.annotator, (m = new Map()));
    m.set(l.pairId, l.decision);
  }
  const names = [...by.keys()].sort();
  const out: PairwiseKappa[] = [];
  for (let i = 0; i < names.length; i++) {
    for (let j = i + 1; j < names.length; j++) {
      const A = by.get(names[i]!)!;
      const B = by.get(names[j]!)!;
      const common: [string, string][] = [];
      for (const [p, d] of A) {
        const e = B.get(p);
        if (e !== undefined) common.push([d, e]);
      }
      if (common.length >= minItems) out.push({ a: names[i]!, b: names[j]!, items: common.length, kappa: cohenKappa(common) });
    }
  }
  const defined = out.map((p) => p.kappa).filter((k): k is number => k !== null);
  return { pairs: out, mean: defined.length ? defined.reduce((s, k) => s + k, 0) / defined.length : null };
}

/** α over all labels, one unit per pair. */
export function alphaOfLabels(labels: readonly LabelObs[]): number | null {
  const units = new Map<string, string[]>();
  for (const l of labels) {
    const u = units.get(l.pairId);
    if (u) u.push(l.decision);
    else units.set(l.pairId, [l.decision]);
  }
  return krippendorffAlphaNominal([...units.values()]);
}

export interface GoldScore {
  annotator: string;
  correct: number;
  total: number;
  accuracy: number | null;
  /** Gold ranking items only: mean Kendall's τ-b to the gold ranking, over `tauLabels` labels. */
  meanTau?: number | null;
  tauLabels?: number;
}

/** Per-annotator accuracy on gold pairs (decision must equal the known answer exactly). */
export function goldAccuracy(labels: readonly LabelObs[], goldAnswers: ReadonlyMap<string, string>): GoldScore[] {
  const acc = new Map<string, { correct: number; total: number }>();
  for (const l of labels) {
    const g = goldAnswers.get(l.pairId);
    if (g === undefined) continue;
    const s = acc.get(l.annotator) ?? { correct: 0, total: 0 };
    s.total++;
    if (l.decision === g) s.correct++;
    acc.set(l.annotator, s);
  }
  return [...acc.entries()]
    .sort(([x], [y]) => (x < y ? -1 : 1))
    .map(([annotator, s]) => ({ annotator, ...s, accuracy: s.total ? s.correct / s.total : null }));
}

export interface PositionBias {
  /** Labels with a strict preference (a or b) and a known screen side. */
  decided: number;
  leftWins: number;
  /** leftWins / decided; 0.5 means no position bias. */
  leftWinRate: number | null;
  /** Normal-approximation z of leftWins against Binomial(decided, 0.5). */
  z: number | null;
}

/** The rate at which the response shown on the left wins. */
export function positionBias(labels: readonly LabelObs[]): PositionBias {
  let decided = 0;
  let leftWins = 0;
  for (const l of labels) {
    if ((l.decision !== 'a' && l.decision !== 'b') || !l.shownLeft) continue;
    decided++;
    if (l.decision === l.shownLeft) leftWins++;
  }
  return {
    decided,
    leftWins,
    leftWinRate: decided ? leftWins / decided : null,
    z: decided ? (leftWins - decided / 2) / Math.sqrt(decided / 4) : null,
  };
}

export function median(xs: readonly number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export interface AnnotatorTime {
  annotator: string;
  labels: number;
  medianMs: number | null;
  meanMs: number | null;
}

/** Time per label for each annotator (labels without a duration count, but not in the times). */
export function timePerLabel(labels: readonly LabelObs[]): AnnotatorTime[] {
  const by = new Map<string, { n: number; t: number[] }>();
  for (const l of labels) {
    const s = by.get(l.annotator) ?? { n: 0, t: [] };
    s.n++;
    if (typeof l.durationMs === 'number' && Number.isFinite(l.durationMs)) s.t.push(l.durationMs);
    by.set(l.annotator, s);
  }
  return [...by.entries()]
    .sort(([x], [y]) => (x < y ? -1 : 1))
    .map(([annotator, s]) => ({
      annotator,
      labels: s.n,
      medianMs: median(s.t),
      meanMs: s.t.length ? s.t.reduce((a, b) => a + b, 0) / s.t.length : null,
    }));
}

export interface DisputedPair {
  pairId: string;
  labels: number;
  counts: Partial<Record<LabelDecision, number>>;
  /** 1 − (largest share): 0 when unanimous, approaching 1 when every label differs. */
  disagreement: number;
}

/** Pairs with at least two labels, most disputed first (ties broken by more labels, then id). */
export function disputedPairs(labels: readonly LabelObs[], limit = 20): DisputedPair[] {
  const by = new Map<string, Partial<Record<LabelDecision, number>>>();
  for (const l of labels) {
    const c = by.get(l.pairId) ?? {};
    c[l.decision] = (c[l.decision] ?? 0) + 1;
    by.set(l.pairId, c);
  }
  const out: DisputedPair[] = [];
  for (const [pairId, counts] of by) {
    const vals = Object.values(counts) as number[];
    const n = vals.reduce((a, b) => a + b, 0);
    if (n < 2) continue;
    const disagreement = 1 - Math.max(...vals) / n;
    if (disagreement > 0) out.push({ pairId, labels: n, counts, disagreement });
  }
  out.sort((x, y) => y.disagreement - x.disagreement || y.labels - x.labels || (x.pairId < y.pairId ? -1 : 1));
  return out.slice(0, limit);
}
