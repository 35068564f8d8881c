import fs from 'node:fs';
import path from 'node:path';
import { canonicalHash, sha256Hex } from '../store/canonical-json.js';
import { ENGINE_VERSION } from '../version.js';
import { FILE_FIELDS as SPEC_FILE_FIELDS } from '../config/input-paths.js';

/**
 * A stage's cache key: sha256 over (kind, resolved config, input artifact ids by role, the
 * stage's seed, engine version, and the contents of files the config names), in canonical JSON
 * so key order and whitespace never matter. Two stages with the same key compute the same
 * thing, so one's outputs can stand in for the other's. The seed is part of the resolved
 * configuration: it is what ctx.seed hands the handler (initial weights, shuffling, sampling), so
 * runs with different seeds never share results.
 */
export function stageCacheKey(kind: string, config: unknown, inputs: Record<string, string>, seed: number, engineVersion = ENGINE_VERSION): string {
  const files = configFileDigests(config);
  return 'k-' + canonicalHash({ v: 2, kind, config, inputs, seed, engine: engineVersion, ...(Object.keys(files).length ? { files } : {}) });
}

/** Config fields whose value is a file that decides what the stage computes (judge modules, label files). */
const FILE_FIELDS = new Set(Object.keys(SPEC_FILE_FIELDS));

/**
 * sha256 of every file a config names in FILE_FIELDS (at any depth), keyed by its path: editing a
 * judge module must not let the stage be served from cache. A path that does not exist hashes as
 * "missing"; the handler reports it when it runs.
 */
export function configFileDigests(config: unknown, baseDir = process.cwd()): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (v: unknown, base: string): void => {
    if (Array.isArray(v)) v.forEach((x) => walk(x, base));
    else if (v && typeof v === 'object') {
      // the eval stage resolves its judge modules against `judges_dir`
      const dir = (v as { judges_dir?: unknown }).judges_dir;
      const here = typeof dir === 'string' ? path.resolve(base, dir) : base;
      for (const [k, x] of Object.entries(v)) {
        if (FILE_FIELDS.has(k) && typeof x === 'string') {
          const p = path.resolve(here, x);
          out[x] = fs.existsSync(p) && fs.statSync(p).isFile() ? sha256Hex(fs.readFileSync(p)) : 'missing';
        } else walk(x, here);
      }
    }
  };
  walk(config, baseDir);
  return out;
}

/** Derived from the run seed and the stage name: repeatable, distinct per stage. */
export function stageSeed(runSeed: number, stageName: string): number {
  return parseInt(canonicalHash({ seed: runSeed, stage: stageName }).slice(0, 8), 16) & 0x7fffffff;
}
