// The 'pairs' artifact the collect stage writes (pairs.jsonl, one pair per line) and the label
// stage reads: self-contained (texts included), so a label stage can run on another host or after
// the collect stage came from the cache of an earlier run.
import { AlignflowError } from '../errors.js';
import type { PairInput } from './batches.js';

export const PAIRS_FILE = 'pairs.jsonl';

export interface PairsLine {
  pair_id: string;
  prompt: string;
  response_a: ResponseLine;
  response_b: ResponseLine;
  /** A ranking item (collect `items: ranking`): every answer; response_a/b are its first two. */
  responses?: ResponseLine[];
}

export interface ResponseLine {
  id: string;
  text: string;
  model: string | null;
  sampling: Record<string, unknown> | null;
  seed: number | null;
  score: number | null;
}

export function parsePairsJsonl(text: string, where: string): PairInput[] {
  const out: PairInput[] = [];
  text.split('\n').forEach((raw, i) => {
    if (!raw.trim()) return;
    let v: PairsLine;
    try {
      v = JSON.parse(raw) as PairsLine;
    } catch {
      throw new AlignflowError('integrity', `${where}, line ${i + 1}: not JSON`);
    }
    const ok = (r: ResponseLine | undefined) => r && typeof r.text === 'string' && typeof r.id === 'string';
    if (typeof v.pair_id !== 'string' || typeof v.prompt !== 'string' || !ok(v.response_a) || !ok(v.response_b)) {
      throw new AlignflowError('integrity', `${where}, line ${i + 1}: not a pair record (pair_id, prompt, response_a, response_b)`);
    }
    const conv = (r: ResponseLine) => ({ id: r.id, text: r.text, modelArtifactId: r.model ?? null, sampling: r.sampling ?? null, seed: r.seed ?? null, score: r.score ?? null });
    if (v.responses !== undefined && (!Array.isArray(v.responses) || v.responses.length < 2 || !v.responses.every(ok))) {
      throw new AlignflowError('integrity', `${where}, line ${i + 1}: responses must be a list of at least two responses`);
    }
    out.push({ id: v.pair_id, prompt: v.prompt, a: conv(v.response_a), b: conv(v.response_b), ...(v.responses ? { rest: v.responses.slice(2).map(conv) } : {}) });
  });
  return out;
}
