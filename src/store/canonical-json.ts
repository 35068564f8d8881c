// Canonical JSON: object keys sorted by code unit, no whitespace, so equal values always give
// equal text (and equal hashes). Used for artifact ids, metadata columns and cache keys.
import { createHash } from 'node:crypto';

/**
 * Serializes `value` canonically. Rejects what JSON cannot represent faithfully (NaN, ±Infinity,
 * bigint, functions, symbols, undefined inside arrays) instead of silently changing it, because a
 * hash of a silently-changed value would be a wrong cache key. `undefined` object members are
 * dropped, as JSON.stringify does.
 */
export function canonicalJson(value: unknown): string {
  return write(value, '$');
}

function write(v: unknown, at: string): string {
  if (v === null) return 'null';
  switch (typeof v) {
    case 'string':
      return JSON.stringify(v);
    case 'boolean':
      return v ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(v)) throw new TypeError(`canonicalJson: non-finite number at ${at}`);
      return JSON.stringify(v); // -0 becomes 0, as in JSON.stringify
    case 'object': {
      if (Array.isArray(v)) {
        return '[' + v.map((x, i) => {
          if (x === undefined) throw new TypeError(`canonicalJson: undefined at ${at}[${i}]`);
          return write(x, `${at}[${i}]`);
        }).join(',') + ']';
      }
      const withToJson = v as { toJSON?: () => unknown };
      if (typeof withToJson.toJSON === 'function') return write(withToJson.toJSON(), at);
      const obj = v as Record<string, unknown>;
      const keys = Object.keys(obj).filter((k) => obj[k] !== undefined).sort();
      return '{' + keys.map((k) => JSON.stringify(k) + ':' + write(obj[k], `${at}.${k}`)).join(',') + '}';
    }
    default:
      throw new TypeError(`canonicalJson: cannot serialize ${typeof v} at ${at}`);
  }
}

export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** sha256 of the canonical JSON of `value`: the building block of ids and cache keys. */
export function canonicalHash(value: unknown): string {
  return sha256Hex(canonicalJson(value));
}
