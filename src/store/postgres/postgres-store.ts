/**
 * The shared store: many processes on many machines use one PostgreSQL
 * database. Claims use FOR UPDATE SKIP LOCKED; batches travel as arrays
 * (unnest), so a batch is one statement; idle workers are woken by
 * LISTEN/NOTIFY and poll as a fallback. Every value is a bound parameter.
 */
import pg from 'pg';
import { withTransaction } from './transaction.ts';
import type { Job, JobEvent, JobFilter, JobState, Json, NewJob } from '../../job.ts';
import type {
  BulkInsert,
  CancelledJobs,
  ClaimParams,
  Completion,
  FailParams,
  InsertedJob,
  InsertOptions,
  LeaseRef,
  RescueParams,
  RescueResult,
  Selection,
  HandoffListener,
  StateCounts,
  Store,
  WakeListener,
} from '../store.ts';
import { leaseKey } from '../store.ts';
import { PostgresCoordinationStore } from './coordination.ts';
import { migrations } from './migrations/index.ts';
import { PostgresBreakerStore } from './breakers.ts';
import { PostgresBacklogStore } from './backlog.ts';
import { PostgresLimitStore } from './limits.ts';
import { PostgresWorkflowStore } from './workflows.ts';
import { moveSkippedBehindLater, orderingHead, orderJobs } from './ordering.ts';
import { PostgresTokenStore } from './tokens.ts';
import { PostgresVisibilityStore } from './visibility.ts';
import { LISTENER_ALIVE, PostgresHandoffStore, holdListenerLock } from './handoff.ts';
import { copyJobs, openCopy } from './copy-jobs.ts';
import { lockKeys } from './key-locks.ts';
import { IdempotencyConflictError } from '../../errors.ts';
import { newJob, storedPayloadHash } from '../new-job.ts';
import { aloneOnWorker, type OwnerState } from '../alone-on-worker.ts';
import { CLAIMED_ROW, claimedJob, toEvent, toJob, type EventRow, type JobRow } from './rows.ts';

/** Anything with node-postgres's `query`: a Pool, a Client or a PoolClient. */
export interface Queryable {
  query<R extends pg.QueryResultRow = any>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
}

/** bigint columns hold epoch ms and ids, all below 2^53: read them as numbers. */
const types = {
  getTypeParser(oid: number, format?: any) {
    if (oid === 20) return (v: string) => Number(v);
    return pg.types.getTypeParser(oid, format);
  },
};

/**
 * A caller's client (`{ tx }`) read with this store's type parsers: its own would give bigint columns (run-at,
 * created-at, ordering sequence) as strings in the jobs an insert returns (a deduplicated or ordered job).
 */
const withOurTypes = (db: Queryable): Queryable => ({
  query: (text: string, values?: unknown[]) => (db as pg.ClientBase).query({ text, values, types }),
}) as Queryable;

/** Quotes an identifier (schema names come from configuration). */
export const ident = (name: string) => `"${name.replace(/"/g, '""')}"`;

const json = (v: unknown) => (v === undefined ? null : JSON.stringify(v));

export interface PostgresStoreOptions {
  connectionString: string;
  schema: string;
  poolSize?: number;
}

type InsertedRow = { id: number; state: JobState; idempotency_key: string | null };

/** Jobs to insert as one JSON array of rows (the payload's own JSON text inlined). */
function rowsJson(jobs: NewJob[]): string {
  const s = JSON.stringify;
  const rows = jobs.map(
    (j) =>
      `[${s(j.type)},${s(j.queue)},${j.payloadText ?? s(j.payload)},${s(storedPayloadHash(j))},${j.priority},${j.runAt},${j.maxAttempts},` +
      `${s(j.idempotencyKey)},${j.keyTtlMs},${j.parentId == null ? null : Number(j.parentId)},${s(j.traceContext ?? null)}]`,
  );
  return `[${rows.join(',')}]`;
}

function completionsJson(items: Completion[]): string {
  const s = JSON.stringify;
  return `[${items.map((i) => `[${Number(i.id)},${i.token},${s(i.result ?? null)},${s(i.state ?? 'completed')}]`).join(',')}]`;
}

/** The largest insert that may hand jobs over: a group commit's, not a bulk load (whose statement stays lean). */
const HANDOFF_MAX_BATCH = 100;

/**
 * Batched writes to leased jobs join their batch (unnest of id and token arrays, or a JSON parameter's
 * elements) to the table by primary key.
 * `state || ''` keeps the planner from reading every running job through the lease index and
 * hashing them (statistics often say few run; many may): each row is then one key lookup.
 */
/** Cancels the rows a WHERE picks. A running job keeps its lease's end: its ordering key stays held until the worker lets go (orderingHead). */
const CANCEL = `UPDATE jobs SET state = 'cancelled', lease_token = lease_token + 1,
                lease_expires_at = CASE WHEN state = 'running' THEN lease_expires_at END, finished_at = $2,
                key_expires_at = CASE WHEN idempotency_key IS NULL THEN NULL ELSE $2::bigint + key_ttl_ms END`;
const HELD = `j.id = v.id AND j.lease_token = v.token AND (j.state || '') = 'running'`;

