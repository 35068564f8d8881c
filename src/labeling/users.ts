// Users and API tokens. A token is shown once at creation; only its sha256 is stored.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { and, desc, eq, gt, isNull } from 'drizzle-orm';
import { AlignflowError, inputError, notFound } from '../errors.js';
import { immediate, type Db } from '../store/db.js';
import { apiTokens, assignments, roles, users, type Role } from '../store/schema.js';
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

/** A token as shown to admins (never the token itself). */
export interface TokenInfo {
  id: string;
  createdAt: number;
  lastUsedAt: number | null;
  expiresAt: number | null;
  revokedAt: number | null;
}

export interface TokenOptions {
  /** Epoch ms after which the token no longer authenticates (default: never). */
  expiresAt?: number;
}

function checkExpiry(expiresAt: number | undefined, now: number): number | null {
  if (expiresAt === undefined) return null;
  if (!Number.isSafeInteger(expiresAt) || expiresAt <= now) throw inputError('a token must expire in the future');
  return expiresAt;
}

/** Creates a user and its first token. The token is returned here and never again. */
export function addUser(db: Db, name: string, role: string, opts: TokenOptions = {}): { user: UserInfo; token: string; tokenId: string } {
  if (!NAME_RE.test(name)) throw inputError(`invalid user name "${name}" (letters, digits, _ . @ -, at most 64 characters)`);
  const r = validateRole(role);
  const token = newToken();
  const now = Date.now();
  const expiresAt = checkExpiry(opts.expiresAt, now);
  return immediate(db, (tx) => {
    if (tx.select({ id: users.id }).from(users).where(eq(users.name, name)).get()) {
      throw new AlignflowError('input', `user "${name}" already exists`);
    }
    const id = newId('u');
    const tokenId = newId('t');
    tx.insert(users).values({ id, name, role: r, createdAt: now }).run();
    tx.insert(apiTokens).values({ id: tokenId, userId: id, tokenHash: hashToken(token), createdAt: now, expiresAt }).run();
    return { user: { id, name, role: r }, token, tokenId };
  });
}

/** A new token for an existing, enabled user (the old ones stay valid until revoked or expired). */
export function issueToken(db: Db, name: string, opts: TokenOptions = {}): { id: string; token: string; expiresAt: number | null } {
  const token = newToken();
  const now = Date.now();
  const expiresAt = checkExpiry(opts.expiresAt, now);
  const id = newId('t');
  immediate(db, (tx) => {
    const u = tx.select().from(users).where(eq(users.name, name)).get();
    if (!u) throw notFound(`no user "${name}"`);
    if (u.disabled) throw inputError(`user "${name}" is revoked (re-enable them with \`alignflow users enable ${name}\`)`);
    tx.insert(apiTokens).values({ id, userId: u.id, tokenHash: hashToken(token), createdAt: now, expiresAt }).run();
  });
  return { id, token, expiresAt };
}

/** A user's tokens, newest first (ids and dates; the tokens themselves are never stored). */
export function listTokens(db: Db, name: string): TokenInfo[] {
  const u = db.select().from(users).where(eq(users.name, name)).get();
  if (!u) throw notFound(`no user "${name}"`);
  return db
    .select({ id: apiTokens.id, createdAt: apiTokens.createdAt, lastUsedAt: apiTokens.lastUsedAt, expiresAt: apiTokens.expiresAt, revokedAt: apiTokens.revokedAt })
    .from(apiTokens)
    .where(eq(apiTokens.userId, u.id))
    .orderBy(desc(apiTokens.createdAt), apiTokens.id)
    .all();
}

/** Revokes one token (by its id, as `users tokens` lists it); the user and their other tokens stay. */
export function revokeToken(db: Db, tokenId: string): void {
  immediate(db, (tx) => {
    const t = tx.select().from(apiTokens).where(eq(apiTokens.id, tokenId)).get();
    if (!t) throw notFound(`no token "${tokenId}"`);
    if (t.revokedAt === null) tx.update(apiTokens).set({ revokedAt: Date.now() }).where(eq(apiTokens.id, tokenId)).run();
  });
}

/**
 * Disables the user, revokes every token of theirs and ends their open leases at once, so the
 * pairs they held go back to the other labelers now rather than when the leases time out.
 */
export function revokeUser(db: Db, name: string): { releasedLeases: number } {
  return immediate(db, (tx) => {
    const u = tx.select().from(users).where(eq(users.name, name)).get();
    if (!u) throw notFound(`no user "${name}"`);
    const now = Date.now();
    tx.update(users).set({ disabled: true }).where(eq(users.id, u.id)).run();
    tx.update(apiTokens).set({ revokedAt: now }).where(and(eq(apiTokens.userId, u.id), isNull(apiTokens.revokedAt))).run();
    // An expired lease is what the queue already frees (see src/labeling/queue.ts).
    const released = tx.update(assignments).set({ leaseExpiresAt: now }).where(and(eq(assignments.userId, u.id), eq(assignments.status, 'leased'), gt(assignments.leaseExpiresAt, now))).run();
    return { releasedLeases: released.changes };
  });
}

/**
 * Re-enables a revoked user and issues them a new token (their old tokens stay revoked: whoever
 * held them may not be the person being let back in).
 */
export function enableUser(db: Db, name: string, opts: TokenOptions = {}): { id: string; token: string; expiresAt: number | null } {
  const u = db.select().from(users).where(eq(users.name, name)).get();
  if (!u) throw notFound(`no user "${name}"`);
  checkExpiry(opts.expiresAt, Date.now());
  db.update(users).set({ disabled: false }).where(eq(users.id, u.id)).run();
  return issueToken(db, name, opts);
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
    `SELECT u.id, u.name, u.role, u.disabled, t.id AS tokenId, t.revoked_at AS revokedAt, t.last_used_at AS lastUsedAt, t.expires_at AS expiresAt
     FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = ?`,
  ).get(hashToken(token)) as { id: string; name: string; role: Role; disabled: number; tokenId: string; revokedAt: number | null; lastUsedAt: number | null; expiresAt: number | null } | undefined;
  const now = Date.now();
  if (!row || row.disabled || row.revokedAt !== null || (row.expiresAt !== null && row.expiresAt <= now)) return undefined;
  // Touch last-used at most once a minute: a write per request would serialize every reader.
  if (row.lastUsedAt === null || now - row.lastUsedAt > 60_000) {
    try {
      stmt(db, `UPDATE api_tokens SET last_used_at = ? WHERE id = ?`).run(now, row.tokenId);
    } catch {
      // best effort only
    }
  }
  return { id: row.id, name: row.name, role: row.role };
}
