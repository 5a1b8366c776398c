/**
 * One transaction on a pooled client: BEGIN, `fn`, COMMIT, or ROLLBACK on error.
 * A client whose connection broke meanwhile (a restart, pg_terminate_backend)
 * is destroyed, not returned to the pool for the next caller to trip on.
 */
import type pg from 'pg';

/**
 * How long a transaction that locks something every process shares (a breaker's row, the leader
 * lease's row) may sit idle before the server ends it. Such a transaction lasts milliseconds; a process
 * frozen inside one (SIGSTOP, a paused VM, a long GC) would otherwise make every other process wait for it.
 */
export const SHARED_LOCK_IDLE_TIMEOUT_MS = 2000;

export async function withTransaction<T>(
  pool: pg.Pool,
  fn: (c: pg.PoolClient) => Promise<T>,
  opts: { idleTimeoutMs?: number } = {},
): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  const onError = (err: Error) => (broken ??= err);
  client.on('error', onError);
  try {
    // One round trip either way: a simple query may hold two statements.
    await client.query(opts.idleTimeoutMs ? `BEGIN; SET LOCAL idle_in_transaction_session_timeout = ${Math.ceil(opts.idleTimeoutMs)}` : 'BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    client.removeListener('error', onError);
    client.release(broken);
  }
}
