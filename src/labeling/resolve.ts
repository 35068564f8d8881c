// Turning several labels of one pair into one preference (or none). Pure.
import type { LabelDecision } from '../store/schema.js';

export type Resolution = 'majority' | 'strength';
export const resolutions = ['majority', 'strength'] as const;

export interface Vote {
  decision: LabelDecision;
  strength?: number | null;
}

export interface Resolved {
  /** 'a' or 'b' when one response is preferred; null when tie, both bad, or undecided. */
  winner: 'a' | 'b' | null;
  reason: 'preferred' | 'tie' | 'both_bad' | 'split' | 'no_labels';
  weights: Record<LabelDecision, number>;
}

/**
 * majority: every label is one vote for its decision (a, b, tie, both_bad).
 * strength: a vote for a or b weighs its strength (1 slightly, 2 clearly, 3 much better; 1 when
 *   not given); a tie or both-bad vote weighs 1.
 * The decision with the greatest weight wins. If it is tie or both_bad, or two decisions share the
 * greatest weight (a split), the pair yields no preference record — TRL's chosen/rejected format
 * has no place for ties, so they are excluded rather than guessed.
 */
export function resolvePair(votes: readonly Vote[], mode: Resolution = 'majority'): Resolved {
  const weights: Record<LabelDecision, number> = { a: 0, b: 0, tie: 0, both_bad: 0 };
  for (const v of votes) {
    const w = mode === 'strength' && (v.decision === 'a' || v.decision === 'b') ? clampStrength(v.strength) : 1;
    weights[v.decision] += w;
  }
  if (votes.length === 0) return { winner: null, reason: 'no_labels', weights };
  const entries = Object.entries(weights) as [LabelDecision, number][];
  const top = Math.max(...entries.map(([, w]) => w));
  const leaders = entries.filter(([, w]) => w === top).map(([d]) => d);
  if (leaders.length > 1) return { winner: null, reason: 'split', weights };
  const d = leaders[0]!;
  if (d === 'a' || d === 'b') return { winner: d, reason: 'preferred', weights };
  return { winner: null, reason: d, weights };
}

function clampStrength(s: number | null | undefined): number {
  if (s === 1 || s === 2 || s === 3) return s;
  return 1;
}
