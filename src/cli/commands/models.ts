// alignflow models init | import | export | ls | show
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { checkCliInput, cliDb, printJson, printTable, readCliInput } from '../shared.js';
import { alignflowHome, tmpDir } from '../../config/paths.js';
import { AlignflowError, usageError } from '../../errors.js';
import { pytorchOnlyProblem } from '../../config/model-source.js';
import { createLocalStore } from '../../store/artifacts.js';
import { listArtifacts, resolveArtifactId, showArtifact } from '../../store/registry.js';
import { initBackend } from '../../ml/backend.js';
import { PRESETS, knownModelTypes, modelFamily } from '../../ml/models/registry.js';
import { parameterCount, trainingMemory } from '../../ml/models/estimate.js';
import { gib, trainsFused } from '../../ml/memory.js';
import type { ModelConfig } from '../../ml/models/types.js';
import { initContextLength, initModel, resolveInitConfig } from '../../ml/models/init.js';
import { saveModelDir, loadModelDir, readModelConfig } from '../../ml/models/io.js';
import { importModelDir, putModel } from '../../ml/models/store.js';
import { isRewardModelConfig } from '../../ml/reward.js';
import { exportModelDir, parseDtype } from '../../ml/models/export.js';
import { bytesTokenizer, loadTokenizerDir, trainBpeTokenizer, withChatTemplate, CHATML_TEMPLATE, type TextTokenizer } from '../../ml/tokenizer/index.js';

function store() {
  return createLocalStore(cliDb(), alignflowHome());
}

function parseConfigArg(arg: string): Record<string, unknown> {
  const text = fs.existsSync(arg) ? readCliInput(arg, '--config') : arg;
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
  family?: string;
  chatTemplate?: string;
  json?: boolean;
}

