// Pipeline specs (pipelines/*.yaml): parsing, --set overrides, validation with line numbers.
//
// Validation happens in three passes, and every problem of every pass is collected before the
// spec is refused, so a user fixes a spec in one go:
//   1. the shape (zod): name, seed, model, datasets, stages;
//   2. each stage's `config` against its handler's configSchema (defaults applied: the parsed
//      value is what the cache key hashes);
//   3. references: unknown inputs, unknown kinds, duplicate names, cycles, missing dataset files.
// Nothing here runs a stage or writes state.
import fs from 'node:fs';
import path from 'node:path';
import YAML, { LineCounter, isMap, isSeq, type Document, type Node as YamlNode } from 'yaml';
import { z, type ZodType } from 'zod';
import { AlignflowError, type InputIssue } from '../errors.js';
import { datasetKinds, type DatasetKind } from '../kinds.js';
import { topoSort } from './dag.js';
import { alignflowHome } from './paths.js';
import { DIR_FIELDS, FILE_FIELDS, checkInputPath, restrictedBase, type InputPathPolicy, type InputRole } from './input-paths.js';
import { stageKinds } from '../stages/index.js';
import { missingModelMessage, modelDirProblem } from './model-source.js';
import { datasetInputProblem, peekFormat } from './input-kinds.js';
import { schemaAt, schemaKeys, unknownFieldReason, unknownKindReason } from './suggest.js';

// ---------------------------------------------------------------- the resolved shape

/** Where a stage input comes from. */
export type InputRef =
  | { type: 'model' } // the pipeline's base model
  | { type: 'dataset'; name: string }
  | { type: 'stage'; stage: string; role?: string }; // role omitted: the stage's main output

export interface StageSpec {
  name: string;
  kind: string;
  inputs: Record<string, InputRef>;
  /** The config after the handler's schema (defaults filled in). */
  config: unknown;
}

export interface FreshModelSpec {
  preset?: string;
  tokenizer: { type: 'bpe' | 'bytes'; vocab_size?: number; dataset: string };
  [gpt2Key: string]: unknown;
}

export type BaseModelSpec =
  | { type: 'fresh'; config: FreshModelSpec }
  | { type: 'path'; path: string } // an imported Hugging Face model directory (absolute)
  | { type: 'artifact'; id: string };

export interface DatasetSpec {
  /** Absolute path (relative paths in the file are relative to the spec file) or an artifact. */
  path?: string;
  artifact?: string;
  kind?: DatasetKind;
}

export interface PipelineSpec {
  name: string;
  seed: number;
  model?: BaseModelSpec;
  datasets: Record<string, DatasetSpec>;
  /** In a valid topological order (dependencies first). */
  stages: StageSpec[];
}

/** What validation needs to know about a stage kind. */
export interface KindInfo {
  configSchema: ZodType<unknown>;
}
export type KindLookup = (kind: string) => KindInfo | undefined;

/** The implicit stage that builds a fresh base model (tokenizer + initial weights). */
export const MODEL_INIT_KIND = 'model_init';
export const BASE_MODEL_STAGE = 'model';

// ---------------------------------------------------------------- the raw (file) shape

const NAME_RE = /^[A-Za-z][A-Za-z0-9_-]*$/;
const ARTIFACT_RE = /^a-[0-9a-f]{16}$/;
const nameSchema = z.string().regex(NAME_RE, 'letters, digits, "_" and "-", starting with a letter');

// The `fresh` block is checked loosely here (it must name the tokenizer's dataset, so the
// reference can be resolved); the model_init handler's configSchema then validates every field.
const freshSchema = z.looseObject({
  tokenizer: z.looseObject({ dataset: nameSchema }),
});

const modelSchema = z.union([
  z.string().min(1), // shorthand: an artifact id, or a model directory path
  z.strictObject({ fresh: freshSchema }),
  z.strictObject({ path: z.string().min(1) }),
  z.strictObject({ artifact: z.string().regex(ARTIFACT_RE, 'an artifact id (a-<16 hex>)') }),
]);

