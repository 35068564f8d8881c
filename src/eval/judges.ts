// Rule judges for evaluation: a user's ESM module (plain .mjs/.js, or .ts when run through tsx)
// exporting `name`, `version` and one or both of
//   score(prompt, response) → number            (pointwise: higher is better)
//   judge(prompt, a, b) → 'a' | 'b' | 'tie'     (pairwise; also { winner: 'a' | 'b' | 'tie' })
// judges/sentiment.mjs and judges/count.mjs are examples. A judge that throws, or returns a
// non-finite score or an unknown verdict, fails THAT comparison with a JudgeError; the eval stage
// counts it and never turns it into a tie.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { AlignflowError } from '../errors.js';

export type PairVerdict = 'a' | 'b' | 'tie';

export interface RuleJudge {
  name: string;
  version: string;
  /** Absolute path and sha256 of the module file (provenance). */
  source: string;
  sha256: string;
  score?: (prompt: string, response: string) => number;
  judge?: (prompt: string, a: string, b: string) => PairVerdict;
}

export class JudgeError extends Error {
  constructor(judge: string, message: string) {
    super(`judge "${judge}": ${message}`);
    this.name = 'JudgeError';
  }
}

/** Loads and checks a judge module. Paths are resolved against `baseDir` (default: cwd). */
export async function loadRuleJudge(modulePath: string, baseDir = process.cwd()): Promise<RuleJudge> {
  const file = path.resolve(baseDir, modulePath);
  if (!fs.existsSync(file)) throw new AlignflowError('config', `judge module ${file} does not exist`, { issues: [{ file, reason: 'not found' }] });
  const sha256 = crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (e) {
    throw new AlignflowError('config', `judge module ${file} failed to load: ${(e as Error).message}`, { issues: [{ file, reason: (e as Error).message }] });
  }
  const m = (mod.default && typeof mod.default === 'object' ? { ...(mod.default as object), ...mod } : mod) as Record<string, unknown>;
  const score = typeof m.score === 'function' ? (m.score as RuleJudge['score']) : undefined;
  const judge = typeof m.judge === 'function' ? (m.judge as (p: string, a: string, b: string) => unknown) : undefined;
  if (!score && !judge) {
    throw new AlignflowError('config', `judge module ${file} exports neither score(prompt, response) nor judge(prompt, a, b)`, { issues: [{ file, field: 'score', reason: 'missing export' }] });
  }
  const name = typeof m.name === 'string' && m.name ? m.name : path.basename(file).replace(/\.[cm]?[jt]s$/, '');
  const version = typeof m.version === 'string' || typeof m.version === 'number' ? String(m.version) : `sha256:${sha256.slice(0, 12)}`;
  return {
    name,
    version,
    source: file,
    sha256,
    score,
    judge: judge ? (p, a, b) => normalizeVerdict(name, judge(p, a, b)) : undefined,
  };
}

export function normalizeVerdict(judge: string, v: unknown): PairVerdict {
  const w = v && typeof v === 'object' && 'winner' in v ? (v as { winner: unknown }).winner : v;
  if (w === 'a' || w === 'b' || w === 'tie') return w;
  if (w === 'A' || w === 'B') return w.toLowerCase() as PairVerdict;
  throw new JudgeError(judge, `returned ${JSON.stringify(w)?.slice(0, 80) ?? String(w)}; expected 'a', 'b' or 'tie'`);
}

/** Calls score() and checks the result; throws JudgeError on any failure. */
export async function safeScore(j: { name: string; score: (p: string, r: string) => unknown }, prompt: string, response: string): Promise<number> {
  let v: unknown;
  try {
    v = await j.score(prompt, response);
  } catch (e) {
    throw new JudgeError(j.name, `score() threw: ${(e as Error)?.message ?? String(e)}`);
  }
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new JudgeError(j.name, `score() returned ${JSON.stringify(v) ?? String(v)}; expected a finite number`);
  return v;
}

/** Calls judge() and checks the result; throws JudgeError on any failure. */
export async function safeJudge(j: { name: string; judge: (p: string, a: string, b: string) => unknown }, prompt: string, a: string, b: string): Promise<PairVerdict> {
  let v: unknown;
  try {
    v = await j.judge(prompt, a, b);
  } catch (e) {
    if (e instanceof JudgeError) throw e;
    throw new JudgeError(j.name, `judge() threw: ${(e as Error)?.message ?? String(e)}`);
  }
  return normalizeVerdict(j.name, v);
}
