// Trainer checkpoints: weights, AdamW moments, step, schedule, RNG state and data cursor — all a
// resumed run needs to continue bit for bit. On disk (a directory, or the files of a 'checkpoint'
// artifact):
//   model.safetensors       the trained parameters under their own names (HF names for a model)
//   optimizer.safetensors   exp_avg.<name>, exp_avg_sq.<name> (torch's AdamW state names)
//   trainer_state.json      TrainerState below
// plus any extra files the caller adds (config.json, tokenizer.json, ...), so that a checkpoint of
// a language model is also a loadable Hugging Face model directory.
import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { AlignflowError } from '../../errors.js';
import { parseSafetensors, serializeSafetensors, type NamedTensor } from '../safetensors.js';
import type { ArtifactFileInput, PutArtifact } from '../../store/types.js';
import type { AdamW, AdamWHyper } from './optimizer.js';
import type { RngState } from './rng.js';
import type { ScheduleConfig } from './schedule.js';

export const TRAINER_STATE_FILE = 'trainer_state.json';
export const MODEL_FILE = 'model.safetensors';
export const OPTIMIZER_FILE = 'optimizer.safetensors';

export interface TrainerState {
  format: 'alignflow-trainer-state';
  version: 1;
  /** Optimizer updates completed (transformers' global_step). */
  step: number;
  /** Fractional epochs consumed at this step. */
  epoch: number;
  optimizer: { step: number; hyper: AdamWHyper };
  schedule: ScheduleConfig;
  /** The loop RNG (given to loss functions). */
  rng: RngState;
  /** The batch source's state (DataCursor state for ExampleBatches). */
  data: unknown;
  /** eval_loss at this step, when an evaluation ran here. */
  evalLoss?: number;
  bestEvalLoss?: number;
  /** Every evaluation so far (so a resumed run still knows the loss before training). */
  evals?: { step: number; metrics: Record<string, number> }[];
  /** Free-form extras from the caller (e.g. SFT data statistics). */
  extra?: Record<string, unknown>;
}

export interface TrainerCheckpoint {
  state: TrainerState;
  params: Map<string, NamedTensor>;
  expAvg: Map<string, NamedTensor>;
  expAvgSq: Map<string, NamedTensor>;
}

async function readAll(vars: Map<string, tf.Variable>): Promise<Map<string, NamedTensor>> {
  const out = new Map<string, NamedTensor>();
  // copied: the cpu backend's data() hands out its own backing array
  for (const [name, v] of vars) out.set(name, { shape: [...v.shape], data: ((await v.data()) as Float32Array).slice() });
  return out;
}

/** Copies the current weights and optimizer state off the backend (the training can go on meanwhile). */
export async function snapshotTrainer(
  params: Map<string, tf.Variable>,
  opt: AdamW,
  state: Omit<TrainerState, 'format' | 'version' | 'optimizer'>,
): Promise<TrainerCheckpoint> {
  return {
    state: { format: 'alignflow-trainer-state', version: 1, ...state, optimizer: { step: opt.step, hyper: opt.hyper } },
    params: await readAll(params),
    expAvg: await readAll(opt.m),
    expAvgSq: await readAll(opt.v),
  };
}

function integrity(msg: string, file?: string, field?: string): AlignflowError {
  return new AlignflowError('integrity', msg, { issues: [{ file, field, reason: msg }] });
}

function check(target: Map<string, tf.Variable>, source: Map<string, NamedTensor>, file: string): void {
  for (const name of target.keys()) if (!source.has(name)) throw integrity(`${file}: tensor "${name}" is missing`, file, name);
  for (const name of source.keys()) if (!target.has(name)) throw integrity(`${file}: unexpected tensor "${name}"`, file, name);
  for (const [name, v] of target) {
    const t = source.get(name)!;
    if (t.shape.length !== v.shape.length || t.shape.some((d, i) => d !== v.shape[i])) {
      throw integrity(`${file}: tensor "${name}" has shape [${t.shape.join(', ')}], expected [${v.shape.join(', ')}]`, file, name);
    }
  }
}

function write(target: Map<string, tf.Variable>, source: Map<string, NamedTensor>): void {
  for (const [name, v] of target) {
    const t = source.get(name)!;
    tf.tidy(() => v.assign(tf.tensor(t.data, t.shape, 'float32')));
  }
}

