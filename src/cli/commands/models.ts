// alignflow models init | import | export | ls | show
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { cliDb, printJson, printTable } from '../shared.js';
import { alignflowHome, tmpDir } from '../../config/paths.js';
import { AlignflowError, usageError } from '../../errors.js';
import { pytorchOnlyProblem } from '../../config/model-source.js';
import { createLocalStore } from '../../store/artifacts.js';
import { listArtifacts, resolveArtifactId, showArtifact } from '../../store/registry.js';
import { initBackend } from '../../ml/backend.js';
import { PRESETS, modelFamily, knownModelTypes } from '../../ml/models/registry.js';
import { saveModelDir, loadModelDir } from '../../ml/models/io.js';
import { importModelDir, putModel } from '../../ml/models/store.js';
import { bytesTokenizer, loadTokenizerDir, trainBpeTokenizer, type TextTokenizer } from '../../ml/tokenizer/index.js';

function store() {
  return createLocalStore(cliDb(), alignflowHome());
}

function parseConfigArg(arg: string): Record<string, unknown> {
  const text = fs.existsSync(arg) ? fs.readFileSync(arg, 'utf8') : arg;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw usageError(`--config: neither a JSON file nor valid JSON (${(e as Error).message})`);
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw usageError('--config must be a JSON object');
  return v as Record<string, unknown>;
}

interface InitOpts {
  config?: string;
  preset?: string;
  seed: string;
  out?: string;
  name?: string;
  tokenizer?: string;
  trainTokenizer?: string;
  json?: boolean;
}

async function init(o: InitOpts): Promise<void> {
  if (!!o.config === !!o.preset) throw usageError(`give exactly one of --config JSON|FILE or --preset (${Object.keys(PRESETS).join(', ')})`);
  let raw: Record<string, unknown>;
  if (o.preset) {
    const p = PRESETS[o.preset];
    if (!p) throw usageError(`unknown preset "${o.preset}" (${Object.keys(PRESETS).join(', ')})`);
    raw = { ...p };
  } else raw = parseConfigArg(o.config!);
  raw.model_type ??= 'gpt2';
  const family = modelFamily(String(raw.model_type));
  if (!family) throw new AlignflowError('config', `unknown model_type "${String(raw.model_type)}" (alignflow supports ${knownModelTypes().join(', ')})`);
  const seed = Number(o.seed);
  if (!Number.isInteger(seed)) throw usageError('--seed must be an integer');
  const vocab = Number(raw.vocab_size ?? 0);

  let tok: TextTokenizer | undefined;
  if (o.tokenizer) tok = loadTokenizerDir(o.tokenizer);
  else if (o.trainTokenizer) {
    const text = fs.readFileSync(o.trainTokenizer, 'utf8');
    tok = trainBpeTokenizer(text.split('\n'), { vocabSize: vocab, modelMaxLength: Number(raw.n_positions ?? 1024) });
  } else if (vocab >= 257) tok = bytesTokenizer({ modelMaxLength: Number(raw.n_positions ?? 1024) });
  if (tok) {
    if (tok.vocabSize > vocab) throw new AlignflowError('config', `the tokenizer has ${tok.vocabSize} ids but vocab_size is ${vocab}`);
    if (tok.eosTokenId !== undefined) {
      raw.bos_token_id ??= tok.bosTokenId ?? tok.eosTokenId;
      raw.eos_token_id ??= tok.eosTokenId;
    }
  }
  const config = family.withDefaults(raw);
  family.validate(config, o.config && fs.existsSync(o.config) ? o.config : '--config');
  await initBackend();
  const model = family.create(config, seed);
  try {
    if (o.out) {
      saveModelDir(model, tok, o.out);
      if (o.json) printJson({ dir: path.resolve(o.out) });
      else process.stdout.write(`wrote ${o.out}\n`);
    } else {
      const m = await putModel(store(), model, tok, { name: o.name ?? o.preset ?? 'model', scratchDir: tmpDir(alignflowHome()) });
      if (o.json) printJson(m);
      else process.stdout.write(`${m.id}\n`);
    }
  } finally {
    model.dispose();
  }
}

