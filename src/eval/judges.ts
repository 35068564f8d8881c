// Rule judges for evaluation. Loading is the labeling module's (src/labeling/labelers/rule.ts), so a
// judge module means the same thing when it labels pairs and when it evaluates: a user's ESM module
// exporting `name`, `version` and one or both of
//   score(prompt, response) → number            (pointwise: higher is better)
//   judge(prompt, a, b) → 'a' | 'b' | 'tie'     (pairwise; the eval stage runs it in both orders)
// judges/sentiment.mjs and judges/count.mjs are examples. A judge that throws, or returns a
// non-finite score or an unknown verdict, fails THAT comparison with a JudgeError; the eval stage
// counts it and never turns it into a tie.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { AlignflowError } from '../errors.js';
import { loadJudge } from '../labeling/labelers/rule.js';

export type PairVerdict = 'a' | 'b' | 'tie';

/**
 * A pairwise judge: which of two answers to a prompt is better. A judge module exporting
 * judge(prompt, a, b) is one (loadRuleJudge); the eval stage runs it in both orders, the
 * online_dpo stage once per sampled pair (a tie is no preference there).
 */
export interface PairwiseJudge {
  name: string;
  judge(prompt: string, a: string, b: string): PairVerdict | Promise<PairVerdict>;
}

/** A pointwise judge: a score per answer, higher is better (score(prompt, response)). */
export interface PointwiseJudge {
  name: string;
  score(prompt: string, response: string): number | Promise<number>;
}

export interface RuleJudge {
  name: string;
  version: string;
  /** Absolute path and sha256 of the module file (provenance). */
  source: string;
  sha256: string;
  score?: (prompt: string, response: string) => number | Promise<number>;
  judge?: (prompt: string, a: string, b: string) => PairVerdict | Promise<PairVerdict>;
}

export class JudgeError extends Error {
  constructor(judge: string, message: string) {
    super(`judge "${judge}" failed: ${message}`);
    this.name = 'JudgeError';
  }
}

/** Loads and checks a judge module. Paths are resolved against `baseDir` (default: cwd). */
export async function loadRuleJudge(modulePath: string, baseDir = process.cwd()): Promise<RuleJudge> {
  const file = path.resolve(baseDir, modulePath);
  if (!fs.existsSync(file)) throw new AlignflowError('config', `judge module ${file} does not exist`, { issues: [{ file, reason: 'not found' }] });
  const lj = await loadJudge(file);
  const sha256 = crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
  return {
    name: lj.name,
    version: lj.version,
    source: lj.file,
    sha256,
    score: lj.score,
    // compare() validates the verdict ('a' | 'b' | 'tie') and throws otherwise.
    judge: lj.mode === 'judge' ? async (p, a, b) => (await lj.compare(p, a, b)).verdict : undefined,
  };
}

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

/** Calls score() (validated finite by the loader); throws JudgeError on any failure. */
export async function safeScore(j: PointwiseJudge | { name: string; score: (p: string, r: string) => unknown }, prompt: string, response: string): Promise<number> {
  let v: unknown;
  try {
    v = await j.score(prompt, response);
  } catch (e) {
    throw new JudgeError(j.name, message(e));
  }
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new JudgeError(j.name, `score() returned ${JSON.stringify(v) ?? String(v)}; expected a finite number`);
  return v;
}

/** Calls judge(); throws JudgeError on any failure (a throw or an invalid verdict). */
export async function safeJudge(j: PairwiseJudge | { name: string; judge: (p: string, a: string, b: string) => unknown }, prompt: string, a: string, b: string): Promise<PairVerdict> {
  let v: unknown;
  try {
    v = await j.judge(prompt, a, b);
  } catch (e) {
    throw new JudgeError(j.name, message(e));
  }
  if (v !== 'a' && v !== 'b' && v !== 'tie') throw new JudgeError(j.name, `judge() returned ${JSON.stringify(v) ?? String(v)}; expected 'a', 'b' or 'tie'`);
  return v;
}
