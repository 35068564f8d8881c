// The `rule` labeler: a user's judge module decides each pair. The module (JS, or TS when run
// through tsx) exports either
//   judge(prompt, a, b) → 'a' | 'b' | 'tie'   (may be async), or
//   score(prompt, response) → number          (higher is better; equal scores are a tie),
// and optionally `name` and `version`. Its identity on every label is judge:<name>@<version>;
// without exports, the file name and the first 12 hex digits of the file's sha256.
//
// A judge that throws, or answers anything but a valid verdict / finite number, fails THAT
// comparison: it is counted and reported, never turned into a tie.
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { AlignflowError } from '../../errors.js';
import type { MachineLabel, StoredPair } from '../port.js';

export type Verdict = 'a' | 'b' | 'tie';

export interface LoadedJudge {
  name: string;
  version: string;
  /** "judge:<name>@<version>" */
  source: string;
  mode: 'judge' | 'score';
  file: string;
  compare(prompt: string, a: string, b: string): Promise<{ verdict: Verdict; scores?: [number, number] }>;
  /** Only for score-mode judges (best-vs-worst pairing in collect). */
  score?: (prompt: string, response: string) => Promise<number>;
}

export async function loadJudge(file: string): Promise<LoadedJudge> {
  const abs = path.resolve(file);
  if (!fs.existsSync(abs)) throw new AlignflowError('config', `judge module ${file} does not exist`);
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(abs).href)) as Record<string, unknown>;
  } catch (err) {
    throw new AlignflowError('config', `judge module ${file} failed to load: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  const judge = mod.judge;
  const score = mod.score;
  if (typeof judge !== 'function' && typeof score !== 'function') {
    throw new AlignflowError('config', `judge module ${file} exports neither judge(prompt, a, b) nor score(prompt, response)`);
  }
  const digest = createHash('sha256').update(fs.readFileSync(abs)).digest('hex');
  const name = typeof mod.name === 'string' && mod.name ? mod.name : path.basename(abs);
  const version = typeof mod.version === 'string' && mod.version ? mod.version : typeof mod.version === 'number' ? String(mod.version) : digest.slice(0, 12);
  const scoreFn =
    typeof score === 'function'
      ? async (prompt: string, response: string) => {
          const v = (await (score as (p: string, r: string) => unknown)(prompt, response)) as unknown;
          if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`score() returned ${describe(v)}; expected a finite number`);
          return v;
        }
      : undefined;
  return {
    name,
    version,
    source: `judge:${name}@${version}`,
    mode: typeof judge === 'function' ? 'judge' : 'score',
    file: abs,
    score: scoreFn,
    async compare(prompt, a, b) {
      if (typeof judge === 'function') {
        const v = (await (judge as (p: string, a: string, b: string) => unknown)(prompt, a, b)) as unknown;
        if (v !== 'a' && v !== 'b' && v !== 'tie') throw new Error(`judge() returned ${describe(v)}; expected 'a', 'b' or 'tie'`);
        return { verdict: v };
      }
      const sa = await scoreFn!(prompt, a);
      const sb = await scoreFn!(prompt, b);
      return { verdict: sa > sb ? 'a' : sb > sa ? 'b' : 'tie', scores: [sa, sb] };
    },
  };
}

function describe(v: unknown): string {
  if (v === undefined) return 'undefined';
  try {
    const s = JSON.stringify(v);
    return s === undefined ? String(v) : s.length > 80 ? s.slice(0, 80) + '…' : s;
  } catch {
    return String(v);
  }
}

export interface JudgeFailure {
  pairId: string;
  message: string;
}

export interface JudgeRun {
  labels: MachineLabel[];
  failures: JudgeFailure[];
  /** Response id → score, for score-mode judges. */
  scores: Map<string, number>;
}

/** Runs the judge over every pair; failures are collected per comparison, not thrown. */
export async function runJudge(judge: LoadedJudge, pairs: readonly StoredPair[], o: { signal?: AbortSignal; onProgress?: (done: number, total: number) => void } = {}): Promise<JudgeRun> {
  const labels: MachineLabel[] = [];
  const failures: JudgeFailure[] = [];
  const scores = new Map<string, number>();
  let i = 0;
  for (const p of pairs) {
    if (o.signal?.aborted) throw new AlignflowError('cancelled', 'cancelled while judging');
    try {
      const r = await judge.compare(p.prompt, p.a.text, p.b.text);
      labels.push({ pairId: p.pairId, decision: r.verdict, source: judge.source });
      if (r.scores) {
        scores.set(p.a.id, r.scores[0]);
        scores.set(p.b.id, r.scores[1]);
      }
    } catch (err) {
      failures.push({ pairId: p.pairId, message: `${judge.source} failed on pair ${p.pairId}: ${err instanceof Error ? err.message : String(err)}` });
    }
    o.onProgress?.(++i, pairs.length);
  }
  return { labels, failures, scores };
}
