/** Workflow runs, step history and signals on PostgreSQL (tables from migrations/workflows.ts). */
import type pg from 'pg';
import { isJobId } from '../../engine/job-query.ts';
import { JobNotFoundError, LeaseLostError } from '../../errors.ts';
import type { ErrorInfo, JobState, Json } from '../../job.ts';
import {
  refuseSignalIfFinished,
  type RunStatus,
  type SendSignalParams,
  type StepRecord,
  type WorkflowRun,
  type WorkflowSignal,
  type WorkflowStore,
} from '../workflows.ts';
import { withTransaction } from './transaction.ts';

interface RunRow {
  job_id: number;
  type: string;
  version: number;
  status: string;
  state: string | null;
  waiting: string | null;
  error: ErrorInfo | null;
  created_at: number;
  updated_at: number;
}

interface StepRow {
  seq: number;
  name: string;
  kind: string;
  status: string;
  result: Json | null;
  error: ErrorInfo | null;
  attempts: number;
  wake_at: number | null;
  started_at: number;
  finished_at: number | null;
  compensation: string;
  compensation_attempts: number;
  compensation_error: ErrorInfo | null;
}

interface SignalRow {
  id: number;
  name: string;
  payload: Json;
  created_at: number;
  consumed_by: number | null;
}

const json = (v: unknown) => (v == null ? null : JSON.stringify(v));

