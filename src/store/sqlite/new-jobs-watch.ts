/**
 * Wake-ups across processes on SQLite, which has no notifications: a watch of the database's directory
 * (inotify on Linux, through `fs.watch`) sees the write-ahead log change whenever any process commits. Each
 * change reads the highest job id, one step down the table's b-tree, and wakes only when it grew: new jobs
 * wake idle workers at once, while the other commits (claims, completions, heartbeats) wake nobody.
 *
 * Polling stays the backstop for what the watch does not see: jobs that come due, a redrive in another
 * process (it reuses the rows), and file systems where watching fails (then this watch is simply off).
 * This process's own enqueues wake its workers at once; the watch skips them when they follow the last id
 * it saw, so a worker is not woken twice for one job (an empty claim after it), while a job another process
 * committed in between still wakes everyone.
 */
import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import type Database from 'better-sqlite3';

/** How long after a change that showed no new job to read once more. */
const RECHECK_MS = 1;

export class NewJobsWatch {
  private watcher: FSWatcher | null = null;
  private recheck: NodeJS.Timeout | null = null;
  private pending = false;
  private lastId = 0;
  private readonly highestId: Database.Statement;

  /** Watches the file at `path` (not `:memory:`); calls `onNewJobs` when another connection added jobs. */
  constructor(
    private readonly db: Database.Database,
    path: string,
    private readonly onNewJobs: () => void,
  ) {
    this.highestId = db.prepare('SELECT max(id) FROM jobs').pluck();
    this.lastId = this.read();
    const files = new Set([basename(path), `${basename(path)}-wal`]);
    try {
      // A commit writes the log a page at a time, each write a change: one read after the burst, not one per page.
      this.watcher = watch(dirname(path), { persistent: false }, (_event, file) => {
        if (file == null || !files.has(file) || this.pending) return;
        this.pending = true;
        setImmediate(() => {
          this.pending = false;
          this.check();
        });
      });
      this.watcher.on('error', () => this.close());
    } catch {
      this.watcher = null; // no watching here (inotify limits, an unusual file system): polling only
    }
  }

  /**
   * This process inserted jobs `first` to `last` and woke its own workers. When they follow the last id the
   * watch saw, no other process's job came in between, and the watch need not wake anyone for them.
   */
  inserted(first: number, last: number): void {
    if (first === this.lastId + 1) this.lastId = last;
  }

  get watching(): boolean {
    return this.watcher !== null;
  }

  close(): void {
    if (this.recheck) clearTimeout(this.recheck);
    this.recheck = null;
    this.watcher?.close();
    this.watcher = null;
  }

  /**
   * A commit writes the log's frames, which the watch sees, and then its index in the shared memory file,
   * which it does not (a mapped file): a read right after the last frame may not see the commit yet. So a
   * change that shows nothing new is read again once, a moment later.
   */
  private check(again = true) {
    if (!this.db.open) return this.close();
    const id = this.read();
    if (id > this.lastId) {
      this.lastId = id;
      this.onNewJobs();
    } else if (again && !this.recheck) {
      this.recheck = setTimeout(() => {
        this.recheck = null;
        this.check(false);
      }, RECHECK_MS);
      this.recheck.unref();
    }
  }

  private read(): number {
    try {
      return (this.highestId.get() as number | null) ?? 0;
    } catch {
      return this.lastId; // a read that fails now (the file mid-recovery) is retried by the next change
    }
  }
}
