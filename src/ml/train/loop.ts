/**
 * The generic training loop shared by SFT, the reward model and DPO.
 *
 * ```ts
 * const result = await train({
 *   params,                       // Map<string, tf.Variable> (HF names) or tf.Variable[]
 *   lossFn: (mb, { step, rng }) => ({ loss, weight, metrics }),
 *   data,                         // BatchSource<B>: next() / state() / restore() / epoch()
 *   maxSteps: 200,                // optimizer updates
 *   gradAccum: 2,                 // micro-batches per update (default 1)
 *   optimizer: { weightDecay: 0.01 },            // AdamWConfig (betas, eps, decay filter)
 *   schedule: { lr: 3e-4, kind: 'cosine', warmupSteps: 10, totalSteps: 200, minLrRatio: 0.1 },
 *   maxGradNorm: 1.0,             // clip by global norm; 0/null disables (grad_norm is pre-clip)
 *   seed: 1234,                   // the loop RNG handed to lossFn (its state is checkpointed)
 *   evalEvery: 50, evalFn: async (step) => ({ eval_loss: ... }), evalAtStart: true,
 *   checkpointEvery: 50, onCheckpoint: async (ckpt) => { ... },   // TrainerCheckpoint
 *   resume: ckpt,                 // a TrainerCheckpoint to continue from (bit-identical)
 *   onMetrics: (step, m) => {},   // TRL names: loss, grad_norm, learning_rate, epoch (+ lossFn's)
 *   onProgress: ({ step, total, metrics }) => {},
 *   signal,                       // abort: finish the current step, checkpoint, throw 'cancelled'
 * });
 * ```
 *
 * The loss contract: `lossFn` returns the SUM of per-unit losses over its micro-batch (`loss`, a
 * scalar tensor) and the number of units (`weight`: target tokens for SFT, pairs for DPO/RM). The
 * update minimises Σ loss / Σ weight over all the micro-batches of the step, so a step of 2
 * micro-batches of 4 equals one batch of 8 to float rounding, however tokens are spread between
 * them (not a mean of per-micro-batch means). `metrics` are per-micro-batch MEANS (tensors or
 * numbers); the loop averages them weighted by `weight` over the step, then over the logging
 * interval. Tensors the lossFn creates are disposed by the loop.
 *
 * Numerics: a non-finite loss or gradient norm throws AlignflowError('numeric') before the update
 * is applied; checkpoints already written are untouched (the last good one stays the latest).
 */
import * as tf from '@tensorflow/tfjs';
import { AlignflowError } from '../../errors.js';
import { AdamW, type AdamWConfig } from './optimizer.js';
import { learningRateAt, validateSchedule, type ScheduleConfig } from './schedule.js';
import { Rng } from './rng.js';
import { restoreTrainer, snapshotTrainer, type TrainerCheckpoint } from './checkpoint.js';
import { WaitingForInput, type BatchSource } from './data.js';

export interface MicroBatchOutput {
  /** Σ of per-unit losses over this micro-batch (scalar). */
  loss: tf.Scalar;
  /** Number of units summed in `loss` (tokens, pairs, ...). */
  weight: number;
  /** Per-micro-batch means, averaged by the loop weighted by `weight`. */
  metrics?: Record<string, tf.Scalar | number>;
}

export interface LossContext {
  /** Optimizer updates completed before this one. */
  step: number;
  /** The loop RNG (checkpointed); use it for any randomness in the loss. */
  rng: Rng;
  /** The micro-batch within the step (0 .. gradAccum−1). */
  microBatch: number;
}

export interface TrainProgress {
  step: number;
  total: number;
  metrics: Record<string, number>;
}