/**
 * A notification on the hand-off channel (migration 8): '#{"w": <worker id>, "j": <job row>}', or
 * '@<job id> <worker id>' for a row too large to carry. Null for anything else.
 */
function handOff(payload: string): { jobId: string; workerId: string; job?: Job } | null {
  if (payload.startsWith('@')) {
    const named = /^@(\d+) ([\s\S]+)$/.exec(payload);
    return named && { jobId: named[1], workerId: named[2] };
  }
  if (!payload.startsWith('#{')) return null;
  let m: { w?: unknown; j?: JobRow } | null;
  try {
    m = JSON.parse(payload.slice(1));
  } catch {
    return null;
  }
  if (typeof m?.w !== 'string' || typeof m.j?.id !== 'number') return null;
  return { jobId: String(m.j.id), workerId: m.w, job: toJob(m.j) };
}

export class PostgresStore implements Store {
  readonly kind = 'postgres' as const;
  readonly coordination: PostgresCoordinationStore;
  readonly breakers: PostgresBreakerStore;
  readonly backlog: PostgresBacklogStore;
  readonly limits: PostgresLimitStore;
  readonly workflows: PostgresWorkflowStore;
  readonly schema: string;
  readonly pool: pg.Pool;
  readonly tokens: PostgresTokenStore;
  readonly visibility: PostgresVisibilityStore;
  readonly handoff: PostgresHandoffStore;
  private readonly connectionString: string;
  /** Wake-ups: a queue's name, or '*'. */
  private readonly channel: string;
  /** Hand-offs (handOff above), apart from the wake-ups: a queue may have any name. */
  private readonly handoffChannel: string;

  constructor(opts: PostgresStoreOptions) {
    this.schema = opts.schema;
    this.channel = `rebound_${opts.schema}`;
    this.handoffChannel = `rebound:${opts.schema}`;
    this.connectionString = opts.connectionString;
    this.pool = new pg.Pool({
      connectionString: opts.connectionString,
      max: opts.poolSize ?? 10,
      types,
      // A queue table churns faster than autovacuum analyzes it; without fresh statistics the planner
      // prefers a bitmap scan plus a sort of the whole backlog over the claim index's ordered scan.
      // Turning bitmap scans off on Rebound's own connections keeps the claim O(batch), not O(backlog).
      // The same stale statistics overestimate a drained table many times over, and a query costed above
      // jit_above_cost is compiled by LLVM first: a worker's idle check (nextRunAt) after a 60,000-job drain
      // spent 290 of its 303 ms compiling. Rebound's statements read few rows each; none gains from JIT.
      options: `-c search_path=${ident(opts.schema)} -c enable_bitmapscan=off -c jit=off`,
    });
    // An idle client that loses its connection (a restart, pg_terminate_backend) must not crash the process.
    this.pool.on('error', () => {});
    // Nor may a checked-out one: pg-pool listens only to idle clients, so a connection killed between two
    // statements of a transaction would be an uncaught 'error'. The client is then unqueryable: the
    // operation fails, and the pool discards the client on release.
    this.pool.on('connect', (client) => client.on('error', () => {}));
    this.breakers = new PostgresBreakerStore(this.pool);
    this.backlog = new PostgresBacklogStore(this.pool);
    this.limits = new PostgresLimitStore(this.pool, opts.schema);
    this.coordination = new PostgresCoordinationStore(this.pool, this.schema, this);
    this.workflows = new PostgresWorkflowStore(this.pool, this.channel);
    this.tokens = new PostgresTokenStore(this.pool);
    this.visibility = new PostgresVisibilityStore(this.pool, this.schema);
    this.handoff = new PostgresHandoffStore(this.pool);
  }

