/**
 * A large `enqueueMany` on a store that takes an insert in parts
 * (`Store.openBulkInsert`: PostgreSQL's COPY). The jobs are validated and
 * sent part by part, so the database stores each part while the next one is
 * being validated: the call takes about the database's time, not the
 * database's plus this process's (docs/benchmarks.md). Nothing is stored
 * unless every job is valid: the first invalid one aborts the insert, and
 * its error is the one `enqueueMany` would throw anyway.
 *
 * Each part goes through the plugins' `wrapEnqueue` on its own (tracing gives
 * its jobs their producer spans); every part's result settles once the whole
 * batch is stored, or fails with it.
 */
import type { NewJob } from '../job.ts';
import type { BulkInsert, InsertedJob } from '../store/store.ts';

/** Jobs per part: large enough that a part is cheap to send, small enough that the first is stored early. */
export const PART_SIZE = 250;

export type InsertThroughPlugins = (jobs: NewJob[], insert: () => Promise<InsertedJob[]>) => Promise<InsertedJob[]>;

export async function streamJobs(
  bulk: BulkInsert,
  count: number,
  build: (i: number) => NewJob,
  throughPlugins: InsertThroughPlugins,
): Promise<{ jobs: NewJob[]; inserted: InsertedJob[] }> {
  let settle!: { stored: () => void; failed: (err: unknown) => void };
  const stored = new Promise<void>((resolve, reject) => (settle = { stored: resolve, failed: reject }));
  stored.catch(() => {}); // a part that was never sent has nothing waiting on it
  const jobs: NewJob[] = [];
  const parts: Promise<InsertedJob[]>[] = [];
  const sent: Promise<void>[] = [];
  try {
    for (let from = 0; from < count; from += PART_SIZE) {
      const part: NewJob[] = [];
      for (let i = from; i < Math.min(count, from + PART_SIZE); i++) part.push(build(i));
      jobs.push(...part);
      let markSent!: () => void;
      sent.push(new Promise<void>((resolve) => (markSent = resolve)));
      const done = throughPlugins(part, () => {
        const out = bulk.write(part, from);
        markSent();
        return stored.then(() => out);
      });
      done.catch(() => {}); // its failure is the batch's, thrown below; never an unhandled rejection meanwhile
      parts.push(done);
    }
    // A plugin may call next() late; one that settles without calling it has refused its part, and so the batch.
    await Promise.all(
      sent.map((s, k) => {
        const refused = parts[k].then(() => {
          throw new Error("a plugin's wrapEnqueue returned without calling next(): the bulk enqueue stored nothing");
        });
        refused.catch(() => {});
        return Promise.race([s, refused]);
      }),
    );
    await bulk.end();
  } catch (err) {
    await bulk.abort(err instanceof Error ? err : new Error(String(err)));
    settle.failed(err);
    await Promise.allSettled(parts);
    throw err;
  }
  settle.stored();
  return { jobs, inserted: (await Promise.all(parts)).flat() };
}
