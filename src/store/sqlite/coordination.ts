/**
 * Coordination on SQLite: every write runs in an IMMEDIATE transaction, so
 * the fence check and the write it guards cannot interleave with a takeover.
 */
import type Database from 'better-sqlite3';
import { canonicalJson } from '../../engine/enqueue-input.ts';
import { StaleTermError } from '../../errors.ts';
import type { NewJob } from '../../job.ts';
import { storedPayloadHash } from '../new-job.ts';
import type {
  CoordinationStore,
  Fence,
  FireInput,
  FireRecord,
  FireResult,
  Lease,
  PrunedCount,
  PruneJobsParams,
  ScheduleRecord,
  ScheduleSpec,
} from '../coordination.ts';
import { writeTransaction } from './write-lock.ts';

interface LeaseRow {
  name: string;
  holder: string;
  token: number;
  expires_at: number;
}

interface ScheduleRow {
  name: string;
  cron: string;
  tz: string;
  type: string;
  payload: string;
  misfire: string;
  jitter_ms: number;
  source: 'code' | 'runtime';
  paused: number;
  version: number;
  next_fire_at: number | null;
  last_fire_at: number | null;
  created_at: number;
  updated_at: number;
}

const toLease = (r: LeaseRow): Lease => ({ name: r.name, holder: r.holder, token: r.token, expiresAt: r.expires_at });

