import type { ArtifactKind, DatasetKind } from '../kinds.js';

export interface ArtifactFileInput {
  /** Name inside the artifact, e.g. "model.safetensors". Forward slashes, no "..". */
  path: string;
  /** Exactly one of: the bytes, a file on disk to copy in (streamed, never read whole), or a file already written through createFileWriter(). */
  data?: Uint8Array;
  sourceFile?: string;
  staged?: StagedFile;
}

/** A file written into the store ahead of its artifact (an unregistered one is removed by gc). */
export interface StagedFile {
  sha256: string;
  sizeBytes: number;
}

/** Streams one file into the store (for content produced on the fly, e.g. a validated import). */
export interface FileWriter {
  write(chunk: Uint8Array): Promise<void>;
  commit(): Promise<StagedFile>;
  abort(): Promise<void>;
}

/** A dataset's catalog entry (name → artifact), registered together with its artifact. */
export interface DatasetEntry {
  name: string;
  kind: DatasetKind;
  format: string;
  records: number;
  sourcePath: string | null;
  /** Allow a name that another dataset already has (a new version of it). */
  newVersion?: boolean;
}

export interface DatasetRow extends DatasetEntry {
  id: string;
  artifactId: string;
  createdAt: number;
}

export interface PutArtifact {
  kind: ArtifactKind;
  name: string;
  files: ArtifactFileInput[];
  metadata?: Record<string, unknown>;
  /** Lineage: artifacts this one was made from, with the role each played. */
  inputs?: { artifactId: string; role: string }[];
  producer?: { runId: string; stageId: string; role: string };
}

export interface ArtifactManifest {
  id: string;
  kind: ArtifactKind;
  name: string;
  metadata: Record<string, unknown>;
  files: { path: string; sha256: string; sizeBytes: number }[];
  sizeBytes: number;
  createdAt: number;
  pinned: boolean;
  producerStageId: string | null;
  producerRunId: string | null;
}

/**
 * What stages and the engine see of the artifact store. The local implementation keeps blobs on
 * disk and rows in SQLite; a remote one (workers on other hosts) can implement the same interface.
 */
export interface ArtifactStore {
  put(a: PutArtifact): Promise<ArtifactManifest>;
  get(id: string): Promise<ArtifactManifest>;
  /** Bytes of one file, verified against its sha256 (throws an 'integrity' error if corrupted). */
  readFile(id: string, path: string): Promise<Buffer>;
  /** Writes every file of the artifact into `dir` (verified) and returns `dir`. */
  materialize(id: string, dir: string): Promise<string>;
  /**
   * Artifacts of `kind` whose top-level metadata field `key` equals `value` (a string), newest
   * first: how cached results (reference log-probs) are found by their key.
   */
  findByMetadata(kind: ArtifactKind, key: string, value: string): Promise<ArtifactManifest[]>;
  createFileWriter(): Promise<FileWriter>;
  /**
   * Stores a dataset artifact and its catalog entry in one step (all or nothing). The same content
   * stored again returns the existing entry (created false). A name that another dataset has is
   * refused (an 'input' error) unless `newVersion`.
   */
  putDataset(a: PutArtifact, entry: DatasetEntry, o?: { beforeRegister?: () => void | Promise<void> }): Promise<{ artifact: ArtifactManifest; dataset: DatasetRow; created: boolean }>;
}
