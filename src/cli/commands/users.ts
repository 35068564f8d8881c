// `alignflow users add|ls|revoke|token`: people and their API tokens (shown once, stored hashed).
import type { Command } from 'commander';
import { cliDb, printJson, printTable } from '../shared.js';
import { addUser, issueToken, listUsers, revokeUser } from '../../labeling/users.js';

export function register(program: Command): void {
  const users = program.command('users').description('manage users and API tokens (roles: admin, labeler, viewer)');

  users
    .command('add')
    .argument('<name>', 'user name')
    .description('add a user and print their API token (shown once; only its sha256 is stored)')
    .requiredOption('--role <role>', 'admin | labeler | viewer')
    .option('--json', 'print {id, name, role, token} as JSON')
    .action((name: string, o: { role: string; json?: boolean }) => {
      const r = addUser(cliDb(), name, o.role);
      if (o.json) return printJson({ ...r.user, token: r.token });
      process.stdout.write(`added ${r.user.name} (${r.user.role})\ntoken: ${r.token}\nThis token is shown once: give it to ${r.user.name} now.\n`);
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
    .description('disable a user and revoke all their tokens')
    .action((name: string) => {
      revokeUser(cliDb(), name);
      process.stdout.write(`revoked ${name}\n`);
    });

  users
    .command('token')
    .argument('<name>', 'user name')
    .description('issue an extra token for a user (shown once)')
    .action((name: string) => {
      process.stdout.write(`token: ${issueToken(cliDb(), name)}\n`);
    });
}