const datasetSchema = z.union([
  z.string().min(1),
  z.strictObject({ path: z.string().min(1), kind: z.enum(datasetKinds).optional() }),
  z.strictObject({ artifact: z.string().regex(ARTIFACT_RE, 'an artifact id (a-<16 hex>)'), kind: z.enum(datasetKinds).optional() }),
]);

const inputsSchema = z.record(nameSchema, z.string().min(1)).default({});

const stageInListSchema = z.strictObject({
  name: nameSchema,
  kind: z.string().min(1),
  inputs: inputsSchema,
  config: z.record(z.string(), z.unknown()).default({}),
});
const stageInMapSchema = z.strictObject({
  kind: z.string().min(1).optional(), // defaults to the stage's name
  inputs: inputsSchema,
  config: z.record(z.string(), z.unknown()).default({}),
});

/**
 * `repeat:` — rounds of the same stages, each round's `previous` the last round's output (see
 * expandRepeat). It stands where a stage would, under a name other stages refer to it by.
 */
const repeatSchema = z.strictObject({
  times: z.number().int().min(1).max(100),
  /** What `previous` means in round 1 (a stage, "model", ...). */
  from: z.string().min(1),
  /** The block's stage whose main output is the round's output (default: the last listed). */
  output: nameSchema.optional(),
  stages: z.record(nameSchema, stageInMapSchema).refine((m) => Object.keys(m).length > 0, 'a repeat block needs at least one stage'),
});
const repeatInListSchema = z.strictObject({ name: nameSchema, repeat: repeatSchema });
const repeatInMapSchema = z.strictObject({ repeat: repeatSchema });

const isRepeat = (v: unknown) => !!v && typeof v === 'object' && 'repeat' in v;

/**
 * A stage entry, or a repeat block where the entry has a `repeat` key: dispatched on that key
 * rather than a union, so a problem in either is reported at its own field (a union reports only
 * that neither matched).
 */
function stageEntry<S extends ZodType, R extends ZodType>(stage: S, repeat: R) {
  return dispatch((v) => !isRepeat(v), stage, repeat);
}

/** `a` where `test(v)`, else `b`; the chosen schema's issues are reported as they are. */
function dispatch<A extends ZodType, B extends ZodType>(test: (v: unknown) => boolean, a: A, b: B) {
  return z.unknown().transform((v, ctx): z.infer<A> | z.infer<B> => {
    const r = (test(v) ? a : b).safeParse(v);
    if (r.success) return r.data as z.infer<A> | z.infer<B>;
    for (const i of r.error.issues) ctx.addIssue(i as never);
    return z.NEVER;
  });
}

const specSchema = z.strictObject({
  name: nameSchema,
  seed: z.number().int().min(0).max(2 ** 31 - 1).default(0),
  description: z.string().optional(),
  model: modelSchema.optional(),
  datasets: z.record(nameSchema, datasetSchema).default({}),
  stages: dispatch(Array.isArray, z.array(stageEntry(stageInListSchema, repeatInListSchema)).min(1), z.record(nameSchema, stageEntry(stageInMapSchema, repeatInMapSchema))),
});

type RawSpec = z.infer<typeof specSchema>;

// ---------------------------------------------------------------- entry points

export interface LoadOptions {
  /** `--set a.b.c=value` overrides, applied in order (values are YAML: 0.2, true, [1, 2], text). */
  sets?: string[];
  lookup: KindLookup;
  /** Check that dataset, model, judge and other named files exist (default true). */
  checkPaths?: boolean;
  /**
   * Which files the spec may name (default: anything outside $ALIGNFLOW_HOME). Specs from the API
   * pass a restricted policy: files only inside the server's --data-dir / --judges-dir.
   */
  paths?: InputPathPolicy;
  /** A registered dataset's artifact id by name (a dataset given as a plain name, not a file). */
  findDataset?: (name: string) => string | undefined;
  /** A model name → the artifact id of the newest model imported under it (`model: NAME`). */
  resolveModel?: (name: string) => string | undefined;
  /** The stage kinds an unknown kind's error lists (default: every registered and built-in kind). */
  kinds?: readonly string[];
}

