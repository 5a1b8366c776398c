/**
 * `rebound start` in one function: open the store, refuse an unsafe bind,
 * start the workers (in this process, or N supervised worker processes) and
 * the maintenance work (leader election, schedules, retention), serve the API
 * and the dashboard. It listens before it starts anything else, and returns once
 * everything runs; `close()` stops everything in order.
 */
import type { JobDefinition } from '../define.ts';
import { ConfigError } from '../errors.ts';
import type { ScheduleDefinition } from '../coordination/schedules.ts';
import { createRebound, defaultLogger, type Rebound } from '../rebound.ts';
import { superviseWorkers, type Supervisor } from '../runtime/supervisor.ts';
import type { Worker } from '../runtime/worker.ts';
import { isLoopback } from './auth.ts';
import { capabilityProviders } from './capabilities.ts';
import { buildServer, type OperatorServer } from './server.ts';

export interface StartOptions {
  store: string;
  jobs: JobDefinition[];
  schedules?: ScheduleDefinition[];
  /** The jobs file: worker processes load it. Required with `processes`. */
  jobsFile?: string;
  host: string;
  port: number;
  /** Worker processes under a supervisor; undefined: workers run in this process. */
  processes?: number;
  concurrency: number;
  /** Runs alongside the server (the demo's feeder); stopped before the server closes. */
  extra?: (rebound: Rebound) => Promise<{ stop(): Promise<void> }> | { stop(): Promise<void> };
  say: (line: string) => void;
}

export interface Running {
  url: string;
  rebound: Rebound;
  server: OperatorServer;
  supervisor: Supervisor | null;
  close(): Promise<void>;
  /** Ends the workers' shutdown grace now (a second Ctrl-C): running jobs are aborted and released, uncharged. */
  hurry(): void;
  /** Kills the supervised worker processes at once (a third Ctrl-C). */
  kill(): void;
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
    if (o.processes !== undefined && !o.jobsFile) throw new ConfigError('--processes needs --jobs FILE: each worker process loads it');
    const providers = await capabilityProviders(rebound);
    const workers: Worker[] = [];
    const server = await buildServer({ rebound, host: o.host, providers, workers: () => workers });
    // Listen before anything runs: a port in use is refused at once, before worker processes start or the
    // demo feeds the store.
    const address = await server.app.listen({ port: o.port, host: o.host }).catch(async (err: unknown) => {
      await server.app.close().catch(() => {});
      throw err;
    });
    let supervisor: Supervisor | null = null;
    if (o.processes !== undefined) {
      // The worker processes run the workers, and take part in leader election for schedules and retention.
      supervisor = superviseWorkers({ jobsFile: o.jobsFile!, processes: o.processes, store: o.store, concurrency: o.concurrency, events: rebound.events, logger: defaultLogger() });
      const sup = supervisor;
      closers.push(() => sup.stop());
      providers.workers = () => ({
        supervised: true,
        processes: sup.processes().map((p) => ({ ...p, uptimeMs: p.startedAt == null ? null : rebound.now() - p.startedAt })),
      });
    } else if (rebound.definitions.size > 0) {
      workers.push(rebound.work({ concurrency: o.concurrency }));
      rebound.coordination.define(...(o.schedules ?? []));
      rebound.coordination.start();
    }
    closers.push(() => server.app.close());
    if (o.extra) {
      const extra = await o.extra(rebound);
      closers.push(() => extra.stop());
    }
    const url = `${address}/`;
    if (live === 0) o.say(`no API tokens exist: listening on ${o.host} only, and local callers act as admin (create tokens with \`rebound token create\`)`);
    const types = [...rebound.definitions.keys()].join(', ') || '(none: pass --jobs FILE)';
    o.say(supervisor ? `workers: ${o.processes} supervised process(es) for ${types}` : `workers: in this process, for ${types}`);
    o.say(`Rebound dashboard: ${url}`);
    const hurry = () => {
      void supervisor?.hurry();
      for (const w of workers) void w.stop({ graceMs: 0 });
    };
    return { url, rebound, server, supervisor, close: closeAll, hurry, kill: () => supervisor?.kill() };
  } catch (err) {
    await closeAll();
    throw err;
  }
}
