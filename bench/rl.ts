// The rl stage's step on the demo's model shape (GPT-2, width 64, 2 layers, vocab 1024, context
// 48): one rollout of 16 prompts × 4 answers × up to 24 new tokens (KV-cached sampling, policy and
// reference log-probs, scoring) and one clipped RLOO update. Figures: seconds per step, and the
// share of it spent producing the rollout (sampling dominates online RL; docs/rl.md).
import { createGpt2 } from '../src/ml/models/gpt2.js';
import { bytesTokenizer } from '../src/ml/tokenizer/index.js';
import { RolloutSource, fitPrompt } from '../src/ml/rl/rollout.js';
import { rlLossFn } from '../src/ml/rl/loss.js';
import { train } from '../src/ml/train/loop.js';
import type { Emit } from './index.js';

export async function run(emit: Emit): Promise<void> {
  const tok = bytesTokenizer();
  // no EOS in this vocabulary's sampled range is forced: answers run their full 24 tokens (the worst case)
  const mk = (s: number) => createGpt2({ vocab_size: 1024, n_positions: 48, n_embd: 64, n_layer: 2, n_head: 4, eos_token_id: 1023, bos_token_id: 1023 }, s);
  const policy = mk(1);
  const reference = mk(1);
  const prompts = Array.from({ length: 64 }, (_, i) => ({ text: `p${i}`, ids: fitPrompt(Array.from({ length: 8 }, (_, j) => (i * 7 + j) % 1000), 48, 24, 1023) }));
  let sampling = 0;
  const src = new RolloutSource(
    { k: 4, batchSize: 16, gradAccum: 1, miniBatches: 1, ppoEpochs: 1, maxNewTokens: 24, temperature: 1, estimator: 'rloo', scaleRewards: 'group', normalizeAdvantages: false, beta: 0.05, klIn: 'reward', klEstimator: 'k1', seed: 1, shuffle: true },
    { policy, reference, tokenizer: tok, prompts, score: async (_p, a) => a.map((x) => x.length % 3) },
  );
  const timed = { next: async () => { const t = performance.now(); const b = await src.next(); sampling += performance.now() - t; return b; }, state: () => src.state(), restore: (s: unknown) => src.restore(s), epoch: () => src.epoch() };
  const lossFn = rlLossFn(policy, { level: 'sequence', eps: { low: 0.2, high: 0.2 }, beta: 0.05, klIn: 'reward', klEstimator: 'k1' });
  const steps = 5;
  await train({ params: policy.params, lossFn, data: timed, maxSteps: 1, schedule: { lr: 1e-4, kind: 'constant', warmupSteps: 0 }, seed: 1 }); // warm-up
  sampling = 0;
  const t0 = performance.now();
  await train({ params: policy.params, lossFn, data: timed, maxSteps: steps, schedule: { lr: 1e-4, kind: 'constant', warmupSteps: 0 }, seed: 1 });
  const total = performance.now() - t0;
  emit({ bench: 'rl', name: 'rloo step, 16 prompts × 4 answers × 24 tokens, demo model', value: total / steps / 1000, unit: 's/step' });
  emit({ bench: 'rl', name: 'share of the step producing the rollout (sample, log-probs, score)', value: sampling / total, unit: 'fraction' });
  policy.dispose();
  reference.dispose();
}
