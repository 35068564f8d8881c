// Bearer-token authentication and role checks for every route.
//
// Each route declares who may call it in its fastify `config`:
//   config: { roles: ['admin', 'viewer'] }   — those roles only
//   config: { roles: 'public' }              — no token needed (web assets, /openapi.json)
// A route that declares nothing is admin-only: forgetting the declaration must not open a door.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Db } from '../store/db.js';
import type { Role } from '../store/schema.js';
import { verifyToken, type UserInfo } from '../labeling/users.js';

export type RouteRoles = readonly Role[] | 'public';

declare module 'fastify' {
  interface FastifyRequest {
    user?: UserInfo;
  }
  interface FastifyContextConfig {
    roles?: RouteRoles;
  }
  // OpenAPI annotations carried in the route schema (read by ./openapi.ts).
  interface FastifySchema {
    summary?: string;
    tags?: string[];
    hide?: boolean;
  }
}

export const ALL_ROLES: readonly Role[] = ['admin', 'labeler', 'viewer'];

export function bearerToken(req: FastifyRequest): string | undefined {
  const h = req.headers.authorization;
  if (typeof h !== 'string') return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
  return m?.[1];
}

export function installAuth(app: FastifyInstance, db: Db): void {
  app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
    const roles = req.routeOptions.config?.roles ?? ['admin'];
    if (roles === 'public') return;
    // Unknown URLs fall through to the 404 handler, which has no roles: answer 401 there too,
    // so the API does not reveal which paths exist to someone without a token.
    const token = bearerToken(req);
    const user = token ? verifyToken(db, token) : undefined;
    if (!user) {
      reply.header('WWW-Authenticate', 'Bearer');
      return reply.code(401).send({ error: 'unauthorized', message: 'missing or invalid API token (Authorization: Bearer <token>)' });
    }
    req.user = user;
    if (!roles.includes(user.role)) {
      return reply.code(403).send({ error: 'forbidden', message: `role "${user.role}" may not ${req.method} ${req.routeOptions.url ?? req.url}` });
    }
  });
}

/** The authenticated user of a request (routes with roles always have one). */
export function userOf(req: FastifyRequest): UserInfo {
  if (!req.user) throw new Error('route without authentication asked for the user');
  return req.user;
}
