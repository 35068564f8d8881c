// The safetensors format, read and written by hand (the npm "safetensors" package is an empty stub):
// 8-byte little-endian header length N, N bytes of JSON header
// { name: { dtype, shape, data_offsets: [begin, end] }, "__metadata__": { str: str } }, then the raw
// little-endian tensor bytes. Offsets are relative to the end of the header. Spec:
// https://github.com/huggingface/safetensors#format
import fs from 'node:fs';
import { jsonSyntaxReason } from '../util/json-error.js';
import { AlignflowError } from '../errors.js';

export type SafetensorsDtype = 'F32' | 'F16' | 'BF16';

export interface NamedTensor {
  shape: number[];
  /** Always float32 in memory, whatever the file stored. */
  data: Float32Array;
}

export interface SafetensorsFile {
  tensors: Map<string, NamedTensor & { dtype: string }>;
  metadata: Record<string, string>;
}

const BYTES: Record<SafetensorsDtype, number> = { F32: 4, F16: 2, BF16: 2 };
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function bad(file: string, msg: string, field?: string): AlignflowError {
  return new AlignflowError('input', `${file}: ${msg}`, { issues: [{ file, field, reason: msg }] });
}

/** A tensor's place in a file: dtype, shape and byte range (absolute). */
export interface TensorEntry {
  dtype: SafetensorsDtype;
  shape: number[];
  begin: number;
  end: number;
}

/** Validates the header against a file of `fileSize` bytes; offsets in the result are absolute. */
function parseHeader(headerBytes: Uint8Array, fileSize: number, file: string): { entries: Map<string, TensorEntry>; metadata: Record<string, string> } {
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder().decode(headerBytes)) as Record<string, unknown>;
  } catch (e) {
    throw bad(file, `header is not valid JSON (${jsonSyntaxReason(e)})`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) throw bad(file, 'header is not a JSON object');
  const dataStart = 8 + headerBytes.byteLength;
  const dataLen = fileSize - dataStart;
  const entries = new Map<string, TensorEntry>();
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = (entry ?? {}) as Record<string, string>;
      continue;
    }
    const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (!e || typeof e !== 'object') throw bad(file, `tensor "${name}": header entry is not an object`, name);
    const dtype = e.dtype;
    if (dtype !== 'F32' && dtype !== 'F16' && dtype !== 'BF16') {
      throw bad(file, `tensor "${name}": unsupported dtype ${JSON.stringify(dtype)} (F32, F16 and BF16 are read)`, name);
    }
    const shape = e.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
      throw bad(file, `tensor "${name}": shape must be an array of non-negative integers`, name);
    }
    const offs = e.data_offsets;
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => Number.isInteger(o) && o >= 0)) {
      throw bad(file, `tensor "${name}": data_offsets must be [begin, end]`, name);
    }
    const [begin, end] = offs as [number, number];
    const n = (shape as number[]).reduce((a, b) => a * b, 1);
    if (end < begin || end > dataLen) throw bad(file, `tensor "${name}": data_offsets [${begin}, ${end}] lie outside the data (${dataLen} bytes)`, name);
    if (end - begin !== n * BYTES[dtype]) {
      throw bad(file, `tensor "${name}": ${end - begin} bytes for shape [${(shape as number[]).join(', ')}] of ${dtype} (expected ${n * BYTES[dtype]})`, name);
    }
    entries.set(name, { dtype, shape: shape as number[], begin: dataStart + begin, end: dataStart + end });
  }
  return { entries, metadata };
}

/** Parses safetensors bytes; `file` only names the source in errors. */
export function parseSafetensors(buf: Uint8Array, file = 'model.safetensors'): SafetensorsFile {
  if (buf.byteLength < 8) throw bad(file, 'file is shorter than the 8-byte header length');
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const headerLen = Number(view.getBigUint64(0, true));
  if (headerLen > buf.byteLength - 8) throw bad(file, `header length ${headerLen} exceeds the file size`);
  const { entries, metadata } = parseHeader(buf.subarray(8, 8 + headerLen), buf.byteLength, file);
  const tensors = new Map<string, NamedTensor & { dtype: string }>();
  for (const [name, e] of entries) {
    const n = e.shape.reduce((a, b) => a * b, 1);
    tensors.set(name, { dtype: e.dtype, shape: e.shape, data: decode(buf.subarray(e.begin, e.end), e.dtype, n) });
  }
  return { tensors, metadata };
}

/**
 * A safetensors file opened for reading one tensor at a time (only the header is read up front), so
 * a checkpoint is never held in memory next to the model's own copy of it.
 */
export class SafetensorsReader {
  readonly entries: Map<string, TensorEntry>;
  readonly metadata: Record<string, string>;
  private fd: number;

