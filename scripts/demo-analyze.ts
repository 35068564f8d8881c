// Tuning aid (not part of the product): per-pair implicit rewards of a DPO model against its
// reference on the bundled held-out preference pairs, grouped by what the pair looks like.
//   ALIGNFLOW_HOME=… npx tsx scripts/demo-analyze.ts RUN_ID [beta]
import fs from 'node:fs';
import { openDb } from '../src/store/db.js';
import { createLocalStore } from '../src/store/artifacts.js';
import { alignflowHome, databasePath } from '../src/config/paths.js';
import { loadModelArtifact } from '../src/ml/models/store.js';
import { completionLogps } from '../src/ml/logprobs.js';
import { initBackend } from '../src/ml/backend.js';
import * as sentiment from '../judges/sentiment.mjs';

await initBackend();
const home = alignflowHome();
const db = openDb(databasePath(home));
const store = createLocalStore(db, home);
const run = process.argv[2]!;
const out = (stage: string) => (db.$client.prepare('SELECT artifact_id FROM stage_outputs WHERE stage_id = ? AND role = ?').get(`${run}-${stage}`, 'model') as { artifact_id: string }).artifact_id;
const cachedFrom = (stage: string) => (db.$client.prepare('SELECT cached_from_stage_id AS c FROM stages WHERE id = ?').get(`${run}-${stage}`) as { c: string | null }).c;
const outOf = (stage: string) => { const c = cachedFrom(stage); return c ? (db.$client.prepare('SELECT artifact_id FROM stage_outputs WHERE stage_id = ? AND role = ?').get(c, 'model') as { artifact_id: string }).artifact_id : out(stage); };
const sft = await loadModelArtifact(store, outOf('sft'));
const dpo = await loadModelArtifact(store, outOf('dpo'));
const tok = sft.tokenizer!;
const pairs = fs.readFileSync('datasets/sentiment/eval_prefs.jsonl', 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { prompt: string; chosen: string; rejected: string });
const items = (k: 'chosen' | 'rejected') => pairs.map((p) => ({ promptIds: tok.encode(p.prompt), completionIds: [...tok.encode(p[k]), tok.eosTokenId!] }));
const lp = async (m: typeof sft, k: 'chosen' | 'rejected') => (await completionLogps(m.model, items(k), { batchSize: 32, padId: tok.padTokenId })).map((x) => x.sum);
const [sc, sr, dc, dr] = [await lp(sft, 'chosen'), await lp(sft, 'rejected'), await lp(dpo, 'chosen'), await lp(dpo, 'rejected')];
let ok = 0;
const bad: string[] = [];
const buckets = new Map<string, [number, number]>();
pairs.forEach((p, i) => {
  const m = dc[i]! - sc[i]! - (dr[i]! - sr[i]!);
  const gap = sentiment.rawScore(p.prompt + ' ' + p.chosen) - sentiment.rawScore(p.prompt + ' ' + p.rejected);
  const key = `gap ${gap < 2 ? '<2' : gap < 4 ? '2-4' : '≥4'}`;
  const b = buckets.get(key) ?? [0, 0];
  b[1]++;
  if (m > 0) { ok++; b[0]++; } else bad.push(`${m.toFixed(2)} gap ${gap.toFixed(1)} | ${p.prompt} |+ ${p.chosen} |- ${p.rejected}`);
  buckets.set(key, b);
});
console.log('accuracy', ok / pairs.length, Object.fromEntries([...buckets].map(([k, [a, n]]) => [k, `${a}/${n}`])));
console.log(bad.slice(0, 40).join('\n'));
