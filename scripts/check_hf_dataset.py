#!/usr/bin/env python3
"""Loads a folder written by `alignflow labels export RUN --out DIR` (or unpacked from the UI's
.tar download) with Hugging Face `datasets`
and checks it against its own card:

    /work/venv/bin/python scripts/check_hf_dataset.py DIR

Prints each config's split sizes and features; exits 1 if a config does not load, or if the
preference split's size differs from the card's `num_examples` or from the JSONL line count.
Not needed by alignflow or `npm test` (test/labeling/dataset-export.test.ts checks the card in TS).
"""
import os
import sys

import yaml
from datasets import load_dataset


def main():
    d = sys.argv[1]
    text = open(os.path.join(d, 'README.md'), encoding='utf-8').read()
    meta = yaml.safe_load(text.split('---\n')[1])
    ok = True
    prefs = load_dataset(d, split='train')
    labels = load_dataset(d, 'labels', split='train')
    want = meta['dataset_info'][0]['splits'][0]['num_examples']
    lines = sum(1 for l in open(os.path.join(d, 'preferences.jsonl'), encoding='utf-8') if l.strip())
    print(f'default: {prefs.num_rows} rows, features {list(prefs.features)}; card says {want}, file has {lines} lines')
    print(f'labels:  {labels.num_rows} rows, features {list(labels.features)}')
    if prefs.num_rows:
        r = prefs[0]
        print(f"first record: prompt {r['prompt'][:60]!r} chosen {r['chosen'][:40]!r} rejected {r['rejected'][:40]!r}")
    ok = prefs.num_rows == want == lines and list(prefs.features) == ['prompt', 'chosen', 'rejected']
    # A ranking batch's folder also has the raw rankings as config `rankings`.
    if any(c.get('config_name') == 'rankings' for c in meta.get('configs', [])):
        rk = load_dataset(d, 'rankings', split='train')
        rlines = sum(1 for l in open(os.path.join(d, 'rankings.jsonl'), encoding='utf-8') if l.strip())
        print(f'rankings: {rk.num_rows} rows, features {list(rk.features)}; file has {rlines} lines')
        ok = ok and rk.num_rows == rlines and {'responses', 'ranking', 'ranks'} <= set(rk.features)
    print('OK' if ok else 'FAILED')
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
