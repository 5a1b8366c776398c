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

/** Calls `onWrite` (at most once per turn of the event loop) when the file's log changes; returns the stop. */
export function watchWrites(dbPath: string, onWrite: () => void): () => void {
  const wal = `${basename(dbPath)}-wal`;
  let pending = false;
  let watcher: FSWatcher;
  try {
    watcher = watch(dirname(dbPath), { persistent: false }, (_event, file) => {
      if (file !== wal || pending) return;
      pending = true;
      setImmediate(() => {
        pending = false;
        onWrite();
      });
    });
  } catch {
    return () => {};
  }
  watcher.on('error', () => watcher.close());
  return () => watcher.close();
}
