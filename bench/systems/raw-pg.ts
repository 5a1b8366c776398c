// The PostgreSQL ceiling: the same claim-run-complete work as a job queue,
// written as batched raw SQL on node-postgres: claims of 500 into a local
// queue, N jobs running at once, finished ids committed together, two
// claims and two completions in flight at the most.
// Claim: UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED LIMIT n) RETURNING
// Complete: UPDATE ... FROM unnest($1::bigint[])
import pg from 'pg';
import type { System, Client } from './types.ts';
import { PG_URL, pgExec, runLocalQueue } from '../lib.ts';

const SCHEMA = 'raw_bench';
const T = `${SCHEMA}.jobs`;
const BATCH = 500;
const IN_FLIGHT = 2;

const CLAIM = `
update ${T} set state = 'running', attempts = attempts + 1, locked_until = now() + interval '5 minutes'
where id in (
  select id from ${T}
  where state = 'queued' and run_at <= now()
  order by priority, run_at, id
  for update skip locked
  limit $1
)
returning id, payload`;

const COMPLETE = `
update ${T} j set state = 'completed', completed_at = now(), locked_until = null
from unnest($1::bigint[]) as t(id)
where j.id = t.id`;

export const rawPg: System = {
  name: 'raw-pg',
  store: 'postgres',
  pgSchema: SCHEMA,
  role: 'raw',
  config: `schema ${SCHEMA}; claim batches of ${BATCH} into a local queue, N running at once, completions batched; <= ${IN_FLIGHT} claims and ${IN_FLIGHT} completions in flight; partial index on queued jobs`,
  fillChunk: 10000,
  async unavailable() {
    return undefined;
  },
  async reset() {
    await pgExec(
      `drop schema if exists ${SCHEMA} cascade`,
      `create schema ${SCHEMA}`,
      `create table ${T} (
        id bigserial primary key,
        type text not null,
        payload jsonb not null,
        state text not null default 'queued',
        priority int not null default 0,
        attempts int not null default 0,
        run_at timestamptz not null default now(),
        locked_until timestamptz,
        created_at timestamptz not null default now(),
        completed_at timestamptz
      )`,
      `create index jobs_queued on ${T} (priority, run_at, id) where state = 'queued'`,
    );
  },
  async connect(): Promise<Client> {
    const pool = new pg.Pool({ connectionString: PG_URL, max: IN_FLIGHT * 2 + 2 });
    return {
      async enqueue(payload) {
        await pool.query(`insert into ${T} (type, payload) values ('noop', $1)`, [payload]);
      },
      async enqueueMany(list) {
        await pool.query(`insert into ${T} (type, payload) select 'noop', p from unnest($1::jsonb[]) as p`, [
          list.map((p) => JSON.stringify(p)),
        ]);
      },
      async work({ concurrency, handler }) {
        return runLocalQueue<string>(
          {
            claim: async (n) => (await pool.query(CLAIM, [n])).rows,
            complete: async (ids) => void (await pool.query(COMPLETE, [ids])),
          },
          { concurrency, batch: BATCH, inFlight: IN_FLIGHT, idleMs: 10, handler },
        );
      },
      async outstanding() {
        const { rows } = await pool.query(`select count(*)::int as n from ${T} where state <> 'completed'`);
        return rows[0].n;
      },
      close: () => pool.end(),
    };
  },
};
