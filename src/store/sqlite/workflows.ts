/** Workflow runs, step history and signals on SQLite (tables from migrations/workflows.ts). */
import type Database from 'better-sqlite3';
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
import { writeTransaction } from './write-lock.ts';

interface RunRow {
  job_id: number;
  type: string;
  version: number;
  status: string;
  state: string | null;
  waiting: string | null;
  error: string | null;
  created_at: number;
  updated_at: number;
}

interface StepRow {
  seq: number;
  name: string;
  kind: string;
  status: string;
  result: string | null;
  error: string | null;
  attempts: number;
  wake_at: number | null;
  started_at: number;
  finished_at: number | null;
  compensation: string;
  compensation_attempts: number;
  compensation_error: string | null;
}

interface SignalRow {
  id: number;
  name: string;
  payload: string;
  created_at: number;
  consumed_by: number | null;
}

const parse = (t: string | null) => (t == null ? null : JSON.parse(t));
const json = (v: unknown) => (v == null ? null : JSON.stringify(v));

const toRun = (r: RunRow): WorkflowRun => ({
  jobId: String(r.job_id),
  type: r.type,
  version: r.version,
  status: r.status as RunStatus,
  state: r.state,
  waiting: r.waiting,
  error: parse(r.error) as ErrorInfo | null,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

const toStep = (r: StepRow): StepRecord => ({
  seq: r.seq,
  name: r.name,
  kind: r.kind as StepRecord['kind'],
  status: r.status as StepRecord['status'],
  result: parse(r.result) as Json | null,
  error: parse(r.error),
  attempts: r.attempts,
  wakeAt: r.wake_at,
  startedAt: r.started_at,
  finishedAt: r.finished_at,
  compensation: r.compensation as StepRecord['compensation'],
  compensationAttempts: r.compensation_attempts,
  compensationError: parse(r.compensation_error),
});

const toSignal = (r: SignalRow): WorkflowSignal => ({
  id: String(r.id),
  name: r.name,
  payload: JSON.parse(r.payload) as Json,
  createdAt: r.created_at,
  consumedBy: r.consumed_by,
});

export class SqliteWorkflowStore implements WorkflowStore {
  constructor(private readonly db: Database.Database) {}

  private write<T>(fn: () => T): Promise<T> {
    return writeTransaction(this.db, fn);
  }

  /** A fenced write's check, inside its write transaction: the job still runs under this lease token. */
  private fence(jobId: string, token: number | undefined): void {
    if (token === undefined) return;
    const held = this.db.prepare("SELECT 1 FROM jobs WHERE id = ? AND lease_token = ? AND state = 'running'").get(Number(jobId), token);
    if (!held) throw new LeaseLostError(jobId);
  }

  async startRun(p: { jobId: string; type: string; version: number; state: string | null; now: number; token?: number }): Promise<WorkflowRun> {
    return this.write(() => {
      this.fence(p.jobId, p.token);
      this.db
        .prepare(
          `INSERT INTO workflow_runs (job_id, type, version, status, state, created_at, updated_at)
           VALUES (?, ?, ?, 'running', ?, ?, ?) ON CONFLICT (job_id) DO NOTHING`,
        )
        .run(Number(p.jobId), p.type, p.version, p.state, p.now, p.now);
      return toRun(this.db.prepare('SELECT * FROM workflow_runs WHERE job_id = ?').get(Number(p.jobId)) as RunRow);
    });
  }

  async getRun(jobId: string): Promise<WorkflowRun | null> {
    const row = this.db.prepare('SELECT * FROM workflow_runs WHERE job_id = ?').get(Number(jobId)) as RunRow | undefined;
    return row ? toRun(row) : null;
  }

  async updateRun(
    jobId: string,
    patch: { status?: RunStatus; state?: string | null; waiting?: string | null; error?: ErrorInfo | null },
    now: number,
    token?: number,
  ): Promise<void> {
    const sets: string[] = ['updated_at = ?'];
    const params: unknown[] = [now];
    if (patch.status !== undefined) sets.push('status = ?'), params.push(patch.status);
    if (patch.state !== undefined) sets.push('state = ?'), params.push(patch.state);
    if (patch.waiting !== undefined) sets.push('waiting = ?'), params.push(patch.waiting);
    if (patch.error !== undefined) sets.push('error = ?'), params.push(json(patch.error));
    await this.write(() => {
      this.fence(jobId, token);
      this.db.prepare(`UPDATE workflow_runs SET ${sets.join(', ')} WHERE job_id = ?`).run(...params, Number(jobId));
    });
  }

  async listSteps(jobId: string): Promise<StepRecord[]> {
    const rows = this.db.prepare('SELECT * FROM workflow_steps WHERE job_id = ? ORDER BY seq').all(Number(jobId)) as StepRow[];
    return rows.map(toStep);
  }

  async saveStep(jobId: string, s: StepRecord, token?: number): Promise<StepRecord> {
    return this.write(() => {
      this.fence(jobId, token);
      this.db
        .prepare(
          `INSERT INTO workflow_steps (job_id, seq, name, kind, status, result, error, attempts, wake_at, started_at,
                                       finished_at, compensation, compensation_attempts, compensation_error)
           VALUES (@jobId, @seq, @name, @kind, @status, @result, @error, @attempts, @wakeAt, @startedAt,
                   @finishedAt, @compensation, @compensationAttempts, @compensationError)
           ON CONFLICT (job_id, seq) DO UPDATE SET
             status = CASE WHEN workflow_steps.status = 'completed' THEN workflow_steps.status ELSE excluded.status END,
             result = CASE WHEN workflow_steps.status = 'completed' THEN workflow_steps.result ELSE excluded.result END,
             error = CASE WHEN workflow_steps.status = 'completed' THEN workflow_steps.error ELSE excluded.error END,
             attempts = CASE WHEN workflow_steps.status = 'completed' THEN workflow_steps.attempts ELSE excluded.attempts END,
             finished_at = CASE WHEN workflow_steps.status = 'completed' THEN workflow_steps.finished_at ELSE excluded.finished_at END,
             wake_at = excluded.wake_at,
             compensation = excluded.compensation,
             compensation_attempts = excluded.compensation_attempts,
             compensation_error = excluded.compensation_error`,
        )
        .run({
          ...s,
          jobId: Number(jobId),
          result: json(s.result),
          error: json(s.error),
          compensationError: json(s.compensationError),
        });
      return toStep(this.db.prepare('SELECT * FROM workflow_steps WHERE job_id = ? AND seq = ?').get(Number(jobId), s.seq) as StepRow);
    });
  }

  async wakeMissed(): Promise<number> {
    return 0; // One writer at a time: a parent's sleep and its child's last transition never overlap.
  }

  private wakeNow(jobId: string, waiting: string, now: number): boolean {
    const res = this.db
      .prepare(
        `UPDATE jobs SET state = 'available', run_at = min(run_at, ?)
         WHERE id = ? AND state = 'scheduled'
           AND EXISTS (SELECT 1 FROM workflow_runs r WHERE r.job_id = jobs.id AND r.waiting = ?)`,
      )
      .run(now, Number(jobId), waiting);
    return res.changes === 1;
  }

  async sendSignal(p: SendSignalParams): Promise<{ signalId: string; woke: boolean }> {
    return this.write(() => {
      const job = this.db.prepare('SELECT type, state FROM jobs WHERE id = ?').get(Number(p.jobId)) as { type: string; state: JobState } | undefined;
      if (!job) throw new JobNotFoundError(p.jobId);
      refuseSignalIfFinished({ id: p.jobId, ...job });
      const row = this.db
        .prepare('INSERT INTO workflow_signals (job_id, name, payload, created_at) VALUES (?, ?, ?, ?) RETURNING id')
        .get(Number(p.jobId), p.name, JSON.stringify(p.payload), p.now) as { id: number };
      return { signalId: String(row.id), woke: this.wakeNow(p.jobId, `signal:${p.name}`, p.now) };
    });
  }

  async takeSignal(p: { jobId: string; name: string; seq: number; now: number }): Promise<WorkflowSignal | null> {
    return this.write(() => {
      const mine = this.db
        .prepare('SELECT * FROM workflow_signals WHERE job_id = ? AND consumed_by = ?')
        .get(Number(p.jobId), p.seq) as SignalRow | undefined;
      if (mine) return toSignal(mine);
      const next = this.db
        .prepare(
          `UPDATE workflow_signals SET consumed_by = ?
           WHERE id = (SELECT id FROM workflow_signals WHERE job_id = ? AND name = ? AND consumed_by IS NULL ORDER BY id LIMIT 1)
           RETURNING *`,
        )
        .get(p.seq, Number(p.jobId), p.name) as SignalRow | undefined;
      return next ? toSignal(next) : null;
    });
  }

  async listSignals(jobId: string): Promise<WorkflowSignal[]> {
    const rows = this.db.prepare('SELECT * FROM workflow_signals WHERE job_id = ? ORDER BY id').all(Number(jobId)) as SignalRow[];
    return rows.map(toSignal);
  }
}
