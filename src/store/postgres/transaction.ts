/**
 * One transaction on a pooled client: BEGIN, `fn`, COMMIT, or ROLLBACK on error.
 * A client whose connection broke meanwhile (a restart, pg_terminate_backend)
 * is destroyed, not returned to the pool for the next caller to trip on.
 */
import type pg from 'pg';

export async function withTransaction<T>(pool: pg.Pool, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  const onError = (err: Error) => (broken ??= err);
  client.on('error', onError);
  try {
    await client.query('BEGIN');
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
