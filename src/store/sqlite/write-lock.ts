/**
 * Waiting for SQLite's one write lock without blocking the event loop.
 *
 * SQLite's own busy handler (`busy_timeout`) sleeps inside the call, so a
 * process whose write waits on another process's long transaction (a large
 * `enqueueMany`, a migration) stops its timers, its heartbeats, its handlers'
 * I/O and its HTTP server for as long as it waits. Here the connection's
 * busy handler waits only briefly (BUSY_SPIN_MS, which covers the usual
 * transaction of a few milliseconds), and a longer wait is spent in timers
 * between tries, up to WRITE_WAIT_MS in all, as before; then the write fails
 * with SQLITE_BUSY as it did.
 *
 * Only a transaction that never started is tried again: BEGIN IMMEDIATE takes
 * the lock before `fn` runs, and in WAL mode a transaction that holds it is
 * not refused later, so `fn` runs at most once.
 */
import type Database from 'better-sqlite3';

/** How long SQLite's own busy handler may block the thread before a write gives the event loop back. */
export const BUSY_SPIN_MS = 20;
/** How long a write waits for the lock in all before it fails with SQLITE_BUSY. */
export const WRITE_WAIT_MS = 10_000;
/** The longest pause between tries; the first is 1 ms, doubling. */
const MAX_PAUSE_MS = 50;

export function isBusy(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('SQLITE_BUSY');
}

const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Runs `fn` in a write transaction that holds the write lock from its start (BEGIN IMMEDIATE). While another
 * connection holds the lock, the wait is spent in timers, so this process's event loop keeps running.
 */
export async function writeTransaction<T>(db: Database.Database, fn: () => T, waitMs = WRITE_WAIT_MS): Promise<T> {
  const deadline = Date.now() + waitMs;
  let started = false;
  const body = () => {
    started = true;
    return fn();
  };
  for (let pauseMs = 1; ; pauseMs = Math.min(pauseMs * 2, MAX_PAUSE_MS)) {
    try {
      return db.transaction(body).immediate();
    } catch (err) {
      if (started || !isBusy(err) || Date.now() + pauseMs > deadline) throw err;
    }
    await pause(pauseMs);
  }
}