async function init(o: InitOpts): Promise<void> {
  if (!o.config && !o.preset && !o.family) throw usageError(`give --preset (${Object.keys(PRESETS).join(', ')}), --config JSON|FILE, or --family with --config`);
  const where = o.config && fs.existsSync(o.config) ? o.config : '--config';
  const keys = o.config ? parseConfigArg(o.config) : {};
  if (o.family) {
    if (keys.model_type !== undefined && keys.model_type !== o.family) throw usageError(`--family ${o.family} disagrees with model_type "${String(keys.model_type)}" in --config`);
    keys.model_type = o.family;
  }
  const { raw, family } = resolveInitConfig(o.preset, keys, where);
  const seed = Number(o.seed);
  if (!Number.isInteger(seed)) throw usageError('--seed must be an integer');
  const vocab = Number(raw.vocab_size ?? 0);
  const ctx = initContextLength(raw, family);
  let tok: TextTokenizer | undefined;
  if (o.tokenizer) {
    checkCliInput(o.tokenizer, '--tokenizer');
    tok = loadTokenizerDir(o.tokenizer);
  }
  else if (o.trainTokenizer) {
    const text = readCliInput(o.trainTokenizer, '--train-tokenizer');
    tok = trainBpeTokenizer(text.split('\n'), { vocabSize: vocab, modelMaxLength: ctx });
  } else if (vocab >= 257) tok = bytesTokenizer({ modelMaxLength: ctx });
  if (tok && o.chatTemplate) tok = withChatTemplate(tok, o.chatTemplate === 'chatml' ? CHATML_TEMPLATE : readCliInput(o.chatTemplate, '--chat-template'));
  const { model } = await initModel(raw, family, { tokenizer: tok, seed, where });
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
    .description('create a freshly initialised model (transformers\' init for its family) as a directory (--out) or a model artifact')
    .option('--family <model_type>', `model family: ${knownModelTypes().join(', ')} (default gpt2, or the preset's)`)
    .option('--config <json|file>', 'config.json keys of the family, e.g. \'{"vocab_size":512,"hidden_size":128,"num_hidden_layers":4,"num_attention_heads":4,"num_key_value_heads":2}\' for llama')
    .option('--preset <name>', `named config: ${Object.keys(PRESETS).join(', ')}`)
    .option('--chat-template <chatml|file>', 'give the tokenizer a chat template (a Jinja file, or "chatml")')
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
      checkCliInput(dir, 'models import');
      const torchOnly = pytorchOnlyProblem(dir);
      if (torchOnly) throw new AlignflowError('input', torchOnly);
      const m = await importModelDir(store(), dir, { name: o.name });
      if (o.json) printJson(m);
      else process.stdout.write(`${m.id}\n`);
    });

  models
    .command('export')
    .argument('<id>', 'model artifact id (or a unique prefix)')
    .description('write a model artifact out as a directory that transformers (or peft, for a LoRA model) loads')
    .requiredOption('--out <dir>', 'target directory (must not exist or be empty)')
    .option('--dtype <fp32|fp16|bf16>', 'weights in this dtype (default: as stored; float32 when rewritten)')
    .option('--merge', 'a LoRA model: merge the adapter into the base weights (default: a PEFT adapter directory; SEQ_CLS for a LoRA reward model)')
    .option('--base-path <hub id|dir>', "a LoRA model: base_model_name_or_path for adapter_config.json (default: the base's artifact id)")
    .option('--json', 'print JSON')
    .action(async (ref: string, o: { out: string; dtype?: string; merge?: boolean; basePath?: string; json?: boolean }) => {
      const s = store();
      const id = resolveArtifactId(s.db, ref);
      const m = await s.get(id);
      if (m.kind !== 'model') throw new AlignflowError('input', `artifact ${id} is a ${m.kind}, not a model`);
      if (fs.existsSync(o.out) && fs.readdirSync(o.out).length > 0) throw usageError(`${o.out}: exists and is not empty`);
      const dtype = parseDtype(o.dtype);
      const base = tmpDir(alignflowHome());
      fs.mkdirSync(base, { recursive: true });
      const src = fs.mkdtempSync(path.join(base, 'export-'));
      let kind: string;
      try {
        await s.materialize(id, src);
        kind = await exportModelDir(src, o.out, { dtype, merge: o.merge, basePath: o.basePath });
      } finally {
        fs.rmSync(src, { recursive: true, force: true });
      }
      if (o.json) printJson({ id, dir: path.resolve(o.out), kind, files: fs.readdirSync(o.out).sort() });
      else process.stdout.write(`wrote ${o.out} (${kind})\n`);
      if (kind === 'peft-seq-cls-adapter' && !o.json) {
        process.stdout.write('load it with PeftModel.from_pretrained(AutoModelForSequenceClassification.from_pretrained(base, num_labels=1, pad_token_id=<the tokenizer\'s pad id>), dir)\n');
      }
    });

  models
    .command('ls')
    .description('list model artifacts')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const s = store();
      const rows = await Promise.all(listArtifacts(s.db, { kind: 'model' }).map(async (a) => {
        const md = (s.find(a.id)?.metadata ?? {}) as Record<string, unknown>;
        // The shape comes from config.json, whatever made the model: models written by stages keep
        // their training summary as metadata, not the shape.
        const c = await shapeFromConfig(s, a.id);
        return { id: a.id, name: a.name, model_type: c.model_type ?? md.model_type, parameters: md.parameters ?? c.parameters, layers: c.layers, width: c.width, vocab: c.vocab, context: c.context, dtype: md.dtype, created: new Date(a.createdAt).toISOString() };
      }));
      if (o.json) printJson(rows);
      else printTable(rows);
    });

  models
    .command('show')
    .argument('<ref>', 'a model artifact (id, unique prefix or name), a model directory, or a preset name')
    .description('a model: an artifact (id or name), a model directory, or a preset; parameters and training-memory estimates (full vs LoRA)')
    .option('--json', 'print JSON')
    .option('--check', 'also load it (validates tensors and tokenizer)')
    .option('--batch <n>', 'sequences per micro-batch for the activation estimate (DPO: 2 per pair)', '8')
    .option('--seq-len <n>', 'tokens per sequence for the activation estimate', '512')
    .option('--lora-r <n>', 'LoRA rank for the LoRA estimate', '16')
    .option('--lora-targets <list>', 'LoRA target modules, comma-separated, or all-linear', 'all-linear')
    .action(async (ref: string, o: { json?: boolean; check?: boolean; batch: string; seqLen: string; loraR: string; loraTargets: string }) => {
      const [batch, seqLen] = [posIntArg(o.batch, '--batch'), posIntArg(o.seqLen, '--seq-len')];
      const lora = { r: posIntArg(o.loraR, '--lora-r'), targetModules: o.loraTargets === 'all-linear' ? ('all-linear' as const) : o.loraTargets.split(',').map((x) => x.trim()) };
      // Activations as the stages' pre-flight check counts them on the backend that would train here.
      const backend = (await initBackend()).name;
      const est = { batch, seqLen, backend };
      // a preset or a directory: estimated from its config alone, no weights made
      const cfgFromRef = (): { config: ModelConfig; source: string } | undefined => {
        if (PRESETS[ref]) {
          const family = modelFamily(String(PRESETS[ref]!.model_type))!;
          return { config: family.withDefaults(PRESETS[ref]!), source: `preset ${ref}` };
        }
        if (fs.existsSync(path.join(ref, 'config.json'))) return { config: readModelConfig(ref).config, source: path.resolve(ref) };
        return undefined;
      };
      const direct = cfgFromRef();
      if (direct) {
        const report = estimateReport(direct.config, est, lora);
        if (o.json) printJson({ source: direct.source, ...report });
        else printEstimate(direct.source, report);
        return;
      }
      const s = store();
      const d = showArtifact(s, ref);
      if (d.kind !== 'model') throw new AlignflowError('input', `artifact ${d.id} is a ${d.kind}, not a model`);
      let check: string | undefined;
      const tmp = fs.mkdtempSync(path.join(fs.existsSync(tmpDir(alignflowHome())) ? tmpDir(alignflowHome()) : (await import('node:os')).tmpdir(), 'show-'));
      let report: ReturnType<typeof estimateReport> | undefined;
      try {
        fs.writeFileSync(path.join(tmp, 'config.json'), await s.readFile(d.id, 'config.json'));
        report = estimateReport(readModelConfig(tmp).config, est, lora);
        if (o.check) {
          await s.materialize(d.id, tmp);
          const l = await loadModelDir(tmp);
          l.model.dispose();
          check = 'ok';
        }
      } finally {
        fs.rmSync(tmp, { recursive: true, force: true });
      }
      const md = d.metadata;
      if (o.json) {
        printJson({ ...d, ...(check ? { check } : {}), estimate: report });
        return;
      }
      process.stdout.write(`${d.id}  ${d.name}\n`);
      for (const [k, v] of Object.entries(md)) process.stdout.write(`  ${k}: ${typeof v === 'object' ? JSON.stringify(v) : String(v)}\n`);
      process.stdout.write(`  files:\n`);
      for (const f of d.files) process.stdout.write(`    ${f.path}  ${f.sizeBytes} bytes  sha256:${f.sha256.slice(0, 12)}\n`);
      if (d.inputs.length) process.stdout.write(`  made from: ${d.inputs.map((i) => `${i.artifactId} (${i.role})`).join(', ')}\n`);
      if (check) process.stdout.write(`  check: ${check}\n`);
      if (report) printEstimate('', report);
    });
}

