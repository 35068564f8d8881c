#!/usr/bin/env python3
"""Reads alignflow's TensorBoard event files with TensorBoard's own EventAccumulator and checks
them against the run's metrics table in SQLite.

    /work/venv/bin/python scripts/check_tensorboard.py HOME [RUN_ID]

HOME is ALIGNFLOW_HOME (holds alignflow.db and runs/); RUN_ID defaults to the newest run with event
files. For every stage directory runs/<run>/<stage>/ it loads the events the way `tensorboard
--logdir` does, prints each scalar tag with its step count and first/last values, and exits 1 if
any (stage, tag, step, value) differs from SQLite (values compared as float32, TensorBoard's
simple_value type). It also re-derives the two protobuf byte strings that
test/tracking/tensorboard.test.ts hard-codes. Not needed by alignflow or `npm test`.
"""
import os
import sqlite3
import struct
import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.compat.proto.event_pb2 import Event
from tensorboard.compat.proto.summary_pb2 import Summary


def f32(x):
    return struct.unpack('<f', struct.pack('<f', x))[0]


def check_reference_bytes():
    a = Event(wall_time=1.5, step=3, summary=Summary(value=[Summary.Value(tag='loss', simple_value=0.5)])).SerializeToString().hex()
    b = Event(wall_time=1700000000.25, step=-1, file_version='brain.Event:2').SerializeToString().hex()
    ok = a == '09000000000000f83f10032a0d0a0b0a046c6f7373150000003f' and b == '0900001040fc54d94110ffffffffffffffffff011a0d627261696e2e4576656e743a32'
    print(f"reference protobuf bytes used by the TypeScript test: {'match' if ok else 'DIFFER'}")
    return ok


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    home = sys.argv[1]
    runs_dir = os.path.join(home, 'runs')
    if len(sys.argv) > 2:
        run = sys.argv[2]
    else:
        cands = [d for d in os.listdir(runs_dir) if os.path.isdir(os.path.join(runs_dir, d))]
        run = max(cands, key=lambda d: os.path.getmtime(os.path.join(runs_dir, d)))
    db = sqlite3.connect(os.path.join(home, 'alignflow.db'))
    ok = check_reference_bytes()
    run_dir = os.path.join(runs_dir, run)
    print(f'run {run}: {run_dir}')
    for stage in sorted(os.listdir(run_dir)):
        acc = EventAccumulator(os.path.join(run_dir, stage), size_guidance={'scalars': 0})
        acc.Reload()
        tags = acc.Tags()['scalars']
        rows = db.execute('SELECT m.name, m.step, m.value FROM metrics m JOIN stages s ON s.id = m.stage_id '
                          'WHERE s.run_id = ? AND s.name = ? ORDER BY m.id', (run, stage)).fetchall()
        want = {}
        for name, step, value in rows:
            want.setdefault(name, []).append((step, f32(value)))
        got = {t: [(e.step, e.value) for e in acc.Scalars(t)] for t in tags}
        # TensorBoard keeps the last event of a repeated step (a resumed stage); so does this comparison.
        want = {t: sorted(dict(v).items()) for t, v in want.items()}
        got = {t: sorted(dict(v).items()) for t, v in got.items()}
        same = want == got
        ok = ok and same
        n = sum(len(v) for v in got.values())
        print(f"  stage {stage}: {len(tags)} scalar tags, {n} points, {'equal to' if same else 'DIFFERENT FROM'} SQLite metrics")
        for t in sorted(tags):
            pts = got[t]
            print(f'    {t:32s} {len(pts):5d} steps  step {pts[0][0]}: {pts[0][1]:.5g}  ...  step {pts[-1][0]}: {pts[-1][1]:.5g}')
        if not same:
            for t in sorted(set(want) | set(got)):
                if want.get(t) != got.get(t):
                    print(f'    mismatch in {t}: sqlite {want.get(t, [])[:3]}..., tensorboard {got.get(t, [])[:3]}...')
    print('OK' if ok else 'FAILED')
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
