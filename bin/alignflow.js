#!/usr/bin/env node
// Runs the built CLI (dist/, made by `npm run build`). In a checkout without dist/ it runs the
// TypeScript sources in this same process through tsx's loader (registered here; the CLI's worker
// threads register it themselves, see src/orchestrator/thread.ts). One process, not a child: a
// SIGTERM/SIGINT/SIGHUP sent to `alignflow serve` or `alignflow worker` reaches the command's own
// graceful shutdown, and nothing is left orphaned (issue 12, item 3).
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import path from 'node:path';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
  // Answered without loading the CLI (test/cli/bin.test.ts checks it agrees with src/version.ts).
  process.stdout.write(JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')).version + '\n');
} else {
  const built = path.join(root, 'dist', 'cli', 'main.js');
  if (existsSync(built)) {
    await import(pathToFileURL(built).href);
  } else {
    const { register } = await import('tsx/esm/api');
    register();
    await import(pathToFileURL(path.join(root, 'src', 'cli', 'main.ts')).href);
  }
}