/** Reads, overrides and validates a spec file. Throws AlignflowError('input') listing every issue. */
export function loadSpecFile(file: string, opts: LoadOptions): PipelineSpec {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new AlignflowError('not_found', `pipeline spec ${file} does not exist`);
    if (code === 'EISDIR') throw new AlignflowError('input', `pipeline spec ${file} is a directory; give a YAML file`);
    throw new AlignflowError('input', `cannot read pipeline spec ${file}: ${code ?? String(err)}`);
  }
  return parseSpec(text, { ...opts, file: path.resolve(file) });
}

export function parseSpec(text: string, opts: LoadOptions & { file?: string }): PipelineSpec {
  const file = opts.file ?? '<spec>';
  const policy: InputPathPolicy = opts.paths ?? { home: alignflowHome() };
  // Relative paths resolve against the spec file's folder; an API spec has no file, so against the
  // server's --data-dir / --judges-dir.
  const specDir = opts.file ? path.dirname(opts.file) : process.cwd();
  const baseFor = (role: InputRole) => (policy.restricted ? restrictedBase(policy, role) : specDir) ?? specDir;
  const checkPaths = opts.checkPaths !== false;
  const lc = new LineCounter();
  const doc = YAML.parseDocument(text, { lineCounter: lc, uniqueKeys: true });
  const issues: InputIssue[] = [];
  for (const e of doc.errors) {
    const line = e.linePos?.[0]?.line;
    issues.push({ file, ...(line !== undefined ? { line } : {}), reason: e.message.split('\n')[0]! });
  }
  if (issues.length) throw invalid(file, issues);

  for (const s of opts.sets ?? []) applySet(doc, s, file);
  const where = (p: (string | number)[]): Omit<InputIssue, 'reason'> => {
    const line = lineOf(doc, lc, p);
    return { file, ...(line !== undefined ? { line } : {}), field: p.join('.') };
  };

  // Pass 1: shape.
  const parsed = specSchema.safeParse(doc.toJS());
  if (!parsed.success) {
    for (const i of parsed.error.issues) {
      const at = i.path as (string | number)[];
      // One issue per unknown key, pointing at the key's own line.
      if (i.code === 'unrecognized_keys') {
        const known = shapeKeysAt(at);
        for (const k of i.keys) issues.push({ ...where([...at, k]), reason: unknownFieldReason(k, known) });
      } else issues.push({ ...where(at), reason: i.message });
    }
    throw invalid(file, issues);
  }
  const raw: RawSpec = parsed.data;
  const stageList = normalizeStages(raw, (p, reason) => issues.push({ ...where(p), reason }));

  // Pass 2: base model and datasets.
  /** Resolves a named file or directory, or records why it may not be used (undefined then). */
  const resolveInput = (raw: string, role: InputRole, at: (string | number)[], what: 'file' | 'dir', base = baseFor(role)): string | undefined => {
    const abs = path.resolve(base, raw);
    const refused = checkInputPath(abs, role, policy, raw);
    if (refused) {
      issues.push({ ...where(at), reason: refused });
      return undefined;
    }
    if (checkPaths && !(what === 'file' ? isFile(abs) : isDir(abs))) {
      const field = at[at.length - 1];
      const noun = field === 'model' ? 'model directory' : at[0] === 'datasets' ? 'dataset file' : role === 'judge' ? (what === 'file' ? 'judge module' : 'judges directory') : 'file';
      issues.push({ ...where(at), reason: `${noun} ${abs} does not exist` });
    }
    return abs;
  };
  const datasets: Record<string, DatasetSpec> = {};
  for (const [name, d] of Object.entries(raw.datasets)) {
    let spec: DatasetSpec = typeof d === 'string' ? (ARTIFACT_RE.test(d) ? { artifact: d } : { path: d }) : { ...d };
    if (typeof d === 'string' && spec.path !== undefined) {
      // A plain name of a registered dataset; from the API names come first (no disk lookup).
      const byName = opts.findDataset?.(d);
      if (byName && (policy.restricted || !isFile(path.resolve(baseFor('data'), d)))) spec = { artifact: byName };
    }
    if (spec.path !== undefined) {
      const abs = resolveInput(spec.path, 'data', ['datasets', name], 'file');
      if (abs !== undefined) spec.path = abs;
      else delete spec.path;
    }
    datasets[name] = spec;
  }
  let model: BaseModelSpec | undefined;
  if (raw.model !== undefined) {
    const m = raw.model;
    if (typeof m === 'string') {
      // A name: the newest model imported under it (as datasets resolve by name), unless a directory
      // of that name is beside the spec (never looked up on disk for API specs).
      const named = !ARTIFACT_RE.test(m) && (policy.restricted || !isDir(path.resolve(baseFor('data'), m))) ? opts.resolveModel?.(m) : undefined;
      model = ARTIFACT_RE.test(m) ? { type: 'artifact', id: m } : named ? { type: 'artifact', id: named } : { type: 'path', path: m };
    }
    else if ('fresh' in m) model = { type: 'fresh', config: m.fresh as FreshModelSpec };
    else if ('path' in m) model = { type: 'path', path: m.path };
    else model = { type: 'artifact', id: m.artifact };
    if (model.type === 'path') {
      const given = model.path;
      const abs = path.resolve(baseFor('data'), given);
      const refused = checkInputPath(abs, 'data', policy, given);
      if (refused) issues.push({ ...where(['model']), reason: refused });
      else {
        model.path = abs;
        // A directory alignflow cannot load (PyTorch weights only), or a missing one (a Hub id?), names the fix.
        const problem = !checkPaths ? undefined : isDir(abs) ? modelDirProblem(abs) : missingModelMessage(given, abs);
        if (problem) issues.push({ ...where(['model']), reason: problem });
      }
    }
    if (model.type === 'fresh' && !(model.config.tokenizer.dataset in datasets)) {
      issues.push({ ...where(['model', 'fresh', 'tokenizer', 'dataset']), reason: `no dataset named "${model.config.tokenizer.dataset}" (datasets: ${Object.keys(datasets).join(', ') || 'none'})` });
    }
  }

  // Pass 3: stages: names, kinds, configs, inputs.
  const stages: StageSpec[] = [];
  const names = new Set<string>();
  const reserved = new Set(['datasets', 'model', 'base_model']);
  if (model?.type === 'fresh') {
    const info = opts.lookup(MODEL_INIT_KIND);
    if (!info) issues.push({ ...where(['model', 'fresh']), reason: `a fresh model needs the "${MODEL_INIT_KIND}" stage, which is not registered in this build` });
    else {
      const cfg = info.configSchema.safeParse(model.config);
      if (!cfg.success) for (const i of cfg.error.issues) issues.push({ ...where(['model', 'fresh', ...(i.path as (string | number)[])]), reason: i.message });
      else stages.push({ name: BASE_MODEL_STAGE, kind: MODEL_INIT_KIND, inputs: { train: { type: 'dataset', name: model.config.tokenizer.dataset } }, config: cfg.data });
    }
  }
  const allNames = new Set(stageList.map((s) => s.name));
  for (const s of stageList) {
    if (reserved.has(s.name)) issues.push({ ...where(s.path), reason: `"${s.name}" is reserved (it names the base model or the datasets)` });
    if (names.has(s.name)) issues.push({ ...where(s.path), reason: `duplicate stage name "${s.name}"` });
    names.add(s.name);
    const info = opts.lookup(s.kind);
    let config: unknown = s.config;
    if (!info) issues.push({ ...where([...s.path, 'kind']), reason: unknownKindReason(s.kind, opts.kinds ?? stageKinds()) });
    else {
      const cfg = info.configSchema.safeParse(s.config);
      if (!cfg.success) {
        for (const i of cfg.error.issues) {
          const at = [...s.path, 'config', ...(i.path as (string | number)[])];
          if (i.code === 'unrecognized_keys') {
            const known = schemaKeys(schemaAt(info.configSchema, i.path as (string | number)[]));
            for (const k of i.keys) issues.push({ ...where([...at, k]), reason: unknownFieldReason(k, known) });
          }
          else issues.push({ ...where(at), reason: i.message });
        }
      } else config = resolveConfigFiles(cfg.data, [...s.path, 'config'], baseFor, resolveInput);
    }
    const inputs: Record<string, InputRef> = {};
    for (const [role, ref] of Object.entries(s.inputs)) {
      const r = parseRef(ref);
      const at = where([...s.path, 'inputs', role]);
      if (r.type === 'dataset' && !(r.name in datasets)) issues.push({ ...at, reason: `no dataset named "${r.name}"` });
      else if (r.type === 'model' && !model) issues.push({ ...at, reason: 'the spec has no base model (add a `model:` section)' });
      else if (r.type === 'stage' && !allNames.has(r.stage)) issues.push({ ...at, reason: `unknown input "${ref}": not a stage, "model" or "datasets.NAME"` });
      else if (r.type === 'stage' && r.stage === s.name) issues.push({ ...at, reason: 'a stage cannot take its own output as input' });
      else inputs[role] = r.type === 'model' && model?.type === 'fresh' ? { type: 'stage', stage: BASE_MODEL_STAGE } : r;
      // A dataset file of the wrong kind for this input: refused now, not after earlier stages ran.
      const ds = r.type === 'dataset' ? datasets[r.name] : undefined;
      if (ds?.path && opts.checkPaths !== false && isFile(ds.path)) {
        const format = peekFormat(ds.path, ds.kind);
        const problem = format && datasetInputProblem(s.kind, role, format);
        if (problem) issues.push({ ...at, reason: `dataset "${(r as { name: string }).name}" (${ds.path}): ${problem}` });
      }
    }
    stages.push({ name: s.name, kind: s.kind, inputs, config });
  }

  const topo = topoSort(stages.map((s) => ({ name: s.name, deps: stageDeps(s) })));
  if (!topo.ok) issues.push({ file, field: 'stages', reason: `the stages form a cycle: ${topo.cycle.join(' → ')}` });
  if (issues.length) throw invalid(file, issues);
  const order = topo.ok ? topo.order : [];
  const byName = new Map(stages.map((s) => [s.name, s]));
  return { name: raw.name, seed: raw.seed, ...(model ? { model } : {}), datasets, stages: order.map((n) => byName.get(n)!) };
}

