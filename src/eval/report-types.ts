// The eval report: one JSON document (report.json in an 'eval-report' artifact) that holds every
// figure with its provenance. The HTML report, `alignflow report`, `alignflow compare` and the
// server all read this shape. Bump REPORT_SCHEMA when a field changes meaning.
import type { Interval, OrderConsistency, WinTally, Histogram } from './stats.js';
import type { LengthControlled } from './length-control.js';
import type { KlEstimate } from './kl.js';
import type { HeldOutLoss } from './perplexity.js';
import type { Contamination } from './contamination.js';
import type { ImplicitRewardMetrics } from './preference.js';
import type { Curve, ReportWarning } from './warnings.js';

export const REPORT_SCHEMA = 'alignflow.eval-report/1';

export interface ModelRef {
  /** Short unique label used throughout the report: "candidate", "sft", "round1", ... */
  label: string;
  role: 'candidate' | 'baseline';
  artifactId: string;
  name: string;
}

export interface JudgeRef {
  name: string;
  kind: 'reward_model' | 'rule' | 'human';
  version: string;
  /** Pairwise judges compare two responses (run in both orders); pointwise ones score each response. */
  pairwise: boolean;
  artifactId?: string;
  /** For rule judges: the module path and its sha256. */
  source?: string;
}

export interface DatasetRef {
  role: string;
  artifactId: string;
  name: string;
  records: number;
}

export interface SamplingSettings {
  temperature: number;
  top_k: number | null;
  top_p: number | null;
  max_new_tokens: number;
  seed: number;
}

export type CandidateVerdict = 'win' | 'tie' | 'loss' | 'error';

export interface Judgment {
  judge: string;
  baseline: string;
  prompt: number;
  /** forward: candidate shown first (as "a"); backward: baseline first; single: a pointwise judge. */
  order: 'forward' | 'backward' | 'single';
  /** From the candidate's side. */
  verdict: CandidateVerdict;
  error?: string;
  /** Pointwise judges: the two scores compared. */
  scores?: { candidate: number; baseline: number };
}

export interface ComparisonResult {
  baseline: string;
  judge: string;
  /** Win rate, ties ½, with a percentile-bootstrap 95% interval over prompts. */
  winRate: Interval & WinTally;
  /** Length-controlled win rate (AlpacaEval 2) with a bootstrap interval. */
  lcWinRate: LengthControlled & { lo: number; hi: number };
  orderConsistency: OrderConsistency | null;
  meanLength: { candidate: number; baseline: number };
  /** The first judge errors, for the report; the count is winRate.errors. */
  errorExamples: { prompt: number; order: string; message: string }[];
  flag: Flag;
}

export type Flag = 'better' | 'worse' | 'neutral';

export interface ModelStats {
  label: string;
  /** Mean response length in characters, and in tokens when known. */
  meanLength: number;
  meanTokens: number | null;
  /** Mean score by each pointwise judge, with a bootstrap interval over prompts. */
  rewards: { judge: string; mean: Interval; histogram: Histogram }[];
  /** KL(model ‖ reference) on the model's own samples. Null when not computed. */
  kl: KlEstimate | null;
  heldOut: HeldOutLoss | null;
  /** The policy's implicit reward on the eval preference pairs (needs the reference). */
  implicitReward: (ImplicitRewardMetrics & { accuracyCI: Interval; marginCI: Interval }) | null;
}

export interface SampleRow {
  prompt: number;
  text: string;
  contaminated: boolean;
  responses: Record<string, { text: string; length: number; tokens: number | null; scores: Record<string, number> }>;
  judgments: Judgment[];
}

export interface SummaryRow {
  /** Stable key, used by compare and as the HTML data attribute. */
  key: string;
  label: string;
  /** One line for a reader who has never seen alignflow. */
  explain: string;
  value: number | null;
  lo: number | null;
  hi: number | null;
  /** The same figure for the baseline, when it has one. */
  baselineValue: number | null;
  flag: Flag;
  higherIsBetter: boolean | null;
  /** Shown instead of the formatted value (e.g. "19 / 18 / 3 / 0" for counts). */
  display?: string;
}

export interface EvalReport {
  schema: typeof REPORT_SCHEMA;
  createdAt: string;
  provenance: {
    alignflowVersion: string;
    engineVersion: string;
    runId: string;
    stageId: string;
    stageName: string;
    seed: number;
    config: unknown;
    /** Configs of the upstream stages (by stage name), when the orchestrator provides them. */
    stageConfigs: Record<string, unknown>;
    sampling: SamplingSettings;
    bootstrap: { resamples: number; seed: number; level: number };
    backend: string | null;
  };
  models: ModelRef[];
  reference: { artifactId: string; name: string } | null;
  datasets: DatasetRef[];
  judges: JudgeRef[];
  comparisons: ComparisonResult[];
  modelStats: ModelStats[];
  rewardModelAccuracy: { judge: string; accuracy: number; margin: number; pairs: number; accuracyCI: Interval }[];
  contamination: Contamination | null;
  summary: SummaryRow[];
  curves: Curve[];
  warnings: ReportWarning[];
  samples: SampleRow[];
}
