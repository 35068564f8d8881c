import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { after } from 'node:test';
import { openDb, type Db } from '../../src/store/db.js';
import { tmpDir } from '../helpers/tmp.js';
import { buildServer } from '../../src/server/index.js';
import { addUser } from '../../src/labeling/users.js';

export interface TestServer {
  app: FastifyInstance;
  db: Db;
  home: string;
  tokens: { admin: string; labeler: string; viewer: string };
}

export async function testServer(): Promise<TestServer> {
  const home = tmpDir('alignflow-server-');
  const db = openDb(path.join(home, 'alignflow.db'));
  const app = await buildServer({ db, home });
  after(async () => {
    await app.close();
    db.$client.close();
  });
  const tokens = {
    admin: addUser(db, 'root', 'admin').token,
    labeler: addUser(db, 'lab', 'labeler').token,
    viewer: addUser(db, 'view', 'viewer').token,
  };
  return { app, db, home, tokens };
}

export const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
