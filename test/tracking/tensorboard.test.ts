// TensorBoard event files without Python: the encoding against bytes protobuf itself produces
// (the hex below came from tensorboard's own event_pb2, see scripts/check_tensorboard.py), the
// CRC against the standard check value, and a real pipeline run whose every metric comes back
// from its stage's event file through our reader, each record's CRCs verified.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { eq } from 'drizzle-orm';
import { crc32c, encodeEvent, frameRecord, readEventFile, readRecords, FILE_VERSION } from '../../src/tracking/tfevents.js';
import { TensorboardWriter, tensorboardDir } from '../../src/tracking/tensorboard.js';
import { setup, submit, writeFile } from '../orchestrator/helpers.js';
import { driveRun } from '../../src/orchestrator/executors/inline.js';
import { runStages } from '../../src/orchestrator/runs.js';
import { metrics } from '../../src/store/schema.js';
import { tmpDir } from '../helpers/tmp.js';

test('CRC32C (Castagnoli) of "123456789" is the standard check value', () => {
  assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283);
  assert.equal(crc32c(Buffer.alloc(32)), 0x8a9136aa); // RFC 3720 B.4: 32 bytes of zeros
});

test('Event encoding equals protobuf’s own serialization', () => {
  // Event(wall_time=1.5, step=3, summary=Summary(value=[Value(tag='loss', simple_value=0.5)])).SerializeToString()
  assert.equal(encodeEvent({ wallTime: 1.5, step: 3, values: { loss: 0.5 } }).toString('hex'), '09000000000000f83f10032a0d0a0b0a046c6f7373150000003f');
  // Event(wall_time=1700000000.25, step=-1, file_version='brain.Event:2')
  assert.equal(encodeEvent({ wallTime: 1700000000.25, step: -1, fileVersion: FILE_VERSION }).toString('hex'), '0900001040fc54d94110ffffffffffffffffff011a0d627261696e2e4576656e743a32');
});

test('TFRecord framing round-trips and a flipped byte is caught by the CRC', () => {
  const a = frameRecord(Buffer.from('hello'));
  const b = frameRecord(Buffer.alloc(300, 7));
  const file = Buffer.concat([a, b]);
  assert.deepEqual(readRecords(file).map((r) => r.length), [5, 300]);
  const bad = Buffer.from(file);
  bad[14] = bad[14]! ^ 1; // inside the first payload
  assert.throws(() => readRecords(bad), /data CRC mismatch at byte 0/);
  const badLen = Buffer.from(file);
  badLen[a.length] = badLen[a.length]! ^ 1; // the second record's length
  assert.throws(() => readRecords(badLen), /length CRC mismatch/);
  assert.throws(() => readRecords(file.subarray(0, file.length - 2)), /truncated/);
});

test('the writer skips non-finite values and keeps float32 precision', () => {
  const dir = tmpDir();
  const w = new TensorboardWriter(dir, 1_700_000_000_000);
  w.scalars(1, { loss: 0.1, bad: NaN }, 1_700_000_000_500);
  w.scalars(2, { inf: Infinity }); // nothing finite: no event
  w.close();
  assert.match(path.basename(w.file), /^events\.out\.tfevents\.1700000000\./);
  const ev = readEventFile(fs.readFileSync(w.file));
  assert.equal(ev.length, 2);
  assert.equal(ev[0]!.fileVersion, FILE_VERSION);
  assert.equal(ev[1]!.step, 1);
  assert.equal(ev[1]!.wallTime, 1_700_000_000.5);
  assert.deepEqual(Object.keys(ev[1]!.values), ['loss']);
  assert.equal(ev[1]!.values.loss, Math.fround(0.1));
});

test('a pipeline run writes every stage metric to <home>/runs/<run>/<stage>/events.out.tfevents.*', { timeout: 120_000 }, async () => {
  const env = await setup();
  writeFile(env.dir, 'data.jsonl', '{"text":"hi"}\n');
  const id = await submit(env, `name: tb\nseed: 1\ndatasets:\n  data: data.jsonl\nstages:\n  a:\n    kind: count\n    inputs: { data: datasets.data }\n    config: { steps: 4, step_ms: 1 }\n  b:\n    kind: count_light\n    inputs: { prev: a }\n    config: { steps: 3, step_ms: 1 }\n`);
  assert.equal(await driveRun(env, id), 'succeeded');
  for (const st of runStages(env.db, id)) {
    const dir = tensorboardDir(env.home, id, st.name);
    const files = fs.readdirSync(dir).filter((f) => f.startsWith('events.out.tfevents.'));
    assert.equal(files.length, 1, `${st.name}: one event file`);
    const events = readEventFile(fs.readFileSync(path.join(dir, files[0]!)));
    assert.equal(events[0]!.fileVersion, FILE_VERSION);
    const got = events.slice(1).flatMap((e) => Object.entries(e.values).map(([name, v]) => ({ step: e.step, name, v })));
    const want = env.db.select().from(metrics).where(eq(metrics.stageId, st.id)).orderBy(metrics.step).all();
    assert.ok(want.length >= 3, `${st.name} logged metrics`);
    assert.deepEqual(got.map((g) => [g.step, g.name, g.v]), want.map((m) => [m.step, m.name, Math.fround(m.value)]));
    for (const e of events.slice(1)) assert.ok(Math.abs(e.wallTime - Date.now() / 1000) < 600, 'wall time in seconds');
  }
});
