/**
 * The demo's own store: `.rebound/demo.db`, emptied at each start so the story
 * begins from nothing, but never while another process still has it open (a
 * second `npm start` in the same checkout would otherwise delete the files of
 * the demo that is running, which carries on unseen on the deleted inode).
 */
import { existsSync, rmSync } from 'node:fs';
import Database from 'better-sqlite3';
import { ConfigError } from '../errors.ts';
import { sqlitePathOf } from '../store/open.ts';

export const DEMO_STORE = 'sqlite:.rebound/demo.db';

/** Empties the demo's store file and returns its URL; refuses if another process has it open. */
export function freshDemoStore(url = DEMO_STORE): string {
  const path = sqlitePathOf(url);
  if (!path) throw new ConfigError(`the demo's store must be a SQLite file, not ${url}`);
  if (inUse(path)) {
    throw new ConfigError(
      `the demo's store ${path} is open in another process (is another \`npm start\` running?): ` +
        'stop that one first, or give this one a store of its own (rebound --store sqlite:PATH start --demo)',
    );
  }
  for (const suffix of ['', '-wal', '-shm']) rmSync(`${path}${suffix}`, { force: true });
  return url;
}

/**
 * Whether another connection has the file open. In WAL mode every open
 * connection holds a shared lock on the database file, so an exclusive lock
 * taken without waiting fails exactly while some process has it open.
 */
function inUse(path: string): boolean {
  if (!existsSync(path)) return false;
  let db: Database.Database | undefined;
  try {
    db = new Database(path, { fileMustExist: true, timeout: 0 });
    db.pragma('locking_mode = EXCLUSIVE');
    db.exec('BEGIN EXCLUSIVE; COMMIT');
    return false;
  } catch (err) {
    // Not a database, or unreadable: nothing of a running demo to keep, so it is emptied like any other.
    return /^SQLITE_(BUSY|LOCKED)/.test((err as { code?: string }).code ?? '');
  } finally {
    db?.close();
  }
}
