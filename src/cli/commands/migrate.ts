import type { Command } from 'commander';
import { globals, withClient } from '../context.ts';
import { printJson } from '../output.ts';

export function register(program: Command) {
  program
    .command('migrate')
    .description('apply pending migrations to the store (also done on every start)')
    .action(async (_opts, cmd: Command) => {
      await withClient(cmd, async (r) => {
        if (globals(cmd).json) printJson({ ok: true, store: r.store.kind });
        else process.stdout.write(`migrations applied (${r.store.kind})\n`);
      });
    });
}
