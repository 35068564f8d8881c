// alignflow generate --model ID|DIR --prompt "..." [--n --max-new-tokens --temperature --top-k --top-p --seed --no-cache --json]
import fs from 'node:fs';
import type { Command } from 'commander';
import { printJson, readCliInput } from '../shared.js';
import { usageError } from '../../errors.js';
import { generate, stopTokenIds } from '../../ml/generate.js';
import { loadModelRef } from './model-ref.js';

interface Opts {
  model: string;
  prompt: string[];
  promptsFile?: string;
  n: string;
  maxNewTokens: string;
  temperature: string;
  topK: string;
  topP: string;
  seed: string;
  cache: boolean;
  json?: boolean;
}

const num = (v: string, flag: string, int = false): number => {
  const x = Number(v);
  if (v.trim() === '' || !Number.isFinite(x) || (int && !Number.isInteger(x))) throw usageError(`${flag} must be ${int ? 'an integer' : 'a number'}, got "${v}"`);
  return x;
};

async function run(o: Opts): Promise<void> {
  const prompts = [...(o.prompt ?? [])];
  if (o.promptsFile) {
    if (!fs.existsSync(o.promptsFile)) throw usageError(`--prompts-file ${o.promptsFile} does not exist`);
    prompts.push(...readCliInput(o.promptsFile, '--prompts-file').split('\n').filter((l) => l.length > 0));
  }
  if (prompts.length === 0) throw usageError('give at least one --prompt (or --prompts-file with one prompt per line)');
  const n = num(o.n, '--n', true);
  if (n < 1) throw usageError('--n must be ≥ 1');
  const opts = {
    maxNewTokens: num(o.maxNewTokens, '--max-new-tokens', true),
    temperature: num(o.temperature, '--temperature'),
    topK: num(o.topK, '--top-k', true),
    topP: num(o.topP, '--top-p'),
    seed: num(o.seed, '--seed', true),
    useCache: o.cache,
  };
  const { model, tokenizer, ref } = await loadModelRef(o.model);
  try {
    const tok = tokenizer!;
    const rows = prompts.flatMap((p) => Array.from({ length: n }, () => tok.encode(p)));
    const t0 = performance.now();
    const res = await generate(model, rows, { ...opts, eosTokenId: stopTokenIds(model, tok), padTokenId: tok.padTokenId });
    const secs = (performance.now() - t0) / 1000;
    const newTokens = res.tokens.reduce((a, t) => a + t.length, 0);
    const eos = tok.eosTokenId;
    const out = prompts.map((p, i) => ({
      prompt: p,
      completions: Array.from({ length: n }, (_, j) => {
        const k = i * n + j;
        const ids = res.tokens[k]!;
        const text = tok.decode(ids.filter((id) => id !== eos));
        return { text, token_ids: ids, finish_reason: res.finishReasons[k]! };
      }),
    }));
    if (o.json) {
      printJson({ model: ref, settings: opts, truncated_prompts: res.truncatedPrompts, new_tokens: newTokens, seconds: secs, tokens_per_second: newTokens / secs, results: out });
      return;
    }
    // the completion in bold on a terminal; plain prompt+completion otherwise
    const [b0, b1] = process.stdout.isTTY ? ['\u001b[1m', '\u001b[0m'] : ['', ''];
    for (const r of out) {
      for (const c of r.completions) process.stdout.write(`${r.prompt}${b0}${c.text}${b1}\n`);
    }
    process.stderr.write(`${newTokens} tokens in ${secs.toFixed(2)} s (${(newTokens / secs).toFixed(0)} tokens/s)${res.truncatedPrompts ? `; ${res.truncatedPrompts} prompt(s) cut to fit the context` : ''}\n`);
  } finally {
    model.dispose();
  }
}

export function register(program: Command): void {
  program
    .command('generate')
    .description('sample completions from a model (batched, KV cache)')
    .requiredOption('--model <id|dir>', 'model artifact id (or prefix) or a model directory')
    .option('--prompt <text>', 'a prompt (repeatable)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--prompts-file <file>', 'one prompt per line')
    .option('--n <count>', 'samples per prompt', '1')
    .option('--max-new-tokens <n>', 'tokens to generate at most', '64')
    .option('--temperature <t>', '0 = greedy', '1')
    .option('--top-k <k>', 'keep the k most likely tokens (0 = off)', '0')
    .option('--top-p <p>', 'nucleus sampling (1 = off)', '1')
    .option('--seed <seed>', 'sampling seed', '0')
    .option('--no-cache', 'recompute the whole sequence each step (slow; for comparison)')
    .option('--json', 'print JSON')
    .action((o: Opts) => run(o));
}
