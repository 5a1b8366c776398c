/**
 * Runs N worker processes (the `rebound worker` CLI, forked with an IPC
 * channel) and keeps them running:
 * - a process that dies unexpectedly is restarted with exponential backoff;
 *   more than `crashLoop.crashes` crashes within `crashLoop.withinMs` is a crash
 *   loop: reported once (event and log) and restarts slow to `restartMaxMs`;
 * - each process sends heartbeats from its event loop; one silent for
 *   `livenessTimeoutMs` is killed (SIGKILL) and replaced;
 * - a process that reports a handler ignoring its abort past its timeout is
 *   recycled (it stops itself; the supervisor starts a fresh one at once);
 * - `stop()` (SIGTERM for the CLI) sends SIGTERM to every process, which drain
 *   gracefully, and SIGKILLs any still running after `stopTimeoutMs`; `hurry()`
 *   (a second Ctrl-C) tells them to release their running jobs now, uncharged,
 *   and `kill()` (a third) SIGKILLs them;
 * - a process that exits with code 2 (the CLI's configuration error: a jobs file
 *   that does not load, a bad option) before any process has come up is not
 *   restarted, since every restart would fail the same way: the supervisor stops
 *   them all and reports it in `failure`. Once one has come up, the configuration
 *   is known to work and an exit 2 is a crash: restarted with backoff while the
 *   others keep working. (A store that does not answer is exit 1, a crash, always.)
 * If the supervisor itself is killed, the processes see the IPC channel close
 * and drain; leases bring back whatever they could not finish.
 *
 * Events go to `supervisor.events` (a ReboundEmitter; pass `rebound.events`
 * to count them with the rest): supervisor:process_started, :process_exited,
 * :process_restarting, :process_unresponsive, :process_recycling, :crash_loop.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../define.ts';
import { checkSupervisorOptions } from '../config/supervisor-options.ts';
import { ValidationError } from '../errors.ts';
import { ReboundEmitter } from '../events.ts';
import { SUPERVISED_ENV, type ChildMessage, type SupervisorMessage } from './supervised-child.ts';

export const REBOUND_BIN = fileURLToPath(new URL('../../bin/rebound.mjs', import.meta.url));

export interface SupervisorOptions {
  jobsFile: string;
  processes: number;
  /** Store URL passed to every process (default: theirs, from REBOUND_STORE or the embedded default). */
  store?: string;
  concurrency?: number;
  queues?: string[];
  /** Processes exit once there is no work; the supervisor finishes when all have (crashed ones are restarted). */
  drain?: boolean;
  /** More CLI arguments for each `rebound worker` process. */
  workerArgs?: string[];
  heartbeatIntervalMs?: number;
  /** A process silent this long (its event loop blocked) is killed and replaced. */
  livenessTimeoutMs?: number;
  /** Until its first heartbeat, a process may take this long to start. */
  startupTimeoutMs?: number;
  /** How long past its timeout a handler may ignore its abort before its process is recycled. */
  timeoutGraceMs?: number;
  restartBaseMs?: number;
  restartMaxMs?: number;
  /** A process that ran this long without crashing starts its backoff afresh. */
  stableAfterMs?: number;
  crashLoop?: { crashes: number; withinMs: number };
  /** After SIGTERM, how long processes may drain before they are killed. */
  stopTimeoutMs?: number;
  events?: ReboundEmitter;
  logger?: Logger;
  env?: Record<string, string>;
  /** Where the processes' stdout and stderr go (default: inherit). */
  stdio?: 'inherit' | 'ignore';
}

/** Exit code of a `rebound` command refused for its configuration or usage. */
export const CONFIG_ERROR_EXIT = 2;

export type ProcessState = 'starting' | 'running' | 'stopping' | 'restarting' | 'exited';

export interface ProcessInfo {
  slot: number;
  pid: number | null;
  state: ProcessState;
  startedAt: number | null;
  lastHeartbeatAt: number | null;
  inFlight: number;
  restarts: number;
  crashes: number;
  workerId: string | null;
}

interface Slot extends ProcessInfo {
  child: ChildProcess | null;
  /** Why the current process is going away, when the supervisor knows. */
  ending: 'unresponsive' | 'recycled' | 'stopped' | null;
  consecutiveCrashes: number;
  restartTimer: NodeJS.Timeout | null;
  done: boolean;
}

