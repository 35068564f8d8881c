// Human labels as an eval judge. Pure: the eval stage samples every model once, plans the
// (prompt, candidate answer, baseline answer) comparisons here, puts them into a label batch through
// the labeling service, and, once the labels are in, turns them back into candidate verdicts here.
//
// Blinding: which answer is the candidate's is hidden at two levels. The stored pair puts the
// candidate on side "a" or "b" by a seeded coin flip (so "a" means nothing), and the labeling
// service shows "a" left or right at random per assignment and never gives labelers model ids.
//
// Verdicts, from the candidate's side: a label for the candidate's response is a win, for the
// baseline's a loss; `tie` and `both_bad` are ties (neither answer was preferred — the same ½ the
// win rate gives a tie, as Chatbot Arena scores its "tie" and "both are bad" votes).
// Identical answers are never sent to labelers: they are ties by construction.
import crypto from 'node:crypto';
import { Rng } from '../ml/train/rng.js';
import type { PairInput } from '../labeling/batches.js';
import type { LabelDecision } from '../store/schema.js';
import type { CandidateVerdict, Judgment } from './report-types.js';

/** One comparison sent to labelers. */
export interface HumanPlanEntry {
  pairId: string;
  baseline: string;
  prompt: number;
  /** Which stored response ("a" or "b") is the candidate's. */
  candidate: 'a' | 'b';
}

export interface HumanPlan {
  entries: HumanPlanEntry[];
  /** Comparisons whose two answers are the same text: ties, not asked. */
  identical: { baseline: string; prompt: number }[];
}

export interface PlanModel {
  label: string;
  artifactId: string;
}

/**
 * Plans the comparisons of `candidate` against each baseline on every prompt. Pair ids are derived
 * from the stage id, baseline and prompt index, so a re-planned batch (after a crash between saving
 * the samples and filling the batch) gets the same ids.
 */
export function planHumanPairs(o: {
  stageId: string;
  seed: number;
  prompts: readonly string[];
  responses: Record<string, readonly { text: string }[]>;
  candidate: PlanModel;
  baselines: readonly PlanModel[];
  sampling?: Record<string, unknown>;
  samplingSeed?: number;
}): { plan: HumanPlan; pairs: PairInput[] } {
  const rng = new Rng(o.seed);
  const entries: HumanPlanEntry[] = [];
  const identical: HumanPlan['identical'] = [];
  const pairs: PairInput[] = [];
  for (const b of o.baselines) {
    o.prompts.forEach((prompt, i) => {
      const cand = o.responses[o.candidate.label]?.[i]?.text;
      const base = o.responses[b.label]?.[i]?.text;
      if (cand === undefined || base === undefined) throw new RangeError(`planHumanPairs: no response of ${cand === undefined ? o.candidate.label : b.label} to prompt ${i}`);
      const flip = rng.next() < 0.5; // drawn for every comparison, so one tie does not shift the others' sides
      if (cand === base) {
        identical.push({ baseline: b.label, prompt: i });
        return;
      }
      const pairId = 'p-' + crypto.createHash('sha256').update(`eval-human\u0000${o.stageId}\u0000${b.label}\u0000${i}`).digest('hex').slice(0, 32);
      const c = { text: cand, modelArtifactId: o.candidate.artifactId, sampling: o.sampling ?? null, seed: o.samplingSeed ?? null };
      const x = { text: base, modelArtifactId: b.artifactId, sampling: o.sampling ?? null, seed: o.samplingSeed ?? null };
      const candidate = flip ? 'b' : 'a';
      entries.push({ pairId, baseline: b.label, prompt: i, candidate });
      pairs.push({ id: pairId, prompt, a: flip ? x : c, b: flip ? c : x });
    });
  }
  return { plan: { entries, identical }, pairs };
}

/** A label's decision (about responses a/b) as a verdict for the candidate. */
export function humanVerdict(decision: LabelDecision, candidate: 'a' | 'b'): CandidateVerdict {
  if (decision === 'tie' || decision === 'both_bad') return 'tie';
  return decision === candidate ? 'win' : 'loss';
}

export interface HumanLabel {
  pair_id: string;
  decision: LabelDecision;
  is_gold?: boolean;
}

/**
 * Judgments of the human judge: one per label (several labels of a prompt average into that
 * prompt's score, as the two orders of a pairwise judge do), one tie per identical comparison.
 * Comparisons without any label (the batch was closed early) get no judgment and are counted.
 */
export function humanJudgments(judge: string, plan: HumanPlan, labels: readonly HumanLabel[]): { judgments: Judgment[]; unlabeled: number; labels: number } {
  const byPair = new Map(plan.entries.map((e) => [e.pairId, e]));
  const seen = new Set<string>();
  const judgments: Judgment[] = [];
  let used = 0;
  for (const l of labels) {
    if (l.is_gold) continue;
    const e = byPair.get(l.pair_id);
    if (!e) continue; // not one of ours (cannot happen for a batch this stage owns)
    seen.add(e.pairId);
    used++;
    judgments.push({ judge, baseline: e.baseline, prompt: e.prompt, order: 'single', verdict: humanVerdict(l.decision, e.candidate) });
  }
  for (const t of plan.identical) judgments.push({ judge, baseline: t.baseline, prompt: t.prompt, order: 'single', verdict: 'tie' });
  judgments.sort((x, y) => x.prompt - y.prompt);
  return { judgments, unlabeled: plan.entries.filter((e) => !seen.has(e.pairId)).length, labels: used };
}
