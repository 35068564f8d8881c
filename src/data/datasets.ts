// Importing, exporting and reading datasets. A dataset is an artifact of kind 'dataset' holding
// one file, data.jsonl: the validated records in canonical form (the format's fields in a fixed
// order, compact JSON, LF endings), plus a `datasets` row. Everything is streamed.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { and, desc, eq } from 'drizzle-orm';
import { AlignflowError, inputError, notFound, usageError, type InputIssue } from '../errors.js';
import type { Db } from '../store/db.js';
import { artifactFiles, datasets, type DatasetKind } from '../store/schema.js';
import type { LocalArtifactStore } from '../store/artifacts.js';
import type { ArtifactManifest, ArtifactStore } from '../store/types.js';
import { resolveArtifactId } from '../store/registry.js';
import { fileChunks, readLines } from './jsonl.js';
import { stateFileReason } from '../config/input-paths.js';
import { jsonSyntaxReason } from '../util/json-error.js';
import {
  detectFormat,
  formatFields,
  formatKind,
  stepwiseProblem,
  isDatasetKind,
  normalizeRecord,
  serializeRecord,
  type DatasetFormat,
  type RecordByKind,
} from './formats.js';

export const DATA_FILE = 'data.jsonl';
export const DEFAULT_MAX_ISSUES = 100;

export interface DatasetMetadata {
  datasetKind: DatasetKind;
  format: DatasetFormat;
  records: number;
  skipped: number;
  warnings: number;
}

export interface DatasetInfo {
  id: string;
  name: string;
  artifactId: string;
  kind: DatasetKind;
  format: string;
  records: number;
  sourcePath: string | null;
  createdAt: number;
}

export interface ImportOptions {
  /** Dataset name; default: the file name without extension. */
  name?: string;
  /**
   * When the name already belongs to different content: false (default) refuses the import; true
   * registers this content as the name's newest version. Runs import their spec's datasets this
   * way, so editing a data file and running the pipeline again just works. A name resolves to its
   * newest version; older versions keep their ids (and the runs that used them keep them).
   */
  newVersion?: boolean;
  /** Force the kind instead of detecting it from the first valid line. */
  kind?: DatasetKind;
  /** Import the valid lines and skip (count and list) the invalid ones. */
  skipInvalid?: boolean;
  /** How many issues (errors, warnings) are kept for display; all are counted. Default 100. */
  maxIssues?: number;
  /** Lines longer than this many bytes are invalid (default DEFAULT_MAX_LINE_BYTES). */
  maxLineBytes?: number;
  /** Called once the data blob is durable, before anything is registered (crash tests). */
  beforeRegister?: () => void | Promise<void>;
}

export interface ImportResult {
  dataset: DatasetInfo;
  artifact: ArtifactManifest;
  /** False when the same content was already imported (nothing changed). */
  created: boolean;
  kind: DatasetKind;
  format: DatasetFormat;
  records: number;
  /** Lines skipped with skipInvalid, counted, and the first `maxIssues` of their issues. */
  skipped: number;
  skippedIssues: InputIssue[];
  warnings: number;
  warningIssues: InputIssue[];
}

/** `d-` + the artifact's hex: one dataset row per dataset artifact. */
export { datasetIdFor } from '../store/artifacts.js';

function rowToInfo(r: typeof datasets.$inferSelect): DatasetInfo {
  return { id: r.id, name: r.name, artifactId: r.artifactId, kind: r.kind, format: r.format, records: r.records, sourcePath: r.sourcePath, createdAt: r.createdAt };
}

/**
 * Validates and imports a JSONL file in one of TRL's formats. The file is read once, line by
 * line; canonical records are streamed into a blob; only then is the artifact registered, with
 * its `datasets` row, in one transaction. Any invalid line aborts the import (reporting every
 * problem up to `maxIssues`, all counted) unless `skipInvalid`. Re-importing the same content is
 * a no-op that returns the existing dataset.
 */
