// The artifact store of a worker on another host: the same ArtifactStore interface as the local
// one, over the coordinator API. Blobs pass through a local cache by sha256 in the worker's own
// home (a BlobStore: verified on the way in, so a blob is downloaded once per host):
//   - reads download a blob once (HTTP Range resumes an interrupted download), then read it locally;
//   - writes go into the cache first (that yields the digest), are uploaded in chunks unless the
//     coordinator already has them, and only then is the manifest registered (refused while a
//     blob is missing): a torn upload never becomes an artifact.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { AlignflowError, notFound } from '../../errors.js';
import { BlobStore, type BlobRef } from '../../store/blobs.js';
import type { ArtifactKind } from '../../kinds.js';
import type { ArtifactManifest, ArtifactStore, FileWriter, PutArtifact } from '../../store/types.js';
import { CoordinatorError, type CoordinatorClient } from './client.js';

/** Bytes per upload request (the coordinator accepts up to UPLOAD_CHUNK_MAX = 8 MiB). */
export const UPLOAD_CHUNK_BYTES = Number(process.env.ALIGNFLOW_UPLOAD_CHUNK_BYTES ?? 4 * 1024 * 1024);

export class RemoteStore implements ArtifactStore {
  readonly cache: BlobStore;
  private manifests = new Map<string, ArtifactManifest>();
  constructor(
    readonly client: CoordinatorClient,
    home: string,
    /** The held stage its artifacts are registered under. */
    readonly stageId: string,
  ) {
    this.cache = new BlobStore(home);
  }

  async get(id: string): Promise<ArtifactManifest> {
    const known = this.manifests.get(id);
    if (known) return known;
    const m = await this.client.json<ArtifactManifest>('GET', `/artifacts/${encodeURIComponent(id)}`);
    this.manifests.set(id, m);
    return m;
  }

  private async fileOf(id: string, p: string) {
    const m = await this.get(id);
    const f = m.files.find((x) => x.path === p);
    if (!f) throw notFound(`artifact ${id} has no file "${p}" (it has: ${m.files.map((x) => x.path).join(', ') || 'none'})`);
    return f;
  }

  /** The blob in the local cache, downloading it (resumably) first when absent. Returns its path. */
  async ensureBlob(sha256: string, sizeBytes: number): Promise<string> {
    if (this.cache.has(sha256)) return this.cache.pathOf(sha256);
    await fsp.mkdir(this.cache.tmp, { recursive: true });
    // One part file per digest and process: a second process downloads its own copy.
    const part = path.join(this.cache.tmp, `download-${sha256}-${process.pid}.part`);
    for (let tries = 1; ; tries++) {
      let have = (await fsp.stat(part).catch(() => undefined))?.size ?? 0;
      if (have > sizeBytes) {
        await fsp.rm(part, { force: true });
        have = 0;
      }
      if (have < sizeBytes || sizeBytes === 0) {
        try {
          await this.download(sha256, part, have);
        } catch (err) {
          if (tries >= 5 || !(err instanceof AlignflowError && err.kind === 'transient') && !isNetwork(err)) throw err;
          continue; // resume from what arrived
        }
      }
      try {
        await this.cache.adopt(part, sha256, sizeBytes);
        return this.cache.pathOf(sha256);
      } catch (err) {
        // adopt() removed the bad file: fetch it again, once.
        if (tries >= 2 || !(err instanceof AlignflowError && err.kind === 'integrity')) throw err;
      }
    }
  }

