// Pure detectors over a stage's metric history for the two failure modes worth a warning in the
// logs and the report.
export interface MetricPoint {
  step: number;
  values: Record<string, number>;
}

export interface TrainingWarning {
  code: 'loss_at_ln2' | 'likelihood_displacement';
  step: number;
  message: string;
}

export interface WarningOptions {
  /** '' for training metrics, 'eval_' for eval ones. */
  prefix?: string;
  /** |loss − ln 2| below this counts as "at ln 2". */
  tolerance?: number;
  /** Points needed before judging (the first logged loss is always ln 2 for sigmoid/robust). */
  minPoints?: number;
  /** Nats both log-prob means must fall (first → last window) to call it displacement. */
  minDrop?: number;
}

/**
 * - loss_at_ln2: every logged loss is within `tolerance` of ln 2 (where sigmoid-type DPO starts
 *   when policy = reference): the policy never moved (learning rate, frozen weights, β tiny).
 * - likelihood_displacement: logps/chosen and logps/rejected both fell by more than `minDrop`
 *   from the first to the last tenth of the logged points (means over each tenth: training points
 *   are single batches, whose log-probs vary with the batch's lengths more than DPO moves them):
 *   the margin grows by pushing both down (Razin et al. 2024,
 *   "Unintentional Unalignment", arXiv:2410.08847; Pal et al. 2024, "Smaug", arXiv:2402.13228).
 */
export function detectPreferenceWarnings(history: readonly MetricPoint[], o: WarningOptions = {}): TrainingWarning[] {
  const p = o.prefix ?? '';
  const tol = o.tolerance ?? 1e-3;
  const minPoints = o.minPoints ?? 3;
  const minDrop = o.minDrop ?? 0.5;
  const out: TrainingWarning[] = [];
  const series = (name: string) =>
    history.filter((h) => Number.isFinite(h.values[p + name])).map((h) => ({ step: h.step, v: h.values[p + name]! }));

  const loss = series('loss');
  if (loss.length >= minPoints && loss.every((l) => Math.abs(l.v - Math.LN2) < tol)) {
    const last = loss[loss.length - 1]!;
    out.push({
      code: 'loss_at_ln2',
      step: last.step,
      message: `${p}loss has stayed at ln 2 ≈ 0.693 for ${loss.length} logged points (up to step ${last.step}): the policy has not moved from the reference (check learning rate, β, and that the policy's weights are trainable)`,
    });
  }

  const c = series('logps/chosen');
  const r = series('logps/rejected');
  if (c.length >= 2 && r.length >= 2) {
    const dc = windowDrop(c);
    const dr = windowDrop(r);
    if (dc < -minDrop && dr < -minDrop) {
      const step = Math.max(c[c.length - 1]!.step, r[r.length - 1]!.step);
      const span = c.length > 10 ? 'mean of the first tenth of the logged points → mean of the last tenth' : `step ${c[0]!.step} → ${step}`;
      out.push({
        code: 'likelihood_displacement',
        step,
        message: `likelihood displacement: ${p}logps/chosen fell by ${(-dc).toFixed(3)} and ${p}logps/rejected by ${(-dr).toFixed(3)} nats (${span}); the margin grows by lowering both — consider rpo_alpha (an SFT term on chosen), a larger β or fewer steps`,
      });
    }
  }
  return out;
}

/** Mean of the last tenth of a series minus the mean of its first tenth (at least one point each). */
function windowDrop(s: readonly { v: number }[]): number {
  const k = Math.max(1, Math.floor(s.length / 10));
  const mean = (xs: readonly { v: number }[]) => xs.reduce((a, x) => a + x.v, 0) / xs.length;
  return mean(s.slice(-k)) - mean(s.slice(0, k));
}
