import type { Command } from 'commander';
import { createToken } from '../../server/auth.ts';
import { TOKEN_NAME } from '../../server/routes/tokens.ts';
import { ROLES, type Role } from '../../store/tokens.ts';
import { globals, UsageError, withClient } from '../context.ts';
import { printJson, printTable, time } from '../output.ts';

export function register(program: Command) {
  const token = program.command('token').description('API tokens for the HTTP API and the dashboard: create, list, revoke');

  token
    .command('create')
    .description('create a token; it is printed once and only its hash is stored')
    .requiredOption('--role <role>', `one of ${ROLES.join(', ')}`)
    .requiredOption('--name <name>', 'who uses it (recorded as the actor of every action taken with it)')
    .action(async (o: { role: string; name: string }, cmd: Command) => {
      if (!ROLES.includes(o.role as Role)) throw new UsageError(`--role must be one of ${ROLES.join(', ')}, got "${o.role}"`);
      if (!TOKEN_NAME.test(o.name)) throw new UsageError('--name must be 1-64 letters, digits or _ . @ : -');
      const { token: secret, record } = await withClient(cmd, async (r) => {
        const created = await createToken(r.store.tokens, o.name, o.role as Role, r.now());
        r.events.emit('operator:action', { actor: 'cli', action: 'token.create', target: `token:${o.name}`, details: { role: o.role } });
        return created;
      });
      if (globals(cmd).json) return printJson({ token: secret, ...record });
      process.stdout.write(`${secret}\n`);
      process.stderr.write(`token "${record.name}" (${record.role}) created; it is shown only this once: keep it somewhere safe\n`);
    });

  token
    .command('list')
    .description('list tokens (never the tokens themselves)')
    .action(async (_o: unknown, cmd: Command) => {
      const tokens = await withClient(cmd, (r) => r.store.tokens.listTokens(), { readOnly: true });
      if (globals(cmd).json) return printJson(tokens);
      printTable(
        tokens.map((t) => ({ name: t.name, role: t.role, created: time(t.createdAt), last_used: time(t.lastUsedAt), revoked: time(t.revokedAt) })),
      );
    });

  token
    .command('revoke')
    .description('revoke a token by name; requests with it are refused from now on')
    .argument('<name>', 'the token name')
    .action(async (name: string, _o: unknown, cmd: Command) => {
      const revoked = await withClient(cmd, async (r) => {
        const ok = await r.store.tokens.revokeToken(name, r.now());
        if (ok) r.events.emit('operator:action', { actor: 'cli', action: 'token.revoke', target: `token:${name}` });
        return ok;
      });
      if (!revoked) throw new UsageError(`no live token named "${name}" (see \`rebound token list\`)`);
      if (globals(cmd).json) printJson({ revoked: name });
      else process.stdout.write(`revoked: ${name}\n`);
    });
}
