#!/usr/bin/env node
// The `alignflow` command (the tree is built in ./program.ts).
import { buildProgram } from './program.js';
import { runCli } from './shared.js';

await runCli(await buildProgram(), process.argv);
