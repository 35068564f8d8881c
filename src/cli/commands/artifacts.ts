// `alignflow artifacts ls|show|lineage|verify|gc|pin|unpin`
import { Option, type Command } from 'commander';
import { AlignflowError, usageError } from '../../errors.js';
import { alignflowHome } from '../../config/paths.js';
import { artifactKinds, type ArtifactKind } from '../../store/schema.js';
import { createLocalStore, type LocalArtifactStore } from '../../store/artifacts.js';
import { DEFAULT_GC_GRACE_MS, gc, lineage, listArtifacts, setPinned, showArtifact, verifyArtifacts, type LineageNode } from '../../store/registry.js';
import { cliDb, printJson, printTable } from '../shared.js';

let cachedStore: LocalArtifactStore | undefined;

/** The artifact store of $ALIGNFLOW_HOME (the lead may move this next to cliDb in shared.ts). */
export function cliStore(): LocalArtifactStore {
  cachedStore ??= createLocalStore(cliDb(), alignflowHome());
  return cachedStore;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

export const formatTime = (ms: number) => new Date(ms).toISOString().replace('T', ' ').slice(0, 19);

export function register(program: Command): void {
  const cmd = program.command('artifacts').description('list, inspect, verify and garbage-collect stored artifacts');

  cmd
    .command('ls')
    .description('list artifacts, newest first')
    .addOption(new Option('--kind <kind>', 'only this kind').choices([...artifactKinds]))
    .option('--json', 'print JSON')
    .action((opts: { kind?: ArtifactKind; json?: boolean }) => {
      const rows = listArtifacts(cliDb(), { kind: opts.kind });
      if (opts.json) return printJson(rows);
      printTable(
        rows.map((r) => ({ id: r.id, kind: r.kind, name: r.name, size: formatBytes(r.sizeBytes), files: r.files, pinned: r.pinned ? 'yes' : '', created: formatTime(r.createdAt) })),
      );
    });

  cmd
    .command('show')
    .description('show an artifact: files, metadata, inputs, producers')
    .argument('<id>', 'artifact id (or a unique prefix, at least a- and 4 hex digits)')
    .option('--json', 'print JSON')
    .action((id: string, opts: { json?: boolean }) => {
      const d = showArtifact(cliStore(), id);
      if (opts.json) return printJson(d);
      const out = process.stdout;
      out.write(`${d.id}  ${d.kind}  "${d.name}"${d.pinned ? '  (pinned)' : ''}\n`);
      out.write(`created   ${formatTime(d.createdAt)}\nsize      ${formatBytes(d.sizeBytes)}\n`);
      if (d.dataset) out.write(`dataset   ${d.dataset.id} "${d.dataset.name}": ${d.dataset.kind}, ${d.dataset.format}, ${d.dataset.records} records\n`);
      out.write(`metadata  ${JSON.stringify(d.metadata)}\nfiles\n`);
      for (const f of d.files) out.write(`  ${f.path}  ${formatBytes(f.sizeBytes)}  sha256:${f.sha256}\n`);
      if (d.inputs.length) out.write('inputs\n' + d.inputs.map((i) => `  ${i.role}: ${i.artifactId} (${i.kind} "${i.name}")\n`).join(''));
      if (d.producers.length) out.write('produced by\n' + d.producers.map((p) => `  run ${p.runId}, stage ${p.stageName} (${p.stageId}) as ${p.role}\n`).join(''));
      if (d.usedBy.length) out.write('used by\n' + d.usedBy.map((u) => `  ${u.artifactId} (${u.kind} "${u.name}") as ${u.role}\n`).join(''));
    });

  cmd
    .command('lineage')
    .description('what an artifact was made from, and what was made from it')
    .argument('<id>', 'artifact id or unique prefix')
    .option('--depth <n>', 'how many steps to follow', (v) => positiveInt(v, '--depth'), 50)
    .option('--json', 'print JSON')
    .action((id: string, opts: { depth: number; json?: boolean }) => {
      const l = lineage(cliDb(), id, { maxDepth: opts.depth });
      if (opts.json) return printJson(l);
      const out = process.stdout;
      const prod = (p: LineageNode['producers']) => (p.length ? `  ← ${p.map((x) => `run ${x.runId} stage ${x.stageName}`).join(', ')}` : '');
      out.write(`${l.artifact.id}  ${l.artifact.kind} "${l.artifact.name}"${prod(l.artifact.producers)}\n`);
      out.write('ancestors (made from)\n');
      if (l.ancestors.length === 0) out.write('  (none)\n');
      for (const a of l.ancestors) out.write(`${'  '.repeat(a.depth)}${a.role}: ${a.id}  ${a.kind} "${a.name}"${a.depth > 1 ? ` (input of ${a.of})` : ''}${prod(a.producers)}\n`);
      out.write('descendants (made from it)\n');
      if (l.descendants.length === 0) out.write('  (none)\n');
      for (const d of l.descendants) out.write(`${'  '.repeat(d.depth)}${d.id}  ${d.kind} "${d.name}" (uses ${d.of} as ${d.role})${prod(d.producers)}\n`);
    });

  cmd
    .command('verify')
    .description('re-hash blobs from disk: every artifact, or one; exit 1 if any blob is corrupt or missing')
    .argument('[id]', 'artifact id or unique prefix (default: all)')
    .option('--json', 'print JSON')
    .action(async (id: string | undefined, opts: { json?: boolean }) => {
      const r = await verifyArtifacts(cliStore(), id);
      if (opts.json) printJson({ ok: r.problems.length === 0, ...r });
      else {
        process.stdout.write(`checked ${r.blobs} blob${r.blobs === 1 ? '' : 's'} (${formatBytes(r.bytes)}) of ${r.artifacts} artifact${r.artifacts === 1 ? '' : 's'}: ${r.problems.length === 0 ? 'all intact' : `${r.problems.length} problem${r.problems.length === 1 ? '' : 's'}`}\n`);
      }
      if (r.problems.length > 0) {
        throw new AlignflowError('integrity', `${r.problems.length} artifact file${r.problems.length === 1 ? ' is' : 's are'} corrupt or missing`, {
          issues: r.problems.map((p) => ({ file: `${p.artifactId}/${p.path}`, reason: `blob ${p.sha256} is ${p.problem}` })),
        });
      }
    });

  cmd
    .command('gc')
    .description('delete blobs no artifact references (and, with --prune-artifacts, artifacts nothing keeps)')
    .option('--dry-run', 'report what would be deleted, delete nothing')
    .option('--prune-artifacts', 'also delete unpinned artifacts that no run, stage output, checkpoint, dataset, report or other artifact references')
    .option('--grace <seconds>', 'leave anything younger than this alone (writes in flight)', (v) => nonNegInt(v, '--grace'), DEFAULT_GC_GRACE_MS / 1000)
    .option('--json', 'print JSON')
    .action((opts: { dryRun?: boolean; pruneArtifacts?: boolean; grace: number; json?: boolean }) => {
      const r = gc(cliStore(), { dryRun: !!opts.dryRun, pruneArtifacts: !!opts.pruneArtifacts, graceMs: opts.grace * 1000 });
      if (opts.json) return printJson(r);
      const verb = r.dryRun ? 'would remove' : 'removed';
      const out = process.stdout;
      if (opts.pruneArtifacts) {
        out.write(`${verb} ${r.artifactsRemoved.length} artifact${r.artifactsRemoved.length === 1 ? '' : 's'}\n`);
        for (const a of r.artifactsRemoved) out.write(`  ${a.id}  ${a.kind} "${a.name}"  ${formatBytes(a.sizeBytes)}\n`);
      }
      out.write(`${verb} ${r.blobsRemoved} unreferenced blob${r.blobsRemoved === 1 ? '' : 's'} (${formatBytes(r.blobBytesFreed)}); kept ${r.blobsKept}\n`);
      out.write(`${verb} ${r.tmpFilesRemoved} stale temp file${r.tmpFilesRemoved === 1 ? '' : 's'} (${formatBytes(r.tmpBytesFreed)})\n`);
    });

  for (const [name, pinned] of [['pin', true], ['unpin', false]] as const) {
    cmd
      .command(name)
      .description(pinned ? 'keep an artifact through gc --prune-artifacts' : 'let gc --prune-artifacts remove an artifact nothing references')
      .argument('<id>', 'artifact id or unique prefix')
      .option('--json', 'print JSON')
      .action((id: string, opts: { json?: boolean }) => {
        const full = setPinned(cliDb(), id, pinned);
        if (opts.json) return printJson({ id: full, pinned });
        process.stdout.write(`${pinned ? 'pinned' : 'unpinned'} ${full}\n`);
      });
  }
}

function positiveInt(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw usageError(`${flag} must be a positive integer, got "${v}"`);
  return n;
}

function nonNegInt(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw usageError(`${flag} must be a whole number of seconds ≥ 0, got "${v}"`);
  return n;
}
