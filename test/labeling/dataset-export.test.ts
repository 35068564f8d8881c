// The exported folder is a Hugging Face dataset: README.md's YAML names the files per config and
// counts the examples; the card carries the guidelines and the agreement figures of the batch.
// (scripts/check_hf_dataset.py loads such a folder with `datasets` itself; not needed here.)
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { freshDb, labeler, makePairs } from './helpers.js';
import { addPairs, createBatch } from '../../src/labeling/batches.js';
import { nextAssignment, submitLabel } from '../../src/labeling/queue.js';
import { exportBatch } from '../../src/labeling/export.js';
import { batchStats } from '../../src/labeling/stats.js';
import { tmpDir } from '../helpers/tmp.js';

test('labels export writes a Hugging Face dataset card beside the JSONL files', () => {
  const { db } = freshDb();
  const batch = createBatch(db, { name: 'card batch', quota: 2, goldRate: 0.2, guidelines: 'Prefer the **factually correct** answer.\n\nThen the shorter one.' });
  addPairs(db, batch.id, makePairs(8), { gold: [{ prompt: 'gold q', chosen: 'right', rejected: 'wrong' }, { prompt: 'gold r', chosen: 'right', rejected: 'wrong' }] });
  const ann = labeler(db, 'ann'), bob = labeler(db, 'bob');
  for (const u of [ann, bob]) {
    for (;;) {
      const a = nextAssignment(db, batch.id, u);
      if (!a) break;
      // Both prefer the "A" answer, except bob on prompt 3: some disagreement for α and κ.
      const aLeft = a.left.includes('answer A') || a.left === 'right';
      const wantA = !(u === bob && a.prompt.endsWith('prompt 3'));
      submitLabel(db, a.assignmentId, u, { choice: aLeft === wantA ? 'left' : 'right', durationMs: 1000 });
    }
  }
  const dir = tmpDir();
  const out = exportBatch(db, batch.id, dir);
  const readme = fs.readFileSync(out.card, 'utf8');
  const m = /^---\n([\s\S]*?)\n---\n/.exec(readme);
  assert.ok(m, 'YAML front matter');
  const meta = YAML.parse(m[1]!);
  assert.deepEqual(meta.configs, [
    { config_name: 'default', data_files: [{ split: 'train', path: 'preferences.jsonl' }] },
    { config_name: 'labels', data_files: [{ split: 'train', path: 'labels.jsonl' }] },
  ]);
  for (const c of meta.configs) assert.ok(fs.existsSync(path.join(dir, c.data_files[0].path)));
  const lines = fs.readFileSync(path.join(dir, 'preferences.jsonl'), 'utf8').trim().split('\n');
  assert.equal(lines.length, 7, 'prompt 3 is a 1–1 split and is excluded');
  assert.equal(meta.dataset_info[0].splits[0].num_examples, lines.length);
  assert.deepEqual(meta.dataset_info[0].features.map((f: { name: string }) => f.name), ['prompt', 'chosen', 'rejected']);
  assert.equal(meta.pretty_name, 'card batch');
  assert.ok(readme.includes('Prefer the **factually correct** answer.\n\nThen the shorter one.'), 'guidelines verbatim');
  const st = batchStats(db, batch.id);
  assert.ok(st.alpha !== null);
  assert.ok(readme.includes(`| Krippendorff's α (nominal, 4 decisions) | ${st.alpha!.toFixed(3)} |`));
  assert.ok(readme.includes(`| mean pairwise Cohen's κ | ${st.kappa.mean!.toFixed(3)} |`));
  assert.match(readme, /\| user:ann \| 2 \/ 2 \| 100\.0% \|/);
  assert.match(readme, /\*\*7\*\* preference records .* from 8 pairs; excluded: 0 tie, 0 both bad, 1 split vote, 0 unlabeled/);
  assert.doesNotMatch(readme, /https?:\/\//);
});

test('a ranking batch exports its induced pairs, its raw rankings (config `rankings`) and a card with the pair rule', () => {
  const { db } = freshDb();
  const batch = createBatch(db, { name: 'ranked', kind: 'ranking', pairRule: 'best_vs_rest', guidelines: 'Best first.' });
  addPairs(db, batch.id, [0, 1].map((i) => ({ prompt: `p${i}`, a: { text: `mid ${i}` }, b: { text: `top ${i}` }, rest: [{ text: `low ${i}` }] })));
  const u = labeler(db, 'ann');
  for (;;) {
    const a = nextAssignment(db, batch.id, u);
    if (!a) break;
    const n = (w: string) => a.answers!.findIndex((t) => t.startsWith(w)) + 1;
    submitLabel(db, a.assignmentId, u, { ranking: [[n('top')], [n('mid')], [n('low')]] });
  }
  const out = exportBatch(db, batch.id, tmpDir());
  assert.ok(out.rankings, 'rankings.jsonl written');
  const prefs = fs.readFileSync(out.preferences, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(prefs.map((p) => `${p.chosen}>${p.rejected}`), ['top 0>mid 0', 'top 0>low 0', 'top 1>mid 1', 'top 1>low 1']);
  const rk = fs.readFileSync(out.rankings!, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(rk.map((r) => [r.responses, r.ranking, r.ranks]), [0, 1].map((i) => [[`mid ${i}`, `top ${i}`, `low ${i}`], [[1], [0], [2]], [2, 1, 3]]));
  const card = fs.readFileSync(out.card, 'utf8');
  const meta = YAML.parse(/^---\n([\s\S]*?)\n---\n/.exec(card)![1]!);
  assert.deepEqual(meta.configs[2], { config_name: 'rankings', data_files: [{ split: 'train', path: 'rankings.jsonl' }] });
  assert.match(card, /the pair rule \*\*best_vs_rest\*\*/);
  assert.match(card, /Best first\./);
});
