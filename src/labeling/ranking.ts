// Rankings of k answers to one prompt (k-way items): their validation, how a ranking becomes
// preference pairs, the consensus of several labelers, and agreement between rankings. Pure
// functions: no database, no clock.
//
// A ranking is held two ways:
//   groups  best first, each group a list of answers that tie, e.g. [[2], [1, 3], [4]]: answer 2 is
//           best, 1 and 3 tie, 4 is last. This is what a labeler submits (answer numbers as shown).
//   ranks   one dense rank per answer, 1 = best, equal ranks tie: the same ranking is [2, 1, 2, 3]
//           (answers 1..4). This is what is stored, in item order.
//
// Pair rules (anchors: Argilla's RankingQuestion, which exports rankings as they are, and the
// pairwise decomposition of rankings in InstructGPT, Ouyang et al. 2022, section 3.5, which trains
// on all C(k,2) pairs of a ranking):
//   all           every two answers of different rank: the better-ranked one is chosen
//   best_vs_rest  the best-ranked answer(s) against every answer ranked below them
// Tied answers never form a pair: TRL's preference format (prompt / chosen / rejected) has no tie,
// the same reason the pairwise export leaves ties out.

export const pairRules = ['all', 'best_vs_rest'] as const;
export type PairRule = (typeof pairRules)[number];

/** Most answers one ranking item may hold. */
export const MAX_RANK_ANSWERS = 8;

export interface RankingIssue {
  field: string;
  reason: string;
}

/**
 * Checks that `groups` is a weak ordering of exactly the answers 1..k: every answer once, no other
 * number, no empty group. Returns the problems found (none: valid), each naming the field.
 */
export function rankingIssues(groups: unknown, k: number, field = 'ranking'): RankingIssue[] {
  if (!Array.isArray(groups)) return [{ field, reason: `must be a list of groups of answer numbers, best first (e.g. [[2], [1, 3]])` }];
  const issues: RankingIssue[] = [];
  const seen = new Map<number, number>();
  groups.forEach((g, gi) => {
    if (!Array.isArray(g) || g.length === 0) {
      issues.push({ field: `${field}[${gi}]`, reason: 'must be a non-empty list of answer numbers (answers that tie)' });
      return;
    }
    for (const x of g) {
      if (!Number.isInteger(x) || (x as number) < 1 || (x as number) > k) issues.push({ field: `${field}[${gi}]`, reason: `${JSON.stringify(x)} is not an answer of this item (answers are 1..${k})` });
      else if (seen.has(x as number)) issues.push({ field: `${field}[${gi}]`, reason: `answer ${x as number} appears twice (also in group ${seen.get(x as number)! + 1})` });
      else seen.set(x as number, gi);
    }
  });
  const missing = Array.from({ length: k }, (_, i) => i + 1).filter((n) => !seen.has(n));
  if (missing.length) issues.push({ field, reason: `every answer must be ranked; missing: ${missing.join(', ')}` });
  return issues;
}

/** Groups of 1-based answer numbers (valid, see rankingIssues) → dense ranks per answer, 0-based index. */
export function groupsToRanks(groups: readonly (readonly number[])[], k: number): number[] {
  const ranks = new Array<number>(k).fill(0);
  groups.forEach((g, gi) => {
    for (const x of g) ranks[x - 1] = gi + 1;
  });
  return ranks;
}

/** Dense ranks → groups of 0-based answer indices, best first. */
export function ranksToGroups(ranks: readonly number[]): number[][] {
  const levels = [...new Set(ranks)].sort((a, b) => a - b);
  return levels.map((r) => ranks.flatMap((x, i) => (x === r ? [i] : [])));
}

/** Any ranks (smaller is better; any real numbers) → dense ranks 1..m. */
export function denseRanks(scores: readonly number[]): number[] {
  const levels = [...new Set(scores)].sort((a, b) => a - b);
  return scores.map((s) => levels.indexOf(s) + 1);
}

/**
 * The preference pairs a ranking induces under a rule: [chosen, rejected] answer indices, in a
 * fixed order (by chosen index, then rejected index). Ties produce no pair.
 */
export function inducePairs(ranks: readonly number[], rule: PairRule): [number, number][] {
  const out: [number, number][] = [];
  const best = Math.min(...ranks);
  for (let i = 0; i < ranks.length; i++) {
    if (rule === 'best_vs_rest' && ranks[i] !== best) continue;
    for (let j = 0; j < ranks.length; j++) if (ranks[i]! < ranks[j]!) out.push([i, j]);
  }
  return out;
}

