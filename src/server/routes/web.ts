// The web UI: a handful of static files from src/web, served with no token (the page itself
// holds no data; every API call it makes carries the user's token).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import type { RouteContext } from '../index.js';

const here = path.dirname(fileURLToPath(import.meta.url));
// src/server/routes → src/web; a build (dist/src/server/routes or dist/server/routes) falls back to the source copy.
const candidates = [path.resolve(here, '../../web'), path.resolve(here, '../../../src/web'), path.resolve(here, '../../../../src/web')];

const types: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

export function webDir(): string | undefined {
  return candidates.find((d) => fs.existsSync(path.join(d, 'index.html')));
}

export default async function webRoutes(app: FastifyInstance, _opts: RouteContext): Promise<void> {
  const dir = webDir();
  const files = new Map<string, { body: Buffer; type: string }>();
  if (dir) {
    for (const f of fs.readdirSync(dir)) {
      const ext = path.extname(f);
      if (types[ext]) files.set(f, { body: fs.readFileSync(path.join(dir, f)), type: types[ext] });
    }
  }
  const send = (name: string) => {
    const f = files.get(name);
    return f;
  };
  app.get('/', { config: { roles: 'public' }, schema: { hide: true } }, async (_req, reply) => {
    const f = send('index.html');
    if (!f) return reply.code(404).send({ error: 'not_found', message: 'web UI files are missing' });
    return reply.type(f.type).send(f.body);
  });
  app.get('/web/:file', {
    config: { roles: 'public' },
    schema: { hide: true, params: { type: 'object', required: ['file'], additionalProperties: false, properties: { file: { type: 'string', pattern: '^[a-z0-9-]+\\.(js|css|svg|html)$' } } } },
  }, async (req, reply) => {
    const f = send((req.params as { file: string }).file);
    if (!f) return reply.code(404).send({ error: 'not_found', message: 'no such file' });
    return reply.type(f.type).header('Cache-Control', 'no-cache').send(f.body);
  });
}
