// The generators: same seed → byte-identical files; valid TRL records of the expected kinds;
// disjoint prompt splits; labels that agree with the ground-truth judges.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as sentimentJudge from '../../judges/sentiment.mjs';
import * as countJudge from '../../judges/count.mjs';
import { detectFormat, normalizeRecord } from '../../src/data/formats.js';
import { AlignflowError } from '../../src/errors.js';
import { generateCount, generateMixed, generateSentiment, Prng, renderDataset, type SynthDataset } from '../../src/data/synth/index.js';

// Small sizes keep this fast; the bundled-files test covers the defaults.
const SMALL = { nTrain: 400, nSftEval: 50, nPrompts: 30, nEvalPrompts: 30, nPrefs: 80, nEvalPrefs: 40 };
const bytes = (ds: SynthDataset) => renderDataset(ds, 'cmd').map((f) => [f.name, f.content]);
const recordsOf = (ds: SynthDataset, name: string) => ds.files.find((f) => f.name === name)!.records;

test('the PRNG is a fixed function of (seed, stream)', () => {
  const seq = (seed: number, stream: string) => {
    const r = new Prng(seed, stream);
    return Array.from({ length: 5 }, () => r.uint32());
  };
  assert.deepEqual(seq(7, 'x'), seq(7, 'x'));
  assert.notDeepEqual(seq(7, 'x'), seq(7, 'y'));
  assert.notDeepEqual(seq(7, 'x'), seq(8, 'x'));
  // Pinned values: if this changes, every bundled dataset changes (regenerate them, bump the generator versions).
  assert.deepEqual(seq(1, 'pin').slice(0, 3), [800816822, 518983177, 1223616195]);
  assert.throws(() => new Prng(-1), RangeError);
  assert.throws(() => new Prng(1.5), RangeError);
});

for (const [task, gen] of [
  ['sentiment', (o: object) => generateSentiment(o)],
  ['count', (o: object) => generateCount(o)],
] as const) {
  test(`${task}: same seed → byte-identical files; another seed → different ones`, () => {
    assert.deepEqual(bytes(gen({ ...SMALL, seed: 3 })), bytes(gen({ ...SMALL, seed: 3 })));
    const other = bytes(gen({ ...SMALL, seed: 4 }));
    const base = bytes(gen({ ...SMALL, seed: 3 }));
    for (let i = 0; i < base.length - 1; i++) assert.notEqual(other[i]![1], base[i]![1], `${base[i]![0]} should change with the seed`);
  });

  test(`${task}: each file has its own stream (resizing one leaves the others unchanged)`, () => {
    const a = gen({ ...SMALL, seed: 5 });
    const b = gen({ ...SMALL, seed: 5, nTrain: 123 });
    assert.equal(recordsOf(b, 'sft.jsonl').length, 123);
    assert.deepEqual(recordsOf(b, 'sft.jsonl'), recordsOf(a, 'sft.jsonl').slice(0, 123));
    for (const name of ['prompts.jsonl', 'eval_prompts.jsonl', 'prefs.jsonl', 'eval_prefs.jsonl']) assert.deepEqual(recordsOf(b, name), recordsOf(a, name));
  });

  test(`${task}: every line is a valid TRL record of the expected kind`, () => {
    const ds = gen({ ...SMALL, seed: 6 });
    const expected = { sft: 'prompt-completion', prompt: 'prompt-only', preference: 'explicit-prompt' } as const;
    const keys = { sft: ['prompt', 'completion'], prompt: ['prompt'], preference: ['prompt', 'chosen', 'rejected'] };
    for (const f of renderDataset(ds, 'cmd')) {
      const kind = f.kind;
      if (kind === 'manifest') continue;
      const lines = f.content.split('\n');
      assert.equal(lines.pop(), '', `${f.name} ends with a newline`);
      assert.equal(lines.length, f.records);
      lines.forEach((line, i) => {
        const obj = JSON.parse(line) as Record<string, unknown>;
        assert.deepEqual(Object.keys(obj), keys[kind], `${f.name}:${i + 1} keys`);
        const format = detectFormat(obj);
        assert.equal(format, expected[kind], `${f.name}:${i + 1} format`);
        const n = normalizeRecord(obj, format!);
        assert.ok(n.ok && n.warnings.length === 0, `${f.name}:${i + 1} ${JSON.stringify(n)}`);
        // Completions start with a space so the prompt tokenizes as a prefix of prompt + completion.
        for (const k of ['completion', 'chosen', 'rejected']) if (k in obj) assert.match(obj[k] as string, /^ \S/, `${f.name}:${i + 1} ${k}`);
        assert.doesNotMatch(obj.prompt as string, /\s$/);
      });
    }
  });

  test(`${task}: prompt splits are disjoint and prompt files have no repeats`, () => {
    const ds = gen({ ...SMALL, seed: 8 });
    const set = (name: string) => new Set(recordsOf(ds, name).map((r) => r.prompt!));
    const sft = set('sft.jsonl');
    const collect = set('prompts.jsonl');
    const evalP = set('eval_prompts.jsonl');
    assert.equal(collect.size, SMALL.nPrompts);
    assert.equal(evalP.size, SMALL.nEvalPrompts);
    for (const p of evalP) assert.ok(!sft.has(p) && !collect.has(p), `eval prompt ${p} is also a training prompt`);
    for (const p of collect) assert.ok(!sft.has(p), `collection prompt ${p} is also an SFT prompt`);
    for (const r of recordsOf(ds, 'prefs.jsonl')) assert.ok(!sft.has(r.prompt!) && !evalP.has(r.prompt!));
    for (const r of recordsOf(ds, 'eval_prefs.jsonl')) assert.ok(!sft.has(r.prompt!) && !collect.has(r.prompt!));
    for (const r of recordsOf(ds, 'sft_eval.jsonl')) assert.ok(!sft.has(r.prompt!) && !collect.has(r.prompt!));
  });

  test(`${task}: bad options are refused as input errors`, () => {
    for (const bad of [{ nTrain: 0 }, { nPrompts: 1.5 }, { seed: -1 }, { nEvalPrefs: Number.NaN }]) {
      assert.throws(() => gen(bad), (e: unknown) => e instanceof AlignflowError && e.kind === 'input', JSON.stringify(bad));
    }
  });
}