export interface TrainOptions<B> {
  params: Map<string, tf.Variable> | tf.Variable[];
  /** Only these parameter names are trained (default: all). Frozen ones are neither updated nor checkpointed. */
  trainable?: (name: string) => boolean;
  lossFn: (microBatch: B, ctx: LossContext) => MicroBatchOutput;
  data: BatchSource<B>;
  maxSteps: number;
  gradAccum?: number;
  optimizer?: AdamWConfig;
  /** totalSteps defaults to maxSteps. */
  schedule: Omit<ScheduleConfig, 'totalSteps'> & { totalSteps?: number };
  /** Default 1.0 (transformers' max_grad_norm); 0 or null: no clipping. */
  maxGradNorm?: number | null;
  seed?: number;
  /** Log (onMetrics) every N steps, averaging over them; default 1. The last step is always logged. */
  logEvery?: number;
  evalEvery?: number;
  /** Also evaluate before the first update (step 0 on a fresh run). */
  evalAtStart?: boolean;
  /** Returns eval metrics with the `eval_` prefix; `eval_loss` ranks checkpoints. */
  evalFn?: (step: number) => Promise<Record<string, number>> | Record<string, number>;
  checkpointEvery?: number;
  onCheckpoint?: (ckpt: TrainerCheckpoint) => Promise<void>;
  /** Continue from this checkpoint: weights, moments, step, RNG and data cursor are restored. */
  resume?: TrainerCheckpoint;
  /** Extra fields stored in every checkpoint's state. */
  checkpointExtra?: Record<string, unknown>;
  onMetrics?: (step: number, metrics: Record<string, number>) => void;
  onProgress?: (p: TrainProgress) => void;
  signal?: AbortSignal;
}

export interface TrainResult {
  /** Optimizer updates completed. */
  step: number;
  /** The last logged training metrics. */
  metrics: Record<string, number>;
  /** Every evaluation: step and its metrics. */
  evals: { step: number; metrics: Record<string, number> }[];
  bestEvalLoss?: number;
  /** Steps whose checkpoint was handed to onCheckpoint. */
  checkpoints: number[];
}

function toMap(params: Map<string, tf.Variable> | tf.Variable[]): Map<string, tf.Variable> {
  if (params instanceof Map) return params;
  return new Map(params.map((v, i) => [`param_${i}`, v]));
}

const tick = () => new Promise<void>((r) => setImmediate(r));

