/**
 * What a submission's audit entry commits to about its jobs, and `verify --jobs`: the check of those entries
 * against the jobs as stored now. A single submission (`job.submit`) records its job's type, queue, parent and
 * payload digest in clear; a bulk one (`job.submit.batch`) a digest of the same for each of its jobs. Both stay as
 * stored for a job's life, so a job whose payload, type, queue or parent was changed behind the library's back
 * no longer matches the entry that submitted it.
 */
import { hash as hashText } from 'node:crypto';
import { payloadHash } from '../engine/enqueue-input.ts';
import type { Job } from '../job.ts';
import type { Store } from '../store/store.ts';
import type { AuditEntry } from '../store/visibility.ts';
import type { AuditProblem } from './audit.ts';

/** A single submission's entry (a schedule's fire is one too, without a payload digest: it is not checked). */
export const SINGLE_SUBMIT = 'job.submit';

/**
 * What a batch entry's `jobs_digest` commits to for one job: the JSON array `[id, type, queue, payload_digest,
 * parent_id]`, which stay as stored for the job's life (an idempotency key is released when its TTL ends, so the
 * entry lists keys in `idempotency_keys` instead).
 */
export function batchLine(job: Pick<Job, 'id' | 'type' | 'queue' | 'parentId'>, payloadDigest: string): string {
  return JSON.stringify([job.id, job.type, job.queue, payloadDigest, job.parentId]);
}

/** sha256 of the batch's lines (batchLine), each ended by a newline, in the entry's `ids` order. */
export function batchDigest(lines: string[]): string {
  return hashText('sha256', lines.map((l) => `${l}\n`).join(''));
}

/** A bulk enqueue's entry: `details.count` new jobs submitted at once (single submissions are `job.submit`). */
export const BATCH_SUBMIT = 'job.submit.batch';
/** The most jobs one `job.submit.batch` entry lists; a larger call is recorded as several entries. */
export const BATCH_ENTRY_JOBS = 1000;


/**
 * Jobs named by entries but missing from the store, each counted once across entries, against the removals the
 * trail and retention recorded (`removed`).
 */
export interface GoneJobs {
  ids: Set<string>;
  removed: number;
}

/**
 * Recomputes a batch entry's jobs_digest from the stored jobs: null when it matches, 'skipped' when some of its
 * jobs are gone and their removal is recorded.
 *
 * Retention and purges record how many jobs they removed (by type and state), not which: a job is taken as
 * removed while the jobs missing so far (`gone.ids`, each counted once across entries) are no more than the
 * removals recorded (`gone.removed`, the numbers `reconcile` uses). A missing job beyond that is a failure,
 * named with its entry; a deletion behind the library's back hides among recorded removals at most.
 */
export async function checkBatch(store: Store, e: AuditEntry, gone: GoneJobs): Promise<AuditProblem | 'skipped' | null> {
  const d = e.details as { ids: string[]; jobs_digest: string };
  const stored = new Map((await store.listJobs({ ids: [...new Set(d.ids)], limit: d.ids.length })).map((j) => [j.id, j]));
  const lines: string[] = [];
  let missing = false;
  for (const id of d.ids) {
    const j = stored.get(id);
    if (j) {
      lines.push(batchLine(j, payloadHash(j.type, j.payload)));
      continue;
    }
    missing = true;
    gone.ids.add(id);
    if (gone.ids.size > gone.removed) return unrecordedRemoval(e, id, gone);
  }
  if (missing) return 'skipped';
  if (batchDigest(lines) === d.jobs_digest) return null;
  return { seq: e.seq!, id: e.id, reason: `entry seq ${e.seq} (id ${e.id}, ${BATCH_SUBMIT}) does not match the jobs it names: a job's payload, type, queue or parent was changed` };
}


/** The single submissions' details that are checked: those that name a payload digest. */
interface SubmitDetails {
  type: string;
  queue: string;
  parent_id: string | null;
  payload_digest: string;
}

export function isCheckedSubmission(e: AuditEntry): boolean {
  return e.action === SINGLE_SUBMIT && typeof (e.details as { payload_digest?: unknown } | null)?.payload_digest === 'string';
}

/**
 * Checks single submissions (isCheckedSubmission) against their jobs, read in one query: the first problem, or
 * how many matched and how many name a job whose removal is recorded.
 */
export async function checkSubmissions(
  store: Store,
  entries: AuditEntry[],
  gone: GoneJobs,
): Promise<{ problem: AuditProblem | null; checked: number; skipped: number }> {
  const ids = [...new Set(entries.map((e) => e.target.slice('job:'.length)))];
  const stored = new Map((await store.listJobs({ ids, limit: ids.length })).map((j) => [j.id, j]));
  let checked = 0;
  let skipped = 0;
  for (const e of entries) {
    const id = e.target.slice('job:'.length);
    const d = e.details as unknown as SubmitDetails;
    const j = stored.get(id);
    if (!j) {
      gone.ids.add(id);
      if (gone.ids.size > gone.removed) return { problem: unrecordedRemoval(e, id, gone), checked, skipped };
      skipped++;
      continue;
    }
    const same = j.type === d.type && j.queue === d.queue && j.parentId === d.parent_id && payloadHash(j.type, j.payload) === d.payload_digest;
    if (!same) {
      const reason = `entry seq ${e.seq} (id ${e.id}, ${SINGLE_SUBMIT}) does not match job ${id}: its payload, type, queue or parent was changed`;
      return { problem: { seq: e.seq!, id: e.id, reason }, checked, skipped };
    }
    checked++;
  }
  return { problem: null, checked, skipped };
}

function unrecordedRemoval(e: AuditEntry, jobId: string, gone: GoneJobs): AuditProblem {
  return {
    seq: e.seq!,
    id: e.id,
    reason:
      `entry seq ${e.seq} (id ${e.id}, ${e.action}) names job ${jobId}, which is not in the store and whose removal is not recorded: ` +
      `${gone.ids.size} job(s) named by submissions are gone, ${gone.removed} removed by retention or a dead-letter purge`,
  };
}
