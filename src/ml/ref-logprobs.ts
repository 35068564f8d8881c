// Reference log-probs as an artifact: computed once per (dataset, reference model, tokenizer +
// chat template, max length, truncation rule) and reused by every later DPO run with the same key,
// which then runs only the policy. The key lives in the artifact's metadata (`key_hash`); lookup
// goes through the store's interface (ArtifactStore.findByMetadata), so any store implementation
// serves it.
import { AlignflowError } from '../errors.js';
import { canonicalHash, sha256Hex } from '../store/canonical-json.js';
import type { ArtifactManifest, ArtifactStore, PutArtifact } from '../store/types.js';
import { parseSafetensors, serializeSafetensors } from './safetensors.js';
import type { CausalLM } from './models/types.js';
import type { PreparedPair, TruncationRule } from './preference-data.js';
import { truncationRuleId } from './preference-data.js';
import { computeRefLogps, type RefLogps } from './dpo.js';

export const REF_LOGPS_FILE = 'ref_logps.safetensors';
export const REF_LOGPS_FORMAT = 'alignflow-ref-logps-v1';

export interface RefLogpsKey {
  /** Artifact id of the preference dataset. */
  dataset: string;
  /** Artifact id of the reference model. */
  reference: string;
  /** Hash of tokenizer.json + chat template + EOS rule (tokenizerFingerprint). */
  tokenizer: string;
  maxLength: number;
  maxPromptLength: number | null;
  /** truncationRuleId(rule). */
  truncation: string;
}

export function refLogpsKey(o: { dataset: string; reference: string; tokenizer: string; rule: TruncationRule; variant?: string }): RefLogpsKey {
  return {
    dataset: o.dataset,
    reference: o.reference,
    tokenizer: o.tokenizer,
    maxLength: o.rule.maxLength,
    maxPromptLength: o.rule.maxPromptLength ?? null,
    truncation: truncationRuleId(o.rule) + (o.variant ? `;${o.variant}` : ''),
  };
}

export const refLogpsKeyHash = (k: RefLogpsKey): string => canonicalHash({ v: 1, ...k });

/** What decides the tokens: the tokenizer's JSON, the chat template, and whether EOS is appended. */
export function tokenizerFingerprint(tokenizerJson: unknown, chatTemplate: string | undefined, addEos: boolean): string {
  return canonicalHash({ tokenizer: sha256Hex(JSON.stringify(tokenizerJson)), chatTemplate: chatTemplate ?? null, addEos });
}

/** A fingerprint of the prepared token ids: a cached artifact is only used when they match exactly. */
export function pairsFingerprint(pairs: readonly PreparedPair[]): string {
  return sha256Hex(JSON.stringify(pairs.map((p) => [p.index, p.promptIds, p.chosenIds, p.rejectedIds])));
}

/** The newest ref-logprobs artifact stored under `keyHash`. */
export async function findRefLogps(store: ArtifactStore, keyHash: string): Promise<ArtifactManifest | undefined> {
  return (await store.findByMetadata('ref-logprobs', 'key_hash', keyHash))[0];
}

export function refLogpsArtifact(key: RefLogpsKey, prepared: readonly PreparedPair[], ref: RefLogps, extra: Partial<PutArtifact> = {}): PutArtifact {
  const data = serializeSafetensors(
    {
      chosen: { shape: [ref.chosen.length], data: ref.chosen },
      rejected: { shape: [ref.rejected.length], data: ref.rejected },
    },
    { metadata: { format: REF_LOGPS_FORMAT } },
  );
  return {
    kind: 'ref-logprobs',
    name: `ref-logps ${key.dataset} × ${key.reference}`,
    files: [{ path: REF_LOGPS_FILE, data }],
    metadata: { format: REF_LOGPS_FORMAT, key_hash: refLogpsKeyHash(key), key, pairs: prepared.length, pairs_hash: pairsFingerprint(prepared) },
    inputs: [
      { artifactId: key.dataset, role: 'dataset' },
      { artifactId: key.reference, role: 'reference' },
    ],
    ...extra,
  };
}

export async function readRefLogps(store: ArtifactStore, m: ArtifactManifest): Promise<RefLogps> {
  const st = parseSafetensors(await store.readFile(m.id, REF_LOGPS_FILE), REF_LOGPS_FILE);
  const c = st.tensors.get('chosen');
  const r = st.tensors.get('rejected');
  if (!c || !r || c.data.length !== r.data.length) throw new AlignflowError('integrity', `artifact ${m.id}: ${REF_LOGPS_FILE} lacks chosen/rejected vectors of equal length`);
  return { chosen: c.data, rejected: r.data };
}

export interface RefLogpsResult {
  ref: RefLogps;
  artifact: ArtifactManifest;
  /** true when an existing artifact was used and the reference model was not run. */
  reused: boolean;
}

/**
 * Looks the key up; on a hit whose pair fingerprint matches, reads it (the reference model is never
 * loaded — `loadReference` is not called). Otherwise loads the reference, computes, stores.
 */
export async function loadOrComputeRefLogps(o: {
  store: ArtifactStore;
  key: RefLogpsKey;
  prepared: readonly PreparedPair[];
  loadReference: () => Promise<CausalLM>;
  batchSize: number;
  padId: number;
  producer?: PutArtifact['producer'];
  onProgress?: (done: number, total: number) => void;
}): Promise<RefLogpsResult> {
  const keyHash = refLogpsKeyHash(o.key);
  const hit = await findRefLogps(o.store, keyHash);
  if (hit && hit.metadata.pairs_hash === pairsFingerprint(o.prepared)) {
    const ref = await readRefLogps(o.store, hit);
    if (ref.chosen.length === o.prepared.length) return { ref, artifact: hit, reused: true };
  }
  const model = await o.loadReference();
  try {
    const ref = await computeRefLogps(model, o.prepared, { batchSize: o.batchSize, padId: o.padId, ...(o.onProgress ? { onBatch: o.onProgress } : {}) });
    const artifact = await o.store.put(refLogpsArtifact(o.key, o.prepared, ref, o.producer ? { producer: o.producer } : {}));
    return { ref, artifact, reused: false };
  } finally {
    model.dispose();
  }
}
