/**
 * A bulk insert by COPY, PostgreSQL's fastest way in: it writes a heap
 * page's rows with one write-ahead-log record (an INSERT ... SELECT writes
 * one per row; 287 against 332 bytes of log per job) and parses plain text
 * instead of a JSON parameter. A 1,000-job `enqueueMany` took 9-12 % less
 * time this way (docs/benchmarks.md).
 *
 * COPY returns no rows, so the ids are drawn from the jobs' sequence first,
 * in one round trip. It serves only jobs without idempotency keys or ordering
 * keys (nothing to resolve, no conflict to report) outside a caller's
 * transaction: one COPY statement commits all of them or none.
 *
 * The rows may be sent in parts (`openCopy`): PostgreSQL stores each part as
 * it arrives, so the caller can build and validate the next part meanwhile.
 * A large `enqueueMany` does (engine/bulk-enqueue.ts).
 */
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import type { NewJob } from '../../job.ts';
import type { BulkInsert, InsertedJob } from '../store.ts';
import { newJob } from '../new-job.ts';

const COLUMNS = 'id, type, queue, payload, payload_hash, priority, run_at, state, max_attempts, key_ttl_ms, parent_id, created_at, trace_context';
const NULL = '\\N';

/** COPY's text format: a backslash, tab, newline or carriage return inside a value is escaped. */
const SPECIAL = /[\\\t\n\r]/;
const ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };
const escape = (s: string) => (SPECIAL.test(s) ? s.replace(/[\\\t\n\r]/g, (c) => ESCAPES[c]) : s);

/** One job's line after its id (each line starts with the id, drawn separately). */
function lineAfterId(j: NewJob, state: string, now: number): string {
  const payload = escape(j.payloadText ?? JSON.stringify(j.payload));
  const trace = j.traceContext == null ? NULL : escape(j.traceContext);
  // payload_hash is stored only for keyed jobs (store/new-job.ts), and these have none.
  return `\t${escape(j.type)}\t${escape(j.queue)}\t${payload}\t\t${j.priority}\t${j.runAt}\t${state}\t${j.maxAttempts}\t${j.keyTtlMs}\t${j.parentId ?? NULL}\t${now}\t${trace}\n`;
}

/**
 * Opens a COPY of `count` jobs into `table` (the jobs table's quoted, schema-qualified name, `"schema".jobs`;
 * its sequence is `<table>_id_seq`), ready for rows: their ids are drawn and the server has answered the COPY.
 */
export async function openCopy(pool: pg.Pool, table: string, count: number, now: number): Promise<BulkInsert> {
  const sequence = `${table}_id_seq`.replace(/'/g, "''");
  const client = await pool.connect();
  let stream: CopyStream | undefined;
  try {
    const { rows } = await client.query<{ ids: string }>({
      name: `rebound_job_ids:${table}`,
      text: `SELECT array_to_string(array_agg(nextval('${sequence}')), ',') AS ids FROM generate_series(1, $1::int)`,
      values: [count],
    });
    // Ascending, so the jobs' ids follow the call's order like any other insert's.
    const ids = rows[0].ids.split(',').map(Number).sort((a, b) => a - b);
    const copy = (stream = client.query(copyFrom(`COPY ${table} (${COLUMNS}) FROM STDIN`)) as CopyStream);
    const finished = new Promise<void>((resolve, reject) => {
      copy.on('error', reject);
      copy.on('finish', resolve);
    });
    finished.catch(() => {}); // awaited by end(); an abort's own error is expected
    // pg-copy-streams holds written rows until the server's CopyInResponse; wait for it, so that each part
    // written from here on goes to the socket at once and the server starts on it.
    const answered = new Promise<void>((resolve) => {
      const handle = copy.handleCopyInResponse.bind(copy);
      copy.handleCopyInResponse = (connection) => {
        handle(connection);
        resolve();
      };
    });
    await Promise.race([answered, finished]);
    let closed = false;
    const close = (err?: Error) => {
      if (!closed) client.release(err);
      closed = true;
    };
    return {
      write(jobs, offset) {
        // Joined, not concatenated: a flat string is encoded for the socket several times faster than a rope.
        const lines: string[] = [];
        const out: InsertedJob[] = [];
        for (let k = 0; k < jobs.length; k++) {
          const j = jobs[k];
          const id = ids[offset + k];
          const state = j.runAt > now ? 'scheduled' : 'available';
          lines.push(id + lineAfterId(j, state, now));
          out.push({ job: newJob(j, id, state, now), inserted: true, payloadHash: j.payloadHash });
        }
        copy.write(lines.join(''));
        return out;
      },
      async end() {
        copy.end();
        try {
          await finished;
          close();
        } catch (err) {
          close(err as Error); // a COPY cut short may leave the connection mid-protocol: closed, not reused
          throw err;
        }
      },
      async abort(reason) {
        if (closed) return;
        // CopyFail: the server rolls the COPY back; nothing written is stored.
        copy.destroy(reason);
        await finished.catch(() => {});
        close(reason);
      },
    };
  } catch (err) {
    stream?.destroy(err as Error);
    client.release(err as Error);
    throw err;
  }
}

/** A COPY at once: every job of `jobs` in one statement. */
export async function copyJobs(pool: pg.Pool, table: string, jobs: NewJob[], now: number): Promise<InsertedJob[]> {
  const copy = await openCopy(pool, table, jobs.length, now);
  try {
    const inserted = copy.write(jobs, 0);
    await copy.end();
    return inserted;
  } catch (err) {
    await copy.abort(err as Error); // after a failed end() the connection is closed already, and this does nothing
    throw err;
  }
}

/** pg-copy-streams' COPY FROM stream, with the hook it is told of the server's CopyInResponse by. */
type CopyStream = ReturnType<typeof copyFrom> & { handleCopyInResponse(connection: unknown): void };