test('sentiment: labels agree with the judge by at least the margin; corpus is of mixed sentiment', () => {
  const ds = generateSentiment({ ...SMALL, nTrain: 2000, seed: 9, minMargin: 1.5 });
  for (const name of ['prefs.jsonl', 'eval_prefs.jsonl']) {
    for (const r of recordsOf(ds, name)) {
      const gap = sentimentJudge.rawScore(r.prompt + ' ' + r.chosen) - sentimentJudge.rawScore(r.prompt + ' ' + r.rejected);
      assert.ok(gap >= 1.5, `${name}: ${JSON.stringify(r)} gap ${gap}`);
    }
  }
  const scores = recordsOf(ds, 'sft.jsonl').map((r) => sentimentJudge.score(r.prompt!, r.completion!));
  const pos = scores.filter((x) => x > 0).length / scores.length;
  const neg = scores.filter((x) => x < 0).length / scores.length;
  assert.ok(pos > 0.38 && pos < 0.55 && neg > 0.38 && neg < 0.55, `positive ${pos}, negative ${neg}`);
  const words = new Set(recordsOf(ds, 'sft.jsonl').flatMap((r) => sentimentJudge.tokenize(r.prompt! + r.completion!)));
  assert.ok(words.size < 300, `vocabulary of ${words.size} words`);
});

test('count: the corpus has the configured error rate; chosen comply, rejected do not', () => {
  const ds = generateCount({ ...SMALL, nTrain: 2000, seed: 10, errorRate: 0.3 });
  const sft = recordsOf(ds, 'sft.jsonl');
  const compliance = sft.filter((r) => countJudge.score(r.prompt!, r.completion!) === 1).length / sft.length;
  assert.ok(Math.abs(compliance - 0.7) < 0.04, `compliance ${compliance}`);
  for (const name of ['prefs.jsonl', 'eval_prefs.jsonl']) {
    for (const r of recordsOf(ds, name)) {
      assert.equal(countJudge.score(r.prompt!, r.chosen!), 1, JSON.stringify(r));
      assert.equal(countJudge.score(r.prompt!, r.rejected!), 0, JSON.stringify(r));
    }
  }
  assert.equal(generateCount({ ...SMALL, errorRate: 0 }).files[0]!.records.every((r) => countJudge.score(r.prompt!, r.completion!) === 1), true);
});

test('count: asking for more distinct prompts than the split holds is a clear input error', () => {
  assert.throws(() => generateCount({ ...SMALL, nEvalPrompts: 150 }), /distinct prompts could be drawn for --n-eval-prompts/);
  assert.throws(() => generateCount({ ...SMALL, nEvalPrompts: 400 }), /--n-eval-prompts must be an integer from 1 to 192/);
});

test('mixed: exactly the records of both tasks with the same seed, shuffled together', () => {
  const mixed = generateMixed({ seed: 11, nSentiment: 300, nCount: 120 });
  for (const name of ['sft.jsonl', 'sft_eval.jsonl']) {
    // sft_eval.jsonl keeps each task's default size
    const parts = [...recordsOf(generateSentiment({ seed: 11, nTrain: 300 }), name), ...recordsOf(generateCount({ seed: 11, nTrain: 120 }), name)];
    const key = (r: Record<string, string>) => JSON.stringify(r);
    const got = recordsOf(mixed, name);
    assert.deepEqual(got.map(key).sort(), parts.map(key).sort());
    assert.notDeepEqual(got.map(key), parts.map(key), 'shuffled');
  }
  assert.throws(() => generateMixed({ nCount: 0 }), /--n-count must be an integer/);
});
