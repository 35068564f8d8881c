// Synthetic tasks: seeded, reproducible generators whose ground truth is a rule judge in judges/.
export { generateSentiment, SENTIMENT_DEFAULTS, SENTIMENT_GENERATOR_VERSION, sampleCompletion, samplePrompt, type SentimentOptions } from './sentiment.js';
export { generateCount, COUNT_DEFAULTS, COUNT_GENERATOR_VERSION, correctCompletion, wrongCompletion, type CountOptions } from './count.js';
export { generateMixed, MIXED_DEFAULTS, MIXED_GENERATOR_VERSION, type MixedOptions } from './mixed.js';
export { renderDataset, writeDataset, type RenderedFile } from './write.js';
export { Prng, hash32 } from './prng.js';
export type { SynthDataset, SynthFile, SynthKind, Split } from './types.js';