export async function importDataset(db: Db, store: ArtifactStore & { readonly home: string }, file: string, opts: ImportOptions = {}): Promise<ImportResult> {
  if (opts.kind !== undefined && !isDatasetKind(opts.kind)) throw usageError(`unknown dataset kind "${opts.kind}" (use sft, preference, unpaired or prompt)`);
  const name = opts.name ?? path.basename(file).replace(/\.(jsonl|json|ndjson)$/i, '');
  if (!name.trim() || name.length > 200) throw usageError('a dataset name must be 1 to 200 characters');
  const maxIssues = opts.maxIssues ?? DEFAULT_MAX_ISSUES;
  const refused = stateFileReason(file, store.home);
  if (refused) throw inputError(refused);
  const chunks = await fileChunks(file);
  const display = file;

  let format: DatasetFormat | undefined;
  let formatLine = 0;
  let records = 0;
  let nonBlank = 0;
  let badLines = 0;
  let warningCount = 0;
  const errors: InputIssue[] = [];
  const warnings: InputIssue[] = [];
  const addIssue = (list: InputIssue[], issue: InputIssue) => {
    if (list.length < maxIssues) list.push(issue);
  };

  /** Fields the format does not have, by name: where first seen and on how many lines. */
  const dropped = new Map<string, { firstLine: number; lines: number }>();

  const writer = await store.createFileWriter();
  const contentHash = createHash('sha256'); // the blob's digest, known before the blob is committed
  let buffered: string[] = [];
  let bufferedLen = 0;
  const flush = async () => {
    if (buffered.length === 0) return;
    const text = buffered.join('');
    buffered = [];
    bufferedLen = 0;
    const bytes = Buffer.from(text, 'utf8');
    contentHash.update(bytes);
    await writer.write(bytes);
  };

  try {
    for await (const ln of readLines(chunks, opts.maxLineBytes === undefined ? {} : { maxLineBytes: opts.maxLineBytes })) {
      if (ln.error !== undefined) {
        nonBlank++;
        badLines++;
        addIssue(errors, { file: display, line: ln.line, reason: ln.error });
        continue;
      }
      if (ln.text.trim() === '') continue; // blank lines carry nothing (and end most files)
      nonBlank++;
      let value: unknown;
      try {
        value = JSON.parse(ln.text);
      } catch (err) {
        badLines++;
        addIssue(errors, { file: display, line: ln.line, reason: `malformed JSON: ${jsonSyntaxReason(err)}` });
        continue;
      }
      if (format === undefined && typeof value === 'object' && value !== null && !Array.isArray(value)) {
        const stepwise = stepwiseProblem(value as Record<string, unknown>);
        if (stepwise) throw inputError(`${display}: unsupported dataset format`, [{ file: display, line: ln.line, field: stepwise.field!, reason: stepwise.reason }]);
        format = detectFormat(value as Record<string, unknown>, opts.kind);
        formatLine = ln.line;
        if (format === undefined) {
          badLines++;
          addIssue(errors, { file: display, line: ln.line, reason: 'no dataset fields found (expected prompt, completion, messages, text, chosen, rejected or label)' });
          continue;
        }
      }
      if (format === undefined) {
        badLines++;
        addIssue(errors, { file: display, line: ln.line, reason: 'line must be a JSON object' });
        continue;
      }
      const res = normalizeRecord(value, format);
      if (!res.ok) {
        badLines++;
        for (const i of res.issues) addIssue(errors, { file: display, line: ln.line, ...(i.field ? { field: i.field } : {}), reason: i.reason });
        continue;
      }
      for (const f of res.dropped) {
        const d = dropped.get(f);
        if (d) d.lines++;
        else dropped.set(f, { firstLine: ln.line, lines: 1 });
      }
      for (const w of res.warnings) {
        warningCount++;
        addIssue(warnings, { file: display, line: ln.line, ...(w.field ? { field: w.field } : {}), reason: w.reason });
      }
      records++;
      // Once a line is bad and we are not skipping, nothing will be imported: stop writing, keep checking.
      if (badLines === 0 || opts.skipInvalid) {
        const out = serializeRecord(res.record, format) + '\n';
        buffered.push(out);
        bufferedLen += out.length;
        if (bufferedLen >= 1 << 20) await flush();
      }
    }
    if (nonBlank === 0) throw inputError(`${display} is empty: no JSONL records to import`);
    if (badLines > 0 && !opts.skipInvalid) {
      const fmt = format ? ` (format ${format}, detected from line ${formatLine})` : '';
      throw inputError(
        `${display} has ${badLines} invalid line${badLines === 1 ? '' : 's'}${fmt}; nothing was imported (fix ${badLines === 1 ? 'it' : 'them'} or pass --skip-invalid)`,
        errors,
      );
    }
    // One warning per unknown field (not per line), first so it is seen before per-line ones.
    const droppedWarnings = [...dropped].map(([field, d]) => ({
      file: display,
      line: d.firstLine,
      field,
      reason: `is not a field of the ${format} format and was not imported (on ${d.lines} line${d.lines === 1 ? '' : 's'}); alignflow keeps only ${format ? formatFields[format].join(', ') : 'the format\'s fields'}`,
    }));
    warningCount += droppedWarnings.length;
    warnings.unshift(...droppedWarnings);
    if (warnings.length > maxIssues) warnings.length = maxIssues;
    if (records === 0 || format === undefined) throw inputError(`${display} has no valid records (${badLines} invalid line${badLines === 1 ? '' : 's'})`, errors);
    await flush();
    // Refuse a taken name before the blob is committed, so a refused import leaves no orphan blob
    // (the registering transaction checks again, for a concurrent import).
    if (!opts.newVersion) {
      const taken = nameTakenBy(db, name, contentHash.digest('hex'));
      if (taken) throw inputError(`a different dataset is already named "${name}" (${taken}); choose another --name`);
    }
  } catch (err) {
    await writer.abort();
    throw err;
  }
  const blob = await writer.commit();

  const metadata: DatasetMetadata = { datasetKind: formatKind[format], format, records, skipped: badLines, warnings: warningCount };
  const kind = formatKind[format];
  // the artifact and its catalog row are registered by the store, in one transaction
  const { artifact, dataset, created } = await store.putDataset(
    { kind: 'dataset', name, files: [{ path: DATA_FILE, staged: blob }], metadata: metadata as unknown as Record<string, unknown> },
    { name, kind, format, records, sourcePath: path.resolve(file), ...(opts.newVersion ? { newVersion: true } : {}) },
    opts.beforeRegister ? { beforeRegister: opts.beforeRegister } : {},
  );
  const info = rowToInfo(dataset);
  return {
    dataset: info,
    artifact,
    created,
    kind,
    format,
    records,
    skipped: opts.skipInvalid ? badLines : 0,
    skippedIssues: opts.skipInvalid ? errors : [],
    warnings: warningCount,
    warningIssues: warnings,
  };
}