/** Writes a checkpoint's weights and moments back into live variables (all checked before any is changed). */
export function restoreTrainer(ckpt: TrainerCheckpoint, params: Map<string, tf.Variable>, opt: AdamW): void {
  const s = ckpt.state;
  if (s.format !== 'alignflow-trainer-state' || s.version !== 1) throw integrity(`${TRAINER_STATE_FILE}: unknown format/version`, TRAINER_STATE_FILE);
  for (const k of ['beta1', 'beta2', 'eps', 'weightDecay'] as const) {
    if (s.optimizer.hyper[k] !== opt.hyper[k]) {
      throw new AlignflowError('config', `checkpoint was trained with AdamW ${k}=${s.optimizer.hyper[k]}, but this run uses ${opt.hyper[k]}`);
    }
  }
  if (!(Number.isInteger(s.optimizer.step) && s.optimizer.step >= 0)) throw integrity(`${TRAINER_STATE_FILE}: invalid optimizer step`, TRAINER_STATE_FILE, 'optimizer.step');
  // every tensor is checked before any variable changes: no half-restored state
  check(params, ckpt.params, MODEL_FILE);
  check(opt.m, ckpt.expAvg, `${OPTIMIZER_FILE} (exp_avg)`);
  check(opt.v, ckpt.expAvgSq, `${OPTIMIZER_FILE} (exp_avg_sq)`);
  write(params, ckpt.params);
  write(opt.m, ckpt.expAvg);
  write(opt.v, ckpt.expAvgSq);
  opt.step = s.optimizer.step;
}

/** The files of a checkpoint (plus `extra` files such as config.json and tokenizer.json). */
export function checkpointFiles(ckpt: TrainerCheckpoint, extra: ArtifactFileInput[] = []): ArtifactFileInput[] {
  const opt = new Map<string, NamedTensor>();
  for (const [n, t] of ckpt.expAvg) opt.set(`exp_avg.${n}`, t);
  for (const [n, t] of ckpt.expAvgSq) opt.set(`exp_avg_sq.${n}`, t);
  const own = new Set([MODEL_FILE, OPTIMIZER_FILE, TRAINER_STATE_FILE]);
  return [
    { path: MODEL_FILE, data: serializeSafetensors(ckpt.params, { metadata: { format: 'pt' } }) },
    { path: OPTIMIZER_FILE, data: serializeSafetensors(opt) },
    { path: TRAINER_STATE_FILE, data: Buffer.from(JSON.stringify(ckpt.state, null, 2) + '\n') },
    ...extra.filter((f) => !own.has(f.path)),
  ];
}

/** A 'checkpoint' artifact for ctx.saveCheckpoint. */
export function checkpointArtifact(ckpt: TrainerCheckpoint, opts: { name: string; extra?: ArtifactFileInput[]; metadata?: Record<string, unknown> }): PutArtifact {
  return {
    kind: 'checkpoint',
    name: opts.name,
    files: checkpointFiles(ckpt, opts.extra),
    metadata: { step: ckpt.state.step, epoch: ckpt.state.epoch, evalLoss: ckpt.state.evalLoss ?? null, ...opts.metadata },
  };
}

/** Parses a checkpoint from its files, read through `read(path)` (an artifact or a directory). */
export async function readCheckpoint(read: (file: string) => Promise<Uint8Array>): Promise<TrainerCheckpoint> {
  let state: TrainerState;
  try {
    state = JSON.parse(Buffer.from(await read(TRAINER_STATE_FILE)).toString('utf8')) as TrainerState;
  } catch (e) {
    if (e instanceof AlignflowError) throw e;
    throw integrity(`${TRAINER_STATE_FILE}: unreadable (${(e as Error).message})`, TRAINER_STATE_FILE);
  }
  if (state?.format !== 'alignflow-trainer-state' || state.version !== 1 || !Number.isInteger(state.step)) {
    throw integrity(`${TRAINER_STATE_FILE}: not an alignflow trainer state (format/version/step)`, TRAINER_STATE_FILE);
  }
  const params = new Map<string, NamedTensor>();
  for (const [n, t] of parseSafetensors(await read(MODEL_FILE), MODEL_FILE).tensors) params.set(n, { shape: t.shape, data: t.data });
  const expAvg = new Map<string, NamedTensor>();
  const expAvgSq = new Map<string, NamedTensor>();
  for (const [n, t] of parseSafetensors(await read(OPTIMIZER_FILE), OPTIMIZER_FILE).tensors) {
    if (n.startsWith('exp_avg_sq.')) expAvgSq.set(n.slice('exp_avg_sq.'.length), { shape: t.shape, data: t.data });
    else if (n.startsWith('exp_avg.')) expAvg.set(n.slice('exp_avg.'.length), { shape: t.shape, data: t.data });
    else throw integrity(`${OPTIMIZER_FILE}: unexpected tensor "${n}"`, OPTIMIZER_FILE, n);
  }
  return { state, params, expAvg, expAvgSq };
}

