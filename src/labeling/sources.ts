// Where the pairs of a batch made in the UI come from: a run's 'pairs' artifact (collect stage),
// a preference dataset in the store, or an uploaded TRL preference JSONL. Everything is parsed and
// checked before anything is written; a bad line names the file, the line and the field.
import { AlignflowError, inputError, type InputIssue } from '../errors.js';
import { jsonSyntaxReason } from '../util/json-error.js';
import { detectFormat, normalizeRecord, type Content, type DatasetFormat, type PreferenceRecord } from '../data/formats.js';
import { readDatasetRecords } from '../data/datasets.js';
import type { ArtifactStore } from '../store/types.js';
import type { GoldInput, GoldRankingInput, PairInput } from './batches.js';
import { PAIRS_FILE, parsePairsJsonl } from './pairs-artifact.js';
import { MAX_RANK_ANSWERS, rankingIssues } from './ranking.js';

const MAX_ISSUES = 20;

/**
 * A prompt or response as the labeling tables store it (text). A message list is kept as its JSON
 * text, which the labeling page (src/web/markdown.js, messagesOf) shows as a conversation.
 */
export function storedContent(c: Content): string {
  return typeof c === 'string' ? c : JSON.stringify(c.map((m) => ({ role: m.role, content: m.content })));
}

/**
 * A TRL preference record as prompt / chosen / rejected texts. An implicit-prompt conversation
 * gives its shared leading messages as the prompt (TRL's `extract_prompt` does the same); an
 * implicit-prompt string record has no prompt to split off, so the whole texts are compared.
 */
export function preferenceTexts(r: PreferenceRecord): { prompt: string; chosen: string; rejected: string } {
  if (r.prompt !== undefined) return { prompt: storedContent(r.prompt), chosen: storedContent(r.chosen), rejected: storedContent(r.rejected) };
  if (typeof r.chosen === 'string' || typeof r.rejected === 'string') return { prompt: '', chosen: storedContent(r.chosen), rejected: storedContent(r.rejected) };
  const a = r.chosen, b = r.rejected;
  let k = 0;
  while (k < a.length - 1 && k < b.length - 1 && a[k]!.role === b[k]!.role && a[k]!.content === b[k]!.content) k++;
  return { prompt: storedContent(a.slice(0, k)), chosen: storedContent(a.slice(k)), rejected: storedContent(b.slice(k)) };
}

/** Every line of a TRL preference JSONL, checked; one bad line and the whole file is refused. */
export function parsePreferenceJsonl(text: string, file: string): { prompt: string; chosen: string; rejected: string }[] {
  const out: { prompt: string; chosen: string; rejected: string }[] = [];
  const issues: InputIssue[] = [];
  let format: DatasetFormat | undefined;
  text.split('\n').forEach((raw, i) => {
    if (!raw.trim() || issues.length >= MAX_ISSUES) return;
    const line = i + 1;
    let v: unknown;
    try {
      v = JSON.parse(raw);
    } catch (e) {
      issues.push({ file, line, reason: `not JSON (${jsonSyntaxReason(e)})` });
      return;
    }
    const f = v && typeof v === 'object' && !Array.isArray(v) ? detectFormat(v as Record<string, unknown>, 'preference') : undefined;
    if (!f || !('chosen' in (v as object))) {
      issues.push({ file, line, field: 'chosen', reason: 'missing: a preference record has "chosen" and "rejected" (and optionally "prompt")' });
      return;
    }
    format ??= f;
    const n = normalizeRecord(v, format);
    if (!n.ok) {
      for (const x of n.issues) issues.push({ file, line, ...(x.field ? { field: x.field } : {}), reason: x.reason });
      return;
    }
    out.push(preferenceTexts(n.record as PreferenceRecord));
  });
  if (issues.length) throw inputError(`${file}: ${issues.length}${issues.length >= MAX_ISSUES ? '+' : ''} bad line(s); nothing was added`, issues);
  if (out.length === 0) throw inputError(`${file}: no records`, [{ file, reason: 'the file holds no preference records' }]);
  return out;
}

/** Uploaded pairs: response a is the file's chosen, b its rejected (labelers see a random side). */
export function pairsFromPreferenceJsonl(text: string, file: string): PairInput[] {
  return parsePreferenceJsonl(text, file).map((r) => ({ prompt: r.prompt, a: { text: r.chosen }, b: { text: r.rejected } }));
}

/**
 * Uploaded ranking items: one JSON object a line with `prompt` and `responses` (2..8 answers;
 * strings or message lists). The whole file is checked first, as for preference files.
 */
export function itemsFromRankingJsonl(text: string, file: string): PairInput[] {
  return rankingLines(text, file, false).map((g) => {
    const [a, b, ...rest] = g.responses.map((t, j) => ({ text: t, ...(g.scores ? { score: g.scores[j]! } : {}) }));
    return { prompt: g.prompt, a: a!, b: b!, rest };
  });
}