const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return silentLogger;
  },
};

export class Supervisor {
  readonly events: ReboundEmitter;
  /** Resolves when every process has exited after `stop()`, or (drain mode) finished its work. */
  readonly done: Promise<void>;
  /** Set when a process exited with a configuration error (exit 2) and the supervisor stopped because of it. */
  failure: { slot: number; pid: number; code: number } | null = null;
  private readonly opts: Required<Omit<SupervisorOptions, 'store' | 'queues' | 'events' | 'logger' | 'env'>> &
    Pick<SupervisorOptions, 'store' | 'queues' | 'env'>;
  private readonly logger: Logger;
  private readonly slots: Slot[] = [];
  private readonly crashTimes: number[] = [];
  private inCrashLoop = false;
  /** A process has started its worker (sent 'ready'): the configuration works, and an exit 2 is no longer a reason to stop. */
  private cameUp = false;
  private stopping: Promise<void> | null = null;
  private livenessTimer: NodeJS.Timeout | null = null;
  private resolveDone!: () => void;
  private started = false;

  constructor(options: SupervisorOptions) {
    options = checkSupervisorOptions(options);
    this.opts = {
      jobsFile: options.jobsFile,
      processes: options.processes,
      store: options.store,
      concurrency: options.concurrency ?? 10,
      queues: options.queues,
      drain: options.drain ?? false,
      workerArgs: options.workerArgs ?? [],
      heartbeatIntervalMs: options.heartbeatIntervalMs ?? 1000,
      livenessTimeoutMs: options.livenessTimeoutMs ?? 10_000,
      startupTimeoutMs: options.startupTimeoutMs ?? 60_000,
      timeoutGraceMs: options.timeoutGraceMs ?? 5000,
      restartBaseMs: options.restartBaseMs ?? 500,
      restartMaxMs: options.restartMaxMs ?? 30_000,
      stableAfterMs: options.stableAfterMs ?? 30_000,
      crashLoop: options.crashLoop ?? { crashes: 5, withinMs: 60_000 },
      stopTimeoutMs: options.stopTimeoutMs ?? 30_000,
      env: options.env,
      stdio: options.stdio ?? 'inherit',
    };
    if (this.opts.livenessTimeoutMs <= this.opts.heartbeatIntervalMs) {
      throw new ValidationError('livenessTimeoutMs', `must be longer than the heartbeat interval (${this.opts.heartbeatIntervalMs} ms)`);
    }
    this.events = options.events ?? new ReboundEmitter();
    this.logger = options.logger ?? silentLogger;
    this.done = new Promise((r) => (this.resolveDone = r));
  }

  start(): this {
    if (this.started) return this;
    this.started = true;
    for (let i = 0; i < this.opts.processes; i++) {
      const slot: Slot = {
        slot: i,
        pid: null,
        state: 'starting',
        startedAt: null,
        lastHeartbeatAt: null,
        inFlight: 0,
        restarts: 0,
        crashes: 0,
        workerId: null,
        child: null,
        ending: null,
        consecutiveCrashes: 0,
        restartTimer: null,
        done: false,
      };
      this.slots.push(slot);
      this.spawn(slot);
    }
    const every = Math.max(50, Math.floor(Math.min(this.opts.livenessTimeoutMs, this.opts.heartbeatIntervalMs) / 2));
    this.livenessTimer = setInterval(() => this.checkLiveness(), every);
    return this;
  }

  /** The processes as they are now: for `GET /api/workers` and the dashboard. */
  processes(): ProcessInfo[] {
    return this.slots.map(({ slot, pid, state, startedAt, lastHeartbeatAt, inFlight, restarts, crashes, workerId }) => ({
      slot,
      pid,
      state,
      startedAt,
      lastHeartbeatAt,
      inFlight,
      restarts,
      crashes,
      workerId,
    }));
  }

  private args(): string[] {
    const a = ['worker', '--jobs', this.opts.jobsFile, '--concurrency', String(this.opts.concurrency)];
    if (this.opts.store) a.unshift('--store', this.opts.store);
    if (this.opts.queues?.length) a.push('--queues', this.opts.queues.join(','));
    if (this.opts.drain) a.push('--drain');
    return [...a, ...this.opts.workerArgs];
  }

