// Bumped whenever a change alters what a stage computes; it is part of every cache key.
export const ALIGNFLOW_VERSION = '0.1.0';
export const ENGINE_VERSION = 'engine-1';
