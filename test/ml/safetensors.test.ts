import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import fs from 'node:fs';
import { tmpDir } from '../helpers/tmp.js';
import {
  floatToBf16,
  floatToHalf,
  halfToFloat,
  parseSafetensors,
  readSafetensors,
  serializeSafetensors,
  writeSafetensors,
} from '../../src/ml/safetensors.js';
import { AlignflowError } from '../../src/errors.js';
import { GPT2_FIXTURES } from '../helpers/fixtures.js';

function sample(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    a[i] = ((s / 2 ** 32) - 0.5) * 8;
  }
  a[0] = 0;
  if (n > 3) {
    a[1] = -0;
    a[2] = 1e-6; // f16 subnormal range
    a[3] = 65504; // f16 max
  }
  return a;
}

test('fp32 round trip is bit-exact, with metadata and several tensors', () => {
  const dir = tmpDir();
  const file = path.join(dir, 'a.safetensors');
  const t = { 'b.weight': { shape: [3, 5], data: sample(15, 1) }, 'a.bias': { shape: [5], data: sample(5, 2) }, scalar: { shape: [], data: new Float32Array([3.5]) } };
  writeSafetensors(file, t, { metadata: { format: 'pt' } });
  const back = readSafetensors(file);
  assert.deepEqual(back.metadata, { format: 'pt' });
  for (const [k, v] of Object.entries(t)) {
    const got = back.tensors.get(k)!;
    assert.equal(got.dtype, 'F32');
    assert.deepEqual(got.shape, v.shape);
    assert.deepEqual(Array.from(got.data), Array.from(v.data));
  }
  // header then data aligned to 8 bytes, names sorted as the Python library writes them
  const buf = fs.readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  assert.equal((8 + n) % 8, 0);
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  assert.deepEqual(Object.keys(header), ['__metadata__', 'a.bias', 'b.weight', 'scalar']);
  assert.deepEqual(header['a.bias'].data_offsets, [0, 20]);
});

test('fp16 round trip: values are the nearest half, re-encoding is stable', () => {
  const data = sample(1000, 3);
  const buf = serializeSafetensors({ x: { shape: [10, 100], data } }, { dtype: 'F16' });
  const back = parseSafetensors(buf).tensors.get('x')!;
  assert.equal(back.dtype, 'F16');
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    const got = back.data[i]!;
    // relative error of half precision: 2^-11, absolute near subnormals 2^-25
    assert.ok(Math.abs(got - v) <= Math.max(Math.abs(v) * 2 ** -11, 2 ** -25), `${v} → ${got}`);
  }
  const again = parseSafetensors(serializeSafetensors({ x: { shape: [10, 100], data: back.data } }, { dtype: 'F16' })).tensors.get('x')!;
  assert.deepEqual(Array.from(again.data), Array.from(back.data));
  assert.equal(halfToFloat(floatToHalf(65504)), 65504);
  assert.equal(halfToFloat(floatToHalf(1e6)), Infinity);
  assert.equal(halfToFloat(0x3c00), 1);
  assert.equal(floatToHalf(1 + 2 ** -11), 0x3c00); // tie rounds to even
});

test('bf16 round trip: top 16 bits, round to nearest even', () => {
  const data = sample(1000, 4);
  const buf = serializeSafetensors({ x: { shape: [1000], data } }, { dtype: 'BF16' });
  const back = parseSafetensors(buf).tensors.get('x')!;
  assert.equal(back.dtype, 'BF16');
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    assert.ok(Math.abs(back.data[i]! - v) <= Math.abs(v) * 2 ** -8, `${v} → ${back.data[i]}`);
  }
  assert.equal(floatToBf16(1), 0x3f80);
  assert.equal(floatToBf16(1 + 2 ** -8), 0x3f80); // tie → even
  assert.equal(floatToBf16(1 + 3 * 2 ** -8), 0x3f82);
  assert.ok(Number.isNaN(parseSafetensors(serializeSafetensors({ n: { shape: [1], data: new Float32Array([NaN]) } }, { dtype: 'BF16' })).tensors.get('n')!.data[0]));
});

test('reads the bf16 fixture and agrees with the fp32 fixture to bf16 precision', () => {
  const FX = GPT2_FIXTURES;
  const a = readSafetensors(`${FX}/model-fp32/model.safetensors`);
  const b = readSafetensors(`${FX}/model-bf16/model.safetensors`);
  assert.equal(a.tensors.size, b.tensors.size);
  for (const [k, t] of a.tensors) {
    const u = b.tensors.get(k)!;
    assert.equal(u.dtype, 'BF16');
    assert.deepEqual(u.shape, t.shape);
    for (let i = 0; i < t.data.length; i++) assert.ok(Math.abs(u.data[i]! - t.data[i]!) <= Math.abs(t.data[i]!) * 2 ** -8 + 1e-30);
  }
});

test('corrupt files give input errors naming the file and tensor', () => {
  const good = serializeSafetensors({ w: { shape: [2, 2], data: new Float32Array(4) } });
  assert.throws(() => parseSafetensors(good.subarray(0, 4), 'x.safetensors'), (e: unknown) => e instanceof AlignflowError && e.kind === 'input' && /x\.safetensors/.test(e.message));
  assert.throws(() => parseSafetensors(good.subarray(0, good.length - 4), 'x.safetensors'), /tensor "w": data_offsets/);
  const hdr = Buffer.from(JSON.stringify({ w: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }));
  const bad = Buffer.concat([Buffer.alloc(8), hdr, Buffer.alloc(8)]);
  bad.writeBigUInt64LE(BigInt(hdr.length), 0);
  assert.throws(() => parseSafetensors(bad, 'y.safetensors'), /y\.safetensors: tensor "w": unsupported dtype "I64"/);
  const big = Buffer.alloc(16);
  big.writeBigUInt64LE(1000n, 0);
  assert.throws(() => parseSafetensors(big, 'z.safetensors'), /header length 1000 exceeds/);
});