/** Writes a checkpoint directory (files written to a temp dir, then renamed into place). */
export function writeCheckpointDir(dir: string, ckpt: TrainerCheckpoint, extra: ArtifactFileInput[] = []): void {
  const tmp = `${dir}.tmp-${process.pid}-${Date.now()}`;
  fs.mkdirSync(tmp, { recursive: true });
  for (const f of checkpointFiles(ckpt, extra)) {
    const dest = path.join(tmp, f.path);
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    if (f.data) fs.writeFileSync(dest, f.data);
    else if (f.sourceFile) fs.copyFileSync(f.sourceFile, dest);
  }
  fs.rmSync(dir, { recursive: true, force: true });
  fs.renameSync(tmp, dir);
}

export function readCheckpointDir(dir: string): Promise<TrainerCheckpoint> {
  return readCheckpoint(async (f) => {
    const p = path.join(dir, f);
    if (!fs.existsSync(p)) throw integrity(`${p}: missing checkpoint file`, p);
    return fs.readFileSync(p);
  });
}

// ---------------------------------------------------------------------------------------------
// Checkpoints as directories (no orchestrator): root/step-000042/, pruned to the last `keep` plus
// the best by eval loss — the same policy the orchestrator applies to checkpoint artifacts.

const STEP_DIR = /^step-(\d+)$/;

function stepDirs(root: string): { step: number; dir: string }[] {
  if (!fs.existsSync(root)) return [];
  return fs
    .readdirSync(root)
    .map((n) => ({ m: STEP_DIR.exec(n), n }))
    .filter((x) => x.m && fs.existsSync(path.join(root, x.n, TRAINER_STATE_FILE)))
    .map((x) => ({ step: Number(x.m![1]), dir: path.join(root, x.n) }))
    .sort((a, b) => a.step - b.step);
}

/** Writes `ckpt` under root/step-NNNNNN and prunes older ones (keeps the last `keep` and the best eval loss). */
export function saveCheckpointDir(root: string, ckpt: TrainerCheckpoint, opts: { keep?: number; extra?: ArtifactFileInput[] } = {}): string {
  const dir = path.join(root, `step-${String(ckpt.state.step).padStart(6, '0')}`);
  writeCheckpointDir(dir, ckpt, opts.extra);
  const keep = Math.max(1, opts.keep ?? 3);
  const all = stepDirs(root);
  const evalLoss = (d: string): number | undefined => {
    const s = JSON.parse(fs.readFileSync(path.join(d, TRAINER_STATE_FILE), 'utf8')) as TrainerState;
    return typeof s.evalLoss === 'number' && Number.isFinite(s.evalLoss) ? s.evalLoss : undefined;
  };
  let best: { dir: string; loss: number } | undefined;
  for (const c of all) {
    const l = evalLoss(c.dir);
    if (l !== undefined && (!best || l < best.loss)) best = { dir: c.dir, loss: l };
  }
  for (const c of all.slice(0, Math.max(0, all.length - keep))) {
    if (best && c.dir === best.dir) continue;
    fs.rmSync(c.dir, { recursive: true, force: true });
  }
  return dir;
}

/** The newest complete checkpoint directory under `root`, if any. */
export function latestCheckpointDir(root: string): string | undefined {
  return stepDirs(root).at(-1)?.dir;
}