/**
 * Uploaded gold ranking items (ranking batches): as ranking items, plus `ranking`, the known
 * ranking as groups of 1-based answer numbers of `responses`, best first (e.g. [[2], [1, 3]]).
 */
export function goldFromRankingJsonl(text: string, file: string): GoldRankingInput[] {
  return rankingLines(text, file, true) as GoldRankingInput[];
}

/**
 * Ranking JSONL lines: {prompt, responses} (+ ranking for gold). Regular items may carry `scores`,
 * one finite number per answer (a judge's or reward model's), which a batch with suggestions turns
 * into the suggested order.
 */
function rankingLines(text: string, file: string, gold: boolean): { prompt: string; responses: string[]; ranking?: number[][]; scores?: number[] }[] {
  const out: { prompt: string; responses: string[]; ranking?: number[][]; scores?: number[] }[] = [];
  const issues: InputIssue[] = [];
  const isContent = (c: unknown) => typeof c === 'string' || (Array.isArray(c) && c.every((m) => m && typeof m === 'object' && typeof (m as { role?: unknown }).role === 'string' && typeof (m as { content?: unknown }).content === 'string'));
  text.split('\n').forEach((raw, i) => {
    if (!raw.trim() || issues.length >= MAX_ISSUES) return;
    const line = i + 1;
    let v: { prompt?: unknown; responses?: unknown; ranking?: unknown; scores?: unknown };
    try {
      v = JSON.parse(raw) as typeof v;
    } catch (e) {
      issues.push({ file, line, reason: `not JSON (${(e as Error).message})` });
      return;
    }
    if (!v || typeof v !== 'object' || Array.isArray(v)) return void issues.push({ file, line, reason: 'a ranking item is an object with "prompt" and "responses"' });
    if (!isContent(v.prompt)) issues.push({ file, line, field: 'prompt', reason: 'must be a string or a list of {role, content} messages' });
    const rs = v.responses;
    if (!Array.isArray(rs) || rs.length < 2 || rs.length > MAX_RANK_ANSWERS) issues.push({ file, line, field: 'responses', reason: `must be a list of 2..${MAX_RANK_ANSWERS} answers` });
    else rs.forEach((r, j) => (isContent(r) ? undefined : issues.push({ file, line, field: `responses[${j}]`, reason: 'must be a string or a list of {role, content} messages' })));
    if (gold && Array.isArray(rs)) for (const x of rankingIssues(v.ranking, rs.length)) issues.push({ file, line, ...x });
    const sc = v.scores;
    if (sc !== undefined && (gold || !Array.isArray(sc) || !Array.isArray(rs) || sc.length !== rs.length || !sc.every((x) => typeof x === 'number' && Number.isFinite(x)))) {
      issues.push({ file, line, field: 'scores', reason: gold ? 'gold items carry a ranking, not scores' : 'must be a list of finite numbers, one per answer' });
    }
    if (issues.length) return;
    out.push({ prompt: storedContent(v.prompt as Content), responses: (rs as Content[]).map(storedContent), ...(gold ? { ranking: v.ranking as number[][] } : {}), ...(Array.isArray(sc) ? { scores: sc as number[] } : {}) });
  });
  if (issues.length) throw inputError(`${file}: ${issues.length}${issues.length >= MAX_ISSUES ? '+' : ''} bad line(s); nothing was added`, issues);
  if (out.length === 0) throw inputError(`${file}: no records`, [{ file, reason: 'the file holds no ranking items' }]);
  return out;
}

export function goldFromPreferenceJsonl(text: string, file: string): GoldInput[] {
  return parsePreferenceJsonl(text, file);
}

/** The pairs of a 'pairs' artifact (a collect stage's output) or of a preference dataset artifact. */
export async function pairsFromArtifact(store: ArtifactStore, artifactId: string): Promise<PairInput[]> {
  const m = await store.get(artifactId);
  if (m.kind === 'pairs') return parsePairsJsonl((await store.readFile(artifactId, PAIRS_FILE)).toString('utf8'), `artifact ${artifactId}`);
  if (m.kind === 'dataset') {
    const out: PairInput[] = [];
    for await (const r of readDatasetRecords(store, artifactId, { kind: 'preference' })) {
      const t = preferenceTexts(r);
      out.push({ prompt: t.prompt, a: { text: t.chosen }, b: { text: t.rejected } });
    }
    if (out.length === 0) throw inputError(`dataset ${artifactId} holds no records`);
    return out;
  }
  throw new AlignflowError('input', `artifact ${artifactId} is a ${m.kind}; a batch is made from a 'pairs' artifact (collect stage) or a preference dataset`);
}
