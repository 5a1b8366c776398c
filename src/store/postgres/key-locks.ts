/**
 * The locks a keyed insert takes on its idempotency keys before it writes (PostgreSQL).
 *
 * Without them, two inserts sharing new keys deadlock: each frees expired keys and inserts rows in its
 * caller's order, so one can hold key A's row while waiting for the other's uncommitted key B, which in turn
 * waits for A; the server then aborts one whole batch. With every key's lock taken first, in one global order
 * (sorted hashes), the later insert waits for the earlier to commit before it writes anything, and reads its
 * rows as existing: no cycle can form. Chosen over retrying on 40P01, which would cost each deadlock the
 * server's deadlock_timeout (1 s) and cannot be done inside a caller's transaction.
 *
 * A lock per key takes an entry of the server's shared lock table (max_locks_per_transaction × connections,
 * 6,400 by default), which a batch of thousands of keys would exhaust. So a batch of more than PER_KEY_MAX keys
 * locks every key at once: it holds the keyed-insert lock exclusively, while smaller keyed inserts hold it
 * shared before their keys' locks. A caller's transaction that enqueues twice holds the first insert's locks
 * while it takes the second's: two such transactions can deadlock, like any two taking locks in different orders.
 */
import type { Queryable } from './postgres-store.ts';

/** Advisory locks keyed by two int4 values, apart from the other Rebound locks (see handoff.ts). */
const KEYED_INSERT_CLASS = 1380077125;
const KEY_CLASS = 1380077131;
/** PostgreSQL's default max_locks_per_transaction: a transaction within it uses no more than its share of the table. */
const PER_KEY_MAX = 64;

/** Waits for the locks of `keys` of the store in `schema`, held until the transaction ends. */
export async function lockKeys(db: Queryable, schema: string, keys: string[]): Promise<void> {
  const distinct = [...new Set(keys)];
  if (distinct.length > PER_KEY_MAX) {
    await db.query(`SELECT pg_advisory_xact_lock(${KEYED_INSERT_CLASS}, hashtext($1))`, [schema]);
    return;
  }
  await db.query(`SELECT pg_advisory_xact_lock_shared(${KEYED_INSERT_CLASS}, hashtext($1))`, [schema]);
  // Two keys with one hash share a lock: they wait for each other, in the same order everywhere.
  await db.query(
    `SELECT count(pg_advisory_xact_lock(${KEY_CLASS}, h))
     FROM (SELECT DISTINCT hashtext($1 || ':' || k) AS h FROM unnest($2::text[]) AS k ORDER BY h) hashes`,
    [schema, distinct],
  );
}