/** The id of a dataset named `name` when no version of that name holds the blob `sha256`. */
function nameTakenBy(db: Db, name: string, sha256: string): string | undefined {
  const rows = db.select({ id: datasets.id, artifactId: datasets.artifactId }).from(datasets).where(eq(datasets.name, name)).orderBy(desc(datasets.createdAt)).all();
  if (rows.length === 0) return undefined;
  const holds = (artifactId: string) => db.select().from(artifactFiles).where(and(eq(artifactFiles.artifactId, artifactId), eq(artifactFiles.sha256, sha256))).get();
  return rows.some((r) => holds(r.artifactId)) ? undefined : rows[0]!.id;
}

export function listDatasets(db: Db, opts: { kind?: DatasetKind } = {}): DatasetInfo[] {
  const q = db.select().from(datasets);
  const rows = (opts.kind ? q.where(eq(datasets.kind, opts.kind)) : q).orderBy(desc(datasets.createdAt), datasets.id).all();
  return rows.map(rowToInfo);
}

/** Finds a dataset by dataset id (d-…), artifact id (a-…), name, or a unique id prefix. */
export function resolveDataset(db: Db, ref: string): DatasetInfo {
  const exact =
    db.select().from(datasets).where(eq(datasets.id, ref)).get() ??
    db.select().from(datasets).where(eq(datasets.artifactId, ref)).get() ??
    db.select().from(datasets).where(eq(datasets.name, ref)).orderBy(desc(datasets.createdAt), desc(datasets.id)).get();
  if (exact) return rowToInfo(exact);
  if (/^[ad]-[0-9a-f]{4,15}$/.test(ref)) {
    const rows = db.$client.prepare('select id from datasets where id like ? limit 2').all(`d-${ref.slice(2)}%`) as { id: string }[];
    if (rows.length > 1) throw usageError(`dataset prefix ${ref} is ambiguous; type more of the id`);
    if (rows.length === 1) return rowToInfo(db.select().from(datasets).where(eq(datasets.id, rows[0]!.id)).get()!);
  }
  throw notFound(`dataset ${ref} does not exist (give a dataset id, artifact id or name; see \`alignflow datasets ls\`)`);
}

/**
 * Like resolveDataset, and also any artifact in the dataset layout that has no `datasets` row: the
 * preference dataset a label stage outputs, a dataset written by another stage. Other artifacts
 * (raw labels, models) are refused with what to use instead.
 */
export async function resolveDatasetArtifact(db: Db, store: ArtifactStore, ref: string): Promise<DatasetInfo> {
  try {
    return resolveDataset(db, ref);
  } catch (err) {
    if (!(err instanceof AlignflowError && err.kind === 'not_found') || !/^a-[0-9a-f]{4,16}$/.test(ref)) throw err;
  }
  const id = resolveArtifactId(db, ref);
  const m = await store.get(id);
  if (m.kind !== 'dataset') {
    const hint = m.kind === 'labels' ? ` (raw labels: \`alignflow labels export RUN\` writes them; the label stage's "dataset" output is the preference dataset)` : '';
    throw usageError(`artifact ${id} is a ${m.kind}, not a dataset${hint}`);
  }
  const md = await datasetMetadata(store, id);
  return { id, name: m.name, artifactId: id, kind: md.datasetKind, format: md.format, records: md.records, sourcePath: null, createdAt: m.createdAt };
}

