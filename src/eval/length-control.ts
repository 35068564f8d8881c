// Length-controlled win rate, after AlpacaEval 2 (Dubois et al. 2024, "Length-Controlled
// AlpacaEval: A Simple Way to Debias Automatic Evaluators", §3). Judges tend to prefer longer
// answers; we fit a logistic regression of the judge's preference for the candidate on the
// normalized length difference,
//     P(candidate preferred) = σ(θ₀ + θ₁ · tanh(Δlen / sd(Δlen))),
// and report the win rate the model predicts when the length difference is zero, i.e. σ(θ₀).
// (AlpacaEval also has an instruction-difficulty term; with one candidate against one baseline per
// prompt it is absorbed into the intercept, so we omit it.) Targets may be fractional (a tie is ½),
// which the quasi-binomial likelihood handles directly. Fitted by Newton / IRLS (McCullagh & Nelder,
// "Generalized Linear Models", §4.4), with a small ridge on θ₁ only, so that perfect separation by
// length cannot send the slope to infinity.

export interface LengthControlled {
  /** σ(θ₀): the predicted win rate at zero length difference. */
  value: number;
  intercept: number;
  slope: number;
  /** sd of the raw length difference used to normalize it. */
  lengthScale: number;
  iterations: number;
  converged: boolean;
  /** 'intercept-only' when the lengths do not vary (then value equals the raw win rate). */
  model: 'length' | 'intercept-only';
}

export interface LcOptions {
  ridge?: number; // penalty on θ₁, default 1e-4 · n
  maxIter?: number;
  tol?: number;
}

const sigmoid = (z: number) => (z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z)));
const logit = (p: number) => Math.log(p / (1 - p));

/**
 * @param y the judge's preference for the candidate per comparison: 1 win, ½ tie, 0 loss.
 * @param lenDiff candidate length − baseline length for the same comparison (tokens or characters).
 */
export function lengthControlledWinRate(y: readonly number[], lenDiff: readonly number[], opts: LcOptions = {}): LengthControlled {
  const n = y.length;
  if (n !== lenDiff.length) throw new RangeError(`lengthControlledWinRate: ${n} preferences but ${lenDiff.length} length differences`);
  if (n === 0) return { value: NaN, intercept: NaN, slope: 0, lengthScale: 0, iterations: 0, converged: false, model: 'intercept-only' };
  for (const v of y) if (!(v >= 0 && v <= 1)) throw new RangeError(`lengthControlledWinRate: preference ${v} outside [0, 1]`);
  const ybar = y.reduce((a, b) => a + b, 0) / n;
  const dm = lenDiff.reduce((a, b) => a + b, 0) / n;
  const sd = Math.sqrt(lenDiff.reduce((a, d) => a + (d - dm) * (d - dm), 0) / n);
  // Intercept-only: the MLE is logit(ȳ), so σ(θ₀) is exactly the raw rate.
  const interceptOnly = (): LengthControlled => ({
    value: ybar,
    intercept: ybar === 0 ? -Infinity : ybar === 1 ? Infinity : logit(ybar),
    slope: 0,
    lengthScale: sd,
    iterations: 0,
    converged: true,
    model: 'intercept-only',
  });
  if (!(sd > 0) || ybar === 0 || ybar === 1) return interceptOnly();

  const x = lenDiff.map((d) => Math.tanh(d / sd));
  const ridge = opts.ridge ?? 1e-4 * n;
  const maxIter = opts.maxIter ?? 100;
  const tol = opts.tol ?? 1e-10;
  let b0 = logit(ybar);
  let b1 = 0;
  let it = 0;
  let converged = false;
  for (; it < maxIter; it++) {
    // Gradient and Hessian of the penalized log-likelihood Σ[y log p + (1−y) log(1−p)] − ½λθ₁².
    let g0 = 0, g1 = -ridge * b1, h00 = 0, h01 = 0, h11 = ridge;
    for (let i = 0; i < n; i++) {
      const p = sigmoid(b0 + b1 * x[i]!);
      const r = y[i]! - p;
      const w = p * (1 - p);
      g0 += r;
      g1 += r * x[i]!;
      h00 += w;
      h01 += w * x[i]!;
      h11 += w * x[i]! * x[i]!;
    }
    const det = h00 * h11 - h01 * h01;
    if (!(det > 0)) break;
    const d0 = (h11 * g0 - h01 * g1) / det;
    const d1 = (h00 * g1 - h01 * g0) / det;
    b0 += d0;
    b1 += d1;
    if (Math.abs(d0) + Math.abs(d1) < tol) {
      converged = true;
      it++;
      break;
    }
  }
  if (!Number.isFinite(b0) || !Number.isFinite(b1)) return { ...interceptOnly(), converged: false };
  return { value: sigmoid(b0), intercept: b0, slope: b1, lengthScale: sd, iterations: it, converged, model: 'length' };
}
