/**
 * A job's whole life, read back in order. The happy path (enqueued, claimed,
 * completed) lives in the job row's timestamps so it costs no extra writes;
 * every other transition is a stored event, ordered by a store sequence,
 * never by wall clocks. Each stored event that ends an attempt carries the
 * attempt's start, so the claim that began it is restored here.
 */
import type { Attempt, ErrorInfo, Job, JobEvent } from '../job.ts';

const ATTEMPT_ENDINGS: Record<string, Attempt['outcome']> = {
  retry_scheduled: 'retried',
  dead: 'dead',
  lease_expired: 'lease_expired',
  released: 'released',
  snoozed: 'snoozed',
};

export function jobHistory(job: Job, stored: JobEvent[]): { history: JobEvent[]; attempts: Attempt[] } {
  const history: Omit<JobEvent, 'seq'>[] = [{ at: job.createdAt, kind: 'enqueued', attempt: 0 }];
  const attempts: Attempt[] = [];
  // The attempt number the row holds if nothing claimed the job since its last attempt ended.
  let attemptSinceEnded = 0;
  for (const e of stored) {
    const outcome = ATTEMPT_ENDINGS[e.kind];
    const startedAt = typeof e.data?.startedAt === 'number' ? e.data.startedAt : null;
    // A release or a snooze gives its attempt back; a redrive starts the count over.
    if (e.kind === 'redriven') attemptSinceEnded = 0;
    if (outcome && startedAt != null) {
      attemptSinceEnded = e.kind === 'released' || e.kind === 'snoozed' ? e.attempt - 1 : e.attempt;
      history.push({ at: startedAt, kind: 'claimed', attempt: e.attempt, worker: e.worker });
      const error = e.data?.error as unknown as ErrorInfo | undefined;
      attempts.push({ attempt: e.attempt, worker: e.worker ?? null, startedAt, endedAt: e.at, outcome, ...(error ? { error } : {}) });
    }
    history.push({ at: e.at, kind: e.kind, attempt: e.attempt, worker: e.worker, data: e.data });
  }
  const lastEnded = attempts.at(-1);
  // The row's claim is the last ended attempt's unless the job was claimed since: then its attempt number moved on.
  const current = job.startedAt != null && !(lastEnded && lastEnded.startedAt === job.startedAt && job.attempt === attemptSinceEnded);
  if (current && (job.state === 'running' || job.state === 'completed' || job.state === 'cancelled' || job.state === 'compensated')) {
    history.push({ at: job.startedAt!, kind: 'claimed', attempt: job.attempt, worker: job.leaseOwner });
    // A compensated workflow's last attempt ended normally: its handler returned after undoing the steps.
    const done = job.state === 'completed' || job.state === 'compensated';
    attempts.push({
      attempt: job.attempt,
      worker: job.leaseOwner,
      startedAt: job.startedAt!,
      endedAt: done ? job.finishedAt : job.state === 'cancelled' ? job.finishedAt : null,
      outcome: done ? 'completed' : job.state === 'cancelled' ? 'cancelled' : 'running',
    });
    if (done) history.push({ at: job.finishedAt!, kind: job.state, attempt: job.attempt, worker: job.leaseOwner });
  }
  // A cancel of a running job is stored before the synthetic claim; keep causal order: claim, then cancel.
  const ordered = history.map((h, i) => ({ h, i }));
  if (job.state === 'cancelled' && current) {
    const cancelIdx = ordered.findIndex((o) => o.h.kind === 'cancelled');
    const claimIdx = ordered.length - 1;
    if (cancelIdx >= 0 && ordered[claimIdx].h.kind === 'claimed') {
      const [claim] = ordered.splice(claimIdx, 1);
      ordered.splice(cancelIdx, 0, claim);
    }
  }
  return { history: ordered.map((o, i) => ({ seq: i + 1, ...o.h })), attempts };
}
