// The SQLite ceiling: plain better-sqlite3 doing the same claim-run-complete
// work: claims of 500 into a local queue, N jobs running at once, finished
// ids committed together (better-sqlite3 is synchronous: one statement at a time).
// WAL with synchronous=NORMAL, the usual setting for a queue on SQLite.
import { rmSync } from 'node:fs';
import type { System, Client } from './types.ts';
import { runLocalQueue, tmpPath } from '../lib.ts';

const FILE = tmpPath('raw-sqlite.db');

export const rawSqlite: System = {
  name: 'raw-sqlite',
  store: 'sqlite',
  role: 'raw',
  config: `file bench/.tmp/raw-sqlite.db; WAL, synchronous=NORMAL; claim batches of 500 into a local queue, N running at once, completions batched; UPDATE ... WHERE id IN (SELECT ... LIMIT n) RETURNING`,
  fillChunk: 10000,
  async unavailable() {
    try {
      await import('better-sqlite3');
    } catch (e) {
      return `better-sqlite3 not installed: ${(e as Error).message}`;
    }
  },
  async reset() {
    for (const f of [FILE, `${FILE}-wal`, `${FILE}-shm`]) rmSync(f, { force: true });
    const db = await open();
    db.exec(`
      create table if not exists jobs (
        id integer primary key,
        type text not null,
        payload text not null,
        state text not null default 'queued',
        priority integer not null default 0,
        attempts integer not null default 0,
        run_at integer not null,
        locked_until integer,
        created_at integer not null,
        completed_at integer
      );
      create index if not exists jobs_queued on jobs (priority, run_at, id) where state = 'queued';
    `);
    db.close();
  },
  async connect(): Promise<Client> {
    const db = await open();
    const insert = db.prepare(`insert into jobs (type, payload, run_at, created_at) values ('noop', ?, ?, ?)`);
    const insertMany = db.transaction((list: unknown[]) => {
      const t = Date.now();
      for (const p of list) insert.run(JSON.stringify(p), t, t);
    });
    const claim = db.prepare(`
      update jobs set state = 'running', attempts = attempts + 1, locked_until = ?
      where id in (
        select id from jobs where state = 'queued' and run_at <= ?
        order by priority, run_at, id limit ?
      )
      returning id, payload`);
    const complete = db.prepare(`
      update jobs set state = 'completed', completed_at = ?, locked_until = null
      where id in (select value from json_each(?))`);
    const count = db.prepare(`select count(*) as n from jobs where state <> 'completed'`);
    return {
      async enqueue(payload) {
        const t = Date.now();
        insert.run(JSON.stringify(payload), t, t);
      },
      async enqueueMany(list) {
        insertMany(list);
      },
      async work({ concurrency, handler }) {
        return runLocalQueue<number>(
          {
            async claim(n) {
              const t = Date.now();
              const rows = claim.all(t + 300_000, t, n) as { id: number; payload: string }[];
              return rows.map((r) => ({ id: r.id, payload: JSON.parse(r.payload) }));
            },
            async complete(ids) {
              complete.run(Date.now(), JSON.stringify(ids));
            },
          },
          { concurrency, batch: 500, inFlight: 1, idleMs: 10, handler },
        );
      },
      async outstanding() {
        return (count.get() as { n: number }).n;
      },
      async close() {
        db.close();
      },
    };
  },
};

async function open() {
  const { default: Database } = await import('better-sqlite3');
  const db = new Database(FILE);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = 5000');
  return db;
}
