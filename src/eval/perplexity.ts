// Held-out SFT loss and perplexity: the token-weighted mean negative log-likelihood of the
// completions of a held-out SFT set (as TRL's SFTTrainer `eval_loss` with completion-only loss),
// and its exponential. A rise against the baseline signals lost capability.

export interface HeldOutLoss {
  /** Σ NLL / Σ tokens (nats per token). */
  loss: number;
  perplexity: number;
  tokens: number;
  examples: number;
}

/** @param seqs per example: the sum of completion-token log-probs and the token count. */
export function heldOutLoss(seqs: readonly { logp: number; tokens: number }[]): HeldOutLoss {
  let nll = 0;
  let tokens = 0;
  for (const s of seqs) {
    if (!Number.isFinite(s.logp)) throw new RangeError('held-out loss: non-finite log-prob');
    nll -= s.logp;
    tokens += s.tokens;
  }
  const loss = tokens === 0 ? NaN : nll / tokens;
  return { loss, perplexity: Math.exp(loss), tokens, examples: seqs.length };
}
