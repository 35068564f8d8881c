// The vocabularies every layer shares (specs, datasets, the store's tables): plain constants, so
// that naming a kind does not pull in the store's schema (drizzle) or anything else.

export const artifactKinds = ['dataset', 'model', 'checkpoint', 'ref-logprobs', 'pairs', 'labels', 'eval-report', 'tokenizer', 'other'] as const;
export type ArtifactKind = (typeof artifactKinds)[number];

export const datasetKinds = ['sft', 'preference', 'unpaired', 'prompt'] as const;
export type DatasetKind = (typeof datasetKinds)[number];
