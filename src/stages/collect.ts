// The `collect` stage: for each prompt of a prompt dataset, sample k completions from the policy
// (batched, KV-cached, seeded — src/ml/generate.ts), drop exact duplicates, and form pairs:
//   pairing: all            every unordered pair of distinct completions (capped per prompt)
//   pairing: best_vs_worst  the highest- against the lowest-scored completion, scored by a judge
//                           module's score(prompt, response) or a reward model input
// Responses and pairs are stored through the labeling port (with model, sampling settings and
// seed), and a 'pairs' artifact (pairs.jsonl) is the stage's output for the label stage.
//
// Repeatability: batch i is sampled with seed ctx.seed + i, so the same run seed, model, prompts
// and config give the same completions; ids are derived from the stage id and positions, so a
// retried stage stores nothing twice.
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { AlignflowError } from '../errors.js';
import type { StageContext, StageHandler, StageOutcome } from './contract.js';
import { requireLabeling } from '../labeling/port.js';
import { PAIRS_FILE, type PairsLine } from '../labeling/pairs-artifact.js';
import type { PairInput } from '../labeling/batches.js';
import { MAX_RANK_ANSWERS } from '../labeling/ranking.js';

export const collectConfigSchema = z
  .object({
    /** Completions sampled per prompt. */
    k: z.number().int().min(2).max(64).default(4),
    max_new_tokens: z.number().int().min(1).max(4096).default(64),
    temperature: z.number().min(0).max(10).default(1),
    top_k: z.number().int().min(0).optional(),
    top_p: z.number().gt(0).max(1).optional(),
    /** Prompts per generate() call (each contributes k rows). */
    batch_size: z.number().int().min(1).max(256).default(4),
    pairing: z.enum(['all', 'best_vs_worst']).default('all'),
    /**
     * pairs: form pairs by `pairing`; ranking: one k-way item per prompt holding its distinct
     * completions (k ≤ 8), for human ranking in a label stage (docs/labeling.md, "Rankings").
     */
    items: z.enum(['pairs', 'ranking']).default('pairs'),
    /** all-pairs: at most this many pairs per prompt (k=4 gives 6). */
    max_pairs_per_prompt: z.number().int().min(1).max(2016).default(6),
    /** Use only the first N prompts. */
    max_prompts: z.number().int().min(1).optional(),
    /** best_vs_worst: a judge module exporting score(prompt, response). */
    judge: z.string().optional(),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.items === 'ranking' && c.k > MAX_RANK_ANSWERS) ctx.addIssue({ code: 'custom', path: ['k'], message: `a ranking item holds at most ${MAX_RANK_ANSWERS} answers; lower k or use items: pairs` });
    if (c.items === 'ranking' && c.pairing !== 'all') ctx.addIssue({ code: 'custom', path: ['pairing'], message: 'pairing does not apply to ranking items (the label stage pair_rule does)' });
  });

export type CollectConfig = z.infer<typeof collectConfigSchema>;

export interface Sample {
  text: string;
  seed: number;
  index: number;
  score?: number;
}

/** Keeps the first of every exact duplicate. */
export function dedupe<T extends { text: string }>(xs: readonly T[]): T[] {
  const seen = new Set<string>();
  return xs.filter((x) => (seen.has(x.text) ? false : (seen.add(x.text), true)));
}

/** Pair formation for one prompt (pure). Returns index pairs into `samples`. */
export function formPairs(samples: readonly Sample[], pairing: 'all' | 'best_vs_worst', maxPairs: number): [number, number][] {
  if (samples.length < 2) return [];
  if (pairing === 'best_vs_worst') {
    let best = 0;
    let worst = 0;
    samples.forEach((s, i) => {
      if (s.score === undefined) throw new AlignflowError('internal', 'best_vs_worst pairing needs every completion scored');
      if (s.score > samples[best]!.score!) best = i;
      if (s.score < samples[worst]!.score!) worst = i;
    });
    return best === worst ? [] : [[best, worst]];
  }
  const out: [number, number][] = [];
  for (let i = 0; i < samples.length && out.length < maxPairs; i++) for (let j = i + 1; j < samples.length && out.length < maxPairs; j++) out.push([i, j]);
  return out;
}

async function promptsOf(ctx: StageContext<CollectConfig>): Promise<unknown[]> {
  const m = ctx.inputs.prompts ?? Object.values(ctx.inputs).find((a) => a.kind === 'dataset');
  if (!m) throw new AlignflowError('config', `stage ${ctx.stageName}: collect needs a 'prompts' dataset input`);
  const { readDatasetRecords } = await import('../data/datasets.js');
  const out: unknown[] = [];
  for await (const r of readDatasetRecords(ctx.store, m.id)) {
    const p = (r as { prompt?: unknown }).prompt;
    if (p === undefined) throw new AlignflowError('config', `dataset ${m.id} has records without a prompt; collect needs a prompt (or prompt-completion) dataset`);
    out.push(p);
    if (ctx.config.max_prompts && out.length >= ctx.config.max_prompts) break;
  }
  return out;
}

