/**
 * `rebound start` in one function: open the store, refuse an unsafe bind,
 * start the workers and the maintenance work, serve the API and the
 * dashboard. Returns once listening; `close()` stops everything in order.
 */
import type { JobDefinition } from '../define.ts';
import { ConfigError } from '../errors.ts';
import { createRebound, type Rebound } from '../rebound.ts';
import type { Worker } from '../runtime/worker.ts';
import { isLoopback } from './auth.ts';
import { capabilityProviders } from './capabilities.ts';
import { buildServer, type OperatorServer } from './server.ts';

export interface StartOptions {
  store: string;
  jobs: JobDefinition[];
  host: string;
  port: number;
  /** Worker processes (in-process workers until the supervisor is wired in). */
  processes: number;
  concurrency: number;
  /** Runs alongside the server (the demo's feeder); stopped before the server closes. */
  extra?: (rebound: Rebound) => Promise<{ stop(): Promise<void> }> | { stop(): Promise<void> };
  say: (line: string) => void;
}

export interface Running {
  url: string;
  rebound: Rebound;
  server: OperatorServer;
  close(): Promise<void>;
}

export async function startOperator(o: StartOptions): Promise<Running> {
  const rebound = await createRebound({ store: o.store, jobs: o.jobs });
  const closers: (() => Promise<void>)[] = [() => rebound.close()];
  const closeAll = async () => {
    for (const c of closers.splice(0).reverse()) await c().catch(() => {});
  };
  try {
    const live = await rebound.store.tokens.countLiveTokens();
    if (live === 0 && !isLoopback(o.host)) {
      throw new ConfigError(
        `refusing to listen on ${o.host} with no API tokens: anyone who reaches it would act as admin. ` +
          'Create one first (rebound token create --role admin --name NAME) or listen on 127.0.0.1',
      );
    }
    const providers = await capabilityProviders(rebound);
    const workers: Worker[] = [];
    if (rebound.definitions.size > 0) {
      for (let i = 0; i < o.processes; i++) workers.push(rebound.work({ concurrency: o.concurrency }));
    }
    const server = await buildServer({ rebound, host: o.host, providers, workers: () => workers.filter((w) => w.activeJobs >= 0) });
    closers.push(() => server.app.close());
    if (o.extra) {
      const extra = await o.extra(rebound);
      closers.push(() => extra.stop());
    }
    const address = await server.app.listen({ port: o.port, host: o.host });
    const url = `${address.replace('[::1]', 'localhost')}/`;
    if (live === 0) o.say(`no API tokens exist: listening on ${o.host} only, and local callers act as admin (create tokens with \`rebound token create\`)`);
    o.say(`workers: ${workers.length} in this process, job types: ${[...rebound.definitions.keys()].join(', ') || '(none: pass --jobs FILE)'}`);
    o.say(`Rebound dashboard: ${url}`);
    return { url, rebound, server, close: closeAll };
  } catch (err) {
    await closeAll();
    throw err;
  }
}
