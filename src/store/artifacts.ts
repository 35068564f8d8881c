// The local artifact store: blobs on disk (./blobs.ts) and manifests + lineage as SQLite rows.
//
// Crash safety: every blob is durably written before anything is registered, and all rows of one
// artifact (artifact, files, lineage, producer, plus any caller rows such as a `datasets` row) go
// in ONE immediate transaction. A crash leaves at worst orphan blobs, which GC removes.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { eq, sql } from 'drizzle-orm';
import { AlignflowError, notFound } from '../errors.js';
import { immediate, type Db } from './db.js';
import { artifactFiles, artifactKinds, artifacts, datasets, lineageEdges, stageOutputs, type ArtifactKind } from './schema.js';
import { canonicalHash, canonicalJson } from './canonical-json.js';
import { BlobStore, type BlobRef } from './blobs.js';
import type { ArtifactFileInput, ArtifactManifest, ArtifactStore, DatasetEntry, DatasetRow, PutArtifact } from './types.js';

/** A file input may also name a blob already written to this store. */
export interface LocalFileInput extends ArtifactFileInput {
  blob?: BlobRef;
}

/** A dataset's id, derived from its artifact's. */
export const datasetIdFor = (artifactId: string) => 'd-' + artifactId.replace(/^a-/, '');

export interface LocalPutArtifact extends PutArtifact {
  files: LocalFileInput[];
}

export interface PutOptions {
  /** Runs inside the registration transaction (synchronous), e.g. to insert a `datasets` row atomically. */
  inTransaction?: (tx: Db, manifest: ArtifactManifest, created: boolean) => void;
  /** Called after the blobs are durable and before registration (crash tests use it). */
  beforeRegister?: () => void | Promise<void>;
}

export interface LocalArtifactStore extends ArtifactStore {
  readonly db: Db;
  readonly home: string;
  readonly blobs: BlobStore;
  put(a: LocalPutArtifact, opts?: PutOptions): Promise<ArtifactManifest>;
  /** The manifest, or undefined when no such artifact. */
  find(id: string): ArtifactManifest | undefined;
  /** One file's bytes in chunks, streamed; throws 'integrity' at the end if the digest does not match. */
  readFileChunks(id: string, path: string): AsyncGenerator<Buffer>;
  /** Checks one file's blob from disk without reading it into memory. */
  checkFile(id: string, path: string): Promise<'ok' | 'missing' | 'corrupt'>;
}

/**
 * Artifact ids are derived from content: kind, the sorted (path, sha256, size) list and canonical
 * metadata. The display name is deliberately NOT part of the id: the same bytes imported twice
 * under different names are one artifact (the first name is kept), which is what "datasets are
 * deduplicated by content" asks for.
 */
export function artifactId(kind: ArtifactKind, files: { path: string; sha256: string; sizeBytes: number }[], metadata: Record<string, unknown>): string {
  const sorted = [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)).map((f) => [f.path, f.sha256, f.sizeBytes]);
  return 'a-' + canonicalHash({ v: 1, kind, files: sorted, metadata }).slice(0, 16);
}

export const ARTIFACT_ID_RE = /^a-[0-9a-f]{16}$/;

/** Validates a file name inside an artifact: relative, forward slashes, no "." or ".." segments. */
export function validateArtifactPath(p: string): void {
  const bad =
    p.length === 0 ||
    p.length > 512 ||
    p.startsWith('/') ||
    p.includes('\\') ||
    p.includes('\0') ||
    p.split('/').some((seg) => seg === '' || seg === '.' || seg === '..');
  if (bad) throw new AlignflowError('input', `invalid file name "${p}" inside an artifact (relative, forward slashes, no "..")`);
}

class MissingBlob extends Error {}

/** An artifact's manifest read from the store's tables (any handle: the db or a transaction), or undefined. */
export function findIn(tx: Db, id: string): ArtifactManifest | undefined {
  const row = tx.select().from(artifacts).where(eq(artifacts.id, id)).get();
  if (!row) return undefined;
  const files = tx
    .select({ path: artifactFiles.path, sha256: artifactFiles.sha256, sizeBytes: artifactFiles.sizeBytes })
    .from(artifactFiles)
    .where(eq(artifactFiles.artifactId, id))
    .all()
    .sort((x, y) => (x.path < y.path ? -1 : x.path > y.path ? 1 : 0));
  return {
    id: row.id,
    kind: row.kind,
    name: row.name,
    metadata: (row.metadata ?? {}) as Record<string, unknown>,
    files,
    sizeBytes: row.sizeBytes,
    createdAt: row.createdAt,
    pinned: row.pinned,
    producerStageId: row.producerStageId,
    producerRunId: row.producerRunId,
  };
}


