/**
 * The embedded store: one SQLite file in WAL mode, shareable by several
 * processes on one machine. Writes take the write lock at BEGIN (IMMEDIATE),
 * so a claim never races another process's claim.
 */
import Database from 'better-sqlite3';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Job, JobEvent, JobFilter, Json, NewJob } from '../../job.ts';
import type {
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
  StateCounts,
  Store,
  WakeListener,
} from '../store.ts';
import { leaseKey } from '../store.ts';
import { SqliteCoordinationStore } from './coordination.ts';
import { migrations } from './migrations/index.ts';
import { SqliteBreakerStore } from './breakers.ts';
import { SqliteBacklogStore } from './backlog.ts';
import { SqliteLimitStore } from './limits.ts';
import { SqliteWorkflowStore } from './workflows.ts';
import { moveSkippedBehindLater, orderingHead, orderJob } from './ordering.ts';
import { SqliteTokenStore } from './tokens.ts';
import { SqliteVisibilityStore } from './visibility.ts';
import { ConfigError, ValidationError } from '../../errors.ts';
import { firstKeyConflict, newJob, storedPayloadHash } from '../new-job.ts';
import { aloneOnWorker, type OwnerState } from '../alone-on-worker.ts';
import { NewJobsWatch } from './new-jobs-watch.ts';
import { BUSY_SPIN_MS, writeTransaction } from './write-lock.ts';
import { CLAIMED_COLUMNS, claimedJob, toEvent, toJob, type EventRow, type JobRow } from './rows.ts';

/** Workers in this process hear about enqueues at once; other processes' enqueues through the watch (new-jobs-watch.ts). */
const localListeners = new Map<string, Set<WakeListener>>();

const json = (v: unknown) => (v === undefined ? null : JSON.stringify(v));
/**
 * `mkdir -p`, one level at a time: Node 20's `mkdirSync(dir, { recursive: true })` never returns for a directory
 * that a file system refuses with ENOENT however its parents are made (under /proc, say); this one throws.
 */
