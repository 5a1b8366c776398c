/**
 * Real worker processes (`rebound worker`) for the experiment. The pool brings
 * a dead worker back after a short pause, as a supervisor would, and records
 * every exit with its cause: killed by the harness, killed by a poison job
 * (its own SIGKILL), or an unexpected exit (which is a finding).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const BIN = fileURLToPath(new URL('../bin/rebound.mjs', import.meta.url));
export const CHAOS_JOBS = fileURLToPath(new URL('./jobs.ts', import.meta.url));

export interface WorkerExit {
  pid: number;
  at: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  cause: 'harness' | 'self-kill (poison)' | 'shutdown' | 'store unreachable at start' | 'unexpected';
  /** The last lines the worker wrote, for unexpected exits. */
  tail?: string;
}

export interface PoolOptions {
  storeUrl: string;
  size: number;
  concurrency: number;
  env: Record<string, string>;
  restartDelayMs?: number;
}

interface Member {
  child: ChildProcess;
  output: string;
  startedAt: number;
}

export class WorkerPool {
  readonly exits: WorkerExit[] = [];
  private readonly members = new Map<number, Member>();
  private readonly killedByHarness = new Set<number>();
  private readonly stopped = new Set<number>();
  private running = false;
  started = 0;

  constructor(private readonly opts: PoolOptions) {}

  start(): void {
    this.running = true;
    for (let i = 0; i < this.opts.size; i++) this.spawnOne();
  }

  private spawnOne(): void {
    const child = spawn(
      process.execPath,
      [BIN, 'worker', '--jobs', CHAOS_JOBS, '--store', this.opts.storeUrl, '--concurrency', String(this.opts.concurrency)],
      { env: { ...process.env, REBOUND_LOG_LEVEL: 'error', REBOUND_LOG_FORMAT: 'json', ...this.opts.env }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const pid = child.pid!;
    const member: Member = { child, output: '', startedAt: Date.now() };
    const keep = (d: Buffer) => (member.output = (member.output + d.toString()).slice(-8000));
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    this.members.set(pid, member);
    this.started++;
    child.once('exit', (code, signal) => {
      this.members.delete(pid);
      this.stopped.delete(pid);
      const cause: WorkerExit['cause'] = this.killedByHarness.has(pid)
        ? 'harness'
        : !this.running
          ? 'shutdown'
          : signal === 'SIGKILL'
            ? 'self-kill (poison)'
            : code === 2 && member.output.includes('cannot prepare the store')
              ? 'store unreachable at start'
              : 'unexpected';
      this.exits.push({ pid, at: Date.now(), code, signal, cause, ...(cause === 'unexpected' ? { tail: member.output.slice(-3000) } : {}) });
      if (this.running) setTimeout(() => this.running && this.spawnOne(), this.opts.restartDelayMs ?? 300).unref();
    });
  }

  /** Live worker pids that are not stopped (SIGSTOP). */
  pids(): number[] {
    return [...this.members.keys()].filter((p) => !this.stopped.has(p));
  }

  /** A live worker that has been up for at least `minUpMs` (so it has had time to claim work), if any. */
  pick(random: () => number, minUpMs = 1500): number | null {
    const now = Date.now();
    const ready = this.pids().filter((p) => now - this.members.get(p)!.startedAt >= minUpMs);
    const from = ready.length ? ready : this.pids();
    return from.length ? from[Math.floor(random() * from.length)] : null;
  }

  kill(pid: number): void {
    this.killedByHarness.add(pid);
    this.members.get(pid)?.child.kill('SIGKILL');
  }

  pause(pid: number): void {
    this.stopped.add(pid);
    this.members.get(pid)?.child.kill('SIGSTOP');
  }

  resume(pid: number): void {
    this.members.get(pid)?.child.kill('SIGCONT');
    this.stopped.delete(pid);
  }

  /** SIGTERM (graceful), then SIGKILL whatever is still there after `graceMs`. */
  async stop(graceMs = 15_000): Promise<void> {
    this.running = false;
    const left = [...this.members.values()].map((m) => m.child);
    const exited = left.map((c) => new Promise<void>((r) => (c.exitCode !== null || c.signalCode !== null ? r() : c.once('exit', () => r()))));
    for (const c of left) {
      c.kill('SIGCONT');
      c.kill('SIGTERM');
    }
    const timer = setTimeout(() => left.forEach((c) => c.kill('SIGKILL')), graceMs);
    await Promise.all(exited);
    clearTimeout(timer);
  }
}
