// Turns a generated dataset into bytes (JSONL files + manifest.json) and writes them atomically.
// Bytes depend only on the dataset: no timestamps, fixed key order, "\n" line ends.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { AlignflowError } from '../../errors.js';
import type { SynthDataset, SynthKind } from './types.js';

export interface RenderedFile {
  name: string;
  kind: SynthKind | 'manifest';
  records: number;
  bytes: number;
  sha256: string;
  content: string;
}

const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');

/** The files of a dataset, manifest.json last; the manifest lists every other file's size and sha256. */
export function renderDataset(ds: SynthDataset, command: string): RenderedFile[] {
  const files: RenderedFile[] = ds.files.map((f) => {
    const content = f.records.map((r) => JSON.stringify(r) + '\n').join('');
    return { name: f.name, kind: f.kind, records: f.records.length, bytes: Buffer.byteLength(content), sha256: sha256(content), content };
  });
  const manifest = {
    task: ds.task,
    generator_version: ds.generatorVersion,
    seed: ds.seed,
    options: ds.options,
    regenerate: command,
    judge: ds.judge,
    files: ds.files.map((f, i) => ({ name: f.name, kind: f.kind, description: f.description, records: files[i]!.records, bytes: files[i]!.bytes, sha256: files[i]!.sha256 })),
  };
  const content = JSON.stringify(manifest, null, 2) + '\n';
  files.push({ name: 'manifest.json', kind: 'manifest', records: 1, bytes: Buffer.byteLength(content), sha256: sha256(content), content });
  return files;
}

/**
 * Writes every file to a temporary name first and renames them into place only when all are
 * written, so a failure leaves the directory as it was (other files in it are left alone).
 */
export function writeDataset(files: RenderedFile[], dir: string): void {
  const temps: string[] = [];
  try {
    fs.mkdirSync(dir, { recursive: true });
    for (const f of files) {
      const tmp = path.join(dir, `.${f.name}.tmp-${process.pid}`);
      temps.push(tmp);
      const fd = fs.openSync(tmp, 'w');
      try {
        fs.writeFileSync(fd, f.content, 'utf8');
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
    }
    files.forEach((f, i) => fs.renameSync(temps[i]!, path.join(dir, f.name)));
  } catch (err) {
    for (const t of temps) fs.rmSync(t, { force: true });
    const msg = err instanceof Error ? err.message : String(err);
    throw new AlignflowError('input', `cannot write the dataset to ${dir}: ${msg}`, { cause: err });
  }
}
