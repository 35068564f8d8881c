import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file is test/helpers/fixtures.ts). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/**
 * The Hugging Face GPT-2 reference fixtures live in shared/, beside the checkout (both here and in
 * CI's fresh clone); ALIGNFLOW_FIXTURES overrides the location.
 */
export const GPT2_FIXTURES = process.env.ALIGNFLOW_FIXTURES
  ? path.resolve(process.env.ALIGNFLOW_FIXTURES, 'gpt2-reference')
  : path.resolve(REPO_ROOT, '../shared/fixtures/gpt2-reference');