  private tx<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    return withTransaction(this.pool, fn);
  }

  async migrate(): Promise<void> {
    const s = ident(this.schema);
    await this.tx(async (c) => {
      // One migrator at a time, across every process and machine.
      await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`rebound:migrate:${this.schema}`]);
      await c.query(`CREATE SCHEMA IF NOT EXISTS ${s}`);
      await c.query(`SET LOCAL search_path TO ${s}`);
      await c.query(
        'CREATE TABLE IF NOT EXISTS rebound_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at bigint NOT NULL)',
      );
      const { rows } = await c.query<{ version: number }>('SELECT version FROM rebound_migrations');
      const applied = new Set(rows.map((r) => r.version));
      for (const m of migrations) {
        if (applied.has(m.version)) continue;
        await c.query(m.sql);
        await c.query('INSERT INTO rebound_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [m.version, m.name, Date.now()]);
      }
    });
  }

  async close(): Promise<void> {
    await this.pool.end().catch(() => {});
  }

  async insertJobs(jobs: NewJob[], now: number, tx?: unknown, opts: InsertOptions = {}): Promise<InsertedJob[]> {
    if (jobs.length === 0) return [];
    const run = async (db: Queryable) => {
      const keys = jobs.flatMap((j) => (j.idempotencyKey ? [j.idempotencyKey] : []));
      if (keys.length) {
        await lockKeys(db, this.schema, keys);
        await db.query(
          `UPDATE ${ident(this.schema)}.jobs SET idempotency_key = NULL
           WHERE idempotency_key = ANY($1::text[]) AND key_expires_at IS NOT NULL AND key_expires_at <= $2`,
          [keys, now],
        );
        // Checked before anything is written, under the keys' locks: it holds inside a caller's transaction too.
        if (opts.allOrNothing) await this.refuseKeyConflicts(db, jobs, keys);
      }
      // One JSON parameter carries the rows: node-postgres escapes array parameters character by character.
      // Without keys there is no conflict to resolve: the arbiter check cost 15 % of a 1,000-row insert.
      const onConflict = keys.length ? 'ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING' : '';
      const insert = {
        text: `INSERT INTO ${ident(this.schema)}.jobs (type, queue, payload, payload_hash, priority, run_at, state, max_attempts,
                           idempotency_key, key_ttl_ms, parent_id, created_at, trace_context)
         SELECT r->>0, r->>1, r->2, r->>3, (r->>4)::int, (r->>5)::bigint,
                CASE WHEN (r->>5)::bigint > $2 THEN 'scheduled' ELSE 'available' END,
                (r->>6)::int, r->>7, (r->>8)::bigint, (r->>9)::bigint, $2, r->>10
         FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS t(r, ord)
         ORDER BY ord
         ${onConflict}
         RETURNING id, state, idempotency_key`,
        values: [rowsJson(jobs), now],
      };
      // Named on Rebound's own connections, so it is planned once per connection; a caller's client gets plain text.
      const { rows } = tx
        ? await db.query<InsertedRow>(insert.text, insert.values)
        : await (db as pg.Pool | pg.PoolClient).query<InsertedRow>({ name: `rebound_insert_jobs:${this.schema}:${keys.length ? 'keyed' : 'plain'}`, ...insert });
      // Rows come back in insertion order (ids ascend); a keyed job missing from them hit an existing key.
      const inserted = rows.sort((a, b) => a.id - b.id);
      let next = 0;
      const out: (InsertedJob | string)[] = jobs.map((j) => {
        const row = inserted[next];
        if (row && (j.idempotencyKey == null || row.idempotency_key === j.idempotencyKey)) {
          next++;
          return { job: newJob(j, row.id, row.state, now), inserted: true, payloadHash: j.payloadHash };
        }
        return j.idempotencyKey!;
      });
      await orderJobs(db, ident(this.schema), jobs, out);
      const missing = out.filter((o): o is string => typeof o === 'string');
      if (missing.length === 0) return out as InsertedJob[];
      const existing = await db.query<JobRow>(
        `SELECT * FROM ${ident(this.schema)}.jobs WHERE idempotency_key = ANY($1::text[])`,
        [missing],
      );
      const byKey = new Map(existing.rows.map((r) => [r.idempotency_key, r]));
      return out.map((o) => {
        if (typeof o !== 'string') return o;
        const row = byKey.get(o);
        // The key's job vanished between the two statements (a concurrent purge): the caller retries.
        if (!row) throw new Error(`idempotency key "${o}" changed hands during enqueue; retry`);
        return { job: toJob(row), inserted: false, payloadHash: row.payload_hash };
      });
    };
    if (tx) return run(withOurTypes(tx as Queryable));
    const plain = jobs.every((j) => j.idempotencyKey == null && j.orderingKey == null);
    // A lone job or a group commit's few may go straight to an idle worker's offer (store/handoff.ts).
    if (plain && jobs.length <= HANDOFF_MAX_BATCH) return this.insertOrHand(jobs, now);
    // A bulk load without keys or ordering goes by COPY (copy-jobs.ts): nothing to resolve, and cheaper rows.
    if (plain) return copyJobs(this.pool, `${ident(this.schema)}.jobs`, jobs, now);
    return this.tx(run);
  }

  /** Throws IdempotencyConflictError for the first job whose key a stored job holds with another payload. */
  private async refuseKeyConflicts(db: Queryable, jobs: NewJob[], keys: string[]): Promise<void> {
    const { rows } = await db.query<{ id: number; idempotency_key: string; payload_hash: string }>(
      `SELECT id, idempotency_key, payload_hash FROM ${ident(this.schema)}.jobs WHERE idempotency_key = ANY($1::text[])`,
      [keys],
    );
    const held = new Map(rows.map((r) => [r.idempotency_key, r]));
    for (const j of jobs) {
      const row = j.idempotencyKey == null ? undefined : held.get(j.idempotencyKey);
      if (row && row.payload_hash !== j.payloadHash) throw new IdempotencyConflictError(j.idempotencyKey!, String(row.id));
    }
  }

  /** Larger inserts without keys or ordering go by COPY, in parts (copy-jobs.ts); smaller ones may be handed over. */
  openBulkInsert(count: number, now: number): Promise<BulkInsert> | null {
    return count > HANDOFF_MAX_BATCH ? openCopy(this.pool, `${ident(this.schema)}.jobs`, count, now) : null;
  }

  /**
   * Inserts jobs without keys or ordering in one statement that may hand some of them over. The offer
   * with the most free slots that matches any due job is locked (`SKIP LOCKED`: concurrent enqueues never
   * wait for each other; one that finds every offer locked inserts its jobs for a claim), and up to its
   * slots of the matching due jobs, taken in a claim's order (priority, run-at, then the input's), are
   * inserted running, attempt 1, token 1, leased to its worker; the insert trigger tells the worker which. The rest are plain inserts. An offer counts only while its
   * worker's LISTEN connection is alive and holds its listener lock (`LISTENER_ALIVE`, handoff.ts).
   */
  private async insertOrHand(jobs: NewJob[], now: number): Promise<InsertedJob[]> {
    const { rows } = await this.pool.query<{ id: number; state: JobState; lease_owner: string | null; lease_expires_at: number | null }>({
      name: 'rebound_insert_or_hand',
      text: `WITH input AS MATERIALIZED (
         SELECT ord, r->>0 AS type, r->>1 AS queue, r->2 AS payload, (r->>4)::int AS priority, (r->>5)::bigint AS run_at,
                (r->>6)::int AS max_attempts, (r->>8)::bigint AS key_ttl_ms, (r->>9)::bigint AS parent_id, r->>10 AS trace_context
         FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS t(r, ord)),
       offer AS (
         SELECT worker_id, slots, lease_ms, queues, types FROM job_offers o
         WHERE slots > 0 AND expires_at > $2
           AND EXISTS (SELECT 1 FROM input i WHERE i.run_at <= $2 AND i.queue = ANY(o.queues) AND i.type = ANY(o.types))
           AND ${LISTENER_ALIVE('o.listener_pid')}
         ORDER BY slots DESC LIMIT 1 FOR UPDATE SKIP LOCKED),
       assigned AS (
         SELECT i.ord, o.worker_id, o.lease_ms FROM input i JOIN offer o
           ON i.run_at <= $2 AND i.queue = ANY(o.queues) AND i.type = ANY(o.types)
         ORDER BY i.priority, i.run_at, i.ord LIMIT (SELECT slots FROM offer)),
       taken AS (
         UPDATE job_offers SET slots = slots - n.count, handed = handed + n.count
         FROM (SELECT count(*) AS count FROM assigned) n
         WHERE worker_id = (SELECT worker_id FROM offer))
       INSERT INTO jobs (type, queue, payload, payload_hash, priority, run_at, state, max_attempts, key_ttl_ms, parent_id,
                         created_at, trace_context, attempt, lease_token, lease_owner, lease_expires_at, started_at)
       SELECT i.type, i.queue, i.payload, '', i.priority, i.run_at,
              CASE WHEN a.worker_id IS NOT NULL THEN 'running' WHEN i.run_at > $2 THEN 'scheduled' ELSE 'available' END,
              i.max_attempts, i.key_ttl_ms, i.parent_id, $2, i.trace_context,
              CASE WHEN a.worker_id IS NULL THEN 0 ELSE 1 END, CASE WHEN a.worker_id IS NULL THEN 0 ELSE 1 END,
              a.worker_id, $2 + a.lease_ms, CASE WHEN a.worker_id IS NULL THEN NULL ELSE $2 END
       FROM input i LEFT JOIN assigned a ON a.ord = i.ord
       ORDER BY i.ord
       RETURNING id, state, lease_owner, lease_expires_at`,
      values: [rowsJson(jobs), now],
    });
    // Rows come back in insertion order: ids ascend with the input's order.
    rows.sort((a, b) => a.id - b.id);
    return jobs.map((j, i) => {
      const r = rows[i];
      const job = newJob(j, r.id, r.state, now);
      if (r.lease_owner != null) {
        Object.assign(job, { attempt: 1, leaseToken: 1, leaseOwner: r.lease_owner, leaseExpiresAt: r.lease_expires_at, startedAt: now });
      }
      return { job, inserted: true, payloadHash: j.payloadHash };
    });
  }

  async claimJobs(p: ClaimParams): Promise<Job[]> {
    if (p.types.length === 0 || p.queues.length === 0) return [];
    // `id = ANY(ARRAY(...))` takes the claimed rows by primary key: joined to a CTE instead, the planner
    // may hash-join the whole table on each claim. Only the columns a claim does not set come back.
    const { rows } = await this.pool.query<[unknown[]]>({
      // Named: each connection plans it once (a generic plan is as good here), a third of a lone claim's time.
      name: 'rebound_claim',
      rowMode: 'array',
      text: `UPDATE jobs j SET state = 'running', attempt = j.attempt + 1, lease_token = j.lease_token + 1,
              lease_owner = $5, lease_expires_at = $3::bigint + $6::bigint, started_at = $3
       WHERE j.id = ANY(ARRAY(
         SELECT id FROM jobs
         WHERE state IN ('available', 'scheduled') AND queue = ANY($1::text[]) AND type = ANY($2::text[]) AND run_at <= $3
           AND isolate = $7 AND ${orderingHead('$3')}
         ORDER BY priority, run_at, id
         LIMIT $4
         FOR UPDATE SKIP LOCKED))
       RETURNING ${CLAIMED_ROW}`,
      values: [p.queues, p.types, p.now, p.isolated ? 1 : p.limit, p.workerId, p.leaseMs, p.isolated === true],
    });
    const jobs = rows.map((r) => claimedJob(r[0], p.workerId, p.now, p.now + p.leaseMs));
    return jobs.sort((a, b) => a.priority - b.priority || a.runAt - b.runAt || Number(a.id) - Number(b.id));
  }

  async completeJobs(items: Completion[], now: number): Promise<boolean[]> {
    if (items.length === 0) return [];
    // One JSON parameter, [id, token, result, state] per job: node-postgres escapes array parameters character by character.
    // Only the completions refused (their lease was lost) come back, usually none: a row back for every completed
    // job cost the client about 1 µs per job to receive and parse.
    const { rows } = await this.pool.query<[number, number]>({
      rowMode: 'array',
      text: `WITH v AS MATERIALIZED (
         SELECT (r->>0)::bigint AS id, (r->>1)::int AS token, r->2 AS result, r->>3 AS state
         FROM jsonb_array_elements($1::jsonb) AS t(r)),
       done AS (
         UPDATE jobs j SET state = v.state, result = v.result, finished_at = $2, lease_expires_at = NULL,
                key_expires_at = CASE WHEN j.idempotency_key IS NULL THEN NULL ELSE $2::bigint + j.key_ttl_ms END
         FROM v WHERE ${HELD}
         RETURNING j.id, j.lease_token)
       SELECT v.id, v.token FROM v WHERE NOT EXISTS (SELECT 1 FROM done WHERE done.id = v.id AND done.lease_token = v.token)`,
      values: [completionsJson(items), now],
    });
    if (rows.length === 0) return items.map(() => true);
    const refused = new Set(rows.map(([id, token]) => leaseKey(id, token)));
    return items.map((i) => !refused.has(leaseKey(i.id, i.token)));
  }

  async failJob(p: FailParams): Promise<boolean> {
    const o = p.outcome;
    const update =
      o.kind === 'retry'
        ? {
            sql: `UPDATE jobs SET state = CASE WHEN $3::bigint > $5::bigint THEN 'scheduled' ELSE 'available' END,
                         run_at = $3, lease_expires_at = NULL, last_error = $4
                  WHERE id = $1 AND lease_token = $2 AND state = 'running'
                  RETURNING id, attempt, lease_owner, started_at`,
            params: [Number(p.id), p.token, o.runAt, json(o.error), p.now],
            kind: 'retry_scheduled',
            data: { delayMs: o.delayMs, runAt: o.runAt, error: o.error },
          }
        : {
            sql: `UPDATE jobs SET state = 'dead', dead_reason = $3, error_fingerprint = $4, last_error = $5,
                         finished_at = $6, lease_expires_at = NULL,
                         key_expires_at = CASE WHEN idempotency_key IS NULL THEN NULL ELSE $6::bigint + key_ttl_ms END
                  WHERE id = $1 AND lease_token = $2 AND state = 'running'
                  RETURNING id, attempt, lease_owner, started_at`,
            params: [Number(p.id), p.token, o.reason, o.error.fingerprint, json(o.error), p.now],
            kind: 'dead',
            data: { reason: o.reason, error: o.error },
          };
    const n = update.params.length;
    const { rows } = await this.pool.query(
      `WITH upd AS (${update.sql})
       INSERT INTO job_events (job_id, at, kind, attempt, worker, data)
       SELECT id, $${n + 1}, $${n + 2}, attempt, lease_owner, $${n + 3}::jsonb || jsonb_build_object('startedAt', started_at)
       FROM upd RETURNING job_id`,
      [...update.params, p.now, update.kind, json(update.data)],
    );
    return rows.length === 1;
  }

  async heartbeatJobs(items: LeaseRef[], leaseMs: number, now: number): Promise<LeaseRef[]> {
    if (items.length === 0) return [];
    const { rows } = await this.pool.query<{ id: number; lease_token: number }>(
      `UPDATE jobs j SET lease_expires_at = $3 FROM unnest($1::bigint[], $2::int[]) AS v(id, token)
       WHERE ${HELD} RETURNING j.id, j.lease_token`,
      [items.map((i) => Number(i.id)), items.map((i) => i.token), now + leaseMs],
    );
    return rows.map((r) => ({ id: String(r.id), token: r.lease_token }));
  }

  async snoozeJob(p: LeaseRef & { runAt: number; reason: string; now: number }): Promise<boolean> {
    const { rows } = await this.pool.query(
      `WITH upd AS (
         UPDATE jobs SET state = CASE WHEN $3::bigint > $4::bigint THEN 'scheduled' ELSE 'available' END,
                run_at = $3, attempt = attempt - 1, lease_expires_at = NULL
         WHERE id = $1 AND lease_token = $2 AND state = 'running'
         RETURNING id, attempt, lease_owner, started_at)
       INSERT INTO job_events (job_id, at, kind, attempt, worker, data)
       SELECT id, $4, 'snoozed', attempt + 1, lease_owner,
              jsonb_build_object('startedAt', started_at, 'runAt', $3::bigint, 'reason', $5::text)
       FROM upd RETURNING job_id`,
      [Number(p.id), p.token, p.runAt, p.now, p.reason],
    );
    return rows.length === 1;
  }

  async releaseJobs(items: LeaseRef[], now: number): Promise<string[]> {
    if (items.length === 0) return [];
    const { rows } = await this.pool.query<{ job_id: number }>(
      `WITH upd AS (
         UPDATE jobs j SET state = 'available', attempt = j.attempt - 1, lease_expires_at = NULL
         FROM unnest($1::bigint[], $2::int[]) AS v(id, token)
         WHERE ${HELD}
         RETURNING j.id, j.attempt, j.lease_owner, j.started_at, j.queue)
       INSERT INTO job_events (job_id, at, kind, attempt, worker, data)
       SELECT id, $3, 'released', attempt + 1, lease_owner, jsonb_build_object('startedAt', started_at) FROM upd
       RETURNING job_id`,
      [items.map((i) => Number(i.id)), items.map((i) => i.token), now],
    );
    if (rows.length) await this.pool.query('SELECT pg_notify($1, $2)', [this.channel, '*']);
    return rows.map((r) => String(r.job_id));
  }

  async recordLeaseLost(item: LeaseRef & { attempt: number; worker: string }, now: number): Promise<void> {
    await this.pool.query(
      `WITH ended AS (
         UPDATE jobs SET lease_expires_at = NULL
         WHERE id = $1 AND state = 'cancelled' AND attempt = $3 AND lease_owner = $4 AND lease_expires_at IS NOT NULL)
       INSERT INTO job_events (job_id, at, kind, attempt, worker, data) VALUES ($1, $2, 'lease_lost', $3, $4, $5)`,
      [Number(item.id), now, item.attempt, item.worker, json({ token: item.token })],
    );
  }

  async rescueExpiredLeases(p: RescueParams): Promise<RescueResult> {
    return this.tx(async (c) => {
      const { rows } = await c.query<JobRow>(
        `SELECT * FROM jobs WHERE state = 'running' AND lease_expires_at < $1
         ORDER BY lease_expires_at LIMIT $2 FOR UPDATE SKIP LOCKED`,
        [p.now, p.limit],
      );
      const result: RescueResult = { requeued: [], dead: [] };
      if (rows.length === 0) return result;
      const owners = await ownerStates(c, rows.map((r) => r.lease_owner ?? ''));
      const decided = rows.map((row) => {
        const job = toJob(row);
        const d = p.decide(job, { alone: aloneOnWorker(job, owners.get(row.lease_owner ?? '')) });
        (d.kind === 'requeue' ? result.requeued : result.dead).push(job.id);
        const isolate = d.kind === 'requeue' && d.isolate;
        const reason = d.kind === 'dead' ? d.reason : null;
        const data = { startedAt: row.started_at, crashCount: d.crashes, ...(isolate ? { isolated: true } : {}), error: d.error, ...(reason ? { deadReason: reason } : {}) };
        return { id: row.id, dead: d.kind === 'dead', crashes: d.crashes, isolate, error: d.error, reason, attempt: row.attempt, worker: row.lease_owner, data };
      });
      // One statement for the whole pass: two per job (the update and its event) took 0.65 ms per job with the pass's
      // rows locked (bench/probes/rescue.ts). Requeued jobs keep their dead-letter columns, dead ones their isolate flag.
      await c.query(
        `WITH d AS MATERIALIZED (
           SELECT * FROM jsonb_to_recordset($1::jsonb) AS d(id bigint, dead boolean, crashes int, isolate boolean, error jsonb,
                                                            reason text, attempt int, worker text, data jsonb)),
         up AS (
           UPDATE jobs j SET state = CASE WHEN d.dead THEN 'dead' ELSE 'available' END, crash_count = d.crashes,
                  lease_expires_at = NULL, last_error = d.error,
                  isolate = CASE WHEN d.dead THEN j.isolate ELSE d.isolate END,
                  dead_reason = CASE WHEN d.dead THEN d.reason ELSE j.dead_reason END,
                  error_fingerprint = CASE WHEN d.dead THEN d.error->>'fingerprint' ELSE j.error_fingerprint END,
                  finished_at = CASE WHEN d.dead THEN $2 ELSE j.finished_at END,
                  key_expires_at = CASE WHEN NOT d.dead THEN j.key_expires_at
                                        WHEN j.idempotency_key IS NULL THEN NULL ELSE $2::bigint + j.key_ttl_ms END
           FROM d WHERE j.id = d.id)
         INSERT INTO job_events (job_id, at, kind, attempt, worker, data)
         SELECT d.id, $2, 'lease_expired', d.attempt, d.worker, d.data FROM d`,
        [JSON.stringify(decided), p.now],
      );
      if (result.requeued.length) await c.query('SELECT pg_notify($1, $2)', [this.channel, '*']);
      return result;
    });
  }

  async getJob(id: string): Promise<Job | null> {
    if (!/^\d+$/.test(id)) return null;
    const { rows } = await this.pool.query<JobRow>('SELECT * FROM jobs WHERE id = $1', [Number(id)]);
    return rows[0] ? toJob(rows[0]) : null;
  }

  async listJobs(f: JobFilter): Promise<Job[]> {
    const { where, params } = filterSql(f);
    const { rows } = await this.pool.query<JobRow>(
      `SELECT * FROM jobs ${where} ORDER BY id DESC LIMIT $${params.length + 1}`,
      [...params, f.limit ?? 100],
    );
    return rows.map(toJob);
  }

  async countJobs(f: { state?: Job['state']; type?: string; queue?: string }): Promise<number> {
    const { where, params } = filterSql(f);
    const { rows } = await this.pool.query<{ n: number }>(`SELECT count(*) AS n FROM jobs ${where}`, params);
    return rows[0].n;
  }

  async countByState(): Promise<StateCounts> {
    const { rows } = await this.pool.query<{ state: string; n: number }>('SELECT state, count(*) AS n FROM jobs GROUP BY state');
    return Object.fromEntries(rows.map((r) => [r.state, r.n]));
  }

  async getEvents(jobId: string): Promise<JobEvent[]> {
    const { rows } = await this.pool.query<EventRow>(
      'SELECT id, at, kind, attempt, worker, data FROM job_events WHERE job_id = $1 ORDER BY id',
      [Number(jobId)],
    );
    return rows.map(toEvent);
  }

  async hasIsolatedJobs(queues: string[], types: string[], now: number): Promise<boolean> {
    if (!queues.length || !types.length) return false;
    const { rows } = await this.pool.query(
      `SELECT 1 FROM jobs WHERE isolate AND state IN ('available', 'scheduled') AND run_at <= $1
       AND queue = ANY($2::text[]) AND type = ANY($3::text[]) AND ${orderingHead('$1')} LIMIT 1`,
      [now, queues, types],
    );
    return rows.length > 0;
  }

  async nextRunAt(queues: string[], types: string[]): Promise<number | null> {
    if (!queues.length || !types.length) return null;
    const { rows } = await this.pool.query<{ at: number | null }>(
      `SELECT min(run_at) AS at FROM jobs
       WHERE state IN ('available', 'scheduled') AND queue = ANY($1::text[]) AND type = ANY($2::text[]) AND ${orderingHead()}`,
      [queues, types],
    );
    return rows[0].at;
  }

  async getOnce(jobId: string, key: string): Promise<{ value: Json } | null> {
    // Named (parsed once per connection): it runs once per `ctx.once`, and its plan is a key look-up whatever the
    // table's size. Parse and plan took 4-7 times the look-up's own time.
    const { rows } = await this.pool.query<{ value: Json }>({
      name: 'rebound_get_once',
      text: 'SELECT value FROM job_once WHERE job_id = $1 AND key = $2',
      values: [Number(jobId), key],
    });
    return rows[0] ? { value: rows[0].value } : null;
  }

  async putOnce(jobId: string, key: string, value: Json, now: number): Promise<Json> {
    const { rows } = await this.pool.query<{ value: Json }>({
      name: 'rebound_put_once',
      text: 'INSERT INTO job_once (job_id, key, value, at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING value',
      values: [Number(jobId), key, JSON.stringify(value), now],
    });
    if (rows[0]) return rows[0].value;
    // Another executor recorded first: its value counts (unless the job was purged meanwhile).
    return (await this.getOnce(jobId, key))?.value ?? value;
  }

  async cancelJob(id: string, actor: string, now: number): Promise<CancelledJobs | null> {
    if (!/^\d+$/.test(id)) return null;
    return this.tx(async (c) => {
      const root = await c.query<JobRow>(`${CANCEL} WHERE id = $1 AND state IN ('scheduled', 'available', 'running') RETURNING *`, [Number(id), now]);
      if (!root.rows[0]) return null;
      const { rows } = await c.query<JobRow>(
        `${CANCEL} WHERE id IN (WITH RECURSIVE tree(id) AS (SELECT id FROM jobs WHERE parent_id = $1
                                 UNION SELECT j.id FROM jobs j JOIN tree t ON j.parent_id = t.id) SELECT id FROM tree)
           AND state IN ('scheduled', 'available', 'running') RETURNING *`,
        [Number(id), now],
      );
      const ids = [root.rows[0].id, ...rows.map((r) => r.id)];
      await c.query(
        `INSERT INTO job_events (job_id, at, kind, attempt, data)
         SELECT j.id, $2, 'cancelled', j.attempt, CASE WHEN j.id = $3 THEN $4::jsonb ELSE $5::jsonb END FROM jobs j WHERE j.id = ANY($1)`,
        [ids, now, root.rows[0].id, json({ actor }), json({ actor, ancestor: String(root.rows[0].id) })],
      );
      await c.query(`UPDATE workflow_runs SET status = 'cancelled', waiting = NULL, updated_at = $2 WHERE job_id = ANY($1) AND status IN ('running', 'compensating')`, [ids, now]);
      return { job: toJob(root.rows[0]), descendants: rows.map(toJob) };
    });
  }

  async redriveDead(sel: Selection, actor: string, now: number): Promise<string[]> {
    const { where, params } = selectionSql(sel, 3);
    const { rows } = await this.tx(async (c) => {
      const moving = selectionSql(sel, 1);
      await moveSkippedBehindLater(c, moving.where, moving.params);
      return c.query<{ job_id: number }>(
        `WITH upd AS (
           UPDATE jobs SET state = 'available', attempt = 0, crash_count = 0, isolate = false, run_at = $1, dead_reason = NULL,
                  finished_at = NULL, key_expires_at = NULL, lease_expires_at = NULL
           WHERE state = 'dead' ${where} RETURNING id)
         INSERT INTO job_events (job_id, at, kind, attempt, data)
         SELECT id, $1, 'redriven', 0, $2::jsonb FROM upd RETURNING job_id`,
        [now, json({ actor }), ...params],
      );
    });
    if (rows.length) await this.pool.query('SELECT pg_notify($1, $2)', [this.channel, '*']);
    return rows.map((r) => String(r.job_id));
  }

  async purgeDead(sel: Selection): Promise<number> {
    const { where, params } = selectionSql(sel, 1);
    return this.tx(async (c) => {
      const { rows } = await c.query<{ id: number }>(`DELETE FROM jobs WHERE state = 'dead' ${where} RETURNING id`, params);
      const ids = rows.map((r) => r.id);
      await c.query('DELETE FROM job_events WHERE job_id = ANY($1::bigint[])', [ids]);
      await c.query('DELETE FROM job_once WHERE job_id = ANY($1::bigint[])', [ids]);
      return ids.length;
    });
  }

  async onWake(listener: WakeListener, handoff?: HandoffListener): Promise<() => Promise<void>> {
    let client: pg.Client | null = null;
    let stopped = false;
    let retryMs = 100;
    const connect = async () => {
      if (stopped) return;
      const c = new pg.Client({ connectionString: this.connectionString });
      c.on('notification', (n) => {
        if (n.channel !== this.handoffChannel) return listener(n.payload ?? '*');
        const handed = handOff(n.payload ?? '');
        if (handed) handoff?.handed(handed.jobId, handed.workerId, handed.job);
      });
      const reconnect = () => {
        if (client !== c || stopped) return;
        client = null;
        c.end().catch(() => {});
        handoff?.listening(null);
        // The listener is gone until we are back: wake the worker so it polls meanwhile.
        listener('*');
        setTimeout(connect, retryMs).unref();
        retryMs = Math.min(retryMs * 2, 5000);
      };
      c.on('error', reconnect);
      c.on('end', reconnect);
      client = c;
      try {
        await c.connect();
        // Both in one round trip. Without a hand-off listener the hand-offs are another worker's business.
        await c.query(handoff ? `LISTEN ${ident(this.channel)}; LISTEN ${ident(this.handoffChannel)}` : `LISTEN ${ident(this.channel)}`);
        if (handoff) handoff.listening(await holdListenerLock(c));
        retryMs = 100;
        listener('*');
      } catch {
        reconnect();
      }
    };
    await connect();
    return async () => {
      stopped = true;
      const c = client;
      client = null;
      await c?.end().catch(() => {});
    };
  }
}

