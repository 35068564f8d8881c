// Adding a model family is one model file plus a registry entry (issue 14, item 1): no code outside
// src/ml/models/gpt2.ts names GPT-2's config keys, weight names or model_type (context length, hidden
// size, weight-name checks, the reward head, model_init keys all go through the family). Comments
// may mention them; the one allowed code line is listed below with why.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../helpers/fixtures.js';

const GPT2_NAMES = /\b(n_embd|n_layer|n_head|n_positions|n_inner|n_ctx|c_attn|c_fc|c_proj|wte|wpe|ln_f|layer_norm_epsilon|GPT2LMHeadModel|GPT2ForSequenceClassification)\b|['"`]gpt2['"`]/;

const ALLOWED: { file: string; line: RegExp; why: string }[] = [
  { file: 'src/ml/models/init.ts', line: /model_type \?\?=? ?'gpt2'|\?\? 'gpt2'\)/, why: 'a fresh-model config without model_type defaults to the GPT-2 family' },
];

function tsFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? tsFiles(p) : e.name.endsWith('.ts') ? [p] : [];
  });
}

/** The code of a line: without // comments, and nothing inside a block comment. */
function codeLines(text: string): { n: number; code: string }[] {
  const out: { n: number; code: string }[] = [];
  let inBlock = false;
  text.split('\n').forEach((raw, i) => {
    let line = raw;
    if (inBlock) {
      const end = line.indexOf('*/');
      if (end < 0) return;
      line = line.slice(end + 2);
      inBlock = false;
    }
    line = line.replace(/\/\*.*?\*\//g, '');
    const open = line.indexOf('/*');
    if (open >= 0) {
      inBlock = true;
      line = line.slice(0, open);
    }
    const trimmed = line.trimStart();
    if (trimmed.startsWith('*') || trimmed.startsWith('//')) return;
    line = line.replace(/\s\/\/ .*$/, '');
    out.push({ n: i + 1, code: line });
  });
  return out;
}

test('no GPT-2 config key, weight name or model_type in code outside the GPT-2 model file', () => {
  const hits: string[] = [];
  for (const abs of tsFiles(path.join(REPO_ROOT, 'src'))) {
    const rel = path.relative(REPO_ROOT, abs).split(path.sep).join('/');
    if (rel === 'src/ml/models/gpt2.ts') continue;
    for (const { n, code } of codeLines(fs.readFileSync(abs, 'utf8'))) {
      if (!GPT2_NAMES.test(code)) continue;
      if (ALLOWED.some((a) => a.file === rel && a.line.test(code))) continue;
      hits.push(`${rel}:${n}: ${code.trim()}`);
    }
  }
  assert.deepEqual(hits, []);
});

test('the check sees GPT-2 names in code and ignores them in comments', () => {
  const lines = codeLines("const a = 1; // n_embd\n/* c_attn\n n_layer */ const b = cfg.n_embd;\n * wte\nx.n_positions");
  assert.deepEqual(lines.filter((l) => GPT2_NAMES.test(l.code)).map((l) => l.n), [3, 5]);
});