/**
 * The stage kinds a spec file mentions (a loose read, before validation), so a caller can load
 * just those handlers. Unreadable files give [] (validation reports them properly).
 */
export function specKinds(file: string, sets: string[] = []): string[] {
  try {
    const raw = YAML.parse(fs.readFileSync(file, 'utf8')) as { stages?: unknown; model?: unknown };
    const kinds = new Set<string>();
    if (Array.isArray(raw?.stages)) for (const st of raw.stages) if (typeof st?.kind === 'string') kinds.add(st.kind);
    const addMap = (m: Record<string, { kind?: unknown; repeat?: { stages?: unknown } }>) => {
      for (const [name, st] of Object.entries(m)) {
        if (st?.repeat && typeof st.repeat.stages === 'object' && st.repeat.stages) addMap(st.repeat.stages as Record<string, { kind?: unknown }>);
        else kinds.add(typeof st?.kind === 'string' ? st.kind : name);
      }
    };
    if (Array.isArray(raw?.stages)) for (const st of raw.stages) if (st?.repeat?.stages && typeof st.repeat.stages === 'object') addMap(st.repeat.stages);
    if (raw?.stages && typeof raw.stages === 'object' && !Array.isArray(raw.stages)) addMap(raw.stages as Record<string, { kind?: unknown }>);
    if (raw?.model && typeof raw.model === 'object' && 'fresh' in raw.model) kinds.add(MODEL_INIT_KIND);
    for (const a of sets) {
      const m = /^stages\.[^.]+\.kind=(.+)$/.exec(a);
      if (m) kinds.add(m[1]!.trim());
    }
    return [...kinds];
  } catch {
    return [];
  }
}

