// TensorBoard event files, written without TensorFlow: TFRecord framing around `Event` protocol
// buffers, encoded by hand (the three messages involved are tiny).
//
// Formats, from TensorFlow's sources:
//  - TFRecord (tensorflow/core/lib/io/record_writer.cc): uint64 length (little-endian),
//    uint32 masked_crc32c(length bytes), the data, uint32 masked_crc32c(data).
//    mask(crc) = ((crc >>> 15) | (crc << 17)) + 0xa282ead8 (tensorflow/core/lib/hash/crc32c.h).
//  - Event (tensorflow/core/util/event.proto): 1 wall_time double, 2 step int64,
//    3 file_version string, 5 summary Summary.
//  - Summary (tensorflow/core/framework/summary.proto): 1 repeated Value;
//    Value: 1 tag string, 2 simple_value float.
// The first record of a file is an Event with file_version "brain.Event:2", as TensorFlow writes it.

export interface ScalarEvent {
  wallTime: number;
  step: number;
  /** tag → value; stored as 32-bit floats, as TensorBoard's simple_value is. */
  values: Record<string, number>;
}

export const FILE_VERSION = 'brain.Event:2';

const CRC32C_TABLE = (() => {
  // Castagnoli polynomial, reflected.
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32c(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC32C_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export function maskedCrc32c(bytes: Uint8Array): number {
  const c = crc32c(bytes);
  return (((c >>> 15) | (c << 17)) + 0xa282ead8) >>> 0;
}

/** Protocol-buffer wire encoding, just the pieces an Event needs. */
class ProtoWriter {
  private parts: number[] = [];
  varint(v: number | bigint): this {
    let x = BigInt.asUintN(64, BigInt(v));
    do {
      let b = Number(x & 0x7fn);
      x >>= 7n;
      if (x !== 0n) b |= 0x80;
      this.parts.push(b);
    } while (x !== 0n);
    return this;
  }
  key(field: number, wire: number): this {
    return this.varint((field << 3) | wire);
  }
  double(field: number, v: number): this {
    const b = Buffer.alloc(8);
    b.writeDoubleLE(v);
    this.key(field, 1).parts.push(...b);
    return this;
  }
  float(field: number, v: number): this {
    const b = Buffer.alloc(4);
    b.writeFloatLE(v);
    this.key(field, 5).parts.push(...b);
    return this;
  }
  bytes(field: number, v: Uint8Array): this {
    this.key(field, 2).varint(v.length).parts.push(...v);
    return this;
  }
  string(field: number, s: string): this {
    return this.bytes(field, Buffer.from(s, 'utf8'));
  }
  finish(): Buffer {
    return Buffer.from(this.parts);
  }
}

export function encodeEvent(e: { wallTime: number; step: number; fileVersion?: string; values?: Record<string, number> }): Buffer {
  const w = new ProtoWriter().double(1, e.wallTime).key(2, 0).varint(BigInt(Math.trunc(e.step)));
  if (e.fileVersion !== undefined) w.string(3, e.fileVersion);
  if (e.values) {
    const summary = new ProtoWriter();
    for (const [tag, v] of Object.entries(e.values)) summary.bytes(1, new ProtoWriter().string(1, tag).float(2, v).finish());
    w.bytes(5, summary.finish());
  }
  return w.finish();
}

/** One TFRecord: length, its masked CRC, the data, the data's masked CRC. */
export function frameRecord(data: Uint8Array): Buffer {
  const head = Buffer.alloc(12);
  head.writeBigUInt64LE(BigInt(data.length), 0);
  head.writeUInt32LE(maskedCrc32c(head.subarray(0, 8)), 8);
  const tail = Buffer.alloc(4);
  tail.writeUInt32LE(maskedCrc32c(data), 0);
  return Buffer.concat([head, data, tail]);
}

/** TFRecord payloads of a file, each CRC checked; a torn last record (a crash mid-write) is an error here. */
export function readRecords(file: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let o = 0;
  while (o < file.length) {
    if (o + 12 > file.length) throw new Error(`tfrecord: truncated header at byte ${o}`);
    const len = Number(file.readBigUInt64LE(o));
    if (file.readUInt32LE(o + 8) !== maskedCrc32c(file.subarray(o, o + 8))) throw new Error(`tfrecord: length CRC mismatch at byte ${o}`);
    const data = file.subarray(o + 12, o + 12 + len);
    if (data.length !== len || o + 16 + len > file.length) throw new Error(`tfrecord: truncated record at byte ${o}`);
    if (file.readUInt32LE(o + 12 + len) !== maskedCrc32c(data)) throw new Error(`tfrecord: data CRC mismatch at byte ${o}`);
    out.push(data);
    o += 16 + len;
  }
  return out;
}

class ProtoReader {
  o = 0;
  constructor(private b: Buffer) {}
  done(): boolean {
    return this.o >= this.b.length;
  }
  varint(): bigint {
    let x = 0n;
    let shift = 0n;
    for (;;) {
      if (this.o >= this.b.length) throw new Error('proto: truncated varint');
      const byte = this.b[this.o++]!;
      x |= BigInt(byte & 0x7f) << shift;
      if (!(byte & 0x80)) return x;
      shift += 7n;
    }
  }
  /** Reads one field: [field number, wire type, value]; length-delimited values are sub-buffers. */
  field(): [number, number, bigint | number | Buffer] {
    const k = Number(this.varint());
    const f = k >>> 3, wire = k & 7;
    if (wire === 0) return [f, wire, this.varint()];
    if (wire === 1) { const v = this.b.readDoubleLE(this.o); this.o += 8; return [f, wire, v]; }
    if (wire === 5) { const v = this.b.readFloatLE(this.o); this.o += 4; return [f, wire, v]; }
    if (wire === 2) { const n = Number(this.varint()); const v = this.b.subarray(this.o, this.o + n); this.o += n; return [f, wire, v]; }
    throw new Error(`proto: unsupported wire type ${wire}`);
  }
}

export interface DecodedEvent {
  wallTime: number;
  step: number;
  fileVersion?: string;
  values: Record<string, number>;
}

export function decodeEvent(data: Buffer): DecodedEvent {
  const r = new ProtoReader(data);
  const e: DecodedEvent = { wallTime: 0, step: 0, values: {} };
  while (!r.done()) {
    const [f, , v] = r.field();
    if (f === 1) e.wallTime = v as number;
    else if (f === 2) e.step = Number(BigInt.asIntN(64, v as bigint));
    else if (f === 3) e.fileVersion = (v as Buffer).toString('utf8');
    else if (f === 5) {
      const s = new ProtoReader(v as Buffer);
      while (!s.done()) {
        const [sf, , sv] = s.field();
        if (sf !== 1) continue;
        const val = new ProtoReader(sv as Buffer);
        let tag = '';
        let x = NaN;
        while (!val.done()) {
          const [vf, , vv] = val.field();
          if (vf === 1) tag = (vv as Buffer).toString('utf8');
          else if (vf === 2) x = vv as number;
        }
        e.values[tag] = x;
      }
    }
  }
  return e;
}

/** Every event of a file, records checked. */
export function readEventFile(file: Buffer): DecodedEvent[] {
  return readRecords(file).map(decodeEvent);
}
