/**
 * Reads the job store's tables once the system is quiet: every job's final
 * row and the lease events, straight from SQL, so the verdict does not rest
 * on the code under test.
 */
import Database from 'better-sqlite3';
import pg from 'pg';

export interface JobRow {
  id: string;
  type: string;
  state: string;
  deadReason: string | null;
  attempt: number;
  crashCount: number;
  key: string | null;
  finishedAt: number | null;
}

export interface LeaseEvent {
  jobId: string;
  kind: 'lease_expired' | 'lease_lost';
  worker: string | null;
  at: number;
}

export interface Snapshot {
  jobs: JobRow[];
  events: LeaseEvent[];
}

const JOBS_SQL = 'SELECT id, type, state, dead_reason, attempt, crash_count, idempotency_key, finished_at FROM jobs';
const EVENTS_SQL = "SELECT job_id, kind, worker, at FROM job_events WHERE kind IN ('lease_expired', 'lease_lost')";

type Raw = Record<string, unknown>;
const toJob = (r: Raw): JobRow => ({
  id: String(r.id),
  type: String(r.type),
  state: String(r.state),
  deadReason: (r.dead_reason as string) ?? null,
  attempt: Number(r.attempt),
  crashCount: Number(r.crash_count),
  key: (r.idempotency_key as string) ?? null,
  finishedAt: r.finished_at == null ? null : Number(r.finished_at),
});
const toEvent = (r: Raw): LeaseEvent => ({
  jobId: String(r.job_id),
  kind: r.kind as LeaseEvent['kind'],
  worker: (r.worker as string) ?? null,
  at: Number(r.at),
});

export async function snapshot(storeUrl: string): Promise<Snapshot> {
  if (storeUrl.startsWith('sqlite:')) {
    const db = new Database(storeUrl.slice('sqlite:'.length), { readonly: true });
    try {
      return { jobs: (db.prepare(JOBS_SQL).all() as Raw[]).map(toJob), events: (db.prepare(EVENTS_SQL).all() as Raw[]).map(toEvent) };
    } finally {
      db.close();
    }
  }
  const url = new URL(storeUrl);
  const schema = url.searchParams.get('schema') ?? 'rebound';
  url.searchParams.delete('schema');
  url.searchParams.set('application_name', 'chaos-control');
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  try {
    await client.query(`SET search_path TO "${schema.replace(/"/g, '""')}"`);
    const jobs = (await client.query(JOBS_SQL)).rows.map(toJob);
    const events = (await client.query(EVENTS_SQL)).rows.map(toEvent);
    return { jobs, events };
  } finally {
    await client.end();
  }
}
