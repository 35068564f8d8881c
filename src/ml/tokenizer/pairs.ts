// Prompt and completion are tokenized separately and concatenated, as TRL's DPO/SFT trainers do, so
// the boundary between them is exact. When the prompt's tokens are not a prefix of the tokens of
// prompt+completion (a merge across the boundary), we report it instead of silently re-splitting.
import { AlignflowError } from '../../errors.js';
import type { TextTokenizer } from './tokenizer.js';

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