const toSchedule = (r: ScheduleRow): ScheduleRecord => ({
  name: r.name,
  cron: r.cron,
  tz: r.tz,
  type: r.type,
  payload: JSON.parse(r.payload),
  misfire: JSON.parse(r.misfire),
  jitterMs: r.jitter_ms,
  source: r.source,
  paused: r.paused === 1,
  version: r.version,
  nextFireAt: r.next_fire_at,
  lastFireAt: r.last_fire_at,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

const placeholders = (n: number) => Array.from({ length: n }, () => '?').join(', ');

export class SqliteCoordinationStore implements CoordinationStore {
  constructor(private readonly db: Database.Database) {}

  private write<T>(fn: () => T): Promise<T> {
    return writeTransaction(this.db, fn);
  }

  /**
   * The next schedule version, from one counter for all schedules: a schedule removed and added again never gets a
   * version its removed namesake had, so a fire pass that read the removed one writes nothing. Inside a write.
   */
  private nextVersion(): number {
    return (this.db.prepare('UPDATE schedule_versions SET last = last + 1 WHERE id = 1 RETURNING last').get() as { last: number }).last;
  }

  /** Throws unless `fence` names the current, unexpired holder. Call inside the write's transaction. */
  private checkFence(fence: Fence, now: number) {
    const ok = this.db
      .prepare('SELECT 1 FROM coordination_leases WHERE name = ? AND token = ? AND expires_at > ?')
      .get(fence.lease, fence.token, now);
    if (!ok) throw new StaleTermError(fence.lease, fence.token);
  }

  async acquireLease(p: { name: string; holder: string; ttlMs: number; now: number }): Promise<Lease | null> {
    const row = await this.write(
      () =>
        this.db
          .prepare(
            `INSERT INTO coordination_leases (name, holder, token, expires_at, acquired_at) VALUES (?, ?, 1, ?, ?)
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, token = coordination_leases.token + 1,
                    expires_at = excluded.expires_at, acquired_at = excluded.acquired_at
             WHERE coordination_leases.expires_at <= ?
             RETURNING *`,
          )
          .get(p.name, p.holder, p.now + p.ttlMs, p.now, p.now) as LeaseRow | undefined,
    );
    return row ? toLease(row) : null;
  }

  async renewLease(p: { name: string; token: number; ttlMs: number; now: number }): Promise<Lease | null> {
    const row = await this.write(
      () =>
        this.db
          .prepare('UPDATE coordination_leases SET expires_at = ? WHERE name = ? AND token = ? AND expires_at > ? RETURNING *')
          .get(p.now + p.ttlMs, p.name, p.token, p.now) as LeaseRow | undefined,
    );
    return row ? toLease(row) : null;
  }

  async releaseLease(p: { name: string; token: number; now: number }): Promise<boolean> {
    return this.write(
      () =>
        this.db
          .prepare('UPDATE coordination_leases SET expires_at = ? WHERE name = ? AND token = ? AND expires_at > ?')
          .run(p.now, p.name, p.token, p.now).changes === 1,
    );
  }

  async getLease(name: string): Promise<Lease | null> {
    const row = this.db.prepare('SELECT * FROM coordination_leases WHERE name = ?').get(name) as LeaseRow | undefined;
    return row ? toLease(row) : null;
  }

  async upsertSchedule(spec: ScheduleSpec, nextFireAt: number | null, now: number, fence?: Fence) {
    return this.write(() => {
      if (fence) this.checkFence(fence, now);
      const existing = this.db.prepare('SELECT * FROM schedules WHERE name = ?').get(spec.name) as ScheduleRow | undefined;
      const values = [spec.cron, spec.tz, spec.type, JSON.stringify(spec.payload), JSON.stringify(spec.misfire), spec.jitterMs, spec.source];
      if (!existing) {
        const row = this.db
          .prepare(
            `INSERT INTO schedules (name, cron, tz, type, payload, misfire, jitter_ms, source, next_fire_at, created_at, updated_at, version)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *`,
          )
          .get(spec.name, ...values, nextFireAt, now, now, this.nextVersion()) as ScheduleRow;
        return { schedule: toSchedule(row), change: 'created' as const };
      }
      const same = [existing.cron, existing.tz, existing.type, canonicalJson(JSON.parse(existing.payload)), existing.misfire, existing.jitter_ms, existing.source];
      const wanted = [...values.slice(0, 3), canonicalJson(spec.payload), ...values.slice(4)];
      if (same.every((v, i) => v === wanted[i])) return { schedule: toSchedule(existing), change: 'unchanged' as const };
      // A new pattern or zone starts from now; other changes keep the cursor.
      const timing = existing.cron !== spec.cron || existing.tz !== spec.tz;
      const row = this.db
        .prepare(
          `UPDATE schedules SET cron = ?, tz = ?, type = ?, payload = ?, misfire = ?, jitter_ms = ?, source = ?,
                  version = ?, updated_at = ?, next_fire_at = CASE WHEN ? THEN ? ELSE next_fire_at END
           WHERE name = ? RETURNING *`,
        )
        .get(...values, this.nextVersion(), now, timing ? 1 : 0, nextFireAt, spec.name) as ScheduleRow;
      return { schedule: toSchedule(row), change: 'updated' as const };
    });
  }

  async getSchedule(name: string): Promise<ScheduleRecord | null> {
    const row = this.db.prepare('SELECT * FROM schedules WHERE name = ?').get(name) as ScheduleRow | undefined;
    return row ? toSchedule(row) : null;
  }

  async listSchedules(): Promise<ScheduleRecord[]> {
    return (this.db.prepare('SELECT * FROM schedules ORDER BY name').all() as ScheduleRow[]).map(toSchedule);
  }

  async removeSchedule(name: string): Promise<boolean> {
    return this.write(() => this.db.prepare('DELETE FROM schedules WHERE name = ?').run(name).changes === 1);
  }

  async setSchedulePaused(name: string, paused: boolean, now: number): Promise<{ schedule: ScheduleRecord; changed: boolean } | null> {
    return this.write(() => {
      const row = this.db.prepare('SELECT * FROM schedules WHERE name = ?').get(name) as ScheduleRow | undefined;
      if (!row) return null;
      if (row.paused === (paused ? 1 : 0)) return { schedule: toSchedule(row), changed: false };
      const changed = this.db
        .prepare('UPDATE schedules SET paused = ?, version = ?, updated_at = ? WHERE name = ? RETURNING *')
        .get(paused ? 1 : 0, this.nextVersion(), now, name) as ScheduleRow;
      return { schedule: toSchedule(changed), changed: true };
    });
  }

  async fireSchedule(p: {
    fence: Fence;
    name: string;
    version: number;
    fires: FireInput[];
    lastFireAt: number | null;
    nextFireAt: number | null;
    now: number;
  }): Promise<FireResult[]> {
    const claimFire = this.db.prepare(
      'INSERT INTO schedule_fires (schedule, fire_at, job_id, term, fired_at) VALUES (?, ?, 0, ?, ?) ON CONFLICT DO NOTHING',
    );
    const setJob = this.db.prepare('UPDATE schedule_fires SET job_id = ? WHERE schedule = ? AND fire_at = ?');
    const existingFire = this.db.prepare('SELECT job_id FROM schedule_fires WHERE schedule = ? AND fire_at = ?');
    return this.write(() => {
      this.checkFence(p.fence, p.now);
      const current = this.db.prepare('SELECT version FROM schedules WHERE name = ?').get(p.name) as { version: number } | undefined;
      if (!current || current.version !== p.version) return [];
      const results = p.fires.map((f): FireResult => {
        if (claimFire.run(p.name, f.fireAt, p.fence.token, p.now).changes === 0) {
          const row = existingFire.get(p.name, f.fireAt) as { job_id: number };
          return { fireAt: f.fireAt, jobId: String(row.job_id), created: false };
        }
        const jobId = this.insertJob(f.job, p.now);
        setJob.run(jobId, p.name, f.fireAt);
        return { fireAt: f.fireAt, jobId: String(jobId), created: true };
      });
      this.db
        .prepare(
          `UPDATE schedules SET next_fire_at = ?, last_fire_at = max(coalesce(last_fire_at, 0), coalesce(?, 0))
           WHERE name = ? AND (next_fire_at IS NULL OR ? IS NULL OR next_fire_at <= ?)`,
        )
        .run(p.nextFireAt, p.lastFireAt, p.name, p.nextFireAt, p.nextFireAt);
      return results;
    });
  }

  /** The scheduled job, keyed so that an enqueue by hand with the same key is not duplicated either. */
  private insertJob(j: NewJob, now: number): number {
    if (j.idempotencyKey) {
      this.db
        .prepare('UPDATE jobs SET idempotency_key = NULL WHERE idempotency_key = ? AND key_expires_at IS NOT NULL AND key_expires_at <= ?')
        .run(j.idempotencyKey, now);
    }
    const row = this.db
      .prepare(
        `INSERT INTO jobs (type, queue, payload, payload_hash, priority, run_at, state, max_attempts,
                           idempotency_key, key_ttl_ms, parent_id, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?)
         ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
         RETURNING id`,
      )
      .get(
        j.type,
        j.queue,
        j.payloadText ?? JSON.stringify(j.payload),
        storedPayloadHash(j),
        j.priority,
        j.runAt,
        j.runAt > now ? 'scheduled' : 'available',
        j.maxAttempts,
        j.idempotencyKey,
        j.keyTtlMs,
        now,
      ) as { id: number } | undefined;
    if (row) return row.id;
    return (this.db.prepare('SELECT id FROM jobs WHERE idempotency_key = ?').get(j.idempotencyKey) as { id: number }).id;
  }

  async listFires(name: string, limit: number): Promise<FireRecord[]> {
    const rows = this.db
      .prepare('SELECT * FROM schedule_fires WHERE schedule = ? ORDER BY fire_at DESC LIMIT ?')
      .all(name, limit) as { schedule: string; fire_at: number; job_id: number; term: number; fired_at: number }[];
    return rows.map((r) => ({ schedule: r.schedule, fireAt: r.fire_at, jobId: String(r.job_id), term: r.term, firedAt: r.fired_at }));
  }

  async pruneJobs(p: PruneJobsParams): Promise<Record<string, number>> {
    const clauses = [
      'state = ?',
      'finished_at < ?',
      // A live key names its job until keyTtlMs after it finished: a retried enqueue must find it, not make another.
      '(idempotency_key IS NULL OR key_expires_at <= ?)',
      // A parent still running (a workflow in join) reads its children's outcomes: they stay while it does, and while
      // it is dead, since a redrive resumes it.
      `NOT EXISTS (SELECT 1 FROM jobs parent WHERE parent.id = jobs.parent_id
                     AND parent.state NOT IN ('completed', 'cancelled', 'compensated'))`,
      // A dead job that holds its ordering key (orderingOnDead 'wait') holds it until it is redriven or purged:
      // pruned, the key's later jobs would run without it.
      "NOT (state = 'dead' AND ordering_key IS NOT NULL AND ordering_on_dead = 'wait')",
    ];
    const params: unknown[] = [p.state, p.finishedBefore, p.now];
    if (p.onlyTypes) clauses.push(`type IN (${placeholders(p.onlyTypes.length) || 'NULL'})`), params.push(...p.onlyTypes);
    if (p.exceptTypes?.length) clauses.push(`type NOT IN (${placeholders(p.exceptTypes.length)})`), params.push(...p.exceptTypes);
    return this.write(() => {
      this.checkFence(p.fence, p.now);
      const rows = this.db
        .prepare(`DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE ${clauses.join(' AND ')} ORDER BY finished_at LIMIT ?) RETURNING id, type`)
        .all(...params, p.limit) as { id: number; type: string }[];
      const delEvents = this.db.prepare('DELETE FROM job_events WHERE job_id = ?');
      const delOnce = this.db.prepare('DELETE FROM job_once WHERE job_id = ?');
      const counts: Record<string, number> = {};
      for (const r of rows) {
        delEvents.run(r.id);
        delOnce.run(r.id);
        counts[r.type] = (counts[r.type] ?? 0) + 1;
      }
      const record = this.db.prepare(
        `INSERT INTO pruned_counts (type, state, count, last_pruned_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (type, state) DO UPDATE SET count = count + excluded.count, last_pruned_at = excluded.last_pruned_at`,
      );
      for (const [type, n] of Object.entries(counts)) record.run(type, p.state, n, p.now);
      return counts;
    });
  }

  async pruneExpiredKeys(p: { fence: Fence; now: number; limit: number }): Promise<number> {
    return this.write(() => {
      this.checkFence(p.fence, p.now);
      return this.db
        .prepare(
          `UPDATE jobs SET idempotency_key = NULL WHERE id IN (
             SELECT id FROM jobs WHERE idempotency_key IS NOT NULL AND key_expires_at IS NOT NULL AND key_expires_at <= ? LIMIT ?)`,
        )
        .run(p.now, p.limit).changes;
    });
  }

  async pruneFires(p: { fence: Fence; before: number; limit: number; now: number }): Promise<number> {
    return this.write(() => {
      this.checkFence(p.fence, p.now);
      return this.db
        .prepare(
          `DELETE FROM schedule_fires WHERE rowid IN (SELECT rowid FROM schedule_fires WHERE fire_at < ? ORDER BY fire_at LIMIT ?)`,
        )
        .run(p.before, p.limit).changes;
    });
  }

  async prunedCounts(): Promise<PrunedCount[]> {
    const rows = this.db.prepare('SELECT * FROM pruned_counts ORDER BY type, state').all() as {
      type: string;
      state: string;
      count: number;
      last_pruned_at: number;
    }[];
    return rows.map((r) => ({ type: r.type, state: r.state, count: r.count, lastPrunedAt: r.last_pruned_at }));
  }
}
