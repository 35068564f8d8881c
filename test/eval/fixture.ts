// A synthetic but complete evaluation, for the renderer and compare tests.
import { Rng } from '../../src/ml/train/rng.js';
import { buildReport, type RawEval } from '../../src/eval/build.js';
import { contamination } from '../../src/eval/contamination.js';
import type { Judgment } from '../../src/eval/report-types.js';

export function fixtureRaw(opts: { seed?: number; n?: number; candidateBoost?: number } = {}): RawEval {
  const rng = new Rng(opts.seed ?? 1);
  const n = opts.n ?? 40;
  const prompts = Array.from({ length: n }, (_, i) => `Prompt ${i}: the film was`);
  prompts[3] = 'A review with <script>alert("x")</script> and https://evil.example/';
  const boost = opts.candidateBoost ?? 0.8;
  const resp = (good: boolean, i: number) => ({ text: (good ? 'wonderful great ' : 'bad dull ') + 'x'.repeat(5 + (i % 7)) + (i === 5 ? '</pre><script>document.title="pwned"</script><img src="https://evil.example/a.png">' : ''), tokens: 8 + (i % 5) });
  const candidate = prompts.map((_, i) => resp(rng.next() < boost, i));
  const sft = prompts.map((_, i) => resp(rng.next() < 0.3, i));
  const score = (t: string) => (t.startsWith('wonderful') ? 1 : 0) + 0.1 * (t.length % 3);
  const judgments: Judgment[] = [];
  const scores = { sentiment: { candidate: candidate.map((r) => score(r.text)), sft: sft.map((r) => score(r.text)) } };
  prompts.forEach((_, i) => {
    const a = score(candidate[i]!.text);
    const b = score(sft[i]!.text);
    judgments.push({ judge: 'sentiment', baseline: 'sft', prompt: i, order: 'single', verdict: a > b ? 'win' : a < b ? 'loss' : 'tie', scores: { candidate: a, baseline: b } });
    for (const order of ['forward', 'backward'] as const) {
      if (i === 7) {
        judgments.push({ judge: 'pairwise-rule', baseline: 'sft', prompt: i, order, verdict: 'error', error: 'judge threw: boom' });
        continue;
      }
      const v = a > b ? 'win' : a < b ? 'loss' : order === 'forward' ? 'win' : 'tie';
      judgments.push({ judge: 'pairwise-rule', baseline: 'sft', prompt: i, order, verdict: v });
    }
  });
  const klS = prompts.map(() => {
    const pol = Array.from({ length: 6 }, () => -1 - rng.next());
    return { policy: pol, reference: pol.map((x) => x - 0.1 * rng.next()) };
  });
  const curve = (f: (i: number) => number): [number, number][] => Array.from({ length: 30 }, (_, i) => [i * 10, f(i)]);
  return {
    createdAt: '2026-11-28T00:00:00.000Z',
    provenance: {
      alignflowVersion: '0.1.0', engineVersion: 'engine-1', runId: 'run_fixture', stageId: 'stg_eval', stageName: 'eval', seed: 1234,
      config: { judges: ['sentiment'] }, stageConfigs: { dpo: { beta: 0.1 } },
      sampling: { temperature: 1, top_k: null, top_p: null, max_new_tokens: 32, seed: 1234 },
      bootstrap: { resamples: 500, seed: 1234, level: 0.95 }, backend: 'wasm',
    },
    models: [
      { label: 'candidate', role: 'candidate', artifactId: 'art_cand', name: 'dpo model' },
      { label: 'sft', role: 'baseline', artifactId: 'art_sft', name: 'sft model' },
    ],
    reference: { artifactId: 'art_sft', name: 'sft model' },
    datasets: [{ role: 'prompts', artifactId: 'art_prompts', name: 'eval prompts', records: n }],
    judges: [
      { name: 'sentiment', kind: 'rule', version: '1.0.0', pairwise: false, source: 'judges/sentiment.ts' },
      { name: 'pairwise-rule', kind: 'rule', version: '0.1', pairwise: true },
    ],
    prompts,
    responses: { candidate, sft },
    judgments,
    scores,
    kl: { candidate: klS, sft: prompts.map(() => ({ policy: [-1, -2], reference: [-1, -2] })) },
    heldOut: { candidate: [{ logp: -30, tokens: 10 }], sft: [{ logp: -29, tokens: 10 }] },
    implicit: { candidate: { beta: 0.1, pairs: prompts.map(() => ({ policyChosen: -10 + rng.next(), policyRejected: -12, referenceChosen: -11, referenceRejected: -11 })) } },
    rewardModelPairs: { rm: prompts.map(() => ({ chosen: rng.next() + 0.3, rejected: rng.next() })) },
    contamination: contamination(prompts, [prompts[1]!, 'unrelated', prompts[2]!.toUpperCase()]),
    curves: [
      { stage: 'sft', kind: 'sft', metric: 'loss', points: curve((i) => 5 * Math.exp(-i / 10) + 1) },
      { stage: 'reward', kind: 'reward', metric: 'accuracy', points: curve((i) => 0.5 + 0.4 * (1 - Math.exp(-i / 8))) },
      { stage: 'dpo', kind: 'dpo', metric: 'loss', points: curve((i) => Math.LN2 * Math.exp(-i / 20)) },
      { stage: 'dpo', kind: 'dpo', metric: 'rewards/accuracies', points: curve((i) => Math.min(1, 0.5 + i / 30)) },
      { stage: 'dpo', kind: 'dpo', metric: 'rewards/margins', points: curve((i) => i * 0.05) },
      { stage: 'dpo', kind: 'dpo', metric: 'logps/chosen', points: curve((i) => -20 - i * 0.1) },
      { stage: 'dpo', kind: 'dpo', metric: 'logps/rejected', points: curve((i) => -20 - i * 0.4) },
    ],
    warnings: [],
  };
}

export const fixtureReport = (o?: Parameters<typeof fixtureRaw>[0]) => buildReport(fixtureRaw(o));
