// Users and API tokens. A token is shown once at creation; only its sha256 is stored.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { and, eq, isNull } from 'drizzle-orm';
import { AlignflowError, inputError, notFound } from '../errors.js';
import { immediate, type Db } from '../store/db.js';
import { apiTokens, roles, users, type Role } from '../store/schema.js';
import { stmt } from './sql.js';

export interface UserInfo {
  id: string;
  name: string;
  role: Role;
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$/;

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export function newId(prefix: string): string {
  return prefix + '-' + randomUUID().replaceAll('-', '');
}

function newToken(): string {
  return 'af_' + randomBytes(24).toString('base64url');
}

export function validateRole(role: string): Role {
  if (!(roles as readonly string[]).includes(role)) throw inputError(`unknown role "${role}" (expected one of ${roles.join(', ')})`);
  return role as Role;
}

/** Creates a user and its first token. The token is returned here and never again. */
export function addUser(db: Db, name: string, role: string): { user: UserInfo; token: string } {
  if (!NAME_RE.test(name)) throw inputError(`invalid user name "${name}" (letters, digits, _ . @ -, at most 64 characters)`);
  const r = validateRole(role);
  const token = newToken();
  const now = Date.now();
  return immediate(db, (tx) => {
    if (tx.select({ id: users.id }).from(users).where(eq(users.name, name)).get()) {
      throw new AlignflowError('input', `user "${name}" already exists`);
    }
    const id = newId('u');
    tx.insert(users).values({ id, name, role: r, createdAt: now }).run();
    tx.insert(apiTokens).values({ id: newId('t'), userId: id, tokenHash: hashToken(token), createdAt: now }).run();
    return { user: { id, name, role: r }, token };
  });
}

/** A new token for an existing, enabled user (the old ones stay valid until revoked). */
export function issueToken(db: Db, name: string): string {
  const token = newToken();
  immediate(db, (tx) => {
    const u = tx.select().from(users).where(eq(users.name, name)).get();
    if (!u) throw notFound(`no user "${name}"`);
    if (u.disabled) throw inputError(`user "${name}" is revoked`);
    tx.insert(apiTokens).values({ id: newId('t'), userId: u.id, tokenHash: hashToken(token), createdAt: Date.now() }).run();
  });
  return token;
}

/** Disables the user and revokes every token of theirs. */
export function revokeUser(db: Db, name: string): void {
  immediate(db, (tx) => {
    const u = tx.select().from(users).where(eq(users.name, name)).get();
    if (!u) throw notFound(`no user "${name}"`);
    tx.update(users).set({ disabled: true }).where(eq(users.id, u.id)).run();
    tx.update(apiTokens).set({ revokedAt: Date.now() }).where(and(eq(apiTokens.userId, u.id), isNull(apiTokens.revokedAt))).run();
  });
}

export function listUsers(db: Db) {
  return db
    .select({ id: users.id, name: users.name, role: users.role, disabled: users.disabled, createdAt: users.createdAt })
    .from(users)
    .orderBy(users.createdAt, users.name)
    .all();
}

/** The user a token belongs to, or undefined (unknown, revoked, or disabled user). */
export function verifyToken(db: Db, token: string): UserInfo | undefined {
  if (typeof token !== 'string' || token.length < 8 || token.length > 200) return undefined;
  const row = stmt(
    db,
    `SELECT u.id, u.name, u.role, u.disabled, t.id AS tokenId, t.revoked_at AS revokedAt, t.last_used_at AS lastUsedAt
     FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = ?`,
  ).get(hashToken(token)) as { id: string; name: string; role: Role; disabled: number; tokenId: string; revokedAt: number | null; lastUsedAt: number | null } | undefined;
  if (!row || row.disabled || row.revokedAt !== null) return undefined;
  // Touch last-used at most once a minute: a write per request would serialize every reader.
  const now = Date.now();
  if (row.lastUsedAt === null || now - row.lastUsedAt > 60_000) {
    try {
      stmt(db, `UPDATE api_tokens SET last_used_at = ? WHERE id = ?`).run(now, row.tokenId);
    } catch {
      // best effort only
    }
  }
  return { id: row.id, name: row.name, role: row.role };
}
