// Real parts for the stage tests: a SQLite store in a temp dir, a byte-level tokenizer, a tiny
// GPT-2 saved as a model artifact, preference datasets imported from JSONL, and a StageContext
// (the contract object the orchestrator would build) that records metrics, logs and checkpoints.
import fs from 'node:fs';
import path from 'node:path';
import { openDb, type Db } from '../../src/store/db.js';
import { createLocalStore, type LocalArtifactStore } from '../../src/store/artifacts.js';
import { importDataset } from '../../src/data/datasets.js';
import { bytesTokenizer } from '../../src/ml/tokenizer/index.js';
import { createGpt2 } from '../../src/ml/models/gpt2.js';
import { saveModelDir } from '../../src/ml/models/io.js';
import { Rng } from '../../src/ml/train/rng.js';
import type { ArtifactManifest } from '../../src/store/types.js';
import type { CheckpointRef, StageContext } from '../../src/stages/contract.js';
import { dirFiles } from '../../src/store/dir-files.js';
import { tmpDir } from '../helpers/tmp.js';

export interface Env {
  home: string;
  db: Db;
  store: LocalArtifactStore;
}

export function env(): Env {
  const home = tmpDir();
  const db = openDb(path.join(home, 'state.db'));
  return { home, db, store: createLocalStore(db, home) };
}

/** A byte-tokenizer GPT-2 (vocab 257) as a model artifact. */
export async function modelArtifact(e: Env, seed = 1): Promise<ArtifactManifest> {
  const tok = bytesTokenizer();
  const m = createGpt2({ vocab_size: tok.vocabSize, n_positions: 48, n_embd: 32, n_layer: 2, n_head: 2, eos_token_id: tok.eosTokenId, bos_token_id: tok.eosTokenId }, seed);
  const dir = path.join(e.home, `model-${seed}`);
  saveModelDir(m, tok, dir);
  m.dispose();
  return e.store.put({ kind: 'model', name: `tiny-${seed}`, files: dirFiles(dir) });
}

/** Text pairs: chosen answers contain "+", rejected ones "-", everything else random letters. */
export function textPairs(n: number, seed: number): { prompt: string; chosen: string; rejected: string }[] {
  const rng = new Rng(seed);
  const word = (k: number) => Array.from({ length: k }, () => String.fromCharCode(97 + Math.floor(rng.next() * 8))).join('');
  const ans = (mark: string) => {
    const w = word(4);
    const at = Math.floor(rng.next() * 5);
    return ' ' + w.slice(0, at) + mark + w.slice(at);
  };
  return Array.from({ length: n }, () => ({ prompt: `q ${word(3)}:`, chosen: ans('+'), rejected: ans('-') }));
}

export async function datasetArtifact(e: Env, name: string, rows: object[]): Promise<ArtifactManifest> {
  const file = path.join(e.home, `${name}.jsonl`);
  fs.writeFileSync(file, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return (await importDataset(e.db, e.store, file, { name })).artifact;
}

export interface Recorded {
  ctx: StageContext<unknown>;
  metrics: { step: number; values: Record<string, number> }[];
  logs: { level: string; msg: string }[];
  checkpoints: CheckpointRef[];
}

export function stageContext(
  e: Env,
  kind: string,
  config: unknown,
  inputs: Record<string, ArtifactManifest>,
  name = kind,
  o: { abortAtStep?: number; checkpoints?: CheckpointRef[] } = {},
): Recorded {
  const rec: Recorded = { metrics: [], logs: [], checkpoints: o.checkpoints ?? [], ctx: undefined as never };
  const ac = new AbortController();
  const workDir = fs.mkdtempSync(path.join(e.home, 'work-'));
  const log = (level: string) => (msg: string) => void rec.logs.push({ level, msg });
  rec.ctx = {
    runId: 'r-test',
    stageId: `s-${name}`,
    stageName: name,
    kind,
    config,
    inputs,
    store: e.store,
    workDir,
    seed: 42,
    latestCheckpoint: async () => rec.checkpoints.at(-1),
    saveCheckpoint: async (step, a) => {
      const artifact = await e.store.put({ ...a, kind: 'checkpoint' });
      const ref = { step, artifact };
      rec.checkpoints.push(ref);
      return ref;
    },
    progress: (p) => {
      if (o.abortAtStep !== undefined && p.step >= o.abortAtStep) ac.abort();
    },
    metrics: (step, values) => void rec.metrics.push({ step, values }),
    log: { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') },
    signal: ac.signal,
  };
  return rec;
}
