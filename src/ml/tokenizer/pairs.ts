// Prompt and completion are tokenized separately and concatenated, so the text is kept exactly
// and the completion starts on a token boundary, as when the model generates it after the prompt.
// TRL 1.13 does not do this: its DPO and SFT trainers tokenize prompt and prompt+completion and cut
// the latter at the prompt's token count (trl/trainer/dpo_trainer.py and sft_trainer.py,
// tokenize_fn). The two agree except where a token merges across the boundary; we report those
// records (prefixMismatch) instead of silently re-splitting. docs/preference.md shows the difference.
import { AlignflowError } from '../../errors.js';
import type { TextTokenizer } from './tokenizer.js';

/** What a warning about boundary-merging records says about the difference from TRL. */
export const BOUNDARY_NOTE =
  "kept as tokenized separately, the text exact; TRL 1.13 tokenizes prompt+completion together and cuts at the prompt's token count, " +
  'so on these records its completion (DPO) or loss mask (SFT) differs from ours at the merged token: see docs/preference.md';

export interface TokenizedPair {
  promptIds: number[];
  completionIds: number[];
  /** true when tokenize(prompt) is not a prefix of tokenize(prompt + completion). */
  prefixMismatch: boolean;
  /** First position where they differ (only when prefixMismatch). */
  mismatchAt?: number;
}

export function tokenizePair(tok: TextTokenizer, prompt: string, completion: string, opts: { addEos?: boolean } = {}): TokenizedPair {
  const promptIds = tok.encode(prompt);
  const completionIds = tok.encode(completion);
  if (opts.addEos) {
    const eos = tok.eosTokenId;
    if (eos === undefined) throw new AlignflowError('config', 'addEos: the tokenizer has no eos_token');
    completionIds.push(eos);
  }
  const joint = tok.encode(prompt + completion);
  let at = -1;
  for (let i = 0; i < promptIds.length; i++) {
    if (joint[i] !== promptIds[i]) {
      at = i;
      break;
    }
  }
  return at < 0 ? { promptIds, completionIds, prefixMismatch: false } : { promptIds, completionIds, prefixMismatch: true, mismatchAt: at };
}
