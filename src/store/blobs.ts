// Content-addressed blobs: $ALIGNFLOW_HOME/blobs/<first two hex>/<sha256>. Every write goes to a
// temp file in $ALIGNFLOW_HOME/tmp (same filesystem), is fsynced, renamed into place and the
// directory fsynced, so a blob path either does not exist or holds complete bytes. Reads are
// verified against the name: a corrupted blob is reported, never used.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { AlignflowError } from '../errors.js';
import { blobsDir, tmpDir } from '../config/paths.js';
import type { FileWriter, StagedFile } from './types.js';

/** A stored blob: its digest and size (the interface's StagedFile). */
export type BlobRef = StagedFile;

export type BlobCheck = 'ok' | 'missing' | 'corrupt';

const SHA_RE = /^[0-9a-f]{64}$/;

export function isSha256(s: string): boolean {
  return SHA_RE.test(s);
}

/** A blob being written: feed chunks in order, then commit (or abort). */
export type BlobWriter = FileWriter;

export class BlobStore {
  readonly dir: string;
  readonly tmp: string;

  constructor(home: string) {
    this.dir = blobsDir(home);
    this.tmp = tmpDir(home);
  }

  pathOf(sha256: string): string {
    if (!SHA_RE.test(sha256)) throw new AlignflowError('integrity', `"${sha256}" is not a sha256 digest`);
    return path.join(this.dir, sha256.slice(0, 2), sha256);
  }

  has(sha256: string): boolean {
    return fs.existsSync(this.pathOf(sha256));
  }

  async createWriter(): Promise<BlobWriter> {
    await fsp.mkdir(this.tmp, { recursive: true });
    const tmpPath = path.join(this.tmp, `blob-${process.pid}-${randomBytes(8).toString('hex')}.tmp`);
    const fh = await fsp.open(tmpPath, 'wx');
    const hash = createHash('sha256');
    let size = 0;
    let closed = false;
    const cleanup = async () => {
      if (!closed) {
        closed = true;
        await fh.close().catch(() => undefined);
      }
      await fsp.rm(tmpPath, { force: true });
    };
    return {
      write: async (chunk) => {
        hash.update(chunk);
        size += chunk.byteLength;
        let off = 0;
        while (off < chunk.byteLength) {
          const { bytesWritten } = await fh.write(chunk, off, chunk.byteLength - off);
          off += bytesWritten;
        }
      },
      commit: async () => {
        try {
          await fh.sync();
          closed = true;
          await fh.close();
          const sha256 = hash.digest('hex');
          const dest = this.pathOf(sha256);
          const destDir = path.dirname(dest);
          await fsp.mkdir(destDir, { recursive: true });
          // Renaming over an existing blob is atomic and harmless (same content by definition),
          // and it heals a blob that was corrupted on disk. It also refreshes the mtime that GC's
          // grace period looks at.
          await fsp.rename(tmpPath, dest);
          await fsyncDir(destDir);
          return { sha256, sizeBytes: size };
        } catch (err) {
          await cleanup();
          throw err;
        }
      },
      abort: cleanup,
    };
  }

  async putBytes(data: Uint8Array): Promise<BlobRef> {
    const w = await this.createWriter();
    try {
      await w.write(data);
    } catch (err) {
      await w.abort();
      throw err;
    }
    return w.commit();
  }

  /** Copies a file into the store, streamed (never read whole). */
  async putFile(source: string): Promise<BlobRef> {
    const w = await this.createWriter();
    try {
      for await (const chunk of fs.createReadStream(source, { highWaterMark: 1 << 20 })) await w.write(chunk as Buffer);
    } catch (err) {
      await w.abort();
      throw err;
    }
    return w.commit();
  }

  /** The whole blob, verified. Throws an 'integrity' error when missing or corrupted. */
  async read(sha256: string): Promise<Buffer> {
    let buf: Buffer;
    try {
      buf = await fsp.readFile(this.pathOf(sha256));
    } catch (err) {
      throw missingOrIo(sha256, err);
    }
    const actual = createHash('sha256').update(buf).digest('hex');
    if (actual !== sha256) throw corrupted(sha256, actual);
    return buf;
  }

  /**
   * The blob's bytes in chunks; the digest is checked at the end and the iteration throws an
   * 'integrity' error on mismatch. Callers that must not act on unverified bytes verify() first.
   */
  async *readChunks(sha256: string): AsyncGenerator<Buffer> {
    const hash = createHash('sha256');
    let stream: fs.ReadStream;
    try {
      stream = fs.createReadStream(this.pathOf(sha256), { highWaterMark: 1 << 20 });
      for await (const chunk of stream) {
        hash.update(chunk as Buffer);
        yield chunk as Buffer;
      }
    } catch (err) {
      if (err instanceof AlignflowError) throw err;
      throw missingOrIo(sha256, err);
    }
    const actual = hash.digest('hex');
    if (actual !== sha256) throw corrupted(sha256, actual);
  }