/** Names of the stages a stage depends on. */
export function stageDeps(s: StageSpec): string[] {
  return [...new Set(Object.values(s.inputs).flatMap((r) => (r.type === 'stage' ? [r.stage] : [])))];
}

/** "model" | "datasets.NAME" | "STAGE" | "STAGE.ROLE". */
export function parseRef(ref: string): InputRef {
  if (ref === 'model' || ref === 'base_model') return { type: 'model' };
  if (ref.startsWith('datasets.')) return { type: 'dataset', name: ref.slice('datasets.'.length) };
  const dot = ref.indexOf('.');
  return dot < 0 ? { type: 'stage', stage: ref } : { type: 'stage', stage: ref.slice(0, dot), role: ref.slice(dot + 1) };
}

// ---------------------------------------------------------------- --set

const STAGE_FIELDS = new Set(['name', 'kind', 'inputs', 'config', 'repeat']);

/**
 * `--set a.b.c=value`. The value is parsed as YAML (so 0.2 is a number, true a boolean, [1, 2] a
 * list, anything else a string). `stages.NAME.…` addresses a stage by name whether `stages` is a
 * list or a map, and `stages.NAME.FIELD` where FIELD is not one of name/kind/inputs/config is
 * shorthand for `stages.NAME.config.FIELD` (so `--set stages.dpo.beta=0.2` works); a repeat block's
 * fields are addressed as they are written (`--set stages.rounds.repeat.times=4`).
 */
