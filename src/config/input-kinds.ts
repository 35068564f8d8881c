// Which datasets the built-in stages take on which input, so that a spec wiring a dataset of the
// wrong kind into a stage is refused when it is validated, before any earlier stage runs (the
// stage itself would only find out when it reads the dataset). The handlers check again at run
// time; this table only moves the error earlier. Plugin stage kinds are not listed: not checked.
import fs from 'node:fs';
import { detectFormat, formatKind, type DatasetFormat } from '../data/formats.js';
import type { DatasetKind } from '../store/schema.js';

/** A requirement on a dataset input: its kinds, or "its records have a prompt". */
type Need = { kinds: readonly DatasetKind[] } | { prompt: true };

const PROMPTED: readonly DatasetFormat[] = [
  'prompt-only',
  'conversational-prompt-only',
  'prompt-completion',
  'conversational-prompt-completion',
  'explicit-prompt',
  'conversational-explicit-prompt',
  'unpaired',
  'conversational-unpaired',
];

const NEEDS: Readonly<Record<string, Readonly<Record<string, Need>>>> = {
  sft: { train: { kinds: ['sft'] }, eval: { kinds: ['sft'] } },
  reward: { train: { kinds: ['preference'] }, eval: { kinds: ['preference'] } },
  dpo: { train: { kinds: ['preference', 'unpaired'] }, eval: { kinds: ['preference', 'unpaired'] } },
  collect: { prompts: { prompt: true } },
  online_dpo: { train: { prompt: true }, eval: { prompt: true } },
  rl: { train: { prompt: true }, eval: { prompt: true } },
  eval: { prompts: { prompt: true }, pairs: { kinds: ['preference'] }, heldout: { kinds: ['sft'] } },
};

/** Why a dataset of `format` cannot feed input `role` of a `stageKind` stage, or undefined. */
export function datasetInputProblem(stageKind: string, role: string, format: DatasetFormat): string | undefined {
  const need = NEEDS[stageKind]?.[role];
  if (!need) return undefined;
  const kind = formatKind[format];
  if ('kinds' in need) {
    if (need.kinds.includes(kind)) return undefined;
    return `the ${stageKind} stage's "${role}" input needs a ${need.kinds.join(' or ')} dataset, but this one is ${kind} (${format})`;
  }
  if (PROMPTED.includes(format)) return undefined;
  return `the ${stageKind} stage's "${role}" input needs records with a prompt (prompt-only, prompt-completion, preference with an explicit prompt), but this dataset is ${kind} (${format})`;
}

/**
 * The format of a JSONL file as its first JSON object line shows it (the importer's detection),
 * reading no more than the first `maxBytes`. Undefined when it cannot tell: the import reports
 * the file's problems properly.
 */
export function peekFormat(file: string, kind?: DatasetKind, maxBytes = 8 << 20): DatasetFormat | undefined {
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, 'r');
    const buf = Buffer.alloc(1 << 16);
    let text = '';
    let read = 0;
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      read += n;
      text += buf.subarray(0, n).toString('utf8');
      const lines = text.split('\n');
      const complete = n === 0 ? lines : lines.slice(0, -1);
      for (const l of complete) {
        const t = l.replace(/^\uFEFF/, '').trim();
        if (!t) continue;
        const v: unknown = JSON.parse(t);
        if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
        return detectFormat(v as Record<string, unknown>, kind);
      }
      if (n === 0 || read >= maxBytes) return undefined;
      text = lines.at(-1) ?? '';
    }
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}