  constructor(readonly file: string) {
    try {
      this.fd = fs.openSync(file, 'r');
    } catch (e) {
      throw new AlignflowError('not_found', `${file}: cannot read (${(e as Error).message})`);
    }
    try {
      const size = fs.fstatSync(this.fd).size;
      if (size < 8) throw bad(file, 'file is shorter than the 8-byte header length');
      const lenBuf = Buffer.alloc(8);
      fs.readSync(this.fd, lenBuf, 0, 8, 0);
      const headerLen = Number(lenBuf.readBigUInt64LE(0));
      if (headerLen > size - 8) throw bad(file, `header length ${headerLen} exceeds the file size`);
      const hb = Buffer.alloc(headerLen);
      fs.readSync(this.fd, hb, 0, headerLen, 8);
      ({ entries: this.entries, metadata: this.metadata } = parseHeader(hb, size, file));
    } catch (e) {
      fs.closeSync(this.fd);
      throw e;
    }
  }

  /** One tensor as float32 (whatever the file stores). */
  read(name: string): Float32Array {
    const e = this.entries.get(name);
    if (!e) throw new AlignflowError('internal', `${this.file}: no tensor ${name}`);
    const n = e.shape.reduce((a, b) => a * b, 1);
    const len = e.end - e.begin;
    if (e.dtype === 'F32' && LITTLE_ENDIAN) {
      const out = new Float32Array(n);
      fs.readSync(this.fd, new Uint8Array(out.buffer), 0, len, e.begin);
      return out;
    }
    const bytes = Buffer.alloc(len);
    fs.readSync(this.fd, bytes, 0, len, e.begin);
    return decode(bytes, e.dtype, n);
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}

export function readSafetensors(file: string): SafetensorsFile {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    throw new AlignflowError('not_found', `${file}: cannot read (${(e as Error).message})`);
  }
  return parseSafetensors(buf, file);
}

function decode(bytes: Uint8Array, dtype: SafetensorsDtype, n: number): Float32Array {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(n);
  if (dtype === 'F32') {
    if (LITTLE_ENDIAN) return new Float32Array(new Uint8Array(bytes).buffer, 0, n); // a copy: aligned, detached from the file buffer
    for (let i = 0; i < n; i++) out[i] = dv.getFloat32(i * 4, true);
  } else if (dtype === 'BF16') {
    // bfloat16 is the top half of a float32
    const u32 = new Uint32Array(out.buffer);
    for (let i = 0; i < n; i++) u32[i] = dv.getUint16(i * 2, true) << 16;
  } else {
    for (let i = 0; i < n; i++) out[i] = halfToFloat(dv.getUint16(i * 2, true));
  }
  return out;
}

export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24; // subnormal
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 → IEEE half, round to nearest even. */
export function floatToHalf(x: number): number {
  f32[0] = x;
  const b = u32[0]!;
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow → inf
  if (e <= 0) {
    if (e < -10) return sign; // underflow → ±0
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++; // may carry into the exponent, which is correct
  return sign | h;
}

/** float32 → bfloat16, round to nearest even (as torch does). */
export function floatToBf16(x: number): number {
  f32[0] = x;
  const b = u32[0]!;
  if ((b & 0x7f800000) === 0x7f800000 && b & 0x7fffff) return (b >>> 16) | 0x40; // keep NaN a NaN
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

/** Serialises tensors (sorted by name, as the Python library does). */
export function serializeSafetensors(
  tensors: Map<string, NamedTensor> | Record<string, NamedTensor>,
  opts: { dtype?: SafetensorsDtype; metadata?: Record<string, string> } = {},
): Buffer {
  const dtype = opts.dtype ?? 'F32';
  const entries = (tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors)).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const header: Record<string, unknown> = {};
  if (opts.metadata) header.__metadata__ = opts.metadata;
  let offset = 0;
  for (const [name, t] of entries) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (n !== t.data.length) throw new AlignflowError('internal', `tensor "${name}": ${t.data.length} values for shape [${t.shape.join(', ')}]`);
    const len = n * BYTES[dtype];
    header[name] = { dtype, shape: t.shape, data_offsets: [offset, offset + len] };
    offset += len;
  }
  let headerJson = JSON.stringify(header);
  // pad with spaces so the data starts 8-byte aligned (allowed by the spec, done by the Python library)
  headerJson += ' '.repeat((8 - ((8 + Buffer.byteLength(headerJson)) % 8)) % 8);
  const headerBytes = Buffer.from(headerJson, 'utf8');
  const out = Buffer.alloc(8 + headerBytes.length + offset);
  out.writeBigUInt64LE(BigInt(headerBytes.length), 0);
  headerBytes.copy(out, 8);
  let pos = 8 + headerBytes.length;
  for (const [, t] of entries) {
    const d = t.data;
    if (dtype === 'F32' && LITTLE_ENDIAN) {
      out.set(new Uint8Array(d.buffer, d.byteOffset, d.length * 4), pos);
      pos += d.length * 4;
    } else if (dtype === 'F32') {
      for (let i = 0; i < d.length; i++, pos += 4) out.writeFloatLE(d[i]!, pos);
    } else {
      const conv = dtype === 'F16' ? floatToHalf : floatToBf16;
      for (let i = 0; i < d.length; i++, pos += 2) out.writeUInt16LE(conv(d[i]!), pos);
    }
  }
  return out;
}

export function writeSafetensors(
  file: string,
  tensors: Map<string, NamedTensor> | Record<string, NamedTensor>,
  opts: { dtype?: SafetensorsDtype; metadata?: Record<string, string> } = {},
): void {
  fs.writeFileSync(file, serializeSafetensors(tensors, opts));
}
