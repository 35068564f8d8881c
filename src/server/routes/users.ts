// Who am I (any role) and user management (admins): users, their tokens (per-token revocation and
// expiry), revoking and re-enabling people.
import type { FastifyInstance } from 'fastify';
import { ALL_ROLES, userOf } from '../auth.js';
import type { RouteContext } from '../index.js';
import { addUser, enableUser, issueToken, listTokens, listUsers, revokeToken, revokeUser } from '../../labeling/users.js';

const nameParams = { type: 'object', required: ['name'], additionalProperties: false, properties: { name: { type: 'string', minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9][A-Za-z0-9_.@-]*$' } } } as const;
const tokenParams = { type: 'object', required: ['tokenId'], additionalProperties: false, properties: { tokenId: { type: 'string', minLength: 1, maxLength: 100, pattern: '^t-[0-9a-f]+$' } } } as const;
/** A token's lifetime; omitted: it never expires (revoke it when it is no longer needed). */
const expiry = { expiresInDays: { type: 'integer', minimum: 1, maximum: 3650 } } as const;
const expiryBody = { type: ['object', 'null'], additionalProperties: false, properties: expiry } as const;
const DAY_MS = 86_400_000;

const expiresAt = (body: unknown) => {
  const days = (body as { expiresInDays?: number } | null | undefined)?.expiresInDays;
  return days === undefined ? {} : { expiresAt: Date.now() + days * DAY_MS };
};

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
      body: { type: 'object', required: ['name', 'role'], additionalProperties: false, properties: { name: nameParams.properties.name, role: { type: 'string', enum: ['admin', 'labeler', 'viewer', 'worker'] }, ...expiry } },
    },
  }, async (req, reply) => {
    const b = req.body as { name: string; role: string };
    const r = addUser(db, b.name, b.role, expiresAt(req.body));
    return reply.code(201).send({ ...r.user, token: r.token, tokenId: r.tokenId });
  });

  app.post('/api/users/:name/revoke', {
    config: { roles: ['admin'] },
    schema: { summary: 'Disable a user, revoke all their tokens and release their open leases', tags: ['users'], params: nameParams },
  }, async (req) => {
    const r = revokeUser(db, (req.params as { name: string }).name);
    return { ok: true, releasedLeases: r.releasedLeases };
  });

  app.post('/api/users/:name/enable', {
    config: { roles: ['admin'] },
    schema: { summary: 'Re-enable a revoked user with a new token (shown once; the old tokens stay revoked)', tags: ['users'], params: nameParams, body: expiryBody },
  }, async (req, reply) => {
    const t = enableUser(db, (req.params as { name: string }).name, expiresAt(req.body));
    return reply.code(201).send({ tokenId: t.id, token: t.token, expiresAt: t.expiresAt });
  });

  app.get('/api/users/:name/tokens', {
    config: { roles: ['admin'] },
    schema: { summary: "A user's tokens: ids, created, last used, expiry, revocation (never the tokens)", tags: ['users'], params: nameParams },
  }, async (req) => ({ tokens: listTokens(db, (req.params as { name: string }).name) }));

  app.post('/api/users/:name/tokens', {
    config: { roles: ['admin'] },
    schema: { summary: 'Issue an extra token for a user (shown once), optionally expiring', tags: ['users'], params: nameParams, body: expiryBody },
  }, async (req, reply) => {
    const t = issueToken(db, (req.params as { name: string }).name, expiresAt(req.body));
    return reply.code(201).send({ tokenId: t.id, token: t.token, expiresAt: t.expiresAt });
  });

  app.post('/api/tokens/:tokenId/revoke', {
    config: { roles: ['admin'] },
    schema: { summary: 'Revoke one token; the user and their other tokens stay', tags: ['users'], params: tokenParams },
  }, async (req) => {
    revokeToken(db, (req.params as { tokenId: string }).tokenId);
    return { ok: true };
  });
}
