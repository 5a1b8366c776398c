/**
 * The `rebound` command. Exit codes: 0 success, 1 failure, 2 bad usage.
 * Errors are one line on stderr.
 */
import { Command, CommanderError } from 'commander';
import { ReboundError, ValidationError, ConfigError } from '../errors.ts';
import { exitsWhenDone, UsageError } from './context.ts';
import { errorLine } from './output.ts';
import { register as migrate } from './commands/migrate.ts';
import { register as enqueue } from './commands/enqueue.ts';
import { register as jobs } from './commands/jobs.ts';
import { register as dlq } from './commands/dlq.ts';
import { register as worker } from './commands/worker.ts';
import { register as schedule } from './commands/schedule.ts';
import { register as start } from './commands/start.ts';
import { register as token } from './commands/token.ts';
import { register as breaker } from './commands/breaker.ts';
import { register as queues } from './commands/queues.ts';
import { register as audit } from './commands/audit.ts';
import { register as stats } from './commands/stats.ts';
import { register as signal } from './commands/signal.ts';

export const commands = [migrate, enqueue, jobs, dlq, worker, schedule, breaker, queues, start, token, audit, stats, signal];

export function buildProgram(): Command {
  const program = new Command('rebound')
    .description('Rebound: a self-healing background job system')
    .option('--store <url>', 'store URL: sqlite:PATH or postgres://… (default: $REBOUND_STORE, else sqlite:.rebound/rebound.db)')
    .option('--json', 'machine-readable output')
    .showHelpAfterError(false)
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s), outputError: (s, write) => write(errorLine(s)) });
  for (const register of commands) register(program);
  program.commands.forEach(function override(c: Command) {
    c.exitOverride();
    c.commands.forEach(override);
  });
  return program;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander already printed its message; help and version are not failures.
      return err.exitCode === 0 || err.code === 'commander.helpDisplayed' || err.code === 'commander.version' ? 0 : 2;
    }
    const usage = err instanceof UsageError || err instanceof ValidationError || err instanceof ConfigError;
    const message = err instanceof Error ? err.message : String(err);
    const code = err instanceof ReboundError ? `${err.code}: ` : '';
    process.stderr.write(errorLine(`error: ${code}${message}`));
    return usage ? 2 : 1;
  }
}

// A reader that went away (`rebound stats | head -1`) is not a failure: end quietly, as other Unix tools do.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE') throw err;
  process.exit(process.exitCode ?? 0);
});

process.exitCode = await main(process.argv.slice(2));
if (exitsWhenDone()) process.exit();