function makeDirectories(dir: string): void {
  if (existsSync(dir)) return;
  const parent = dirname(dir);
  if (parent !== dir) makeDirectories(parent);
  try {
    mkdirSync(dir);
  } catch (err) {
    // Another process (a worker starting beside this one) made it first.
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
}

/** Opens (or creates) the store's file in WAL mode; a file that cannot be used is a ConfigError naming it and the likely cause. */
function openDatabase(path: string): Database.Database {
  let db: Database.Database | null = null;
  try {
    if (path !== ':memory:') makeDirectories(dirname(path));
    db = new Database(path);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    // Brief: a longer wait for the write lock is spent in timers, not in this thread (write-lock.ts).
    db.pragma(`busy_timeout = ${BUSY_SPIN_MS}`);
    return db;
  } catch (err) {
    db?.close();
    const e = err as { code?: string; message?: string };
    const hint =
      e.code === 'SQLITE_NOTADB'
        ? 'the file exists but is not a SQLite database (a wrong path, or a damaged file: restore it from a backup)'
        : e.code === 'SQLITE_CANTOPEN' || e.code === 'SQLITE_READONLY' || e.code === 'EROFS' || e.code === 'EACCES' || e.code === 'ENOENT' || e.code === 'ENOTDIR' || e.code === 'EEXIST'
          ? 'the file or its directory cannot be created or written (a read-only file system, or missing permissions): give a writable path'
          : 'check the path';
    throw new ConfigError(`cannot open the SQLite store at ${path}: ${e.message ?? String(err)}; ${hint}`);
  }
}

/** Cancels the rows a WHERE picks. A running job keeps its lease's end: its ordering key stays held until the worker lets go (orderingHead). */
const CANCEL = `UPDATE jobs SET state = 'cancelled', lease_token = lease_token + 1,
                lease_expires_at = CASE WHEN state = 'running' THEN lease_expires_at END, finished_at = :now,
                key_expires_at = CASE WHEN idempotency_key IS NULL THEN NULL ELSE :now + key_ttl_ms END`;

export class SqliteStore implements Store {
  readonly kind = 'sqlite' as const;
  readonly coordination: SqliteCoordinationStore;
  readonly breakers: SqliteBreakerStore;
  readonly backlog: SqliteBacklogStore;
  readonly limits: SqliteLimitStore;
  readonly workflows: SqliteWorkflowStore;
  readonly path: string;
  readonly tokens: SqliteTokenStore;
  readonly visibility: SqliteVisibilityStore;
  private db: Database.Database;
  /** This store's wake listeners, and the watch that wakes them for jobs other processes add. */
  private readonly listeners = new Set<WakeListener>();
  private newJobs: NewJobsWatch | null = null;

  constructor(path: string) {
    this.path = path === ':memory:' ? path : resolve(path);
    this.db = cacheStatements(openDatabase(this.path));
    this.breakers = new SqliteBreakerStore(this.db);
    this.backlog = new SqliteBacklogStore(this.db);
    this.limits = new SqliteLimitStore(this.db);
    this.coordination = new SqliteCoordinationStore(this.db);
    this.workflows = new SqliteWorkflowStore(this.db);
    this.tokens = new SqliteTokenStore(this.db);
    this.visibility = new SqliteVisibilityStore(this.db);
  }

  /** Runs `fn` in a write transaction that holds the write lock from its start; a wait for the lock does not block the event loop. */
  private write<T>(fn: () => T): Promise<T> {
    return writeTransaction(this.db, fn);
  }

  async migrate(): Promise<void> {
    await this.write(() => {
      this.db.exec(
        'CREATE TABLE IF NOT EXISTS rebound_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)',
      );
      const applied = new Set(
        (this.db.prepare('SELECT version FROM rebound_migrations').all() as { version: number }[]).map((r) => r.version),
      );
      for (const m of migrations) {
        if (applied.has(m.version)) continue;
        this.db.exec(m.sql);
        this.db.prepare('INSERT INTO rebound_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(m.version, m.name, Date.now());
      }
    });
  }

  async close(): Promise<void> {
    this.newJobs?.close();
    if (this.db.open) this.db.close();
  }

  async insertJobs(jobs: NewJob[], now: number, tx?: unknown, opts: InsertOptions = {}): Promise<InsertedJob[]> {
    // Ignored, the job would commit at once, even if the caller's transaction then rolled back.
    if (tx != null) {
      throw new ValidationError(
        'options.tx',
        "is a PostgreSQL client inside your transaction; the SQLite store cannot join a caller's transaction: enqueue after yours commits, or use PostgreSQL",
      );
    }
    const freeKey = this.db.prepare(
      'UPDATE jobs SET idempotency_key = NULL WHERE idempotency_key = ? AND key_expires_at IS NOT NULL AND key_expires_at <= ?',
    );
    const insert = this.db
      .prepare(
        `INSERT INTO jobs (type, queue, payload, payload_hash, priority, run_at, state, max_attempts,
                           idempotency_key, key_ttl_ms, parent_id, created_at, trace_context)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
         RETURNING id`,
      )
      .pluck();
    const byKey = this.db.prepare('SELECT * FROM jobs WHERE idempotency_key = ?');
    const inserted = await this.write(() => {
      const answers = jobs.map((j): InsertedJob => {
        if (j.idempotencyKey) freeKey.run(j.idempotencyKey, now);
        const state = j.runAt > now ? 'scheduled' : 'available';
        const id = insert.get(
          j.type, j.queue, j.payloadText ?? JSON.stringify(j.payload), storedPayloadHash(j), j.priority, j.runAt, state, j.maxAttempts,
          j.idempotencyKey, j.keyTtlMs, j.parentId == null ? null : Number(j.parentId), now, j.traceContext ?? null,
        ) as number | undefined;
        if (id !== undefined && j.orderingKey) {
          const row = this.db.prepare('SELECT * FROM jobs WHERE id = ?').get(id) as JobRow;
          return { job: toJob(orderJob(this.db, row, j.orderingKey, j.orderingOnDead ?? 'wait')), inserted: true, payloadHash: j.payloadHash };
        }
        if (id !== undefined) return { job: newJob(j, id, state, now), inserted: true, payloadHash: j.payloadHash };
        const existing = byKey.get(j.idempotencyKey) as JobRow;
        return { job: toJob(existing), inserted: false, payloadHash: existing.payload_hash };
      });
      // Thrown inside the write transaction, which rolls the whole insert back.
      const conflict = opts.allOrNothing ? firstKeyConflict(jobs, answers) : null;
      if (conflict) throw conflict;
      return answers;
    });
    this.markOwnInsert(inserted);
    this.wake(jobs.map((j) => j.queue));
    return inserted;
  }

  /** Tells the watch of the ids this insert took: consecutive, since it held the write lock. */
  private markOwnInsert(inserted: InsertedJob[]) {
    if (!this.newJobs) return;
    let first = Infinity;
    let last = -Infinity;
    for (const i of inserted) {
      if (!i.inserted) continue;
      const id = Number(i.job.id);
      if (id < first) first = id;
      if (id > last) last = id;
    }
    if (last >= first) this.newJobs.inserted(first, last);
  }

  private wake(queues: string[]) {
    const listeners = localListeners.get(this.path);
    if (!listeners) return;
    for (const q of new Set(queues)) for (const l of listeners) l(q);
  }

  async claimJobs(p: ClaimParams): Promise<Job[]> {
    if (p.types.length === 0 || p.queues.length === 0) return [];
    const q = placeholders(p.queues.length);
    const t = placeholders(p.types.length);
    // Idle polls read without taking the write lock, so waiting workers do not queue behind writers.
    const due = this.db
      .prepare(
        `SELECT 1 FROM jobs WHERE state IN ('available', 'scheduled') AND queue IN (${q}) AND type IN (${t}) AND run_at <= ?
         AND isolate = ? LIMIT 1`,
      )
      .get(...p.queues, ...p.types, p.now, p.isolated ? 1 : 0);
    if (!due) return [];
    // Read the batch, then take it by id, under the write lock held from BEGIN IMMEDIATE: nobody can claim in between.
    // Cheaper than one UPDATE ... RETURNING, which collects the returned rows in a temporary table (about 1 µs a job).
    const rows = await this.write(() => {
      const batch = this.db
        .prepare(
          `SELECT ${CLAIMED_COLUMNS} FROM jobs
           WHERE state IN ('available', 'scheduled') AND queue IN (${q}) AND type IN (${t}) AND run_at <= ?
             AND isolate = ? AND ${orderingHead('?')}
           ORDER BY priority, run_at, id LIMIT ?`,
        )
        .raw(true)
        .all(...p.queues, ...p.types, p.now, p.isolated ? 1 : 0, p.now, p.isolated ? 1 : p.limit) as unknown[][];
      if (batch.length === 0) return batch;
      const taken = this.db
        .prepare(
          `UPDATE jobs SET state = 'running', attempt = attempt + 1, lease_token = lease_token + 1,
                  lease_owner = ?, lease_expires_at = ?, started_at = ?
           WHERE id IN (SELECT value FROM json_each(?))`,
        )
        .run(p.workerId, p.now + p.leaseMs, p.now, JSON.stringify(batch.map((r) => r[0]))).changes;
      if (taken !== batch.length) throw new Error(`claim took ${taken} of the ${batch.length} jobs it read; rolled back`);
      return batch;
    });
    // In claim order already (ORDER BY); the rows hold the attempt and lease token from before the claim.
    return rows.map((r) => claimedJob(r, p.workerId, p.now, p.now + p.leaseMs));
  }

  async completeJobs(items: Completion[], now: number): Promise<boolean[]> {
    if (items.length === 0) return [];
    // One statement for the batch: [id, token, state, result] per job, matched by primary key. Each row written comes
    // back once; as many rows as items means every item was accepted.
    const rows = await this.write(() =>
      this.db
        .prepare(
          `UPDATE jobs SET state = v.value ->> 2, result = v.value ->> 3, finished_at = @now, lease_expires_at = NULL,
                  key_expires_at = CASE WHEN idempotency_key IS NULL THEN NULL ELSE @now + key_ttl_ms END
           FROM json_each(@items) AS v
           WHERE jobs.id = v.value ->> 0 AND jobs.lease_token = v.value ->> 1 AND jobs.state = 'running'
           RETURNING jobs.id, jobs.lease_token`,
        )
        .raw(true)
        .all({ now, items: JSON.stringify(items.map((c) => [Number(c.id), c.token, c.state ?? 'completed', json(c.result)])) }),
    ) as [number, number][];
    if (rows.length === items.length) return items.map(() => true);
    const accepted = new Set(rows.map(([id, token]) => leaseKey(id, token)));
    return items.map((i) => accepted.has(leaseKey(i.id, i.token)));
  }

  async failJob(p: FailParams): Promise<boolean> {
    const o = p.outcome;
    return this.write(() => {
      const row = (
        o.kind === 'retry'
          ? this.db
              .prepare(
                `UPDATE jobs SET state = ?, run_at = ?, lease_expires_at = NULL, last_error = ?
                 WHERE id = ? AND lease_token = ? AND state = 'running' RETURNING *`,
              )
              .get(o.runAt > p.now ? 'scheduled' : 'available', o.runAt, json(o.error), Number(p.id), p.token)
          : this.db
              .prepare(
                `UPDATE jobs SET state = 'dead', dead_reason = ?, error_fingerprint = ?, last_error = ?, finished_at = ?,
                        lease_expires_at = NULL,
                        key_expires_at = CASE WHEN idempotency_key IS NULL THEN NULL ELSE ? + key_ttl_ms END
                 WHERE id = ? AND lease_token = ? AND state = 'running' RETURNING *`,
              )
              .get(o.reason, o.error.fingerprint, json(o.error), p.now, p.now, Number(p.id), p.token)
      ) as JobRow | undefined;
      if (!row) return false;
      const data =
        o.kind === 'retry'
          ? { startedAt: row.started_at, delayMs: o.delayMs, runAt: o.runAt, error: o.error }
          : { startedAt: row.started_at, reason: o.reason, error: o.error };
      this.insertEvent(row.id, p.now, o.kind === 'retry' ? 'retry_scheduled' : 'dead', row.attempt, row.lease_owner, data);
      return true;
    });
  }

  private insertEvent(jobId: number, at: number, kind: string, attempt: number, worker: string | null, data: unknown) {
    this.db
      .prepare('INSERT INTO job_events (job_id, at, kind, attempt, worker, data) VALUES (?, ?, ?, ?, ?, ?)')
      .run(jobId, at, kind, attempt, worker, json(data));
  }

  async heartbeatJobs(items: LeaseRef[], leaseMs: number, now: number): Promise<LeaseRef[]> {
    const stmt = this.db.prepare(
      "UPDATE jobs SET lease_expires_at = ? WHERE id = ? AND lease_token = ? AND state = 'running'",
    );
    return this.write(() => items.filter((i) => stmt.run(now + leaseMs, Number(i.id), i.token).changes === 1));
  }

  async snoozeJob(p: LeaseRef & { runAt: number; reason: string; now: number }): Promise<boolean> {
    return this.write(() => {
      const row = this.db
        .prepare(
          `UPDATE jobs SET state = ?, run_at = ?, attempt = attempt - 1, lease_expires_at = NULL
           WHERE id = ? AND lease_token = ? AND state = 'running' RETURNING *`,
        )
        .get(p.runAt > p.now ? 'scheduled' : 'available', p.runAt, Number(p.id), p.token) as JobRow | undefined;
      if (!row) return false;
      this.insertEvent(row.id, p.now, 'snoozed', row.attempt + 1, row.lease_owner, { startedAt: row.started_at, runAt: p.runAt, reason: p.reason });
      return true;
    });
  }

  async releaseJobs(items: LeaseRef[], now: number): Promise<string[]> {
    const stmt = this.db.prepare(
      `UPDATE jobs SET state = 'available', attempt = attempt - 1, lease_expires_at = NULL
       WHERE id = ? AND lease_token = ? AND state = 'running' RETURNING *`,
    );
    return this.write(() =>
      items.flatMap((i) => {
        const row = stmt.get(Number(i.id), i.token) as JobRow | undefined;
        if (!row) return [];
        this.insertEvent(row.id, now, 'released', row.attempt + 1, row.lease_owner, { startedAt: row.started_at });
        return [i.id];
      }),
    );
  }

  async recordLeaseLost(item: LeaseRef & { attempt: number; worker: string }, now: number): Promise<void> {
    await this.write(() => {
      this.db
        .prepare(
          `UPDATE jobs SET lease_expires_at = NULL
           WHERE id = ? AND state = 'cancelled' AND attempt = ? AND lease_owner = ? AND lease_expires_at IS NOT NULL`,
        )
        .run(Number(item.id), item.attempt, item.worker);
      this.insertEvent(Number(item.id), now, 'lease_lost', item.attempt, item.worker, { token: item.token });
    });
  }

  async rescueExpiredLeases(p: RescueParams): Promise<RescueResult> {
    return this.write(() => {
      const expired = this.db
        .prepare("SELECT * FROM jobs WHERE state = 'running' AND lease_expires_at < ? ORDER BY lease_expires_at LIMIT ?")
        .all(p.now, p.limit) as JobRow[];
      const result: RescueResult = { requeued: [], dead: [] };
      const owners = this.ownerStates(expired.map((r) => r.lease_owner ?? ''));
      for (const row of expired) {
        const job = toJob(row);
        const d = p.decide(job, { alone: aloneOnWorker(job, owners.get(row.lease_owner ?? '')) });
        if (d.kind === 'requeue') {
          this.db
            .prepare(
              `UPDATE jobs SET state = 'available', crash_count = ?, isolate = ?, lease_expires_at = NULL, last_error = ?
               WHERE id = ?`,
            )
            .run(d.crashes, d.isolate ? 1 : 0, json(d.error), row.id);
          result.requeued.push(job.id);
        } else {
          this.db
            .prepare(
              `UPDATE jobs SET state = 'dead', crash_count = ?, lease_expires_at = NULL, last_error = ?,
                      dead_reason = ?, error_fingerprint = ?, finished_at = ?,
                      key_expires_at = CASE WHEN idempotency_key IS NULL THEN NULL ELSE ? + key_ttl_ms END
               WHERE id = ?`,
            )
            .run(d.crashes, json(d.error), d.reason, d.error.fingerprint, p.now, p.now, row.id);
          result.dead.push(job.id);
        }
        this.insertEvent(row.id, p.now, 'lease_expired', row.attempt, row.lease_owner, {
          startedAt: row.started_at,
          crashCount: d.crashes,
          ...(d.kind === 'requeue' && d.isolate ? { isolated: true } : {}),
          error: d.error as unknown as Json,
          ...(d.kind === 'dead' ? { deadReason: d.reason } : {}),
        });
      }
      return result;
    });
  }

  /** What the rescue needs to know of each lease owner (alone-on-worker.ts). */
  private ownerStates(owners: string[]): Map<string, OwnerState> {
    const rows = this.db
      .prepare(
        `SELECT o.value AS owner,
                (SELECT count(*) FROM jobs WHERE state = 'running' AND lease_owner = o.value) AS running,
                (SELECT max(at) FROM job_events WHERE kind = 'lease_expired' AND worker = o.value) AS last_rescue_at
         FROM json_each(?) o`,
      )
      .all(JSON.stringify([...new Set(owners)])) as { owner: string; running: number; last_rescue_at: number | null }[];
    return new Map(rows.map((r) => [r.owner, { running: r.running, lastRescueAt: r.last_rescue_at }]));
  }

  async getJob(id: string): Promise<Job | null> {
    const row = this.db.prepare('SELECT * FROM jobs WHERE id = ?').get(Number(id)) as JobRow | undefined;
    return row ? toJob(row) : null;
  }

  async listJobs(f: JobFilter): Promise<Job[]> {
    const { where, params } = filterSql(f);
    const rows = this.db
      .prepare(`SELECT * FROM jobs ${where} ORDER BY id DESC LIMIT ?`)
      .all(...params, f.limit ?? 100) as JobRow[];
    return rows.map(toJob);
  }

  async countJobs(f: { state?: Job['state']; type?: string; queue?: string }): Promise<number> {
    const { where, params } = filterSql(f);
    return (this.db.prepare(`SELECT count(*) AS n FROM jobs ${where}`).get(...params) as { n: number }).n;
  }

  async countByState(): Promise<StateCounts> {
    const rows = this.db.prepare('SELECT state, count(*) AS n FROM jobs GROUP BY state').all() as { state: string; n: number }[];
    return Object.fromEntries(rows.map((r) => [r.state, r.n]));
  }

  async getEvents(jobId: string): Promise<JobEvent[]> {
    const rows = this.db
      .prepare('SELECT id, at, kind, attempt, worker, data FROM job_events WHERE job_id = ? ORDER BY id')
      .all(Number(jobId)) as EventRow[];
    return rows.map(toEvent);
  }

  async hasIsolatedJobs(queues: string[], types: string[], now: number): Promise<boolean> {
    if (!queues.length || !types.length) return false;
    return !!this.db
      .prepare(
        `SELECT 1 FROM jobs WHERE isolate = 1 AND state IN ('available', 'scheduled') AND run_at <= ?
         AND queue IN (${placeholders(queues.length)}) AND type IN (${placeholders(types.length)}) AND ${orderingHead('?')} LIMIT 1`,
      )
      .get(now, ...queues, ...types, now);
  }

  async nextRunAt(queues: string[], types: string[]): Promise<number | null> {
    if (!queues.length || !types.length) return null;
    const row = this.db
      .prepare(
        `SELECT min(run_at) AS at FROM jobs WHERE state IN ('available', 'scheduled')
         AND queue IN (${placeholders(queues.length)}) AND type IN (${placeholders(types.length)}) AND ${orderingHead()}`,
      )
      .get(...queues, ...types) as { at: number | null };
    return row.at;
  }

  async getOnce(jobId: string, key: string): Promise<{ value: Json } | null> {
    const row = this.db.prepare('SELECT value FROM job_once WHERE job_id = ? AND key = ?').get(Number(jobId), key) as
      | { value: string }
      | undefined;
    return row ? { value: JSON.parse(row.value) } : null;
  }

  async putOnce(jobId: string, key: string, value: Json, now: number): Promise<Json> {
    const { changes } = await this.write(() =>
      this.db
        .prepare('INSERT INTO job_once (job_id, key, value, at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING')
        .run(Number(jobId), key, JSON.stringify(value), now),
    );
    if (changes === 1) return value;
    // Another executor recorded first: its value counts (unless the job was purged meanwhile).
    return (await this.getOnce(jobId, key))?.value ?? value;
  }

  async cancelJob(id: string, actor: string, now: number): Promise<CancelledJobs | null> {
    return this.write(() => {
      const row = this.db.prepare(`${CANCEL} WHERE id = :id AND state IN ('scheduled', 'available', 'running') RETURNING *`).get({ now, id: Number(id) }) as
        | JobRow
        | undefined;
      if (!row) return null;
      const rows = this.db
        .prepare(
          `${CANCEL} WHERE id IN (WITH RECURSIVE tree(id) AS (SELECT id FROM jobs WHERE parent_id = :id
                                   UNION SELECT j.id FROM jobs j JOIN tree t ON j.parent_id = t.id) SELECT id FROM tree)
             AND state IN ('scheduled', 'available', 'running') RETURNING *`,
        )
        .all({ now, id: row.id }) as JobRow[];
      this.insertEvent(row.id, now, 'cancelled', row.attempt, null, { actor });
      for (const r of rows) this.insertEvent(r.id, now, 'cancelled', r.attempt, null, { actor, ancestor: String(row.id) });
      const runs = this.db.prepare(`UPDATE workflow_runs SET status = 'cancelled', waiting = NULL, updated_at = ? WHERE job_id = ? AND status IN ('running', 'compensating')`);
      for (const r of [row, ...rows]) runs.run(now, r.id);
      return { job: toJob(row), descendants: rows.map(toJob) };
    });
  }

  async redriveDead(sel: Selection, actor: string, now: number): Promise<string[]> {
    const { where, params } = selectionSql(sel);
    return this.write(() => {
      moveSkippedBehindLater(this.db, where, params);
      const rows = this.db
        .prepare(
          `UPDATE jobs SET state = 'available', attempt = 0, crash_count = 0, isolate = 0, run_at = ?, dead_reason = NULL,
                  finished_at = NULL, key_expires_at = NULL, lease_expires_at = NULL
           WHERE state = 'dead' ${where} RETURNING id, queue`,
        )
        .all(now, ...params) as { id: number; queue: string }[];
      for (const r of rows) this.insertEvent(r.id, now, 'redriven', 0, null, { actor });
      this.wake(rows.map((r) => r.queue));
      return rows.map((r) => String(r.id));
    });
  }

  async purgeDead(sel: Selection): Promise<number> {
    const { where, params } = selectionSql(sel);
    return this.write(() => {
      const ids = (this.db.prepare(`SELECT id FROM jobs WHERE state = 'dead' ${where}`).all(...params) as { id: number }[]).map(
        (r) => r.id,
      );
      for (const table of ['job_events', 'job_once']) {
        const del = this.db.prepare(`DELETE FROM ${table} WHERE job_id = ?`);
        for (const id of ids) del.run(id);
      }
      const del = this.db.prepare('DELETE FROM jobs WHERE id = ?');
      for (const id of ids) del.run(id);
      return ids.length;
    });
  }

  async onWake(listener: WakeListener): Promise<() => Promise<void>> {
    let set = localListeners.get(this.path);
    if (!set) localListeners.set(this.path, (set = new Set()));
    set.add(listener);
    this.listeners.add(listener);
    if (!this.newJobs && this.path !== ':memory:') {
      this.newJobs = new NewJobsWatch(this.db, this.path, () => {
        for (const l of this.listeners) l('*');
      });
    }
    return async () => {
      set.delete(listener);
      this.listeners.delete(listener);
      if (this.listeners.size === 0) {
        this.newJobs?.close();
        this.newJobs = null;
      }
    };
  }

  /** The raw connection, for tests and the chaos harness. */
  get database(): Database.Database {
    return this.db;
  }
}

const placeholders = (n: number) => Array.from({ length: n }, () => '?').join(', ');

function filterSql(f: JobFilter) {
  const clauses: string[] = [];
  const params: unknown[] = [];
  if (f.ids) {
    // One JSON array, not a variable per id: SQLite allows at most 32,766 variables (ctx.join of more children).
    clauses.push('id IN (SELECT value FROM json_each(?))');
    params.push(JSON.stringify(f.ids.map(Number)));
  }
  if (f.state) clauses.push('state = ?'), params.push(f.state);
  if (f.type) clauses.push('type = ?'), params.push(f.type);
  if (f.queue) clauses.push('queue = ?'), params.push(f.queue);
  if (f.fingerprint) clauses.push('error_fingerprint = ?'), params.push(f.fingerprint);
  if (f.beforeId) clauses.push('id < ?'), params.push(Number(f.beforeId));
  return { where: clauses.length ? `WHERE ${clauses.join(' AND ')}` : '', params };
}

/** Extra AND clauses for a dead-letter selection. An empty selection matches nothing unless `all`. */
function selectionSql(sel: Selection) {
  if (sel.all) return { where: '', params: [] as unknown[] };
  const { where, params } = filterSql({ ids: sel.ids, type: sel.type, fingerprint: sel.fingerprint });
  if (!where) return { where: 'AND 0', params };
  return { where: `AND ${where.slice('WHERE '.length)}`, params };
}

/**
 * Every store method prepares its SQL where it runs it, which keeps each query
 * next to its use; compiling a statement costs more than running a small one,
 * so the connection keeps what it compiled, keyed by the SQL text. Texts are
 * fixed or vary only in placeholder counts; past `max` the cache starts over.
 * A statement keeps the mode it was given (`raw`, `pluck`): give one only to
 * SQL written in that one place.
 */
function cacheStatements(db: Database.Database, max = 1000): Database.Database {
  const prepare = db.prepare.bind(db);
  const cache = new Map<string, Database.Statement>();
  db.prepare = ((sql: string) => {
    let stmt = cache.get(sql);
    if (!stmt) {
      if (cache.size >= max) cache.clear();
      cache.set(sql, (stmt = prepare(sql)));
    }
    return stmt;
  }) as typeof db.prepare;
  return db;
}