export async function train<B>(o: TrainOptions<B>): Promise<TrainResult> {
  const all = toMap(o.params);
  const params = new Map([...all].filter(([n]) => (o.trainable ? o.trainable(n) : true)));
  if (params.size === 0) throw new AlignflowError('config', 'nothing to train: no trainable parameters');
  const gradAccum = o.gradAccum ?? 1;
  if (!Number.isInteger(gradAccum) || gradAccum < 1) throw new AlignflowError('config', `gradAccum must be a positive integer, got ${gradAccum}`);
  if (!Number.isInteger(o.maxSteps) || o.maxSteps < 0) throw new AlignflowError('config', `maxSteps must be an integer ≥ 0, got ${o.maxSteps}`);
  const schedule: ScheduleConfig = { ...o.schedule, totalSteps: o.schedule.totalSteps ?? Math.max(1, o.maxSteps) };
  try {
    validateSchedule(schedule);
  } catch (e) {
    throw new AlignflowError('config', (e as Error).message);
  }
  const maxGradNorm = o.maxGradNorm === undefined ? 1.0 : o.maxGradNorm;
  const logEvery = Math.max(1, o.logEvery ?? 1);
  const names = [...params.keys()];
  const vars = names.map((n) => params.get(n)!);

  const opt = new AdamW(params, o.optimizer);
  const rng = new Rng(o.seed ?? 0);
  let step = 0;
  let bestEvalLoss: number | undefined;
  const result: TrainResult = { step: 0, metrics: {}, evals: [], checkpoints: [] };

  try {
    if (o.resume) {
      const s = o.resume.state;
      const pick = (m: Map<string, unknown>) => new Map([...m].filter(([n]) => params.has(n))) as never;
      try {
        rng.setState(s.rng);
        o.data.restore(s.data);
      } catch (e) {
        throw new AlignflowError('integrity', `checkpoint RNG/data cursor does not fit this run: ${(e as Error).message}`);
      }
      restoreTrainer({ ...o.resume, params: pick(o.resume.params) }, params, opt);
      step = s.step;
      bestEvalLoss = s.bestEvalLoss;
      result.evals.push(...(s.evals ?? []));
    }

    let lastEvalLoss: number | undefined;
    const runEval = async () => {
      if (!o.evalFn) return;
      const m = await o.evalFn(step);
      result.evals.push({ step, metrics: m });
      const el = m.eval_loss;
      lastEvalLoss = el;
      if (el !== undefined && Number.isFinite(el) && (bestEvalLoss === undefined || el < bestEvalLoss)) bestEvalLoss = el;
      o.onMetrics?.(step, m);
    };
    const checkpoint = async () => {
      if (!o.onCheckpoint) return;
      const ckpt = await snapshotTrainer(params, opt, {
        step,
        epoch: o.data.epoch(),
        schedule,
        rng: rng.state(),
        data: o.data.state(),
        ...(lastEvalLoss !== undefined ? { evalLoss: lastEvalLoss } : {}),
        ...(bestEvalLoss !== undefined ? { bestEvalLoss } : {}),
        evals: result.evals.map((e) => ({ step: e.step, metrics: { ...e.metrics } })),
        ...(o.checkpointExtra ? { extra: o.checkpointExtra } : {}),
      });
      await o.onCheckpoint(ckpt);
      result.checkpoints.push(step);
    };

    if (o.evalAtStart && !o.resume) await runEval();

    // logging-interval accumulators
    let interval: Record<string, number> = {};
    let intervalSteps = 0;

    while (step < o.maxSteps) {
      if (o.signal?.aborted) {
        if (result.checkpoints.at(-1) !== step) await checkpoint();
        throw new AlignflowError('cancelled', `training stopped at step ${step} (checkpoint kept)`);
      }
      lastEvalLoss = undefined;
      const lr = learningRateAt(schedule, opt.step);

      // --- forward/backward over the micro-batches, gradients summed (not averaged)
      let acc: tf.Tensor[] | undefined;
      let lossSum = 0;
      let weightSum = 0;
      const metricSums: Record<string, number> = {};
      const hasGrad = vars.map(() => false);
      for (let k = 0; k < gradAccum; k++) {
        // a source may produce its batches asynchronously (online DPO samples them from the policy)
        let mb: B;
        try {
          mb = await o.data.next();
        } catch (e) {
          // waiting for input (human labels): keep the step reached, so the stage resumes here
          if (e instanceof WaitingForInput && k === 0 && result.checkpoints.at(-1) !== step && o.resume?.state.step !== step) await checkpoint();
          throw e;
        }
        let out: MicroBatchOutput | undefined;
        const { value, grads } = tf.variableGrads(() => {
          out = o.lossFn(mb, { step, rng, microBatch: k });
          for (const v of Object.values(out.metrics ?? {})) if (v instanceof tf.Tensor) tf.keep(v);
          return out.loss;
        }, vars);
        const r = out!;
        const lossVal = (await value.data())[0]!;
        value.dispose();
        for (const [name, v] of Object.entries(r.metrics ?? {})) {
          let x: number;
          if (v instanceof tf.Tensor) {
            x = (await v.data())[0]!;
            v.dispose();
          } else x = v;
          metricSums[name] = (metricSums[name] ?? 0) + x * r.weight;
        }
        lossSum += lossVal;
        weightSum += r.weight;
        // a parameter the loss does not touch gets no gradient and no update (torch skips grad=None)
        vars.forEach((v, i) => {
          if (grads[v.name]) hasGrad[i] = true;
        });
        const g = vars.map((v) => grads[v.name] ?? tf.zerosLike(v));
        if (!acc) acc = g;
        else {
          const prev: tf.Tensor[] = acc;
          acc = prev.map((a, i) => tf.add(a, g[i]!));
          prev.forEach((t) => t.dispose());
          g.forEach((t) => t.dispose());
        }
      }
      const grads = acc!;
      try {
        if (!(weightSum > 0)) throw new AlignflowError('input', `training step ${step + 1} had no loss units (weight 0): every example lacks targets`);
        const sumSq = tf.tidy(() => tf.addN(grads.map((g) => tf.sum(tf.square(g)))));
        const rawNorm = Math.sqrt((await sumSq.data())[0]!);
        sumSq.dispose();
        const loss = lossSum / weightSum;
        // the objective is Σloss/Σweight, so its gradient is the summed gradient over Σweight
        const gradNorm = rawNorm / weightSum;
        if (!Number.isFinite(loss) || !Number.isFinite(gradNorm)) {
          throw new AlignflowError(
            'numeric',
            `non-finite ${Number.isFinite(loss) ? 'gradient' : 'loss'} at step ${step + 1} (loss=${loss}, grad_norm=${gradNorm}); ` +
              `the update was not applied${result.checkpoints.length ? `; last good checkpoint: step ${result.checkpoints.at(-1)}` : ''}`,
          );
        }
        // torch.nn.utils.clip_grad_norm_: coef = max_norm / (total_norm + 1e-6), clamped to 1
        const clip = maxGradNorm ? Math.min(1, maxGradNorm / (gradNorm + 1e-6)) : 1;
        const factor = clip / weightSum;
        const scaled = new Map<string, tf.Tensor>();
        tf.tidy(() => {
          const f = tf.scalar(factor);
          names.forEach((n, i) => hasGrad[i] && scaled.set(n, tf.keep(tf.mul(grads[i]!, f))));
        });
        opt.applyGradients(scaled, lr);
        for (const t of scaled.values()) t.dispose();
        step++;

        const m: Record<string, number> = { loss, grad_norm: gradNorm, learning_rate: lr, epoch: o.data.epoch() };
        for (const [k2, v] of Object.entries(metricSums)) m[k2] = v / weightSum;
        for (const [k2, v] of Object.entries(m)) interval[k2] = (interval[k2] ?? 0) + v;
        intervalSteps++;
      } finally {
        grads.forEach((t) => t.dispose());
      }

      const last = step === o.maxSteps;
      if (step % logEvery === 0 || last) {
        const logged: Record<string, number> = {};
        for (const [k2, v] of Object.entries(interval)) logged[k2] = v / intervalSteps;
        // these are point values, not interval averages
        logged.learning_rate = lr;
        logged.epoch = o.data.epoch();
        result.metrics = logged;
        o.onMetrics?.(step, logged);
        interval = {};
        intervalSteps = 0;
      }
      if (o.evalEvery && (step % o.evalEvery === 0 || last)) await runEval();
      if (o.checkpointEvery && step % o.checkpointEvery === 0) await checkpoint();
      o.onProgress?.({ step, total: o.maxSteps, metrics: result.metrics });
      await tick();
    }
    result.step = step;
    if (bestEvalLoss !== undefined) result.bestEvalLoss = bestEvalLoss;
    return result;
  } finally {
    opt.dispose();
  }
}