const toRun = (r: RunRow): WorkflowRun => ({
  jobId: String(r.job_id),
  type: r.type,
  version: r.version,
  status: r.status as RunStatus,
  state: r.state,
  waiting: r.waiting,
  error: r.error,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

const toStep = (r: StepRow): StepRecord => ({
  seq: r.seq,
  name: r.name,
  kind: r.kind as StepRecord['kind'],
  status: r.status as StepRecord['status'],
  result: r.result,
  error: r.error,
  attempts: r.attempts,
  wakeAt: r.wake_at,
  startedAt: r.started_at,
  finishedAt: r.finished_at,
  compensation: r.compensation as StepRecord['compensation'],
  compensationAttempts: r.compensation_attempts,
  compensationError: r.compensation_error,
});

const toSignal = (r: SignalRow): WorkflowSignal => ({
  id: String(r.id),
  name: r.name,
  payload: r.payload,
  createdAt: r.created_at,
  consumedBy: r.consumed_by,
});

const WAKE = `
  UPDATE jobs j SET state = 'available', run_at = LEAST(j.run_at, $3::bigint)
  WHERE j.id = $1 AND j.state = 'scheduled'
    AND EXISTS (SELECT 1 FROM workflow_runs r WHERE r.job_id = j.id AND r.waiting = $2)
  RETURNING j.id`;

/**
 * A fenced write's check ($1 the job, the given parameter its lease token, NULL for an unfenced write): the job
 * runs under that token. FOR SHARE holds its row until the write commits, so a rescue or a re-claim (which
 * updates the row) waits for it, and one committed first fails the check: the successor reads every step
 * its predecessor recorded, and the predecessor records nothing after it.
 */
const fence = (token: string) =>
  `fence AS (SELECT 1 FROM jobs WHERE id = $1 AND lease_token = ${token} AND state = 'running' FOR SHARE)`;
const fenced = (token: string) => `(${token}::bigint IS NULL OR EXISTS (SELECT 1 FROM fence))`;

export class PostgresWorkflowStore implements WorkflowStore {
  /** `pool` runs with search_path set to the store's schema; `channel` is the store's wake-up channel. */
  constructor(
    private readonly pool: pg.Pool,
    private readonly channel: string,
  ) {}

  async startRun(p: { jobId: string; type: string; version: number; state: string | null; now: number; token?: number }): Promise<WorkflowRun> {
    const { rows } = await this.pool.query<RunRow>(
      `WITH ${fence('$6')}, ins AS (
         INSERT INTO workflow_runs (job_id, type, version, status, state, created_at, updated_at)
         SELECT $1::bigint, $2::text, $3::int, 'running', $4::text, $5::bigint, $5::bigint WHERE ${fenced('$6')}
         ON CONFLICT (job_id) DO NOTHING RETURNING *)
       SELECT * FROM ins UNION ALL SELECT * FROM workflow_runs WHERE job_id = $1 AND ${fenced('$6')}`,
      [Number(p.jobId), p.type, p.version, p.state, p.now, p.token ?? null],
    );
    if (!rows[0]) throw new LeaseLostError(p.jobId);
    return toRun(rows[0]);
  }

  async getRun(jobId: string): Promise<WorkflowRun | null> {
    if (!isJobId(jobId)) return null;
    const { rows } = await this.pool.query<RunRow>('SELECT * FROM workflow_runs WHERE job_id = $1', [Number(jobId)]);
    return rows[0] ? toRun(rows[0]) : null;
  }

  async updateRun(
    jobId: string,
    patch: { status?: RunStatus; state?: string | null; waiting?: string | null; error?: ErrorInfo | null },
    now: number,
    token?: number,
  ): Promise<void> {
    const params: unknown[] = [Number(jobId), now, token ?? null];
    const sets = ['updated_at = $2'];
    const add = (col: string, v: unknown) => (params.push(v), sets.push(`${col} = $${params.length}`));
    if (patch.status !== undefined) add('status', patch.status);
    if (patch.state !== undefined) add('state', patch.state);
    if (patch.waiting !== undefined) add('waiting', patch.waiting);
    if (patch.error !== undefined) add('error', json(patch.error));
    const { rowCount } = await this.pool.query(
      `WITH ${fence('$3')} UPDATE workflow_runs SET ${sets.join(', ')} WHERE job_id = $1 AND ${fenced('$3')}`,
      params,
    );
    if (rowCount === 0 && token !== undefined) throw new LeaseLostError(jobId);
  }

  async listSteps(jobId: string): Promise<StepRecord[]> {
    const { rows } = await this.pool.query<StepRow>('SELECT * FROM workflow_steps WHERE job_id = $1 ORDER BY seq', [Number(jobId)]);
    return rows.map(toStep);
  }

  async saveStep(jobId: string, s: StepRecord, token?: number): Promise<StepRecord> {
    const done = `workflow_steps.status = 'completed'`;
    const { rows } = await this.pool.query<StepRow>(
      `WITH ${fence('$15')}
       INSERT INTO workflow_steps AS workflow_steps (job_id, seq, name, kind, status, result, error, attempts, wake_at,
                                  started_at, finished_at, compensation, compensation_attempts, compensation_error)
       SELECT $1::bigint, $2::int, $3::text, $4::text, $5::text, $6::jsonb, $7::jsonb, $8::int, $9::bigint,
              $10::bigint, $11::bigint, $12::text, $13::int, $14::jsonb
       WHERE ${fenced('$15')}
       ON CONFLICT (job_id, seq) DO UPDATE SET
         status = CASE WHEN ${done} THEN workflow_steps.status ELSE excluded.status END,
         result = CASE WHEN ${done} THEN workflow_steps.result ELSE excluded.result END,
         error = CASE WHEN ${done} THEN workflow_steps.error ELSE excluded.error END,
         attempts = CASE WHEN ${done} THEN workflow_steps.attempts ELSE excluded.attempts END,
         finished_at = CASE WHEN ${done} THEN workflow_steps.finished_at ELSE excluded.finished_at END,
         wake_at = excluded.wake_at,
         compensation = excluded.compensation,
         compensation_attempts = excluded.compensation_attempts,
         compensation_error = excluded.compensation_error
       RETURNING *`,
      [
        Number(jobId),
        s.seq,
        s.name,
        s.kind,
        s.status,
        json(s.result),
        json(s.error),
        s.attempts,
        s.wakeAt,
        s.startedAt,
        s.finishedAt,
        s.compensation,
        s.compensationAttempts,
        json(s.compensationError),
        token ?? null,
      ],
    );
    if (!rows[0]) throw new LeaseLostError(jobId);
    return toStep(rows[0]);
  }

  async wakeMissed(now: number): Promise<number> {
    // Notes and parents are taken with SKIP LOCKED, so two workers' passes never wait for each other. A parent
    // locked right now (going to sleep) keeps its note for the next pass; one that is running will see the
    // child when it sleeps (the child is committed: its note is visible); a parent that is gone drops its note.
    const { rows } = await this.pool.query<{ woke: number }>(
      `WITH note AS (SELECT ctid, parent_id FROM workflow_missed_wakes LIMIT 1000 FOR UPDATE SKIP LOCKED),
       parent AS (SELECT id, state FROM jobs WHERE id IN (SELECT parent_id FROM note) FOR UPDATE SKIP LOCKED),
       woke AS (
         UPDATE jobs j SET state = 'available', run_at = LEAST(j.run_at, $1::bigint)
         FROM parent p
         WHERE j.id = p.id AND p.state = 'scheduled'
           AND EXISTS (SELECT 1 FROM workflow_runs r WHERE r.job_id = j.id AND r.waiting = 'children')
         RETURNING j.id),
       done AS (
         DELETE FROM workflow_missed_wakes w USING note n
         WHERE w.ctid = n.ctid
           AND (n.parent_id IN (SELECT id FROM parent) OR NOT EXISTS (SELECT 1 FROM jobs WHERE id = n.parent_id)))
       SELECT count(*)::int AS woke FROM woke`,
      [now],
    );
    if (rows[0].woke > 0) await this.pool.query('SELECT pg_notify($1, $2)', [this.channel, '*']);
    return rows[0].woke;
  }

  async sendSignal(p: SendSignalParams): Promise<{ signalId: string; woke: boolean }> {
    // Lock the job first. Without it, a workflow going to sleep at the same moment could miss the signal:
    // this statement would see it still running (its sleep not yet committed) while its sleep's trigger
    // could not yet see this uncommitted signal. With the lock, one of the two waits for the other to commit.
    // The lock also makes the finished check hold until the insert commits: under READ COMMITTED, FOR UPDATE
    // waits for a finish under way and then reads the row it committed, and a finish that comes later waits for us.
    const { rows } = await withTransaction(this.pool, async (c) => {
      const job = await c.query<{ type: string; state: JobState }>('SELECT type, state FROM jobs WHERE id = $1 FOR UPDATE', [Number(p.jobId)]);
      if (!job.rows[0]) throw new JobNotFoundError(p.jobId);
      refuseSignalIfFinished({ id: p.jobId, ...job.rows[0] });
      return c.query<{ id: number; woke: boolean }>(
        `WITH sig AS (
           INSERT INTO workflow_signals (job_id, name, payload, created_at) VALUES ($1, $4, $5, $3) RETURNING id),
         woke AS (${WAKE})
         SELECT (SELECT id FROM sig) AS id, EXISTS (SELECT 1 FROM woke) AS woke`,
        [Number(p.jobId), `signal:${p.name}`, p.now, p.name, JSON.stringify(p.payload)],
      );
    });
    if (rows[0].woke) await this.pool.query('SELECT pg_notify($1, $2)', [this.channel, '*']);
    return { signalId: String(rows[0].id), woke: rows[0].woke };
  }

  async takeSignal(p: { jobId: string; name: string; seq: number; now: number }): Promise<WorkflowSignal | null> {
    const mine = await this.pool.query<SignalRow>('SELECT * FROM workflow_signals WHERE job_id = $1 AND consumed_by = $2', [
      Number(p.jobId),
      p.seq,
    ]);
    if (mine.rows[0]) return toSignal(mine.rows[0]);
    try {
      const { rows } = await this.pool.query<SignalRow>(
        `UPDATE workflow_signals SET consumed_by = $3
         WHERE id = (SELECT id FROM workflow_signals WHERE job_id = $1 AND name = $2 AND consumed_by IS NULL
                     ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
         RETURNING *`,
        [Number(p.jobId), p.name, p.seq],
      );
      if (rows[0]) return toSignal(rows[0]);
    } catch (err) {
      if ((err as { code?: string }).code !== '23505') throw err;
    }
    // Another executor of this run may have taken a signal for this position meanwhile: that one is the position's.
    const again = await this.pool.query<SignalRow>('SELECT * FROM workflow_signals WHERE job_id = $1 AND consumed_by = $2', [
      Number(p.jobId),
      p.seq,
    ]);
    return again.rows[0] ? toSignal(again.rows[0]) : null;
  }

  async listSignals(jobId: string): Promise<WorkflowSignal[]> {
    const { rows } = await this.pool.query<SignalRow>('SELECT * FROM workflow_signals WHERE job_id = $1 ORDER BY id', [Number(jobId)]);
    return rows.map(toSignal);
  }
}
