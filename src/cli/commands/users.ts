// `alignflow users add|ls|revoke|enable|token|tokens|revoke-token`: people and their API tokens
// (shown once, stored hashed; each may expire and be revoked on its own).
import type { Command } from 'commander';
import { cliDb, printJson, printTable } from '../shared.js';
import { usageError } from '../../errors.js';
import { addUser, enableUser, issueToken, listTokens, listUsers, revokeToken, revokeUser } from '../../labeling/users.js';

const EXPIRES_HELP = 'the token stops working after this long: 90d, 12h or 30m (default: never)';

/** "90d" | "12h" | "30m" → epoch ms from now. */
export function parseExpiry(v: string | undefined, now = Date.now()): { expiresAt?: number } {
  if (v === undefined) return {};
  const m = /^(\d+)\s*([dhm])$/.exec(v.trim());
  const n = m ? Number(m[1]) : NaN;
  if (!m || !(n > 0)) throw usageError(`--expires expects a duration like 90d, 12h or 30m, got "${v}"`);
  return { expiresAt: now + n * { d: 86_400_000, h: 3_600_000, m: 60_000 }[m[2] as 'd' | 'h' | 'm'] };
}

const when = (ms: number | null) => (ms === null ? '' : new Date(ms).toISOString());

function printNewToken(name: string, t: { id: string; token: string; expiresAt: number | null }): void {
  process.stdout.write(`token: ${t.token}\ntoken id: ${t.id}${t.expiresAt ? `\nexpires: ${when(t.expiresAt)}` : ''}\nThis token is shown once: give it to ${name} now.\n`);
}

export function register(program: Command): void {
  const users = program.command('users').description('manage users and API tokens (roles: admin, labeler, viewer, worker)');

  users
    .command('add')
    .argument('<name>', 'user name')
    .description('add a user and print their API token (shown once; only its sha256 is stored)')
    .requiredOption('--role <role>', 'admin | labeler | viewer | worker (a remote `alignflow worker --coordinator`)')
    .option('--expires <duration>', EXPIRES_HELP)
    .option('--json', 'print {id, name, role, token, tokenId} as JSON')
    .action((name: string, o: { role: string; expires?: string; json?: boolean }) => {
      const r = addUser(cliDb(), name, o.role, parseExpiry(o.expires));
      if (o.json) return printJson({ ...r.user, token: r.token, tokenId: r.tokenId });
      process.stdout.write(`added ${r.user.name} (${r.user.role})\n`);
      printNewToken(name, { id: r.tokenId, token: r.token, expiresAt: parseExpiry(o.expires).expiresAt ?? null });
    });

  users
    .command('ls')
    .description('list users')
    .option('--json', 'print JSON')
    .action((o: { json?: boolean }) => {
      const rows = listUsers(cliDb()).map((u) => ({ ...u, status: u.disabled ? 'revoked' : 'active', created: new Date(u.createdAt).toISOString() }));
      if (o.json) return printJson(rows);
      printTable(rows, ['name', 'role', 'status', 'created', 'id']);
    });

  users
    .command('revoke')
    .argument('<name>', 'user name')
    .description('disable a user, revoke all their tokens and release the pairs they had leased')
    .action((name: string) => {
      const r = revokeUser(cliDb(), name);
      process.stdout.write(`revoked ${name}${r.releasedLeases ? ` (released ${r.releasedLeases} open lease${r.releasedLeases === 1 ? '' : 's'})` : ''}\n`);
    });

  users
    .command('enable')
    .argument('<name>', 'user name')
    .description('re-enable a revoked user and print a new token for them (their old tokens stay revoked)')
    .option('--expires <duration>', EXPIRES_HELP)
    .action((name: string, o: { expires?: string }) => {
      const t = enableUser(cliDb(), name, parseExpiry(o.expires));
      process.stdout.write(`enabled ${name}\n`);
      printNewToken(name, t);
    });

  users
    .command('token')
    .argument('<name>', 'user name')
    .description('issue an extra token for a user (shown once)')
    .option('--expires <duration>', EXPIRES_HELP)
    .action((name: string, o: { expires?: string }) => {
      printNewToken(name, issueToken(cliDb(), name, parseExpiry(o.expires)));
    });

  users
    .command('tokens')
    .argument('<name>', 'user name')
    .description("list a user's tokens: id, created, last used, expiry, revoked (never the tokens themselves)")
    .option('--json', 'print JSON')
    .action((name: string, o: { json?: boolean }) => {
      const rows = listTokens(cliDb(), name);
      if (o.json) return printJson(rows);
      printTable(rows.map((t) => ({ id: t.id, created: when(t.createdAt), 'last used': when(t.lastUsedAt), expires: when(t.expiresAt), revoked: when(t.revokedAt) })));
    });

  users
    .command('revoke-token')
    .argument('<tokenId>', 'token id, as `users tokens NAME` lists it')
    .description('revoke one token (ids from `users tokens NAME`); the user and their other tokens stay')
    .action((tokenId: string) => {
      revokeToken(cliDb(), tokenId);
      process.stdout.write(`revoked token ${tokenId}\n`);
    });
}