/**
 * Σ loss / Σ weight of `lossFn` over `batches`, without gradients (eval_loss). Metrics are
 * averaged weighted by `weight` and returned beside it.
 */
export async function evaluateLoss<B>(
  batches: Iterable<B>,
  lossFn: (b: B) => MicroBatchOutput,
): Promise<{ loss: number; weight: number; metrics: Record<string, number> }> {
  let lossSum = 0;
  let weightSum = 0;
  const sums: Record<string, number> = {};
  for (const b of batches) {
    const out = tf.tidy(() => {
      const r = lossFn(b);
      const ms = Object.entries(r.metrics ?? {});
      const packed = tf.stack([r.loss, ...ms.map(([, v]) => (v instanceof tf.Tensor ? v : tf.scalar(v)))]);
      return { packed, weight: r.weight, names: ms.map(([n]) => n) };
    });
    const vals = await out.packed.data();
    out.packed.dispose();
    lossSum += vals[0]!;
    weightSum += out.weight;
    out.names.forEach((n, i) => (sums[n] = (sums[n] ?? 0) + vals[i + 1]! * out.weight));
    await tick();
  }
  const metrics: Record<string, number> = {};
  for (const [n, v] of Object.entries(sums)) metrics[n] = weightSum > 0 ? v / weightSum : NaN;
  return { loss: weightSum > 0 ? lossSum / weightSum : NaN, weight: weightSum, metrics };
}
