// Rebound itself, on PostgreSQL and on SQLite, through its public API only
// (src/index.ts): createRebound, defineJob, enqueue, enqueueMany, work, countJobs.
import { existsSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { System, Client, Handler, Payload } from './types.ts';
import { PG_URL, REPO_DIR, pgExec, tmpPath, withSearchParam } from '../lib.ts';

const ENTRY = path.join(REPO_DIR, 'src', 'index.ts');
// Rebound's default logger, quiet and plain (no pino-pretty worker thread when
// stdout is a terminal), so log formatting is not part of what is measured.
process.env.REBOUND_LOG_LEVEL ??= 'warn';
process.env.REBOUND_LOG_FORMAT ??= 'json';
const PG_SCHEMA = 'rebound_bench';
const SQLITE_FILE = tmpPath('rebound.db');

async function load() {
  return import('../../src/index.ts');
}

async function unavailable(): Promise<string | undefined> {
  if (!existsSync(ENTRY)) return 'pending: src/index.ts does not exist yet';
  try {
    const mod = await load();
    if (typeof mod.createRebound !== 'function' || typeof mod.defineJob !== 'function') {
      return 'src/index.ts does not export createRebound and defineJob';
    }
  } catch (e) {
    return `src/index.ts failed to load: ${(e as Error).message}`;
  }
}

async function connect(store: string): Promise<Client> {
  const { createRebound, defineJob } = await load();
  let handler: Handler = () => {};
  const noop = defineJob('noop', { handler: async (payload: Payload) => handler(payload) });
  const rebound = await createRebound({ store, jobs: [noop] });
  return {
    async enqueue(payload) {
      await rebound.enqueue('noop', payload);
    },
    async enqueueMany(list) {
      await rebound.enqueueMany(list.map((payload) => ({ type: 'noop', payload })));
    },
    async work({ concurrency, handler: h }) {
      handler = h;
      const worker = rebound.work({ concurrency });
      return { stop: () => worker.stop() };
    },
    async outstanding(expected) {
      return expected - (await rebound.countJobs({ state: 'completed' }));
    },
    close: () => rebound.close(),
  };
}

export const reboundPg: System = {
  name: 'rebound-pg',
  store: 'postgres',
  pgSchema: PG_SCHEMA,
  role: 'rebound',
  config: `store ${withSearchParam(PG_URL, 'schema', PG_SCHEMA)}; work({concurrency: N}); defaults otherwise (pool 10; claims of up to 1,000 (SQLite 500), one in flight, prefetch sized by pace); log level warn`,
  fillChunk: 5000,
  unavailable,
  async reset() {
    await pgExec(`drop schema if exists ${PG_SCHEMA} cascade`);
  },
  connect: () => connect(withSearchParam(PG_URL, 'schema', PG_SCHEMA)),
};

export const reboundSqlite: System = {
  name: 'rebound-sqlite',
  store: 'sqlite',
  role: 'rebound',
  config: `store sqlite:bench/.tmp/rebound.db (WAL, synchronous=NORMAL); work({concurrency: N}); defaults otherwise; log level warn`,
  fillChunk: 5000,
  unavailable,
  async reset() {
    for (const f of [SQLITE_FILE, `${SQLITE_FILE}-wal`, `${SQLITE_FILE}-shm`]) rmSync(f, { force: true });
  },
  connect: () => connect(`sqlite:${SQLITE_FILE}`),
};
