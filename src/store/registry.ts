// The artifact registry: listing, lineage, verification, pinning and garbage collection over the
// rows of ./schema.ts and the blobs of ./blobs.ts.
import { rmSync } from 'node:fs';
import { and, desc, eq, sql } from 'drizzle-orm';
import { notFound, usageError } from '../errors.js';
import { immediate, type Db } from './db.js';
import { artifactFiles, artifacts, datasets, lineageEdges, stageOutputs, stages, type ArtifactKind } from './schema.js';
import { findIn, type LocalArtifactStore } from './artifacts.js';
import type { ArtifactManifest } from './types.js';

export interface ArtifactSummary {
  id: string;
  kind: ArtifactKind;
  name: string;
  sizeBytes: number;
  files: number;
  pinned: boolean;
  createdAt: number;
  producerRunId: string | null;
  producerStageId: string | null;
}

/** Artifacts, newest first (the CLI's `artifacts ls` and the API's GET /api/artifacts). */
export function listArtifacts(db: Db, opts: { kind?: ArtifactKind; run?: string; limit?: number } = {}): ArtifactSummary[] {
  const fileCount = sql<number>`(select count(*) from ${artifactFiles} where ${artifactFiles.artifactId} = ${artifacts.id})`;
  const q = db
    .select({
      id: artifacts.id,
      kind: artifacts.kind,
      name: artifacts.name,
      sizeBytes: artifacts.sizeBytes,
      files: fileCount,
      pinned: artifacts.pinned,
      createdAt: artifacts.createdAt,
      producerRunId: artifacts.producerRunId,
      producerStageId: artifacts.producerStageId,
    })
    .from(artifacts);
  const conds = [...(opts.kind ? [eq(artifacts.kind, opts.kind)] : []), ...(opts.run ? [eq(artifacts.producerRunId, opts.run)] : [])];
  const sorted = q.where(conds.length ? and(...conds) : undefined).orderBy(desc(artifacts.createdAt), artifacts.id);
  return opts.limit !== undefined ? sorted.limit(opts.limit).all() : sorted.all();
}

/**
 * Resolves a full artifact id or a unique prefix of one ("a-3f9c" …, at least 4 hex digits),
 * so users can type what `artifacts ls` shows.
 */
export function resolveArtifactId(db: Db, ref: string): string {
  const exact = db.select({ id: artifacts.id }).from(artifacts).where(eq(artifacts.id, ref)).get();
  if (exact) return exact.id;
  if (!/^a-[0-9a-f]{4,15}$/.test(ref)) throw notFound(`artifact ${ref} does not exist`);
  const rows = db.$client.prepare('select id from artifacts where id like ? limit 2').all(`${ref}%`) as { id: string }[];
  if (rows.length === 0) throw notFound(`artifact ${ref} does not exist`);
  if (rows.length > 1) throw usageError(`artifact prefix ${ref} is ambiguous; type more of the id`);
  return rows[0]!.id;
}

export interface ProducerInfo {
  runId: string;
  stageId: string;
  stageName: string;
  role: string;
}

export interface ArtifactDetails extends ArtifactManifest {
  inputs: { artifactId: string; role: string; kind: ArtifactKind; name: string }[];
  usedBy: { artifactId: string; role: string; kind: ArtifactKind; name: string }[];
  producers: ProducerInfo[];
  dataset?: { id: string; name: string; kind: string; format: string; records: number };
}

function producersOf(db: Db, id: string): ProducerInfo[] {
  return db
    .select({ runId: stages.runId, stageId: stageOutputs.stageId, stageName: stages.name, role: stageOutputs.role })
    .from(stageOutputs)
    .innerJoin(stages, eq(stages.id, stageOutputs.stageId))
    .where(eq(stageOutputs.artifactId, id))
    .all();
}

/** One artifact with its lineage, producers and dataset entry (the CLI's `artifacts show` and the API's GET /api/artifacts/:id). */
export function showArtifact(store: { db: Db }, id: string): ArtifactDetails {
  const db = store.db;
  const m = findIn(db, resolveArtifactId(db, id))!;
  const inputs = db
    .select({ artifactId: lineageEdges.inputArtifactId, role: lineageEdges.role, kind: artifacts.kind, name: artifacts.name })
    .from(lineageEdges)
    .innerJoin(artifacts, eq(artifacts.id, lineageEdges.inputArtifactId))
    .where(eq(lineageEdges.artifactId, m.id))
    .all();
  const usedBy = db
    .select({ artifactId: lineageEdges.artifactId, role: lineageEdges.role, kind: artifacts.kind, name: artifacts.name })
    .from(lineageEdges)
    .innerJoin(artifacts, eq(artifacts.id, lineageEdges.artifactId))
    .where(eq(lineageEdges.inputArtifactId, m.id))
    .all();
  const ds = db
    .select({ id: datasets.id, name: datasets.name, kind: datasets.kind, format: datasets.format, records: datasets.records })
    .from(datasets)
    .where(eq(datasets.artifactId, m.id))
    .get();
  return { ...m, inputs, usedBy, producers: producersOf(db, m.id), ...(ds ? { dataset: ds } : {}) };
}

