import type { ArtifactKind } from '../kinds.js';

export interface ArtifactFileInput {
  /** Name inside the artifact, e.g. "model.safetensors". Forward slashes, no "..". */
  path: string;
  /** Either the bytes, or a file on disk to copy in (streamed, never read whole). */
  data?: Uint8Array;
  sourceFile?: string;
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
}