/**
 * One ranking from several labelers' rankings of the same answers: answers ordered by their mean
 * rank (a Borda count), equal means tie. With one labeler it is that labeler's ranking.
 */
export function consensusRanks(rankings: readonly (readonly number[])[]): number[] {
  if (rankings.length === 0) return [];
  const k = rankings[0]!.length;
  const mean = Array.from({ length: k }, (_, i) => rankings.reduce((s, r) => s + r[i]!, 0) / rankings.length);
  // Rounded so that means equal in exact arithmetic compare equal.
  return denseRanks(mean.map((m) => Math.round(m * 1e9) / 1e9));
}

/**
 * Kendall's τ-b between two rankings of the same answers (Kendall 1945, ties adjusted):
 *   τ_b = (C − D) / √((n₀ − T₁)(n₀ − T₂)),  n₀ = k(k−1)/2,
 * C / D the concordant / discordant pairs, T₁ / T₂ the pairs tied in the first / second ranking.
 * Null when either ranking ties every answer (the denominator is 0).
 */
export function kendallTauB(x: readonly number[], y: readonly number[]): number | null {
  let c = 0;
  let d = 0;
  let tx = 0;
  let ty = 0;
  const k = x.length;
  for (let i = 0; i < k; i++) {
    for (let j = i + 1; j < k; j++) {
      const sx = Math.sign(x[i]! - x[j]!);
      const sy = Math.sign(y[i]! - y[j]!);
      if (sx === 0) tx++;
      if (sy === 0) ty++;
      if (sx !== 0 && sy !== 0) {
        if (sx === sy) c++;
        else d++;
      }
    }
  }
  const n0 = (k * (k - 1)) / 2;
  const den = Math.sqrt((n0 - tx) * (n0 - ty));
  return den === 0 ? null : (c - d) / den;
}

/** One ranking label as the agreement measures see it. */
export interface RankingObs {
  itemId: string;
  annotator: string;
  ranks: readonly number[];
}

export interface RankingAgreement {
  /** Mean Kendall τ-b over every two labelers' rankings of the same item; null with no such two. */
  meanTau: number | null;
  /** How many (item, labeler, labeler) comparisons the mean is over. */
  comparisons: number;
  /**
   * Over every answer pair of every item and every two labelers of it: the share where both put the
   * pair in the same order, or both tie it. Null with no item labeled twice.
   */
  pairwiseAgreement: number | null;
  /** Per two labelers: items in common and their mean τ-b. */
  byPair: { a: string; b: string; items: number; tau: number | null }[];
}

export function rankingAgreement(obs: readonly RankingObs[]): RankingAgreement {
  const byItem = new Map<string, RankingObs[]>();
  for (const o of obs) byItem.set(o.itemId, [...(byItem.get(o.itemId) ?? []), o]);
  const taus: number[] = [];
  let agree = 0;
  let pairs = 0;
  const per = new Map<string, { a: string; b: string; items: number; taus: number[] }>();
  for (const list of byItem.values()) {
    for (let p = 0; p < list.length; p++) {
      for (let q = p + 1; q < list.length; q++) {
        const [u, v] = list[p]!.annotator <= list[q]!.annotator ? [list[p]!, list[q]!] : [list[q]!, list[p]!];
        if (u.annotator === v.annotator || u.ranks.length !== v.ranks.length) continue;
        const t = kendallTauB(u.ranks, v.ranks);
        const key = `${u.annotator}\u0000${v.annotator}`;
        const e = per.get(key) ?? { a: u.annotator, b: v.annotator, items: 0, taus: [] };
        e.items++;
        if (t !== null) {
          taus.push(t);
          e.taus.push(t);
        }
        per.set(key, e);
        const k = u.ranks.length;
        for (let i = 0; i < k; i++) {
          for (let j = i + 1; j < k; j++) {
            pairs++;
            if (Math.sign(u.ranks[i]! - u.ranks[j]!) === Math.sign(v.ranks[i]! - v.ranks[j]!)) agree++;
          }
        }
      }
    }
  }
  const mean = (xs: number[]) => (xs.length ? xs.reduce((s, x) => s + x, 0) / xs.length : null);
  return {
    meanTau: mean(taus),
    comparisons: taus.length,
    pairwiseAgreement: pairs ? agree / pairs : null,
    byPair: [...per.values()].sort((x, y) => (x.a + x.b < y.a + y.b ? -1 : 1)).map((e) => ({ a: e.a, b: e.b, items: e.items, tau: mean(e.taus) })),
  };
}