export function createLocalStore(db: Db, home: string): LocalArtifactStore {
  const blobs = new BlobStore(home);

  function find(id: string): ArtifactManifest | undefined {
    return findIn(db, id);
  }

  function getSync(id: string): ArtifactManifest {
    const m = find(id);
    if (!m) throw notFound(`artifact ${id} does not exist`);
    return m;
  }

  async function get(id: string): Promise<ArtifactManifest> {
    return getSync(id);
  }

  function fileOf(id: string, p: string) {
    const m = getSync(id);
    const f = m.files.find((x) => x.path === p);
    if (!f) throw notFound(`artifact ${id} has no file "${p}" (it has: ${m.files.map((x) => x.path).join(', ') || 'none'})`);
    return f;
  }

  async function writeBlobs(files: LocalFileInput[]): Promise<{ path: string; sha256: string; sizeBytes: number }[]> {
    const out = [];
    for (const f of files) {
      const given = [f.data !== undefined, f.sourceFile !== undefined, f.blob !== undefined, f.staged !== undefined].filter(Boolean).length;
      if (given !== 1) throw new AlignflowError('internal', `artifact file "${f.path}" needs exactly one of data, sourceFile, blob, staged`);
      let ref: BlobRef;
      if (f.data !== undefined) ref = await blobs.putBytes(f.data);
      else if (f.sourceFile !== undefined) {
        try {
          ref = await blobs.putFile(f.sourceFile);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw notFound(`file ${f.sourceFile} does not exist`);
          throw err;
        }
      } else ref = f.blob ?? f.staged!;
      out.push({ path: f.path, sha256: ref.sha256, sizeBytes: ref.sizeBytes });
    }
    return out;
  }

  async function put(a: LocalPutArtifact, opts: PutOptions = {}): Promise<ArtifactManifest> {
    if (!(artifactKinds as readonly string[]).includes(a.kind)) throw new AlignflowError('input', `unknown artifact kind "${a.kind}"`);
    if (!a.name || a.name.length > 200) throw new AlignflowError('input', 'an artifact needs a name of 1 to 200 characters');
    const seen = new Set<string>();
    for (const f of a.files) {
      validateArtifactPath(f.path);
      if (seen.has(f.path)) throw new AlignflowError('input', `file "${f.path}" appears twice in one artifact`);
      seen.add(f.path);
    }
    // Normalize metadata through canonical JSON: rejects NaN/undefined-in-array, fixes key order.
    const metadata = JSON.parse(canonicalJson(a.metadata ?? {})) as Record<string, unknown>;

    for (let attempt = 0; ; attempt++) {
      const files = await writeBlobs(a.files);
      const id = artifactId(a.kind, files, metadata);
      await opts.beforeRegister?.();
      try {
        return register(a, id, files, metadata, opts);
      } catch (err) {
        // A concurrent GC removed a blob between our write and our transaction: write again.
        const canRewrite = a.files.every((f) => f.blob === undefined && f.staged === undefined);
        if (err instanceof MissingBlob && canRewrite && attempt < 2) continue;
        if (err instanceof MissingBlob) throw new AlignflowError('transient', `blob of "${err.message}" vanished before it was registered (a concurrent gc?); retry`);
        throw err;
      }
    }
  }

  function register(
    a: LocalPutArtifact,
    id: string,
    files: { path: string; sha256: string; sizeBytes: number }[],
    metadata: Record<string, unknown>,
    opts: PutOptions,
  ): ArtifactManifest {
    return immediate(db, (tx) => {
      // GC deletes blobs inside its own immediate transaction, so this check cannot race with it.
      for (const f of files) if (!blobs.has(f.sha256)) throw new MissingBlob(f.path);
      const existing = tx.select({ id: artifacts.id }).from(artifacts).where(eq(artifacts.id, id)).get();
      const created = !existing;
      if (created) {
        tx.insert(artifacts)
          .values({
            id,
            kind: a.kind,
            name: a.name,
            metadata,
            sizeBytes: files.reduce((s, f) => s + f.sizeBytes, 0),
            producerStageId: a.producer?.stageId ?? null,
            producerRunId: a.producer?.runId ?? null,
            pinned: false,
            createdAt: Date.now(),
          })
          .run();
        for (const f of files) tx.insert(artifactFiles).values({ artifactId: id, ...f }).run();
      } else if (a.producer) {
        // Keep the first producer; fill it in if the artifact was first registered without one.
        const row = tx.select({ s: artifacts.producerStageId }).from(artifacts).where(eq(artifacts.id, id)).get();
        if (row && row.s === null) {
          tx.update(artifacts).set({ producerStageId: a.producer.stageId, producerRunId: a.producer.runId }).where(eq(artifacts.id, id)).run();
        }
      }
      for (const input of a.inputs ?? []) {
        if (input.artifactId === id) throw new AlignflowError('input', `artifact ${id} cannot be its own input`);
        const ok = tx.select({ id: artifacts.id }).from(artifacts).where(eq(artifacts.id, input.artifactId)).get();
        if (!ok) throw notFound(`input artifact ${input.artifactId} (role "${input.role}") does not exist`);
        tx.insert(lineageEdges).values({ artifactId: id, inputArtifactId: input.artifactId, role: input.role }).onConflictDoNothing().run();
      }
      if (a.producer) {
        // A retried stage attempt replaces what it produced under the same role.
        tx.insert(stageOutputs)
          .values({ stageId: a.producer.stageId, artifactId: id, role: a.producer.role })
          .onConflictDoUpdate({ target: [stageOutputs.stageId, stageOutputs.role], set: { artifactId: id } })
          .run();
      }
      const manifest = findIn(tx, id)!;
      opts.inTransaction?.(tx, manifest, created);
      return manifest;
    });
  }


  async function putDataset(a: PutArtifact, entry: DatasetEntry, o: { beforeRegister?: () => void | Promise<void> } = {}) {
    let dataset: DatasetRow | undefined;
    let created = false;
    const artifact = await put(a, {
      ...(o.beforeRegister ? { beforeRegister: o.beforeRegister } : {}),
      inTransaction: (tx, manifest) => {
        const existing = tx.select().from(datasets).where(eq(datasets.artifactId, manifest.id)).get();
        if (existing) {
          dataset = existing;
          return;
        }
        const sameName = tx.select().from(datasets).where(eq(datasets.name, entry.name)).get();
        if (sameName && !entry.newVersion) throw new AlignflowError('input', `a different dataset is already named "${entry.name}" (${sameName.id}); choose another --name`);
        const row = { id: datasetIdFor(manifest.id), name: entry.name, artifactId: manifest.id, kind: entry.kind, format: entry.format, records: entry.records, sourcePath: entry.sourcePath, createdAt: Date.now() };
        tx.insert(datasets).values(row).run();
        dataset = row;
        created = true;
      },
    });
    return { artifact, dataset: dataset!, created };
  }

  async function findByMetadata(kind: ArtifactKind, key: string, value: string): Promise<ArtifactManifest[]> {
    // the key goes into a JSON path: only plain field names
    if (!/^[A-Za-z0-9_]{1,64}$/.test(key)) throw new AlignflowError('internal', `findByMetadata: invalid metadata key "${key}"`);
    return db
      .select({ id: artifacts.id })
      .from(artifacts)
      .where(sql`${artifacts.kind} = ${kind} and json_extract(${artifacts.metadata}, ${'$.' + key}) = ${value}`)
      .orderBy(sql`${artifacts.createdAt} desc`)
      .all()
      .map((r) => getSync(r.id));
  }

  async function readFile(id: string, p: string): Promise<Buffer> {
    const f = fileOf(id, p);
    try {
      return await blobs.read(f.sha256);
    } catch (err) {
      throw withContext(err, id, p);
    }
  }

  async function* readFileChunks(id: string, p: string): AsyncGenerator<Buffer> {
    const f = fileOf(id, p);
    try {
      yield* blobs.readChunks(f.sha256);
    } catch (err) {
      throw withContext(err, id, p);
    }
  }

  async function checkFile(id: string, p: string) {
    const f = fileOf(id, p);
    return blobs.check(f.sha256, f.sizeBytes);
  }

  async function materialize(id: string, dir: string): Promise<string> {
    const m = getSync(id);
    for (const f of m.files) {
      const dest = path.join(dir, ...f.path.split('/'));
      await fsp.mkdir(path.dirname(dest), { recursive: true });
      const tmp = `${dest}.${randomBytes(6).toString('hex')}.partial`;
      const out = fs.createWriteStream(tmp);
      try {
        for await (const chunk of readFileChunks(id, f.path)) {
          if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', r));
        }
        await new Promise<void>((res, rej) => out.end((e?: Error | null) => (e ? rej(e) : res())));
        await fsp.rename(tmp, dest);
      } catch (err) {
        out.destroy();
        await fsp.rm(tmp, { force: true });
        throw err;
      }
    }
    return dir;
  }

  return { db, home, blobs, put, putDataset, get, find, findByMetadata, createFileWriter: () => blobs.createWriter(), readFile, readFileChunks, checkFile, materialize };
}

function withContext(err: unknown, id: string, p: string): unknown {
  if (err instanceof AlignflowError && err.kind === 'integrity') {
    return new AlignflowError('integrity', `artifact ${id}, file "${p}": ${err.message}`, { cause: err });
  }
  return err;
}

/** True when an artifact with this id exists (helper for callers holding only a db). */
export function artifactExists(db: Db, id: string): boolean {
  return !!db.select({ id: artifacts.id }).from(artifacts).where(eq(artifacts.id, id)).get();
}