  private spawn(slot: Slot) {
    slot.restartTimer = null;
    if (this.stopping) return this.finish(slot);
    const child = fork(REBOUND_BIN, this.args(), {
      env: {
        ...process.env,
        ...this.opts.env,
        [SUPERVISED_ENV]: '1',
        REBOUND_HEARTBEAT_MS: String(this.opts.heartbeatIntervalMs),
        REBOUND_TIMEOUT_GRACE_MS: String(this.opts.timeoutGraceMs),
      },
      stdio: this.opts.stdio === 'ignore' ? ['ignore', 'ignore', 'ignore', 'ipc'] : ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    slot.child = child;
    slot.pid = child.pid ?? null;
    slot.state = 'starting';
    slot.startedAt = Date.now();
    slot.lastHeartbeatAt = null;
    slot.inFlight = 0;
    slot.ending = null;
    slot.workerId = null;
    child.on('message', (m: ChildMessage) => this.onMessage(slot, child, m));
    child.on('error', (error) => this.logger.error({ slot: slot.slot, err: error.message }, 'worker process error'));
    child.once('exit', (code, signal) => this.onExit(slot, child, code, signal));
    this.events.emit('supervisor:process_started', { slot: slot.slot, pid: child.pid ?? -1, restarts: slot.restarts });
    this.logger.info({ slot: slot.slot, pid: child.pid, restarts: slot.restarts }, 'worker process started');
  }

  private onMessage(slot: Slot, child: ChildProcess, m: ChildMessage) {
    if (slot.child !== child || !m || typeof m !== 'object') return;
    if (m.type === 'heartbeat') {
      slot.lastHeartbeatAt = Date.now();
      slot.inFlight = m.inFlight;
      if (slot.state === 'starting') slot.state = 'running';
    } else if (m.type === 'ready') {
      slot.workerId = m.workerId;
      this.cameUp = true;
    } else if (m.type === 'recycle') {
      slot.ending = 'recycled';
      slot.state = 'stopping';
      this.events.emit('supervisor:process_recycling', { slot: slot.slot, pid: child.pid ?? -1, jobId: m.jobId, reason: m.reason });
      this.logger.warn({ slot: slot.slot, pid: child.pid, job_id: m.jobId, reason: m.reason }, 'recycling worker process');
      // It stops by itself; make sure it does.
      const t = setTimeout(() => child.exitCode === null && child.signalCode === null && child.kill('SIGKILL'), this.opts.stopTimeoutMs);
      t.unref();
    }
  }

  private checkLiveness() {
    const now = Date.now();
    for (const slot of this.slots) {
      const child = slot.child;
      if (!child || slot.ending || child.exitCode !== null || child.signalCode !== null) continue;
      const silentFor = slot.lastHeartbeatAt == null ? now - (slot.startedAt ?? now) : now - slot.lastHeartbeatAt;
      const limit = slot.lastHeartbeatAt == null ? this.opts.startupTimeoutMs : this.opts.livenessTimeoutMs;
      if (silentFor <= limit) continue;
      slot.ending = 'unresponsive';
      this.events.emit('supervisor:process_unresponsive', { slot: slot.slot, pid: child.pid ?? -1, silentMs: silentFor });
      this.logger.error({ slot: slot.slot, pid: child.pid, silent_ms: silentFor }, 'worker process unresponsive (event loop blocked?); killing it');
      child.kill('SIGKILL');
    }
  }

  private onExit(slot: Slot, child: ChildProcess, code: number | null, signal: NodeJS.Signals | null) {
    if (slot.child !== child) return;
    slot.child = null;
    const now = Date.now();
    const reason =
      slot.ending === 'recycled' && code === 0
        ? 'recycled'
        : slot.ending === 'unresponsive'
          ? 'unresponsive'
          : this.stopping
            ? 'stopped'
            : code === 0 && this.opts.drain
              ? 'drained'
              : 'crashed';
    this.events.emit('supervisor:process_exited', { slot: slot.slot, pid: child.pid ?? -1, code, signal, reason });
    this.logger[reason === 'crashed' || reason === 'unresponsive' ? 'warn' : 'info'](
      { slot: slot.slot, pid: child.pid, code, signal, reason },
      'worker process exited',
    );
    // Stopping, nothing is restarted: a process that was being replaced (unresponsive, recycled) when stop()
    // came would otherwise hold stop() for its restart delay, up to restartMaxMs.
    if (reason === 'stopped' || reason === 'drained' || this.stopping) return this.finish(slot);
    if (code === CONFIG_ERROR_EXIT && !this.cameUp) {
      this.failure = { slot: slot.slot, pid: child.pid ?? -1, code };
      this.logger.error({ slot: slot.slot, pid: child.pid, code }, 'worker process refused its configuration (exit 2); stopping every process instead of restarting');
      this.finish(slot);
      void this.stop();
      return;
    }
    let delayMs = 0;
    if (reason !== 'recycled') {
      slot.crashes++;
      if (slot.startedAt != null && now - slot.startedAt > this.opts.stableAfterMs) slot.consecutiveCrashes = 0;
      slot.consecutiveCrashes++;
      delayMs = Math.min(this.opts.restartMaxMs, this.opts.restartBaseMs * 2 ** (slot.consecutiveCrashes - 1));
      this.crashTimes.push(now);
      while (this.crashTimes.length && this.crashTimes[0] < now - this.opts.crashLoop.withinMs) this.crashTimes.shift();
      if (this.crashTimes.length > this.opts.crashLoop.crashes) {
        delayMs = this.opts.restartMaxMs;
        if (!this.inCrashLoop) {
          this.inCrashLoop = true;
          this.events.emit('supervisor:crash_loop', { crashes: this.crashTimes.length, withinMs: this.opts.crashLoop.withinMs, delayMs });
          this.logger.error(
            { crashes: this.crashTimes.length, within_ms: this.opts.crashLoop.withinMs, delay_ms: delayMs },
            'crash loop: worker processes keep dying; restarts slowed',
          );
        }
      } else {
        this.inCrashLoop = false;
      }
    }
    slot.state = 'restarting';
    slot.restarts++;
    this.events.emit('supervisor:process_restarting', { slot: slot.slot, delayMs, reason, crashes: slot.crashes });
    slot.restartTimer = setTimeout(() => this.spawn(slot), delayMs);
  }

  private finish(slot: Slot) {
    slot.state = 'exited';
    slot.done = true;
    if (this.slots.length === this.opts.processes && this.slots.every((s) => s.done)) {
      if (this.livenessTimer) clearInterval(this.livenessTimer);
      this.resolveDone();
    }
  }

  /** Sends SIGTERM to every process and waits for them to drain (SIGKILL after `stopTimeoutMs`). Safe to call twice. */
  stop(): Promise<void> {
    if (this.stopping) return this.stopping;
    if (!this.started) {
      this.resolveDone();
      return (this.stopping = Promise.resolve());
    }
    this.stopping = (async () => {
      if (this.livenessTimer) clearInterval(this.livenessTimer);
      const killers: NodeJS.Timeout[] = [];
      for (const slot of this.slots) {
        if (slot.restartTimer) {
          clearTimeout(slot.restartTimer);
          slot.restartTimer = null;
          this.finish(slot);
          continue;
        }
        const child = slot.child;
        if (!child) continue;
        slot.state = 'stopping';
        slot.ending ??= 'stopped';
        child.kill('SIGTERM');
        killers.push(setTimeout(() => child.kill('SIGKILL'), this.opts.stopTimeoutMs));
      }
      await this.done;
      for (const k of killers) clearTimeout(k);
    })();
    return this.stopping;
  }

  /**
   * Stops (if not yet stopping) and ends the processes' grace now: each aborts its running jobs and releases
   * them, uncharged, for another worker, then exits. A process that does not answer is still SIGKILLed after
   * `stopTimeoutMs`.
   */
  hurry(): Promise<void> {
    const stopped = this.stop();
    const m: SupervisorMessage = { type: 'hurry' };
    for (const slot of this.slots) {
      if (slot.child?.connected) slot.child.send(m, undefined, undefined, () => {});
    }
    return stopped;
  }

  /** Kills every process at once (SIGKILL): their running jobs come back when their leases lapse. */
  kill(): void {
    void this.stop();
    for (const slot of this.slots) slot.child?.kill('SIGKILL');
  }
}

/** Starts a supervisor over `processes` worker processes (see Supervisor). */
export function superviseWorkers(options: SupervisorOptions): Supervisor {
  return new Supervisor(options).start();
}