/** A dataset's metadata from its artifact manifest (works on any ArtifactStore). */
export async function datasetMetadata(store: ArtifactStore, artifactId: string): Promise<DatasetMetadata> {
  const m = await store.get(artifactId);
  if (m.kind !== 'dataset') throw new AlignflowError('config', `artifact ${artifactId} is a ${m.kind}, not a dataset`);
  const md = m.metadata as Partial<DatasetMetadata>;
  if (!md.datasetKind || !md.format || !m.files.some((f) => f.path === DATA_FILE)) {
    throw new AlignflowError('integrity', `artifact ${artifactId} is not a dataset in alignflow's layout (no ${DATA_FILE} or format metadata)`);
  }
  return md as DatasetMetadata;
}

type Streaming = ArtifactStore & Pick<LocalArtifactStore, 'readFileChunks' | 'checkFile'>;
const canStream = (s: ArtifactStore): s is Streaming =>
  typeof (s as Partial<Streaming>).readFileChunks === 'function' && typeof (s as Partial<Streaming>).checkFile === 'function';

/**
 * The records of a dataset artifact, in file order, typed by kind. With `kind`, a dataset of
 * another kind is a 'config' error (a stage given the wrong input). The blob is verified before
 * the first record is yielded (a corrupted dataset is never partly used); on a local store the
 * file is streamed, so memory stays flat however large it is.
 */
export async function* readDatasetRecords<K extends DatasetKind = DatasetKind>(
  store: ArtifactStore,
  artifactId: string,
  opts: { kind?: K } = {},
): AsyncGenerator<RecordByKind[K]> {
  const md = await datasetMetadata(store, artifactId);
  if (opts.kind && md.datasetKind !== opts.kind) {
    throw new AlignflowError('config', `dataset ${artifactId} is a ${md.datasetKind} dataset (${md.format}), but a ${opts.kind} dataset is needed`);
  }
  let chunks: AsyncIterable<Uint8Array>;
  if (canStream(store)) {
    const check = await store.checkFile(artifactId, DATA_FILE);
    if (check !== 'ok') throw new AlignflowError('integrity', `dataset ${artifactId}: the blob of ${DATA_FILE} is ${check}; run \`alignflow artifacts verify\``);
    chunks = store.readFileChunks(artifactId, DATA_FILE);
  } else {
    const buf = await store.readFile(artifactId, DATA_FILE);
    chunks = (async function* () {
      yield buf;
    })();
  }
  for await (const ln of readLines(chunks)) {
    if (ln.error !== undefined) throw new AlignflowError('integrity', `dataset ${artifactId}, line ${ln.line}: ${ln.error}`);
    if (ln.text === '') continue;
    yield JSON.parse(ln.text) as RecordByKind[K];
  }
}

export interface ExportResult {
  dataset: DatasetInfo;
  path: string;
  records: number;
  bytes: number;
}

/**
 * Writes a dataset back out as JSONL in its own format (the canonical lines it was stored as), to
 * a temp file beside `out` renamed into place only once the whole blob verified. Importing the
 * exported file gives the same records, the same bytes and the same artifact id.
 */
export async function exportDataset(db: Db, store: LocalArtifactStore, ref: string, out: string, opts: { overwrite?: boolean } = {}): Promise<ExportResult> {
  const ds = await resolveDatasetArtifact(db, store, ref);
  const target = path.resolve(out);
  if (!opts.overwrite && fs.existsSync(target)) throw usageError(`${out} already exists (pass --force to overwrite)`);
  await fsp.mkdir(path.dirname(target), { recursive: true });
  const tmp = `${target}.${randomBytes(6).toString('hex')}.partial`;
  const ws = fs.createWriteStream(tmp);
  let bytes = 0;
  try {
    for await (const chunk of store.readFileChunks(ds.artifactId, DATA_FILE)) {
      bytes += chunk.length;
      if (!ws.write(chunk)) await new Promise<void>((r) => ws.once('drain', r));
    }
    await new Promise<void>((res, rej) => ws.end((e?: Error | null) => (e ? rej(e) : res())));
    await fsp.rename(tmp, target);
  } catch (err) {
    ws.destroy();
    await fsp.rm(tmp, { force: true });
    throw err;
  }
  return { dataset: ds, path: target, records: ds.records, bytes };
}
