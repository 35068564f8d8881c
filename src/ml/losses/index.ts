export * from './logsigmoid.js';
export * from './dpo.js';
export * from './kto.js';
export * from './bradley-terry.js';
export * from './metrics.js';
export * from './warnings.js';
