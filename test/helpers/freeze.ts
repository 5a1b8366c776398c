/**
 * Freezing a worker process (SIGSTOP) for the stall tests, at a moment it holds no SQLite write lock.
 * SQLite has one writer at a time: a process frozen inside a write transaction locks every other process out
 * until it runs again (SQLite's single-writer design, docs/coordination.md), which is not the stall these tests
 * are about. Frozen inside one, it is thawed at once and frozen again a little later. On PostgreSQL a freeze
 * at any moment is the case under test (the server ends a frozen process's idle transaction).
 */
import Database from 'better-sqlite3';
import { sleep } from './stores.ts';

export async function freezeOutsideWrite(p: { kill(s: NodeJS.Signals): boolean }, url: string): Promise<void> {
  for (let tries = 0; tries < 100; tries++) {
    p.kill('SIGSTOP');
    if (!url.startsWith('sqlite:') || writable(url.slice('sqlite:'.length))) return;
    p.kill('SIGCONT');
    await sleep(10 + tries);
  }
  throw new Error('the process held the SQLite write lock at each of 100 tries');
}

/** Whether a write transaction could begin on the SQLite file now (another connection holds no write lock). */
function writable(file: string): boolean {
  const db = new Database(file, { timeout: 0 });
  try {
    db.exec('BEGIN IMMEDIATE');
    db.exec('ROLLBACK');
    return true;
  } catch (e) {
    if ((e as { code?: string }).code === 'SQLITE_BUSY') return false;
    throw e;
  } finally {
    db.close();
  }
}
