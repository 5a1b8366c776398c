/**
 * Per-key ordering on PostgreSQL. Jobs with an ordering key get their key's
 * next sequence numbers from a counter row, bumped in the inserting
 * transaction: its row lock makes concurrent enqueues of one key take numbers
 * in commit order, so a claimer never sees a later job of a key before an
 * earlier one. A claim takes only the head of each key: a job with no earlier
 * job of its key still unfinished (a dead one counts as unfinished unless it
 * was enqueued with orderingOnDead 'skip').
 */
import type { NewJob } from '../../job.ts';
import type { InsertedJob } from '../store.ts';
import type { Queryable } from './postgres-store.ts';
import { toJob, type JobRow } from './rows.ts';

/**
 * The claim condition for the `jobs` table of the enclosing query. A job cancelled while running holds its key
 * while its lease lasts: its handler hears of the cancel only at its next heartbeat, and the worker then ends
 * the lease (recordLeaseLost). `now` is the SQL of the caller's time; without one, any lease left holds the key
 * (nextRunAt has no clock; a claim, which has, decides).
 */
export const orderingHead = (now?: string) => `(jobs.ordering_key IS NULL OR NOT EXISTS (
  SELECT 1 FROM jobs prev
  WHERE prev.ordering_key = jobs.ordering_key AND prev.ordering_seq < jobs.ordering_seq
    AND (prev.state IN ('scheduled', 'available', 'running') OR (prev.state = 'dead' AND prev.ordering_on_dead = 'wait')
         OR (prev.state = 'cancelled' AND prev.lease_expires_at ${now ? `> ${now}` : 'IS NOT NULL'}))))`;

/** Numbers the newly inserted jobs that carry an ordering key; `out[i]` is the outcome of `jobs[i]`. */
export async function orderJobs(db: Queryable, schema: string, jobs: NewJob[], out: (InsertedJob | string)[]): Promise<void> {
  const picked = jobs.flatMap((j, i) => {
    const o = out[i];
    return j.orderingKey && typeof o !== 'string' && o.inserted ? [{ i, id: Number(o.job.id), key: j.orderingKey, onDead: j.orderingOnDead ?? 'wait' }] : [];
  });
  if (picked.length === 0) return;
  const { rows } = await db.query<JobRow>(
    `WITH wanted AS (
       SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[]) WITH ORDINALITY AS w(id, key, on_dead, ord)),
     bumped AS (
       INSERT INTO ${schema}.ordering_keys (key, last_seq)
       SELECT key, count(*) FROM wanted GROUP BY key ORDER BY key
       ON CONFLICT (key) DO UPDATE SET last_seq = ordering_keys.last_seq + EXCLUDED.last_seq
       RETURNING key, last_seq),
     numbered AS (
       SELECT w.id, w.key, w.on_dead,
              b.last_seq - count(*) OVER (PARTITION BY w.key) + row_number() OVER (PARTITION BY w.key ORDER BY w.ord) AS seq
       FROM wanted w JOIN bumped b USING (key))
     UPDATE ${schema}.jobs j SET ordering_key = n.key, ordering_seq = n.seq, ordering_on_dead = n.on_dead
     FROM numbered n WHERE j.id = n.id
     RETURNING j.*`,
    [picked.map((p) => p.id), picked.map((p) => p.key), picked.map((p) => p.onDead)],
  );
  const byId = new Map(rows.map((r) => [String(r.id), r]));
  for (const p of picked) {
    const o = out[p.i] as InsertedJob;
    const row = byId.get(o.job.id);
    if (row) o.job = toJob(row);
  }
}

/**
 * A dead 'skip' job of the selection (`where`, AND clauses on `jobs` with parameters from $1) whose key went on
 * without it, and still has a later job unfinished (one may be running), gets its key's next sequence number:
 * redriven in place it would be its key's head beside that running job. Run in the redriving transaction, before
 * the redrive. A claim only ever turns a later unfinished job into a running one, so none can start unseen.
 */
export async function moveSkippedBehindLater(db: Queryable, where: string, params: unknown[]): Promise<void> {
  await db.query(
    `WITH moving AS (
       SELECT id, ordering_key AS key, row_number() OVER (PARTITION BY ordering_key ORDER BY ordering_seq) AS n
       FROM jobs WHERE state = 'dead' ${where} AND ordering_key IS NOT NULL AND ordering_on_dead = 'skip'
         AND EXISTS (SELECT 1 FROM jobs later WHERE later.ordering_key = jobs.ordering_key AND later.ordering_seq > jobs.ordering_seq
           AND (later.state IN ('scheduled', 'available', 'running') OR (later.state = 'cancelled' AND later.lease_expires_at IS NOT NULL)))),
     bumped AS (
       UPDATE ordering_keys k SET last_seq = k.last_seq + c.count
       FROM (SELECT key, count(*) AS count FROM moving GROUP BY key) c WHERE k.key = c.key
       RETURNING k.key, k.last_seq, c.count)
     UPDATE jobs j SET ordering_seq = b.last_seq - b.count + m.n FROM moving m JOIN bumped b USING (key) WHERE j.id = m.id`,
    params,
  );
}
