import type { Command } from 'commander';
import { UsageError, globals, namingFlags, parseIntOption, withClient } from '../context.ts';
import { printJson, printTable } from '../output.ts';

const FLAGS = {
  'options.idempotencyKey': '--key',
  'options.delayMs': '--delay',
  'options.priority': '--priority',
  'options.maxAttempts': '--max-attempts',
  'options.queue': '--queue',
  'options.orderingKey': '--ordering-key',
};

interface Options {
  key?: string;
  delay?: number;
  priority?: number;
  maxAttempts?: number;
  queue?: string;
  orderingKey?: string;
  jobs?: string;
}

export function register(program: Command) {
  program
    .command('enqueue')
    .description('enqueue one job; with --jobs FILE the payload is checked against the type\'s schema')
    .argument('<type>', 'job type')
    .argument('[payload]', 'JSON payload', '{}')
    .option('--key <key>', 'idempotency key')
    .option('--delay <ms>', 'run after this many milliseconds', parseIntOption('--delay'))
    .option('--priority <n>', 'lower runs first (default 0)', parseIntOption('--priority'))
    .option('--max-attempts <n>', 'attempts before the dead letter queue', parseIntOption('--max-attempts'))
    .option('--queue <name>', 'queue name')
    .option('--ordering-key <key>', 'jobs with the same key run one at a time, in enqueue order')
    .option('--jobs <file>', 'job definitions module, to validate the payload')
    .action(async (type: string, payloadText: string, o: Options, cmd: Command) => {
      let payload: unknown;
      try {
        payload = JSON.parse(payloadText);
      } catch (err) {
        throw new UsageError(`payload: not valid JSON (${(err as Error).message}); quote it, e.g. '{"orderId":"o1"}'`);
      }
      const result = await withClient(
        cmd,
        (r) => {
          // With --jobs the user asked for checking: a type the file does not define would wait for a worker that never comes.
          if (o.jobs && !r.definitions.has(type)) {
            const defined = [...r.definitions.keys()];
            throw new UsageError(`type "${type}" is not defined in ${o.jobs} (it defines ${defined.length ? defined.join(', ') : 'no job types'})`);
          }
          return namingFlags(FLAGS, () => r.enqueue(type, payload, {
            ...(o.key !== undefined && { idempotencyKey: o.key }),
            ...(o.delay !== undefined && { delayMs: o.delay }),
            ...(o.priority !== undefined && { priority: o.priority }),
            ...(o.maxAttempts !== undefined && { maxAttempts: o.maxAttempts }),
            ...(o.queue !== undefined && { queue: o.queue }),
            ...(o.orderingKey !== undefined && { orderingKey: o.orderingKey }),
            actor: 'cli',
          }));
        },
        { jobsFile: o.jobs },
      );
      const out = { id: result.id, state: result.state, deduplicated: result.deduplicated };
      if (globals(cmd).json) printJson(out);
      else printTable([out]);
    });
}