export function applySet(doc: Document, assignment: string, file = '<spec>'): void {
  const eq = assignment.indexOf('=');
  if (eq <= 0) throw new AlignflowError('usage', `--set expects KEY=VALUE, got "${assignment}"`);
  const key = assignment.slice(0, eq).trim();
  const value = YAML.parse(assignment.slice(eq + 1));
  const parts = key.split('.');
  if (parts.some((p) => p === '')) throw new AlignflowError('usage', `--set: bad key "${key}"`);
  const docPath: (string | number)[] = parts.map((p) => (/^\d+$/.test(p) ? Number(p) : p));
  if (parts[0] === 'stages' && parts.length >= 3) {
    const name = parts[1]!;
    const stagesNode = doc.get('stages', true);
    if (isSeq(stagesNode)) {
      const idx = stagesNode.items.findIndex((it) => isMap(it) && it.get('name') === name);
      if (idx < 0) throw new AlignflowError('input', `--set ${key}: ${file} has no stage named "${name}"`);
      docPath[1] = idx;
    } else if (!isMap(stagesNode) || !stagesNode.has(name)) {
      throw new AlignflowError('input', `--set ${key}: ${file} has no stage named "${name}"`);
    } else docPath[1] = name;
    if (!STAGE_FIELDS.has(parts[2]!)) docPath.splice(2, 0, 'config');
  }
  doc.setIn(docPath, doc.createNode(value));
}

// ---------------------------------------------------------------- helpers

type ResolveInput = (raw: string, role: InputRole, at: (string | number)[], what: 'file' | 'dir', base?: string) => string | undefined;

/**
 * A stage config with every file it names (FILE_FIELDS, at any depth) made absolute, resolved and
 * checked like the spec's datasets, so a missing judge fails validation instead of the stage after
 * earlier stages ran. A `judges_dir` is resolved first; `module` paths beside or below it resolve
 * against it.
 */