export interface LineageNode {
  id: string;
  kind: ArtifactKind;
  name: string;
  /** The role this artifact played for `of` (ancestors) or `of` played for it (descendants). */
  role: string;
  /** Distance from the queried artifact (1 = direct). */
  depth: number;
  /** The neighbour one step closer to the queried artifact. */
  of: string;
  producers: ProducerInfo[];
}

export interface Lineage {
  artifact: { id: string; kind: ArtifactKind; name: string; producers: ProducerInfo[] };
  ancestors: LineageNode[];
  descendants: LineageNode[];
}

/**
 * Ancestors (what this artifact was made from, transitively) and descendants (what was made from
 * it), from `lineage_edges`, each with the stages that produced it (`stage_outputs`). Depth is
 * capped because edges can be added to existing artifacts later, so cycles are not impossible.
 */
export function lineage(db: Db, ref: string, opts: { maxDepth?: number } = {}): Lineage {
  const id = resolveArtifactId(db, ref);
  const maxDepth = opts.maxDepth ?? 50;
  const self = db.select({ id: artifacts.id, kind: artifacts.kind, name: artifacts.name }).from(artifacts).where(eq(artifacts.id, id)).get()!;
  const walk = (up: boolean): LineageNode[] => {
    const [from, to] = up ? ['artifact_id', 'input_artifact_id'] : ['input_artifact_id', 'artifact_id'];
    const rows = db.$client
      .prepare(
        `with recursive walk(id, role, depth, of) as (
           select ${to}, role, 1, ${from} from lineage_edges where ${from} = ?
           union
           select e.${to}, e.role, walk.depth + 1, e.${from} from lineage_edges e join walk on e.${from} = walk.id
           where walk.depth < ?
         )
         select walk.id as id, a.kind as kind, a.name as name, walk.role as role, min(walk.depth) as depth, walk.of as of
         from walk join artifacts a on a.id = walk.id
         group by walk.id, walk.role, walk.of
         order by depth, walk.id`,
      )
      .all(id, maxDepth) as Omit<LineageNode, 'producers'>[];
    return rows.filter((r) => r.id !== id).map((r) => ({ ...r, producers: producersOf(db, r.id) }));
  };
  return { artifact: { ...self, producers: producersOf(db, id) }, ancestors: walk(true), descendants: walk(false) };
}

export interface VerifyProblem {
  artifactId: string;
  path: string;
  sha256: string;
  problem: 'missing' | 'corrupt';
}

export interface VerifyReport {
  artifacts: number;
  files: number;
  blobs: number;
  bytes: number;
  problems: VerifyProblem[];
}

/**
 * Re-hashes from disk every blob of one artifact, or of all artifacts (each distinct blob once,
 * streamed). A flipped byte, a truncated or a missing blob is reported with every artifact file
 * that uses it.
 */
export async function verifyArtifacts(store: LocalArtifactStore, ref?: string): Promise<VerifyReport> {
  const db = store.db;
  const rows = ref === undefined
    ? db.select().from(artifactFiles).all()
    : db.select().from(artifactFiles).where(eq(artifactFiles.artifactId, resolveArtifactId(db, ref))).all();
  const bySha = new Map<string, typeof rows>();
  for (const r of rows) {
    const list = bySha.get(r.sha256) ?? [];
    list.push(r);
    bySha.set(r.sha256, list);
  }
  const problems: VerifyProblem[] = [];
  let bytes = 0;
  for (const [sha, files] of bySha) {
    const res = await store.blobs.check(sha, files[0]!.sizeBytes);
    bytes += files[0]!.sizeBytes;
    if (res !== 'ok') for (const f of files) problems.push({ artifactId: f.artifactId, path: f.path, sha256: sha, problem: res });
  }
  const nArtifacts = ref === undefined ? db.select({ n: sql<number>`count(*)` }).from(artifacts).get()!.n : 1;
  return { artifacts: nArtifacts, files: rows.length, blobs: bySha.size, bytes, problems };
}

export function setPinned(db: Db, ref: string, pinned: boolean): string {
  const id = resolveArtifactId(db, ref);
  db.update(artifacts).set({ pinned }).where(eq(artifacts.id, id)).run();
  return id;
}

export interface GcOptions {
  /** Report what would be removed, change nothing. */
  dryRun?: boolean;
  /**
   * Also delete artifacts nothing keeps (see gc()). Off by default: plain gc only removes blobs
   * that no artifact references, which can never lose a registered artifact.
   */
  pruneArtifacts?: boolean;
  /** Leave blobs, temp files and artifacts younger than this alone (in-flight writers). Default 10 min. */
  graceMs?: number;
  now?: number;
}

