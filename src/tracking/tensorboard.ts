// Writes a stage's metrics as a TensorBoard event file, so `tensorboard --logdir <home>/runs`
// shows every run's training curves beside alignflow's own report. One file per stage attempt
// (TensorBoard merges the files of a directory); records are appended synchronously, so a crash
// loses at most the record being written.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { encodeEvent, FILE_VERSION, frameRecord } from './tfevents.js';

/** `<home>/runs/<run>/<stage>`: the directory TensorBoard shows as run "<run>/<stage>". */
export function tensorboardDir(home: string, runId: string, stageName: string): string {
  return path.join(home, 'runs', runId, stageName);
}

let fileCounter = 0;

export class TensorboardWriter {
  private fd: number | undefined;
  readonly file: string;

  constructor(dir: string, now = Date.now()) {
    // TensorFlow's naming: events.out.tfevents.<seconds>.<host>.<pid>.<n>; the counter keeps two
    // writers of one process apart.
    this.file = path.join(dir, `events.out.tfevents.${Math.floor(now / 1000)}.${os.hostname()}.${process.pid}.${fileCounter++}`);
  }

  private open(): number {
    if (this.fd === undefined) {
      fs.mkdirSync(path.dirname(this.file), { recursive: true });
      this.fd = fs.openSync(this.file, 'a');
      fs.writeSync(this.fd, frameRecord(encodeEvent({ wallTime: Date.now() / 1000, step: 0, fileVersion: FILE_VERSION })));
    }
    return this.fd;
  }

  /** One event holding every finite value of this step (non-finite ones are skipped, as the metrics table does). */
  scalars(step: number, values: Record<string, number>, wallTimeMs = Date.now()): void {
    const finite = Object.fromEntries(Object.entries(values).filter(([, v]) => Number.isFinite(v)));
    if (Object.keys(finite).length === 0) return;
    fs.writeSync(this.open(), frameRecord(encodeEvent({ wallTime: wallTimeMs / 1000, step, values: finite })));
  }

  close(): void {
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
  }
}