function resolveConfigFiles(config: unknown, at: (string | number)[], baseFor: (role: InputRole) => string, resolve: ResolveInput): unknown {
  const walk = (v: unknown, p: (string | number)[], judgeBase: string): unknown => {
    if (Array.isArray(v)) return v.map((x, i) => walk(x, [...p, i], judgeBase));
    if (!v || typeof v !== 'object') return v;
    const out: Record<string, unknown> = { ...(v as Record<string, unknown>) };
    let base = judgeBase;
    for (const [k, role] of Object.entries(DIR_FIELDS)) {
      if (typeof out[k] !== 'string') continue;
      const abs = resolve(out[k] as string, role, [...p, k], 'dir', baseFor(role));
      if (abs !== undefined) out[k] = base = abs;
    }
    for (const [k, x] of Object.entries(out)) {
      const role = FILE_FIELDS[k];
      if (role && typeof x === 'string') out[k] = resolve(x, role, [...p, k], 'file', role === 'judge' ? base : baseFor(role)) ?? x;
      else if (!(k in DIR_FIELDS)) out[k] = walk(x, [...p, k], base);
    }
    return out;
  };
  return walk(config, at, baseFor('judge'));
}

interface NormalizedStage {
  name: string;
  kind: string;
  inputs: Record<string, string>;
  config: Record<string, unknown>;
  path: (string | number)[];
}

/** The fields the spec's own (non-config) blocks accept, for "did you mean" on an unknown one. */
function shapeKeysAt(at: readonly (string | number)[]): string[] {
  if (at.length === 0) return schemaKeys(specSchema);
  if (at[0] === 'stages' && at.length === 2) return schemaKeys(typeof at[1] === 'number' ? stageInListSchema : stageInMapSchema);
  if (at[0] === 'stages' && at[2] === 'repeat' && at.length === 3) return schemaKeys(repeatSchema);
  if (at[0] === 'stages' && at[2] === 'repeat' && at[3] === 'stages' && at.length === 5) return schemaKeys(stageInMapSchema);
  if (at[0] === 'datasets' && at.length === 2) return ['path', 'artifact', 'kind'];
  if (at[0] === 'model' && at.length === 1) return ['fresh', 'path', 'artifact'];
  return [];
}

type RawStage = z.infer<typeof stageInMapSchema>;
type RawRepeat = z.infer<typeof repeatSchema>;

/** The spec's stages as a flat list, repeat blocks expanded into ordinary stages (expandRepeat). */
function normalizeStages(raw: RawSpec, report: (p: (string | number)[], reason: string) => void): NormalizedStage[] {
  const entries: { name: string; path: (string | number)[]; stage?: RawStage & { kind?: string }; repeat?: RawRepeat }[] = Array.isArray(raw.stages)
    ? raw.stages.map((s, i) => ('repeat' in s ? { name: s.name, path: ['stages', i], repeat: s.repeat } : { name: s.name, path: ['stages', i], stage: s }))
    : Object.entries(raw.stages).map(([name, s]) => ('repeat' in s ? { name, path: ['stages', name], repeat: s.repeat } : { name, path: ['stages', name], stage: s }));
  // a reference to a block from outside it means the block's last round's output stage
  const blocks = new Map<string, string>();
  for (const e of entries) if (e.repeat) blocks.set(e.name, roundName(e.repeat.output ?? Object.keys(e.repeat.stages).at(-1)!, e.repeat.times));
  const outside = (ref: string) => {
    const r = parseRef(ref);
    if (r.type !== 'stage' || !blocks.has(r.stage)) return ref;
    return blocks.get(r.stage)! + (r.role ? `.${r.role}` : '');
  };
  const out: NormalizedStage[] = [];
  for (const e of entries) {
    if (e.stage) {
      const s = e.stage;
      out.push({ name: e.name, kind: s.kind ?? e.name, inputs: mapValues(s.inputs, outside), config: s.config, path: e.path });
      continue;
    }
    const b = e.repeat!;
    const inner = Object.keys(b.stages);
    if (b.output !== undefined && !inner.includes(b.output)) report([...e.path, 'repeat', 'output'], `no stage "${b.output}" in this repeat block (its stages: ${inner.join(', ')})`);
    out.push(...expandRepeat(b, [...e.path, 'repeat'], outside));
  }
  return out;
}