export async function runCollectStage(ctx: StageContext<CollectConfig>): Promise<StageOutcome> {
  const c = ctx.config;
  const port = requireLabeling(ctx.labeling);
  const modelArt = ctx.inputs.model ?? ctx.inputs.policy;
  if (!modelArt) throw new AlignflowError('config', `stage ${ctx.stageName}: collect needs a 'model' input (the policy)`);
  if (c.pairing === 'best_vs_worst' && !c.judge) throw new AlignflowError('config', 'pairing best_vs_worst needs `judge:` (a module exporting score(prompt, response))');

  const [{ loadModelDir }, { generate }, { promptText }] = await Promise.all([import('../ml/models/io.js'), import('../ml/generate.js'), import('../ml/train/records.js')]);
  const judge = c.judge ? await (await import('../labeling/labelers/rule.js')).loadJudge(c.judge) : undefined;
  if (judge && !judge.score) throw new AlignflowError('config', `judge ${judge.source} has no score(prompt, response) export, which best_vs_worst needs`);

  const dir = path.join(ctx.workDir, 'policy');
  fs.mkdirSync(dir, { recursive: true });
  await ctx.store.materialize(modelArt.id, dir);
  const { model, tokenizer } = await loadModelDir(dir, { requireTokenizer: true });
  const sampling = { temperature: c.temperature, top_k: c.top_k ?? null, top_p: c.top_p ?? null, max_new_tokens: c.max_new_tokens, k: c.k };
  const lines: PairsLine[] = [];
  let duplicates = 0;
  try {
    const tok = tokenizer!;
    const prompts = (await promptsOf(ctx)).map((p) => promptText(tok, p as Parameters<typeof promptText>[1]));
    const batches = Math.ceil(prompts.length / c.batch_size);
    for (let bi = 0; bi < batches; bi++) {
      if (ctx.signal.aborted) throw new AlignflowError('cancelled', 'collect cancelled');
      const chunk = prompts.slice(bi * c.batch_size, (bi + 1) * c.batch_size);
      const seed = ctx.seed + bi;
      const ids = chunk.flatMap((p) => Array.from({ length: c.k }, () => tok.encode(p)));
      const res = await generate(model, ids, { maxNewTokens: c.max_new_tokens, temperature: c.temperature, topK: c.top_k, topP: c.top_p, seed, signal: ctx.signal });
      const toSave: PairInput[] = [];
      for (let pi = 0; pi < chunk.length; pi++) {
        const prompt = chunk[pi]!;
        const promptIndex = bi * c.batch_size + pi;
        const all: Sample[] = Array.from({ length: c.k }, (_, j) => ({ text: tok.decode(res.tokens[pi * c.k + j]!, { skipSpecialTokens: true }), seed, index: j }));
        const samples = dedupe(all);
        duplicates += all.length - samples.length;
        if (judge?.score) for (const s of samples) s.score = await judge.score(prompt, s.text);
        const rid = (s: Sample) => `r-${ctx.stageId}-${promptIndex}-${s.index}`;
        const resp = (s: Sample) => ({ id: rid(s), text: s.text, modelArtifactId: modelArt.id, sampling: { ...sampling, sample_index: s.index }, seed: s.seed, score: s.score ?? null });
        if (c.items === 'ranking') {
          // One item of all distinct completions; a prompt whose completions were all equal has none.
          if (samples.length >= 2) toSave.push({ id: `p-${ctx.stageId}-${promptIndex}-rank`, prompt, a: resp(samples[0]!), b: resp(samples[1]!), rest: samples.slice(2).map(resp) });
          continue;
        }
        for (const [i, j] of formPairs(samples, c.pairing, c.max_pairs_per_prompt)) {
          const sa = samples[i]!;
          const sb = samples[j]!;
          toSave.push({ id: `p-${ctx.stageId}-${promptIndex}-${sa.index}-${sb.index}`, prompt, a: resp(sa), b: resp(sb) });
        }
      }
      await port.savePairs(ctx.runId, ctx.stageId, toSave);
      for (const p of toSave) {
        const line = (r: PairInput['a']) => ({ id: r.id!, text: r.text, model: r.modelArtifactId ?? null, sampling: r.sampling ?? null, seed: r.seed ?? null, score: r.score ?? null });
        lines.push({ pair_id: p.id!, prompt: p.prompt, response_a: line(p.a), response_b: line(p.b), ...(p.rest ? { responses: [p.a, p.b, ...p.rest].map(line) } : {}) });
      }
      ctx.progress({ step: bi + 1, total: batches, message: `sampled ${Math.min((bi + 1) * c.batch_size, prompts.length)}/${prompts.length} prompts, ${lines.length} ${c.items === 'ranking' ? 'ranking items' : 'pairs'}` });
    }
  } finally {
    model.dispose();
  }
  if (lines.length === 0) throw new AlignflowError('input', `collect formed no pairs (every prompt's ${c.k} completions were identical or unscorable); raise temperature or k`);
  const pairsArt = await ctx.store.put({
    kind: 'pairs',
    name: `${ctx.stageName}-pairs`,
    files: [{ path: PAIRS_FILE, data: Buffer.from(lines.map((l) => JSON.stringify(l)).join('\n') + '\n') }],
    metadata: { pairs: lines.length, items: c.items, pairing: c.pairing, sampling, seed: ctx.seed, model: modelArt.id, duplicatesDropped: duplicates, judge: judge?.source ?? null },
    inputs: [
      { artifactId: modelArt.id, role: 'policy' },
      ...Object.entries(ctx.inputs)
        .filter(([role, a]) => a.id !== modelArt.id && role !== 'model')
        .map(([role, a]) => ({ artifactId: a.id, role })),
    ],
    producer: { runId: ctx.runId, stageId: ctx.stageId, role: 'pairs' },
  });
  return { status: 'done', outputs: { pairs: pairsArt }, summary: { pairs: lines.length, duplicatesDropped: duplicates } };
}

export const collectStage: StageHandler<CollectConfig> = {
  kind: 'collect',
  configSchema: collectConfigSchema as unknown as StageHandler<CollectConfig>['configSchema'],
  heavy: true,
  run: runCollectStage,
};
