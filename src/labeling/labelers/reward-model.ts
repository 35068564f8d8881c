// The `reward_model` labeler: a trained reward model (src/ml/reward.ts) scores both responses of
// every pair; the higher reward wins, |difference| ≤ tieMargin is a tie. Each response's reward is
// also stored on the response row (responses.score).
import type { ArtifactStore } from '../../store/types.js';
import type { MachineLabel, StoredPair } from '../port.js';
import { AlignflowError } from '../../errors.js';

export interface RewardLabels {
  labels: MachineLabel[];
  scores: Map<string, number>;
}

export async function rewardModelLabels(ctx: { store: ArtifactStore; workDir: string; signal: AbortSignal }, modelArtifactId: string, pairs: readonly StoredPair[], o: { batchSize?: number; tieMargin?: number; onProgress?: (done: number, total: number) => void } = {}): Promise<RewardLabels> {
  const { loadRewardModelRef, scoreRecordsWithRewardModel } = await import('../../ml/reward.js');
  const { model, tokenizer } = await loadRewardModelRef({ store: ctx.store, id: modelArtifactId, scratchDir: ctx.workDir });
  try {
    if (!tokenizer) throw new AlignflowError('config', `reward model ${modelArtifactId} has no tokenizer.json`);
    const records = pairs.flatMap((p) => [
      { prompt: p.prompt, completion: p.a.text },
      { prompt: p.prompt, completion: p.b.text },
    ]);
    const rows = await scoreRecordsWithRewardModel(model, tokenizer, 'sft', records, { batchSize: o.batchSize ?? 8, onProgress: o.onProgress ? (d, n) => o.onProgress!(Math.floor(d / 2), Math.floor(n / 2)) : undefined });
    const reward = (i: number) => {
      const r = rows[i] as { reward?: number } | undefined;
      if (!r || typeof r.reward !== 'number' || !Number.isFinite(r.reward)) throw new AlignflowError('numeric', `reward model produced a non-finite reward for record ${i}`);
      return r.reward;
    };
    const tie = o.tieMargin ?? 0;
    const source = `reward_model:${modelArtifactId}`;
    const scores = new Map<string, number>();
    const labels = pairs.map((p, i): MachineLabel => {
      const ra = reward(2 * i);
      const rb = reward(2 * i + 1);
      scores.set(p.a.id, ra);
      scores.set(p.b.id, rb);
      const d = ra - rb;
      return { pairId: p.pairId, decision: Math.abs(d) <= tie ? 'tie' : d > 0 ? 'a' : 'b', source, rationale: `reward a=${ra.toFixed(4)} b=${rb.toFixed(4)}` };
    });
    return { labels, scores };
  } finally {
    model.dispose();
  }
}
