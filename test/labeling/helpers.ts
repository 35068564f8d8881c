import path from 'node:path';
import { openDb, type Db } from '../../src/store/db.js';
import { tmpDir } from '../helpers/tmp.js';
import { addUser } from '../../src/labeling/users.js';
import { addPairs, createBatch, type BatchOptions, type PairInput } from '../../src/labeling/batches.js';

export function freshDb(): { db: Db; dir: string } {
  const dir = tmpDir('alignflow-labeling-');
  return { db: openDb(path.join(dir, 'alignflow.db')), dir };
}

export function makePairs(n: number, prefix = 'q'): PairInput[] {
  return Array.from({ length: n }, (_, i) => ({
    prompt: `${prefix} prompt ${i}`,
    a: { text: `${prefix} answer A${i}`, modelArtifactId: 'a-0000000000000001' },
    b: { text: `${prefix} answer B${i}`, modelArtifactId: 'a-0000000000000002' },
  }));
}

export function seedBatch(db: Db, n: number, o: Partial<BatchOptions> = {}) {
  const batch = createBatch(db, { name: 'test batch', quota: 1, ...o });
  addPairs(db, batch.id, makePairs(n));
  return batch;
}

export function labeler(db: Db, name: string, role = 'labeler') {
  const { user, token } = addUser(db, name, role);
  return { id: user.id, name: user.name, token };
}
