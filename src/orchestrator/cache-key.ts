import { canonicalHash } from '../store/canonical-json.js';
import { ENGINE_VERSION } from '../version.js';

/**
 * A stage's cache key: sha256 over (kind, resolved config, input artifact ids by role, the
 * stage's seed, engine version), in canonical JSON so key order and whitespace never matter. Two
 * stages with the same key compute the same thing, so one's outputs can stand in for the
 * other's. The seed is part of the resolved configuration: it is what ctx.seed hands the handler
 * (initial weights, shuffling, sampling), so runs with different seeds never share results.
 */
export function stageCacheKey(kind: string, config: unknown, inputs: Record<string, string>, seed: number, engineVersion = ENGINE_VERSION): string {
  return 'k-' + canonicalHash({ v: 2, kind, config, inputs, seed, engine: engineVersion });
}

/** Derived from the run seed and the stage name: repeatable, distinct per stage. */
export function stageSeed(runSeed: number, stageName: string): number {
  return parseInt(canonicalHash({ seed: runSeed, stage: stageName }).slice(0, 8), 16) & 0x7fffffff;
}
