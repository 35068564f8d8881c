import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * A folder for what a person may want to look at after a test (screenshots at 1400 px width,
 * rendered pages): created under the OS temp dir, kept after the run, its path printed.
 */
export function artifactsDir(name: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `alignflow-artifacts-${name}-`));
  console.log(`# artifacts of ${name}: ${dir}`);
  return dir;
}
