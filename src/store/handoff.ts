/**
 * Hand-off: an idle worker offers its free slots, and an enqueue's own
 * statement (a lone job, or a group commit of up to 100) hands new jobs to it,
 * already leased. The pickup then costs one durable commit (the enqueue's)
 * instead of two (the enqueue's, then a claim's).
 *
 * A store that cannot tell a worker about a hand-off at once (SQLite has no
 * cross-process notification) has no hand-off; its workers only claim.
 *
 * What a handed job is: a row inserted as 'running', attempt 1, lease token 1,
 * leased to the offering worker for the offer's lease. From there it is a
 * claimed job like any other: heartbeats renew it, its outcome carries its
 * token, and if the worker never runs it (it died in the offer's last seconds)
 * the lease expires and the lease rescue puts it back.
 */
import type { Job } from '../job.ts';

export interface JobOffer {
  workerId: string;
  /**
   * The connection the worker hears hand-offs on (PostgreSQL: its LISTEN connection's backend pid, from
   * `Store.onWake`, whose session holds the listener lock). While it is gone, nothing is handed to the
   * offer: a worker killed with its offer open gets no jobs once the database has seen its connection
   * close. Only a worker that froze, or a network that dropped without closing, keeps receiving jobs
   * until the offer lapses (`ttlMs`).
   */
  listener: number;
  queues: string[];
  types: string[];
  /** How many jobs may be handed over before the worker offers again. */
  slots: number;
  /** The lease a handed job gets (the worker's shortest; heartbeats extend each to its own). */
  leaseMs: number;
  /** The offer is void after `now + ttlMs` unless renewed: a worker that died stops receiving jobs by then. */
  ttlMs: number;
  now: number;
}

export interface HandoffStore {
  /**
   * Creates or renews this worker's offer. Returns how many jobs the store has
   * handed to the worker in all, so the worker can tell whether a notification
   * went missing.
   */
  offer(o: JobOffer): Promise<number>;
  /**
   * Withdraws the offer: once this returns, no job is handed to the worker any more. Returns the
   * withdrawn offer's hand-off count (0 if there was none); the next offer counts from 0 again.
   */
  withdraw(workerId: string): Promise<number>;
  /**
   * The jobs handed to this worker and still leased to it under their first
   * token: the ones in `only` if given, else all of them, leaving out `except`.
   */
  handedJobs(workerId: string, select: { only?: string[]; except: string[] }): Promise<Job[]>;
}
