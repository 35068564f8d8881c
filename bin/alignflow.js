#!/usr/bin/env node
// Runs the built CLI (dist/, made by `npm run build`). In a checkout without dist/ it runs the
// TypeScript sources through tsx instead: it re-executes node with tsx's loader in execArgv, so
// worker threads started by the CLI (training runs in one) load TypeScript too.
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import path from 'node:path';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const built = path.join(root, 'dist', 'cli', 'main.js');
if (existsSync(built)) {
  await import(pathToFileURL(built).href);
} else {
  const tsx = import.meta.resolve('tsx');
  const main = path.join(root, 'src', 'cli', 'main.ts');
  const res = spawnSync(process.execPath, ['--import', tsx, main, ...process.argv.slice(2)], { stdio: 'inherit' });
  if (res.signal) process.kill(process.pid, res.signal);
  process.exit(res.status ?? 1);
}
