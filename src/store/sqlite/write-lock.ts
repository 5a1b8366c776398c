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
 *
 * The writes of one connection that find the lock taken wait in one line, and
 * only its head tries again: each try spins in the busy handler, so fifty
 * writes trying on their own (a worker's completions, heartbeats, claims)
 * blocked the thread for the whole wait, and committed in any order.
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

/** A connection's writes waiting for the lock, oldest first: the tail settles once the last of them is done. */
interface Line {
  waiting: number;
  tail: Promise<void>;
}
const lines = new WeakMap<Database.Database, Line>();
const waits = new WeakMap<Database.Database, number>();

/** How long this connection's writes wait for the lock in all (default WRITE_WAIT_MS); tests that hold the lock shorten it. */
export function setWriteWaitMs(db: Database.Database, ms: number): void {
  waits.set(db, ms);
}

/**
 * Runs `fn` in a write transaction that holds the write lock from its start (BEGIN IMMEDIATE). While another
 * connection holds the lock, the wait is spent in timers, so this process's event loop keeps running.
 */
export async function writeTransaction<T>(db: Database.Database, fn: () => T, waitMs = waits.get(db) ?? WRITE_WAIT_MS): Promise<T> {
  const deadline = Date.now() + waitMs;
  let started = false;
  const body = () => {
    started = true;
    return fn();
  };
  const attempt = () => db.transaction(body).immediate();
  let line = lines.get(db);
  if (!line) lines.set(db, (line = { waiting: 0, tail: Promise.resolve() }));
  if (line.waiting === 0) {
    try {
      return attempt();
    } catch (err) {
      if (started || !isBusy(err)) throw err;
    }
  }
  line.waiting++;
  const ahead = line.tail;
  let leave!: () => void;
  line.tail = new Promise((resolve) => (leave = resolve));
  try {
    await ahead;
    for (let pauseMs = 1; ; pauseMs = Math.min(pauseMs * 2, MAX_PAUSE_MS)) {
      try {
        return attempt();
      } catch (err) {
        if (started || !isBusy(err) || Date.now() + pauseMs > deadline) throw err;
      }
      await pause(pauseMs);
    }
  } finally {
    line.waiting--;
    leave();
  }
}