/** model_type and shape of a stored model from its config.json (blank where it has none, e.g. a bare adapter). */
async function shapeFromConfig(s: ReturnType<typeof store>, id: string): Promise<{ model_type?: unknown; parameters?: number; layers?: number; width?: number; vocab?: number; context?: number }> {
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse((await s.readFile(id, 'config.json')).toString('utf8')) as Record<string, unknown>;
  } catch {
    return {};
  }
  const family = typeof raw.model_type === 'string' ? modelFamily(raw.model_type) : undefined;
  if (!family) return { model_type: raw.model_type };
  const config = family.withDefaults(raw);
  const shape = family.shape(config);
  // a reward model's parameters differ from its causal LM's (score head instead of lm_head): not counted here
  const reward = isRewardModelConfig(raw);
  return { model_type: reward ? `${config.model_type} (reward)` : config.model_type, parameters: reward ? undefined : parameterCount(config), layers: shape.layers, width: shape.hiddenSize, vocab: shape.vocabSize, context: shape.contextLength };
}

function posIntArg(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw usageError(`${flag} must be a positive integer (got "${v}")`);
  return n;
}

function estimateReport(config: ModelConfig, est: { batch: number; seqLen: number; backend: string }, lora: { r: number; targetModules: string[] | 'all-linear' }) {
  const shape = modelFamily(config.model_type)!.shape(config);
  const { backend, ...rest } = est;
  const mb = { ...rest, fused: backend === 'native' && trainsFused(config.model_type) };
  return {
    model_type: config.model_type,
    shape,
    parameters: parameterCount(config),
    backend,
    micro_batch: { batch: mb.batch, seqLen: mb.seqLen, fused: mb.fused },
    full: trainingMemory(config, mb),
    lora: { ...lora, ...trainingMemory(config, { ...mb, lora }) },
  };
}


function printEstimate(source: string, r: ReturnType<typeof estimateReport>): void {
  if (source) process.stdout.write(`${source}  (${r.model_type})\n`);
  const s = r.shape;
  process.stdout.write(`  parameters: ${r.parameters.toLocaleString('en-US')} (${(r.parameters / 1e6).toFixed(1)}M); ${s.layers} layers, hidden ${s.hiddenSize}, ${s.heads} heads / ${s.kvHeads} kv heads, vocab ${s.vocabSize}, context ${s.contextLength}${s.tiedHead ? ', tied head' : ''}\n`);
  process.stdout.write(`  training memory, float32 + AdamW, micro-batch ${r.micro_batch.batch} × ${r.micro_batch.seqLen} tokens, backend ${r.backend}${r.micro_batch.fused ? ' (fused kernels)' : ''}:\n`);
  for (const [label, m] of [['full', r.full], [`LoRA r=${r.lora.r} (${Array.isArray(r.lora.targetModules) ? r.lora.targetModules.join(',') : r.lora.targetModules})`, r.lora]] as const) {
    process.stdout.write(
      `    ${label}: trainable ${m.trainable.toLocaleString('en-US')}; weights ${gib(m.weights)}, gradients ${gib(m.gradients)}, optimizer ${gib(m.optimizer)}, activations ${gib(m.activations)}; total ≈ ${gib(m.total)}\n`,
    );
  }
}