/** What the rescue needs to know of each lease owner (alone-on-worker.ts). */
async function ownerStates(db: Queryable, owners: string[]): Promise<Map<string, OwnerState>> {
  const { rows } = await db.query<{ owner: string; running: number; last_rescue_at: number | null }>(
    `SELECT o.owner,
            (SELECT count(*) FROM jobs WHERE state = 'running' AND lease_owner = o.owner) AS running,
            (SELECT max(at) FROM job_events WHERE kind = 'lease_expired' AND worker = o.owner) AS last_rescue_at
     FROM unnest($1::text[]) AS o(owner)`,
    [[...new Set(owners)]],
  );
  return new Map(rows.map((r) => [r.owner, { running: r.running, lastRescueAt: r.last_rescue_at }]));
}

function filterSql(f: JobFilter, start = 1) {
  const clauses: string[] = [];
  const params: unknown[] = [];
  const add = (sql: string, v: unknown) => {
    params.push(v);
    clauses.push(sql.replace('?', `$${start + params.length - 1}`));
  };
  if (f.ids) add('id = ANY(?::bigint[])', f.ids.filter((i) => /^\d+$/.test(i)).map(Number));
  if (f.state) add('state = ?', f.state);
  if (f.type) add('type = ?', f.type);
  if (f.queue) add('queue = ?', f.queue);
  if (f.fingerprint) add('error_fingerprint = ?', f.fingerprint);
  if (f.beforeId) add('id < ?', Number(f.beforeId));
  return { where: clauses.length ? `WHERE ${clauses.join(' AND ')}` : '', params };
}

/** Extra AND clauses for a dead-letter selection. An empty selection matches nothing unless `all`. */
function selectionSql(sel: Selection, start: number) {
  if (sel.all) return { where: '', params: [] as unknown[] };
  const { where, params } = filterSql({ ids: sel.ids, type: sel.type, fingerprint: sel.fingerprint }, start);
  if (!where) return { where: 'AND false', params };
  return { where: `AND ${where.slice('WHERE '.length)}`, params };
}