/** The name of a repeated stage in round k: `dpo` → `dpo-r2`. */
export function roundName(stage: string, round: number): string {
  return `${stage}-r${round}`;
}

const mapValues = <T, U>(o: Record<string, T>, f: (v: T) => U): Record<string, U> => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, f(v)]));

/**
 * A `repeat:` block as ordinary stages, `times` rounds of its stages named `NAME-rK`. Within round
 * k: a block stage's name refers to the same round's stage, `previous` to round k−1's output (round
 * 1: `from`), any other reference is left as written (outside references to a block go to its last
 * round). `${round}` in a string of `config` or `inputs` is replaced by k (a string that is just
 * `${round}` becomes the number). Expanded stages are ordinary stages: their cache keys, resume and
 * lineage are those of any stage, so raising `times` reuses the rounds already run.
 */
export function expandRepeat(b: RawRepeat, at: (string | number)[], outside: (ref: string) => string = (r) => r): NormalizedStage[] {
  const inner = new Set(Object.keys(b.stages));
  const output = b.output ?? Object.keys(b.stages).at(-1)!;
  const out: NormalizedStage[] = [];
  for (let k = 1; k <= b.times; k++) {
    const sub = (v: unknown): unknown => substituteRound(v, k);
    const ref = (raw: string): string => {
      const v = sub(raw);
      const s = typeof v === 'string' ? v : String(v);
      if (s === 'previous') return k === 1 ? outside(b.from) : roundName(output, k - 1);
      const r = parseRef(s);
      if (r.type === 'stage' && inner.has(r.stage)) return roundName(r.stage, k) + (r.role ? `.${r.role}` : '');
      return outside(s);
    };
    for (const [name, s] of Object.entries(b.stages)) {
      out.push({ name: roundName(name, k), kind: s.kind ?? name, inputs: mapValues(s.inputs, ref), config: sub(s.config) as Record<string, unknown>, path: [...at, 'stages', name] });
    }
  }
  return out;
}

/** `${round}` → k in every string of `v`; a string that is exactly `${round}` becomes the number k. */
export function substituteRound(v: unknown, k: number): unknown {
  if (typeof v === 'string') return v === '${round}' ? k : v.replaceAll('${round}', String(k));
  if (Array.isArray(v)) return v.map((x) => substituteRound(x, k));
  if (v && typeof v === 'object') return mapValues(v as Record<string, unknown>, (x) => substituteRound(x, k));
  return v;
}

/** The line of the deepest node on `p` that exists in the document (a missing field → its parent). */
function lineOf(doc: Document, lc: LineCounter, p: (string | number)[]): number | undefined {
  for (let n = p.length; n >= 0; n--) {
    const node = (n === 0 ? doc.contents : doc.getIn(p.slice(0, n), true)) as YamlNode | undefined | null;
    if (node && typeof node === 'object' && 'range' in node && node.range) return lc.linePos(node.range[0]).line;
  }
  return undefined;
}

function invalid(file: string, all: InputIssue[]): AlignflowError {
  // a problem in a repeat block's template is found once per round: reported once
  const seen = new Set<string>();
  const issues = all.filter((i) => {
    const k = JSON.stringify([i.line, i.field, i.reason]);
    return seen.has(k) ? false : (seen.add(k), true);
  });
  return new AlignflowError('input', `invalid pipeline spec ${file} (${issues.length} problem${issues.length === 1 ? '' : 's'})`, { issues });
}

function isFile(p: string): boolean {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

function isDir(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}
