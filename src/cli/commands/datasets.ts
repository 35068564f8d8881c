// `alignflow datasets import|ls|show|export`
import { Option, type Command } from 'commander';
import { formatIssue, usageError } from '../../errors.js';
import { DEFAULT_MAX_LINE_BYTES } from '../../data/jsonl.js';
import { datasetKinds, type DatasetKind } from '../../store/schema.js';
import { exportDataset, importDataset, listDatasets, readDatasetRecords, resolveDatasetArtifact } from '../../data/datasets.js';
import { cliDb, printJson, printTable } from '../shared.js';
import { cliStore, formatBytes, formatTime } from './artifacts.js';

const SHOWN_ISSUES = 20;

export function register(program: Command): void {
  const cmd = program.command('datasets').description('import, list, inspect and export JSONL datasets (TRL formats)');

  cmd
    .command('import')
    .description('validate a JSONL file and store it as a dataset artifact (nothing is imported if any line is invalid, unless --skip-invalid)')
    .argument('<path>', 'JSONL file: sft (prompt/completion, messages, text), preference (prompt/chosen/rejected), unpaired (prompt/completion/label) or prompt-only')
    .option('--name <name>', 'dataset name (default: the file name without extension)')
    .addOption(new Option('--kind <kind>', 'force the kind instead of detecting it').choices([...datasetKinds]))
    .option('--skip-invalid', 'import the valid lines; count and list the skipped ones')
    .option('--max-line-bytes <n>', `longest line accepted, in bytes (default ${DEFAULT_MAX_LINE_BYTES}; memory use while importing is about 8× this)`)
    .option('--json', 'print JSON')
    .action(async (file: string, opts: { name?: string; kind?: DatasetKind; skipInvalid?: boolean; maxLineBytes?: string; json?: boolean }) => {
      const maxLineBytes = opts.maxLineBytes === undefined ? undefined : Number(opts.maxLineBytes);
      if (maxLineBytes !== undefined && !(Number.isSafeInteger(maxLineBytes) && maxLineBytes > 0)) throw usageError(`--max-line-bytes must be a positive integer, got "${opts.maxLineBytes}"`);
      const r = await importDataset(cliDb(), cliStore(), file, { name: opts.name, kind: opts.kind, skipInvalid: opts.skipInvalid, ...(maxLineBytes ? { maxLineBytes } : {}) });
      if (opts.json) {
        return printJson({
          created: r.created,
          dataset: r.dataset,
          artifactId: r.artifact.id,
          kind: r.kind,
          format: r.format,
          records: r.records,
          skipped: r.skipped,
          skippedIssues: r.skippedIssues,
          warnings: r.warnings,
          warningIssues: r.warningIssues,
        });
      }
      const err = process.stderr;
      if (r.skipped > 0) {
        err.write(`skipped ${r.skipped} invalid line${r.skipped === 1 ? '' : 's'}:\n`);
        for (const i of r.skippedIssues.slice(0, SHOWN_ISSUES)) err.write(`  ${formatIssue(i)}\n`);
        if (r.skipped > SHOWN_ISSUES) err.write(`  … (${r.skippedIssues.length} issues listed in --json, all ${r.skipped} lines counted)\n`);
      }
      if (r.warnings > 0) {
        err.write(`warning: ${r.warnings} record${r.warnings === 1 ? '' : 's'} with a warning (kept):\n`);
        for (const i of r.warningIssues.slice(0, SHOWN_ISSUES)) err.write(`  ${formatIssue(i)}\n`);
        if (r.warnings > SHOWN_ISSUES) err.write(`  … and ${r.warnings - SHOWN_ISSUES} more\n`);
      }
      const what = `${r.records} record${r.records === 1 ? '' : 's'}, ${r.kind} (${r.format})`;
      if (r.created) process.stdout.write(`imported "${r.dataset.name}" as ${r.dataset.id} (artifact ${r.artifact.id}): ${what}\n`);
      else process.stdout.write(`already imported as "${r.dataset.name}" (${r.dataset.id}, artifact ${r.artifact.id}): ${what}; nothing changed\n`);
    });

  cmd
    .command('ls')
    .description('list datasets, newest first')
    .addOption(new Option('--kind <kind>', 'only this kind').choices([...datasetKinds]))
    .option('--json', 'print JSON')
    .action((opts: { kind?: DatasetKind; json?: boolean }) => {
      const rows = listDatasets(cliDb(), { kind: opts.kind });
      if (opts.json) return printJson(rows);
      printTable(rows.map((d) => ({ id: d.id, name: d.name, kind: d.kind, format: d.format, records: d.records, artifact: d.artifactId, created: formatTime(d.createdAt) })));
    });

  cmd
    .command('show')
    .description('show a dataset and its first records')
    .argument('<id>', 'dataset id (d-…), name, or the artifact id (a-…) of any dataset, a stage\'s output too')
    .option('--head <n>', 'how many records to show', (v) => Math.max(0, Number.parseInt(v, 10) || 0), 3)
    .option('--json', 'print JSON')
    .action(async (ref: string, opts: { head: number; json?: boolean }) => {
      const store = cliStore();
      const ds = await resolveDatasetArtifact(cliDb(), store, ref);
      const manifest = await store.get(ds.artifactId);
      const head: unknown[] = [];
      if (opts.head > 0) {
        for await (const r of readDatasetRecords(store, ds.artifactId)) {
          head.push(r);
          if (head.length >= opts.head) break;
        }
      }
      if (opts.json) return printJson({ ...ds, metadata: manifest.metadata, sizeBytes: manifest.sizeBytes, head });
      const out = process.stdout;
      const md = manifest.metadata as { skipped?: number; warnings?: number };
      out.write(`${ds.id}  "${ds.name}"\n`);
      out.write(`kind      ${ds.kind} (${ds.format})\nrecords   ${ds.records}${md.skipped ? ` (${md.skipped} invalid lines skipped at import)` : ''}${md.warnings ? `, ${md.warnings} with warnings` : ''}\n`);
      out.write(`artifact  ${ds.artifactId}, ${formatBytes(manifest.sizeBytes)}\nsource    ${ds.sourcePath ?? ''}\ncreated   ${formatTime(ds.createdAt)}\n`);
      if (head.length) out.write(`first ${head.length} record${head.length === 1 ? '' : 's'}\n` + head.map((r) => `  ${JSON.stringify(r)}\n`).join(''));
    });

  cmd
    .command('export')
    .description('write a dataset back out as JSONL in its own format (importing the file again gives the same dataset)')
    .argument('<id>', 'dataset id (d-…), name, or the artifact id (a-…) of any dataset, a stage\'s output too (the label stage\'s preference dataset)')
    .requiredOption('--out <path>', 'output file')
    .option('--force', 'overwrite the output file if it exists')
    .option('--json', 'print JSON')
    .action(async (ref: string, opts: { out: string; force?: boolean; json?: boolean }) => {
      const r = await exportDataset(cliDb(), cliStore(), ref, opts.out, { overwrite: !!opts.force });
      if (opts.json) return printJson({ dataset: r.dataset.id, path: r.path, records: r.records, bytes: r.bytes });
      process.stdout.write(`wrote ${r.records} records (${formatBytes(r.bytes)}) of "${r.dataset.name}" to ${r.path}\n`);
    });
}