export function register(program: Command): void {
  const models = program.command('models').description('models in Hugging Face layout (config.json, model.safetensors, tokenizer.json)');

  models
    .command('init')
    .description('create a freshly initialised model (GPT-2 init) as a directory (--out) or a model artifact')
    .option('--config <json|file>', 'config.json keys, e.g. \'{"vocab_size":512,"n_embd":128,"n_layer":4,"n_head":4,"n_positions":128}\'')
    .option('--preset <name>', `named config: ${Object.keys(PRESETS).join(', ')}`)
    .option('--seed <n>', 'initialisation seed', '0')
    .option('--tokenizer <dir>', 'copy the tokenizer of this directory (default: a bytes-only tokenizer when vocab_size ≥ 257)')
    .option('--train-tokenizer <file>', 'train a byte-level BPE with vocab_size tokens on this text file (one document per line)')
    .option('--out <dir>', 'write a model directory instead of storing an artifact')
    .option('--name <name>', 'artifact name')
    .option('--json', 'print JSON')
    .action((o: InitOpts) => init(o));

  models
    .command('import')
    .argument('<dir>', 'a Hugging Face model directory (config.json, model.safetensors, tokenizer.json)')
    .description('validate a Hugging Face model directory and store it as a model artifact')
    .option('--name <name>', 'artifact name (default: the directory name)')
    .option('--json', 'print JSON')
    .action(async (dir: string, o: { name?: string; json?: boolean }) => {
      const torchOnly = pytorchOnlyProblem(dir);
      if (torchOnly) throw new AlignflowError('input', torchOnly);
      const m = await importModelDir(store(), dir, { name: o.name });
      if (o.json) printJson(m);
      else process.stdout.write(`${m.id}\n`);
    });

  models
    .command('export')
    .argument('<id>', 'model artifact id (or a unique prefix)')
    .description('write a model artifact out as a directory that transformers loads')
    .requiredOption('--out <dir>', 'target directory (must not exist or be empty)')
    .option('--json', 'print JSON')
    .action(async (ref: string, o: { out: string; json?: boolean }) => {
      const s = store();
      const id = resolveArtifactId(s.db, ref);
      const m = await s.get(id);
      if (m.kind !== 'model') throw new AlignflowError('input', `artifact ${id} is a ${m.kind}, not a model`);
      if (fs.existsSync(o.out) && fs.readdirSync(o.out).length > 0) throw usageError(`${o.out}: exists and is not empty`);
      const parent = path.dirname(path.resolve(o.out));
      fs.mkdirSync(parent, { recursive: true });
      const tmp = fs.mkdtempSync(path.join(parent, `.${path.basename(o.out)}.tmp-`));
      try {
        await s.materialize(id, tmp);
        if (fs.existsSync(o.out)) fs.rmdirSync(o.out);
        fs.renameSync(tmp, o.out);
      } catch (e) {
        fs.rmSync(tmp, { recursive: true, force: true });
        throw e;
      }
      if (o.json) printJson({ id, dir: path.resolve(o.out), files: m.files.map((f) => f.path) });
      else process.stdout.write(`wrote ${o.out}\n`);
    });

  models
    .command('ls')
    .description('list model artifacts')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const s = store();
      const rows = listArtifacts(s.db, { kind: 'model' }).map((a) => {
        const md = (s.find(a.id)?.metadata ?? {}) as Record<string, unknown>;
        return { id: a.id, name: a.name, model_type: md.model_type, parameters: md.parameters, layers: md.n_layer, width: md.n_embd, vocab: md.vocab_size, context: md.n_positions, dtype: md.dtype, created: new Date(a.createdAt).toISOString() };
      });
      if (o.json) printJson(rows);
      else printTable(rows);
    });

  models
    .command('show')
    .argument('<id>', 'model artifact id (or a unique prefix)')
    .description('a model artifact: config summary, files, lineage')
    .option('--json', 'print JSON')
    .option('--check', 'also load it (validates tensors and tokenizer)')
    .action(async (ref: string, o: { json?: boolean; check?: boolean }) => {
      const s = store();
      const d = showArtifact(s, ref);
      if (d.kind !== 'model') throw new AlignflowError('input', `artifact ${d.id} is a ${d.kind}, not a model`);
      let check: string | undefined;
      if (o.check) {
        const tmp = fs.mkdtempSync(path.join(fs.existsSync(tmpDir(alignflowHome())) ? tmpDir(alignflowHome()) : (await import('node:os')).tmpdir(), 'show-'));
        try {
          await s.materialize(d.id, tmp);
          const l = await loadModelDir(tmp);
          l.model.dispose();
          check = 'ok';
        } finally {
          fs.rmSync(tmp, { recursive: true, force: true });
        }
      }
      if (o.json) {
        printJson({ ...d, ...(check ? { check } : {}) });
        return;
      }
      const md = d.metadata;
      process.stdout.write(`${d.id}  ${d.name}\n`);
      for (const [k, v] of Object.entries(md)) process.stdout.write(`  ${k}: ${typeof v === 'object' ? JSON.stringify(v) : String(v)}\n`);
      process.stdout.write(`  files:\n`);
      for (const f of d.files) process.stdout.write(`    ${f.path}  ${f.sizeBytes} bytes  sha256:${f.sha256.slice(0, 12)}\n`);
      if (d.inputs.length) process.stdout.write(`  made from: ${d.inputs.map((i) => `${i.artifactId} (${i.role})`).join(', ')}\n`);
      if (check) process.stdout.write(`  check: ${check}\n`);
    });
}
