/**
 * Real worker processes (`rebound worker`) for the experiment, in one of two
 * modes. Unsupervised, the pool runs N worker processes itself and brings a
 * dead one back after a short pause. Supervised, it runs one
 * `rebound worker --processes N` (the supervisor restarts its children) and
 * brings the supervisor back when it dies, as systemd would. Every exit of a
 * process the pool started is recorded with its cause: killed by the harness,
 * killed by a poison job (its own SIGKILL), or unexpected (a finding).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
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
  /** Run the workers under `rebound worker --processes N`. */
  supervised?: boolean;
  /** Supervised: the supervisor kills a child whose heartbeats stop this long (a frozen or blocked process). */
  livenessTimeoutMs?: number;
}

/** The live worker processes among the children of `pid` (not, for example, tsx's esbuild service). */
function childrenOf(pid: number): number[] {
  let kids: number[];
  try {
    kids = execFileSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' }).trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
  return kids.filter((k) => {
    try {
      return readFileSync(`/proc/${k}/cmdline`, 'utf8').includes(BIN);
    } catch {
      return false;
    }
  });
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

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
  /** Supervised: every worker pid seen, so orphans of a killed supervisor can be accounted for and cleaned up. */
  private readonly seenChildren = new Map<number, number>();
  private running = false;
  private watcher: NodeJS.Timeout | null = null;
  /** Supervised: worker processes still alive a grace period after the run ended (then killed). */
  lingered = 0;
  /** Processes the pool started (workers, or supervisors when supervised). */
  started = 0;

  constructor(private readonly opts: PoolOptions) {}

  start(): void {
    this.running = true;
    for (let i = 0; i < (this.opts.supervised ? 1 : this.opts.size); i++) this.spawnOne();
    if (this.opts.supervised) this.watcher = setInterval(() => this.pids(), 250);
  }

  private spawnOne(): void {
    const args = [BIN, 'worker', '--jobs', CHAOS_JOBS, '--store', this.opts.storeUrl, '--concurrency', String(this.opts.concurrency)];
    if (this.opts.supervised) {
      args.push('--processes', String(this.opts.size), '--restart-delay', '200');
      if (this.opts.livenessTimeoutMs) args.push('--liveness-timeout', String(this.opts.livenessTimeoutMs));
    }
    const child = spawn(
      process.execPath,
      args,
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
            : code === 1 && member.output.includes('error: store_unavailable:')
              ? 'store unreachable at start'
              : 'unexpected';
      this.exits.push({ pid, at: Date.now(), code, signal, cause, ...(cause === 'unexpected' ? { tail: member.output.slice(-3000) } : {}) });
      if (this.running) setTimeout(() => this.running && this.spawnOne(), this.opts.restartDelayMs ?? 300).unref();
    });
  }

  /** The supervisor's pid (supervised mode), if one is running. */
  supervisorPid(): number | null {
    return this.opts.supervised ? ([...this.members.keys()][0] ?? null) : null;
  }

  /** Live worker pids that are not stopped (SIGSTOP) nor already killed (a killed process is listed until it is reaped). */
  pids(): number[] {
    const usable = (p: number) => !this.stopped.has(p) && !this.killedByHarness.has(p);
    if (!this.opts.supervised) return [...this.members.keys()].filter(usable);
    const sup = this.supervisorPid();
    const kids = sup ? childrenOf(sup) : [];
    for (const k of kids) if (!this.seenChildren.has(k)) this.seenChildren.set(k, Date.now());
    return kids.filter(usable);
  }

  /** A live worker that has been up for at least `minUpMs` (so it has had time to claim work), if any. */
  pick(random: () => number, minUpMs = 1500): number | null {
    const now = Date.now();
    const pids = this.pids();
    const startedAt = (p: number) => (this.opts.supervised ? this.seenChildren.get(p)! : this.members.get(p)!.startedAt);
    const ready = pids.filter((p) => now - startedAt(p) >= minUpMs);
    const from = ready.length ? ready : pids;
    return from.length ? from[Math.floor(random() * from.length)] : null;
  }

  /** How long a worker has been up (as far as the pool has seen). */
  upFor(pid: number): number {
    const since = this.opts.supervised ? this.seenChildren.get(pid) : this.members.get(pid)?.startedAt;
    return since == null ? 0 : Date.now() - since;
  }

  private signal(pid: number, sig: NodeJS.Signals) {
    try {
      process.kill(pid, sig);
    } catch {
      // already gone
    }
  }

  kill(pid: number): void {
    this.killedByHarness.add(pid);
    this.signal(pid, 'SIGKILL');
  }

  /** SIGKILL of the supervisor (supervised mode); the pool starts a new one. Returns its pid. */
  killSupervisor(): number | null {
    this.pids();
    const pid = this.supervisorPid();
    if (pid != null) this.kill(pid);
    return pid;
  }

  pause(pid: number): void {
    this.stopped.add(pid);
    this.signal(pid, 'SIGSTOP');
  }

  resume(pid: number): void {
    this.signal(pid, 'SIGCONT');
    this.stopped.delete(pid);
  }

  /** SIGTERM (graceful), then SIGKILL whatever is still there after `graceMs`. */
  async stop(graceMs = 15_000): Promise<void> {
    this.running = false;
    if (this.watcher) clearInterval(this.watcher);
    this.pids();
    const left = [...this.members.values()].map((m) => m.child);
    const exited = left.map((c) => new Promise<void>((r) => (c.exitCode !== null || c.signalCode !== null ? r() : c.once('exit', () => r()))));
    for (const c of left) {
      c.kill('SIGCONT');
      c.kill('SIGTERM');
    }
    const timer = setTimeout(() => left.forEach((c) => c.kill('SIGKILL')), graceMs);
    await Promise.all(exited);
    clearTimeout(timer);
    // Orphans of a killed supervisor drain and exit by themselves; give them the same grace, then make sure.
    const end = Date.now() + graceMs;
    while ([...this.seenChildren.keys()].some(alive) && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
    for (const pid of this.seenChildren.keys()) {
      if (!alive(pid)) continue;
      this.lingered++;
      this.signal(pid, 'SIGKILL');
    }
  }
}
