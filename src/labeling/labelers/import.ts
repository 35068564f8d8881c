// The `import` labeler: labels from a JSONL file. Each line is one of
//   {"pair_id": "...", "decision": "a"|"b"|"tie"|"both_bad", "annotator"?: "...", "strength"?: 1..3, "rationale"?: "..."}
//   {"prompt": "...", "chosen": "...", "rejected": "..."}                 (a TRL preference record)
//   {"prompt": "...", "response_a": "...", "response_b": "...", "decision": "..."}
// Records given by text are matched to the batch's pairs by prompt and the two response texts (in
// either order). Every line is checked before anything is stored: one bad line, nothing imported.
import fs from 'node:fs';
import path from 'node:path';
import { AlignflowError, type InputIssue } from '../../errors.js';
import { labelDecisions, type LabelDecision } from '../../store/schema.js';
import type { MachineLabel, StoredPair } from '../port.js';

const key = (prompt: string, x: string, y: string) => JSON.stringify([prompt, x, y]);

export function parseImportedLabels(file: string, text: string, pairs: readonly StoredPair[]): MachineLabel[] {
  const byId = new Map(pairs.map((p) => [p.pairId, p]));
  const byText = new Map<string, { pair: StoredPair; flipped: boolean }>();
  for (const p of pairs) {
    byText.set(key(p.prompt, p.a.text, p.b.text), { pair: p, flipped: false });
    if (!byText.has(key(p.prompt, p.b.text, p.a.text))) byText.set(key(p.prompt, p.b.text, p.a.text), { pair: p, flipped: true });
  }
  const base = path.basename(file);
  const issues: InputIssue[] = [];
  const out: MachineLabel[] = [];
  const lines = text.split('\n');
  lines.forEach((raw, i) => {
    const line = i + 1;
    if (raw.trim() === '') return;
    let v: Record<string, unknown>;
    try {
      const parsed = JSON.parse(raw) as unknown;
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
      v = parsed as Record<string, unknown>;
    } catch (e) {
      issues.push({ file, line, reason: `not a JSON object (${e instanceof Error ? e.message : String(e)})` });
      return;
    }
    const str = (f: string) => (typeof v[f] === 'string' ? (v[f] as string) : undefined);
    let pair: StoredPair | undefined;
    let decision: LabelDecision | undefined;
    if (v.pair_id !== undefined) {
      pair = typeof v.pair_id === 'string' ? byId.get(v.pair_id) : undefined;
      if (!pair) return void issues.push({ file, line, field: 'pair_id', reason: `no pair ${JSON.stringify(v.pair_id)} in this batch` });
      decision = v.decision as LabelDecision;
    } else if (str('prompt') !== undefined && str('chosen') !== undefined && str('rejected') !== undefined) {
      const m = byText.get(key(str('prompt')!, str('chosen')!, str('rejected')!));
      if (!m) return void issues.push({ file, line, reason: 'no pair in this batch has this prompt and these two responses' });
      pair = m.pair;
      decision = m.flipped ? 'b' : 'a';
    } else if (str('prompt') !== undefined && str('response_a') !== undefined && str('response_b') !== undefined) {
      const m = byText.get(key(str('prompt')!, str('response_a')!, str('response_b')!));
      if (!m) return void issues.push({ file, line, reason: 'no pair in this batch has this prompt and these two responses' });
      pair = m.pair;
      decision = v.decision as LabelDecision;
      if (m.flipped && (decision === 'a' || decision === 'b')) decision = decision === 'a' ? 'b' : 'a';
    } else {
      return void issues.push({ file, line, reason: 'expected pair_id + decision, prompt + chosen + rejected, or prompt + response_a + response_b + decision' });
    }
    if (!(labelDecisions as readonly string[]).includes(decision as string)) return void issues.push({ file, line, field: 'decision', reason: `must be one of ${labelDecisions.join(', ')}` });
    const strength = v.strength;
    if (strength !== undefined && strength !== null && !(strength === 1 || strength === 2 || strength === 3)) return void issues.push({ file, line, field: 'strength', reason: 'must be 1, 2 or 3' });
    if (v.annotator !== undefined && (typeof v.annotator !== 'string' || v.annotator.length === 0 || v.annotator.length > 100)) return void issues.push({ file, line, field: 'annotator', reason: 'must be a non-empty string (≤ 100 characters)' });
    if (v.rationale !== undefined && v.rationale !== null && typeof v.rationale !== 'string') return void issues.push({ file, line, field: 'rationale', reason: 'must be a string' });
    out.push({
      pairId: pair.pairId,
      decision: decision!,
      source: `import:${base}${typeof v.annotator === 'string' ? '#' + v.annotator : ''}`,
      strength: (strength as number | undefined) ?? null,
      rationale: (v.rationale as string | undefined) ?? null,
    });
  });
  if (issues.length) throw new AlignflowError('input', `${file}: ${issues.length} invalid label line(s); nothing was imported`, { issues });
  return out;
}

export function readImportedLabels(file: string, pairs: readonly StoredPair[]): MachineLabel[] {
  if (!fs.existsSync(file)) throw new AlignflowError('config', `label file ${file} does not exist`);
  return parseImportedLabels(file, fs.readFileSync(file, 'utf8'), pairs);
}
