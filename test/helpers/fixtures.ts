import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file is test/helpers/fixtures.ts). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/**
 * Reference fixtures are committed under test/fixtures (see test/fixtures/README.md for how they were
 * made). ALIGNFLOW_FIXTURES points the tests at another copy, for example a newer set being reviewed;
 * the repository-boundary guard (test/helpers/repo-boundary.mjs) allows that folder by name.
 */
export const FIXTURES_ROOT = process.env.ALIGNFLOW_FIXTURES
  ? path.resolve(process.env.ALIGNFLOW_FIXTURES)
  : path.join(REPO_ROOT, 'test/fixtures');

export const GPT2_FIXTURES = path.join(FIXTURES_ROOT, 'gpt2-reference');
export const LLAMA_FIXTURES = path.join(FIXTURES_ROOT, 'llama-reference');
/** Made by scripts/fixtures/make_reference.py families (see its README). */
export const LLAMA_FAMILY_FIXTURES = path.join(FIXTURES_ROOT, 'llama-families');
