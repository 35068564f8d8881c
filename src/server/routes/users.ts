// Who am I (any role) and user management (admins).
import type { FastifyInstance } from 'fastify';
import { ALL_ROLES, userOf } from '../auth.js';
import type { RouteContext } from '../index.js';
import { addUser, issueToken, listUsers, revokeUser } from '../../labeling/users.js';

const nameParams = { type: 'object', required: ['name'], additionalProperties: false, properties: { name: { type: 'string', minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9][A-Za-z0-9_.@-]*$' } } } as const;

export default async function userRoutes(app: FastifyInstance, opts: RouteContext): Promise<void> {
  const { db } = opts;

  app.get('/api/me', {
    config: { roles: ALL_ROLES },
    schema: { summary: 'The caller: id, name, role', tags: ['users'], response: { 200: { type: 'object', properties: { id: { type: 'string' }, name: { type: 'string' }, role: { type: 'string' } } } } },
  }, async (req) => userOf(req));

  app.get('/api/users', { config: { roles: ['admin'] }, schema: { summary: 'All users', tags: ['users'] } }, async () => ({ users: listUsers(db) }));

  app.post('/api/users', {
    config: { roles: ['admin'] },
    schema: {
      summary: 'Add a user; the token in the answer is shown once and stored only as a sha256',
      tags: ['users'],
      body: { type: 'object', required: ['name', 'role'], additionalProperties: false, properties: { name: nameParams.properties.name, role: { type: 'string', enum: ['admin', 'labeler', 'viewer'] } } },
    },
  }, async (req, reply) => {
    const b = req.body as { name: string; role: string };
    const r = addUser(db, b.name, b.role);
    return reply.code(201).send({ ...r.user, token: r.token });
  });

  app.post('/api/users/:name/revoke', {
    config: { roles: ['admin'] },
    schema: { summary: 'Disable a user and revoke all their tokens', tags: ['users'], params: nameParams },
  }, async (req) => {
    revokeUser(db, (req.params as { name: string }).name);
    return { ok: true };
  });

  app.post('/api/users/:name/tokens', {
    config: { roles: ['admin'] },
    schema: { summary: 'Issue an extra token for a user (shown once)', tags: ['users'], params: nameParams },
  }, async (req, reply) => {
    return reply.code(201).send({ token: issueToken(db, (req.params as { name: string }).name) });
  });
}