  /** Re-hashes the blob from disk (streamed). */
  async check(sha256: string, expectedSize?: number): Promise<BlobCheck> {
    const p = this.pathOf(sha256);
    let st: fs.Stats;
    try {
      st = await fsp.stat(p);
    } catch {
      return 'missing';
    }
    if (expectedSize !== undefined && st.size !== expectedSize) return 'corrupt';
    const hash = createHash('sha256');
    for await (const chunk of fs.createReadStream(p, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
    return hash.digest('hex') === sha256 ? 'ok' : 'corrupt';
  }

  /**
   * Makes a complete file (written and fsynced by the caller, in this store's tmp dir) the blob
   * `sha256` after re-hashing it: a file whose bytes do not hash to the name is deleted and an
   * 'integrity' error thrown, so a torn or forged upload never becomes a blob.
   */
  async adopt(file: string, sha256: string, sizeBytes?: number): Promise<BlobRef> {
    const dest = this.pathOf(sha256);
    const hash = createHash('sha256');
    let size = 0;
    for await (const chunk of fs.createReadStream(file, { highWaterMark: 1 << 20 })) {
      hash.update(chunk as Buffer);
      size += (chunk as Buffer).byteLength;
    }
    const actual = hash.digest('hex');
    if (actual !== sha256 || (sizeBytes !== undefined && size !== sizeBytes)) {
      await fsp.rm(file, { force: true });
      throw new AlignflowError('integrity', `upload of blob ${sha256} does not match: got ${size} bytes hashing to ${actual.slice(0, 16)}…${sizeBytes !== undefined ? ` (expected ${sizeBytes} bytes)` : ''}; discarded`);
    }
    const fh = await fsp.open(file, 'r+');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fsp.mkdir(path.dirname(dest), { recursive: true });
    await fsp.rename(file, dest);
    await fsyncDir(path.dirname(dest));
    return { sha256, sizeBytes: size };
  }

  /** Every blob on disk with its size and mtime (files with non-digest names are ignored). */
  listSync(): { sha256: string; sizeBytes: number; mtimeMs: number }[] {
    const out: { sha256: string; sizeBytes: number; mtimeMs: number }[] = [];
    if (!fs.existsSync(this.dir)) return out;
    for (const sub of fs.readdirSync(this.dir)) {
      const subDir = path.join(this.dir, sub);
      if (!/^[0-9a-f]{2}$/.test(sub) || !fs.statSync(subDir).isDirectory()) continue;
      for (const name of fs.readdirSync(subDir)) {
        if (!SHA_RE.test(name) || !name.startsWith(sub)) continue;
        const st = fs.statSync(path.join(subDir, name));
        out.push({ sha256: name, sizeBytes: st.size, mtimeMs: st.mtimeMs });
      }
    }
    return out;
  }

  /** Synchronous so GC can run it inside a SQLite write transaction. */
  deleteSync(sha256: string): void {
    fs.rmSync(this.pathOf(sha256), { force: true });
  }

  /** Temp files left by crashed writers, older than `olderThanMs` (younger ones may be in use). */
  staleTmpFilesSync(olderThanMs: number, now = Date.now()): { path: string; sizeBytes: number }[] {
    if (!fs.existsSync(this.tmp)) return [];
    const out: { path: string; sizeBytes: number }[] = [];
    for (const name of fs.readdirSync(this.tmp)) {
      const p = path.join(this.tmp, name);
      const st = fs.statSync(p, { throwIfNoEntry: false });
      // olderThanMs = 0 means all (file times can be a fraction of a ms ahead of Date.now()).
      if (st?.isFile() && (olderThanMs <= 0 || now - st.mtimeMs >= olderThanMs)) out.push({ path: p, sizeBytes: st.size });
    }
    return out;
  }
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await fsp.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

function corrupted(sha256: string, actual: string): AlignflowError {
  return new AlignflowError('integrity', `blob ${sha256} is corrupted (its content hashes to ${actual.slice(0, 16)}…)`);
}

function missingOrIo(sha256: string, err: unknown): AlignflowError {
  const code = (err as NodeJS.ErrnoException)?.code;
  if (code === 'ENOENT') return new AlignflowError('integrity', `blob ${sha256} is missing from the store`, { cause: err });
  return new AlignflowError('internal', `cannot read blob ${sha256}: ${(err as Error)?.message ?? String(err)}`, { cause: err });
}