  private async download(sha256: string, part: string, from: number): Promise<void> {
    const res = await this.client.send('GET', `/blobs/${sha256}`, { headers: from > 0 ? { range: `bytes=${from}-` } : {}, timeoutMs: this.client.timeoutMs * 4 });
    if (from > 0 && res.status !== 206) await fsp.rm(part, { force: true }); // the server sent it all
    const out = fs.createWriteStream(part, { flags: from > 0 && res.status === 206 ? 'a' : 'w' });
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', r));
      }
    } finally {
      await new Promise<void>((r) => out.end(r));
    }
  }

  async readFile(id: string, p: string): Promise<Buffer> {
    const f = await this.fileOf(id, p);
    await this.ensureBlob(f.sha256, f.sizeBytes);
    return this.cache.read(f.sha256);
  }

  async materialize(id: string, dir: string): Promise<string> {
    const m = await this.get(id);
    for (const f of m.files) {
      const src = await this.ensureBlob(f.sha256, f.sizeBytes);
      const dest = path.join(dir, ...f.path.split('/'));
      await fsp.mkdir(path.dirname(dest), { recursive: true });
      const tmp = `${dest}.${randomBytes(6).toString('hex')}.partial`;
      await fsp.copyFile(src, tmp);
      await fsp.rename(tmp, dest);
    }
    return dir;
  }

  async findByMetadata(kind: ArtifactKind, key: string, value: string): Promise<ArtifactManifest[]> {
    const q = new URLSearchParams({ kind, key, value });
    const r = await this.client.json<{ artifacts: ArtifactManifest[] }>('GET', `/artifacts?${q}`);
    for (const m of r.artifacts) this.manifests.set(m.id, m);
    return r.artifacts;
  }

  async createFileWriter(): Promise<FileWriter> {
    const w = await this.cache.createWriter();
    return { write: (c) => w.write(c), abort: () => w.abort(), commit: async () => this.upload(await w.commit()) };
  }

  /** Sends a cached blob unless the coordinator has it; resumes from what it already received. */
  async upload(ref: BlobRef): Promise<BlobRef> {
    let state = await this.client.json<{ complete: boolean; offset: number }>('GET', `/uploads/${ref.sha256}`);
    const fh = await fsp.open(this.cache.pathOf(ref.sha256), 'r');
    try {
      for (let rounds = 0; !state.complete; rounds++) {
        if (rounds > 10_000) throw new AlignflowError('internal', `upload of ${ref.sha256} does not progress`);
        if (state.offset < ref.sizeBytes) {
          const n = Math.min(UPLOAD_CHUNK_BYTES, ref.sizeBytes - state.offset);
          const buf = Buffer.alloc(n);
          const { bytesRead } = await fh.read(buf, 0, n, state.offset);
          const res = await this.client.send('PUT', `/uploads/${ref.sha256}?offset=${state.offset}`, { body: buf.subarray(0, bytesRead), accept: [409], timeoutMs: this.client.timeoutMs * 4 });
          state = (await res.json()) as { complete: boolean; offset: number };
          continue;
        }
        const res = await this.client.send('POST', `/uploads/${ref.sha256}/commit`, { json: { sizeBytes: ref.sizeBytes }, accept: [409] });
        state = (await res.json()) as { complete: boolean; offset: number };
        if (!state.complete && state.offset >= ref.sizeBytes) throw new AlignflowError('internal', `coordinator refused to commit ${ref.sha256}`);
      }
    } finally {
      await fh.close();
    }
    return ref;
  }

  async put(a: PutArtifact): Promise<ArtifactManifest> {
    const files: { path: string; sha256: string; sizeBytes: number }[] = [];
    for (const f of a.files) {
      const given = [f.data !== undefined, f.sourceFile !== undefined, f.staged !== undefined].filter(Boolean).length;
      if (given !== 1) throw new AlignflowError('internal', `artifact file "${f.path}" needs exactly one of data, sourceFile, staged`);
      let ref: BlobRef;
      if (f.data !== undefined) ref = await this.cache.putBytes(f.data);
      else if (f.sourceFile !== undefined) ref = await this.cache.putFile(f.sourceFile);
      else ref = f.staged!;
      await this.upload(ref);
      files.push({ path: f.path, sha256: ref.sha256, sizeBytes: ref.sizeBytes });
    }
    const body = { kind: a.kind, name: a.name, files, ...(a.metadata ? { metadata: a.metadata } : {}), ...(a.inputs ? { inputs: a.inputs } : {}), ...(a.producer ? { producer: a.producer } : {}) };
    for (let tries = 1; ; tries++) {
      try {
        const m = await this.client.json<ArtifactManifest>('POST', `/stages/${this.stageId}/artifacts`, body);
        this.manifests.set(m.id, m);
        return m;
      } catch (err) {
        // A blob vanished on the coordinator (gc, a restore): send the missing ones again, once.
        if (!(err instanceof CoordinatorError && err.status === 409 && Array.isArray(err.body.missing)) || tries > 1) throw err;
        for (const f of files) if ((err.body.missing as string[]).includes(f.sha256)) await this.upload(f);
      }
    }
  }

  async putDataset(): Promise<never> {
    throw new AlignflowError('internal', 'datasets are registered on the coordinator (alignflow datasets import), not by a remote worker');
  }
}

const isNetwork = (err: unknown) => err instanceof TypeError || (err as Error)?.name === 'TimeoutError' || (err as Error)?.name === 'AbortError';