export interface GcReport {
  dryRun: boolean;
  artifactsRemoved: { id: string; kind: ArtifactKind; name: string; sizeBytes: number }[];
  blobsRemoved: number;
  blobBytesFreed: number;
  tmpFilesRemoved: number;
  tmpBytesFreed: number;
  blobsKept: number;
}

export const DEFAULT_GC_GRACE_MS = 10 * 60_000;
const LIVE_RUN_STATUSES = "('pending','running','waiting')";

class DryRunRollback extends Error {
  constructor(readonly report: GcReport) {
    super('dry run');
  }
}

/**
 * Garbage collection, in one immediate transaction (so it cannot interleave with a put's
 * registration, which re-checks its blobs inside its own transaction):
 *
 * 1. With `pruneArtifacts`: delete artifacts that are unpinned, older than the grace period and
 *    that nothing keeps — not an input (lineage edge) of another artifact, not a stage output,
 *    checkpoint, dataset or report, not produced by a live (pending/running/waiting) or pinned run,
 *    and not named by id in the spec or a stage config of such a run. Repeated until nothing
 *    changes, since removing an artifact can free its inputs.
 * 2. Delete blobs that no `artifact_files` row references and whose mtime is older than the grace
 *    period (a writer between blob write and registration is protected by both the grace period
 *    and the re-check in put()).
 * 3. Delete temp files left by crashed writers, older than the grace period.
 */
export function gc(store: LocalArtifactStore, opts: GcOptions = {}): GcReport {
  const db = store.db;
  const now = opts.now ?? Date.now();
  const grace = opts.graceMs ?? DEFAULT_GC_GRACE_MS;
  const dryRun = opts.dryRun ?? false;
  const sqlite = db.$client;
  try {
    return immediate(db, () => {
      const report: GcReport = { dryRun, artifactsRemoved: [], blobsRemoved: 0, blobBytesFreed: 0, tmpFilesRemoved: 0, tmpBytesFreed: 0, blobsKept: 0 };
      if (opts.pruneArtifacts) {
        const liveTexts = [
          ...(sqlite.prepare(`select spec as t from runs where status in ${LIVE_RUN_STATUSES} or pinned = 1`).all() as { t: string }[]),
          ...(sqlite
            .prepare(`select s.config as t from stages s join runs r on r.id = s.run_id where r.status in ${LIVE_RUN_STATUSES} or r.pinned = 1`)
            .all() as { t: string }[]),
        ];
        const mentioned = new Set<string>();
        for (const { t } of liveTexts) for (const m of String(t).matchAll(/a-[0-9a-f]{16}/g)) mentioned.add(m[0]);
        const candidates = sqlite.prepare(
          `select a.id, a.kind, a.name, a.size_bytes as sizeBytes from artifacts a
           where a.pinned = 0 and a.created_at <= ?
             and not exists (select 1 from lineage_edges e where e.input_artifact_id = a.id)
             and not exists (select 1 from stage_outputs so where so.artifact_id = a.id)
             and not exists (select 1 from checkpoints c where c.artifact_id = a.id)
             and not exists (select 1 from datasets d where d.artifact_id = a.id)
             and not exists (select 1 from reports rp where rp.artifact_id = a.id)
             and not exists (select 1 from runs r where r.id = a.producer_run_id
                             and (r.status in ${LIVE_RUN_STATUSES} or r.pinned = 1))`,
        );
        const del = sqlite.prepare('delete from artifacts where id = ?');
        for (;;) {
          const rows = (candidates.all(now - grace) as GcReport['artifactsRemoved']).filter((r) => !mentioned.has(r.id));
          if (rows.length === 0) break;
          for (const r of rows) {
            del.run(r.id); // cascades to artifact_files and the artifact's own lineage edges
            report.artifactsRemoved.push(r);
          }
        }
      }
      const referenced = new Set((sqlite.prepare('select distinct sha256 from artifact_files').all() as { sha256: string }[]).map((r) => r.sha256));
      for (const b of store.blobs.listSync()) {
        if (referenced.has(b.sha256) || (grace > 0 && now - b.mtimeMs < grace)) {
          report.blobsKept++;
          continue;
        }
        if (!dryRun) store.blobs.deleteSync(b.sha256);
        report.blobsRemoved++;
        report.blobBytesFreed += b.sizeBytes;
      }
      for (const t of store.blobs.staleTmpFilesSync(grace, now)) {
        if (!dryRun) fsRmSync(t.path);
        report.tmpFilesRemoved++;
        report.tmpBytesFreed += t.sizeBytes;
      }
      // A dry run rolls back the artifact deletions it made to compute its report.
      if (dryRun) throw new DryRunRollback(report);
      return report;
    });
  } catch (err) {
    if (err instanceof DryRunRollback) return err.report;
    throw err;
  }
}

function fsRmSync(p: string): void {
  rmSync(p, { force: true });
}
