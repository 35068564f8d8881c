import fs from 'node:fs';
import path from 'node:path';
import type { ArtifactFileInput } from './types.js';

/** Every file of a directory (not its subdirectories) as artifact inputs, streamed from disk, sorted by name. */
export function dirFiles(dir: string): ArtifactFileInput[] {
  return fs
    .readdirSync(dir)
    .filter((f) => fs.statSync(path.join(dir, f)).isFile())
    .sort()
    .map((f) => ({ path: f, sourceFile: path.join(dir, f) }));
}
