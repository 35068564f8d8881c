// Contamination check: eval prompts that also appear among training prompts. Comparison is on a
// normalized form (Unicode NFC, case-folded, whitespace collapsed, trimmed), so trivial edits do
// not hide a duplicate. Exact-match only: paraphrases are not detected (documented limitation).

export interface Contamination {
  evalPrompts: number;
  trainPrompts: number;
  /** Eval prompts (distinct indices) whose normalized text is in the training prompts. */
  overlapping: number;
  rate: number;
  /** Up to 10 offending eval prompts, as written. */
  examples: string[];
  /** Indices of the contaminated eval prompts. */
  indices: number[];
}

export function normalizePrompt(p: string): string {
  return p.normalize('NFC').toLowerCase().replace(/\s+/g, ' ').trim();
}

export function contamination(evalPrompts: readonly string[], trainPrompts: Iterable<string>): Contamination {
  const train = new Set<string>();
  let trainCount = 0;
  for (const p of trainPrompts) {
    train.add(normalizePrompt(p));
    trainCount++;
  }
  const indices: number[] = [];
  evalPrompts.forEach((p, i) => {
    if (train.has(normalizePrompt(p))) indices.push(i);
  });
  return {
    evalPrompts: evalPrompts.length,
    trainPrompts: trainCount,
    overlapping: indices.length,
    rate: evalPrompts.length === 0 ? 0 : indices.length / evalPrompts.length,
    examples: indices.slice(0, 10).map((i) => evalPrompts[i]!),
    indices,
  };
}
