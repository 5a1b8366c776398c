/**
 * Leader election by a lease in the store. One leader at a time per lease
 * name; each new leadership gets a higher term (the lease token), which is the
 * fencing token of every leader-only write.
 *
 * The leader renews every `leaseMs / 3`. It trusts its term only until
 * `renewal start + leaseMs - safetyMs` by its own clock, and a local timer set
 * for that moment steps it down if no renewal has succeeded by then (even one
 * still in flight), before another process could take the lease (which needs
 * the lease to be past `expiresAt`, computed from the same renewal start). A
 * renewal that returns after the step-down does not revive the term: the lease
 * is given back and the next round must win a new term. A store that refuses a
 * fenced write (StaleTermError) also makes it step down at once.
 *
 * The election never waits for the `onLeadership` callbacks: a slow `start`
 * (an initialisation, or a leader loop that resolves when it ends) must not
 * hold up renewals. Per listener, `start` and `stop` of one term are called in
 * that order, `stop` as soon as the term ends (even while `start` is running),
 * and the next term's `start` only once both have settled.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from '../define.ts';
import { ValidationError } from '../errors.ts';
import type { CoordinationStore, Fence } from '../store/coordination.ts';

/** How long a leader's term lasts without renewal (`leaseMs`). */
export const DEFAULT_LEASE_MS = 15_000;

export interface ElectorOptions {
  /** The lease name; processes that share it elect one leader. Default 'leader:maintenance'. */
  lease?: string;
  holder?: string;
  /** How long a lease lasts without renewal (default 15 s). */
  leaseMs?: number;
  /** How long before expiry the leader stops trusting its term (default leaseMs / 5). */
  safetyMs?: number;
  now?: () => number;
  logger?: Logger;
}

export interface Leadership extends Fence {
  holder: string;
  /** The leader stops trusting the term at this time by its own clock. */
  trustedUntil: number;
}

export type LeadershipStart = (l: Leadership) => void | Promise<void>;
export type LeadershipStop = (l: Leadership, reason: string) => void | Promise<void>;

interface Listener {
  start: LeadershipStart;
  stop?: LeadershipStop;
  /** The term whose `start` was called and whose `stop` is still owed. */
  term: number | null;
  /** Settles when this listener's callbacks of the terms called so far have settled. */
  settled: Promise<void>;
}

export class Elector {
  readonly lease: string;
  readonly holder: string;
  readonly leaseMs: number;
  private readonly safetyMs: number;
  private readonly now: () => number;
  private current: Leadership | null = null;
  private readonly listeners: Listener[] = [];
  private timer: NodeJS.Timeout | null = null;
  private watchdog: NodeJS.Timeout | null = null;
  private running: Promise<unknown> | null = null;
  private started = false;

  constructor(
    private readonly store: CoordinationStore,
    private readonly opts: ElectorOptions = {},
  ) {
    this.lease = opts.lease ?? 'leader:maintenance';
    this.holder = opts.holder ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
    this.leaseMs = opts.leaseMs ?? DEFAULT_LEASE_MS;
    if (!Number.isInteger(this.leaseMs) || this.leaseMs < 300) throw new ValidationError('leaseMs', 'must be an integer of at least 300 ms');
    this.safetyMs = opts.safetyMs ?? Math.floor(this.leaseMs / 5);
    if (!Number.isInteger(this.safetyMs) || this.safetyMs < 0 || this.safetyMs >= this.leaseMs / 2) {
      throw new ValidationError('safetyMs', 'must be an integer from 0 to less than half of leaseMs');
    }
    this.now = opts.now ?? Date.now;
  }

  /** The current leadership, if it is still trusted by the local clock. */
  get leadership(): Leadership | null {
    if (this.current && this.now() >= this.current.trustedUntil) return null;
    return this.current;
  }

  get isLeader(): boolean {
    return this.leadership !== null;
  }

  /** Calls `start` on every leadership won (at once if leading now), `stop` when it ends. Returns an unsubscribe. */
  onLeadership(start: LeadershipStart, stop?: LeadershipStop): () => void {
    const l: Listener = { start, stop, term: null, settled: Promise.resolve() };
    this.listeners.push(l);
    if (this.current) this.startListener(l, this.current);
    return () => {
      const i = this.listeners.indexOf(l);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  /** Calls `start` once the listener's previous callbacks have settled, unless the term ended meanwhile. Not awaited. */
  private startListener(li: Listener, l: Leadership) {
    li.settled = li.settled.then(() => {
      if (this.current?.token !== l.token) return; // ended before it started: no start, and no stop
      li.term = l.token;
      return this.call(() => li.start(l));
    });
  }

  /** Calls `stop` at once if this term's `start` was called; the next `start` waits for both. Not awaited. */
  private stopListener(li: Listener, l: Leadership, reason: string) {
    if (li.term !== l.token) return;
    li.term = null;
    const stopped = li.stop ? this.call(() => li.stop!(l, reason)) : undefined;
    li.settled = Promise.all([li.settled, stopped]).then(() => {});
  }

  private async call(fn: () => void | Promise<void>) {
    try {
      await fn();
    } catch (err) {
      this.opts.logger?.error({ err: (err as Error).message, lease: this.lease }, 'leadership callback failed');
    }
  }

  /** One election round: renew if leading, else try to acquire. Tests call it directly. */
  async runOnce(): Promise<Leadership | null> {
    const startedAt = this.now();
    await this.watch();
    if (this.current) return this.renew(this.current, startedAt);
    const won = await this.store.acquireLease({ name: this.lease, holder: this.holder, ttlMs: this.leaseMs, now: startedAt });
    if (!won) return null;
    const trustedUntil = startedAt + this.leaseMs - this.safetyMs;
    if (this.now() >= trustedUntil) {
      await this.release(won.token);
      return null;
    }
    const l: Leadership = { lease: this.lease, token: won.token, holder: this.holder, trustedUntil };
    this.current = l;
    await this.watch();
    this.opts.logger?.info({ lease: this.lease, term: won.token, holder: this.holder }, 'became leader');
    for (const li of this.listeners) this.startListener(li, l);
    return this.leadership;
  }

  private async renew(l: Leadership, startedAt: number): Promise<Leadership | null> {
    let renewed = null;
    try {
      renewed = await this.store.renewLease({ name: this.lease, token: l.token, ttlMs: this.leaseMs, now: startedAt });
    } catch (err) {
      this.opts.logger?.warn({ err: (err as Error).message, lease: this.lease }, 'lease renewal failed');
      await this.watch();
      return this.leadership;
    }
    if (this.current?.token !== l.token) {
      // Stepped down while renewing, so its stop callbacks ran: the term stays over, and a
      // new one (with new start callbacks) must be won. Give the lease up for whoever wins it.
      if (renewed) await this.release(renewed.token);
      return this.leadership;
    }
    if (!renewed) {
      await this.stepDown('lease lost');
      return null;
    }
    const trustedUntil = startedAt + this.leaseMs - this.safetyMs;
    if (this.now() >= trustedUntil) {
      // Too late to trust; give the lease up so the next leader need not wait for it to expire.
      await this.stepDown('renewal came back too late');
      await this.release(renewed.token);
      return null;
    }
    this.current = { ...l, trustedUntil };
    await this.watch();
    return this.current;
  }

  /** Steps down if the term is past `trustedUntil` by the local clock, else sets the timer that will. */
  private async watch(): Promise<void> {
    if (this.watchdog) clearTimeout(this.watchdog);
    this.watchdog = null;
    const l = this.current;
    if (!l) return;
    const left = l.trustedUntil - this.now();
    if (left <= 0) return this.stepDown('lease not renewed in time');
    this.watchdog = setTimeout(() => void this.watch(), left);
    this.watchdog.unref();
  }

  private async release(token: number) {
    await this.store.releaseLease({ name: this.lease, token, now: this.now() }).catch(() => {});
  }

  /** Ends the leadership locally (the store refused a write, or renewal failed); calls the `stop` callbacks without waiting for them. */
  async stepDown(reason: string): Promise<void> {
    const l = this.current;
    if (!l) return;
    this.current = null;
    if (this.watchdog) clearTimeout(this.watchdog);
    this.watchdog = null;
    // A stop is the normal end of a term; any other reason (a refused write, a failed renewal) deserves a look.
    const fields = { lease: this.lease, term: l.token, holder: this.holder, reason };
    if (reason === 'stopped') this.opts.logger?.info(fields, 'stepped down');
    else this.opts.logger?.warn(fields, 'stepped down');
    for (const li of this.listeners) this.stopListener(li, l, reason);
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    const tick = (delay: number) => {
      this.timer = setTimeout(() => {
        this.running = this.runOnce()
          .catch((err) => this.opts.logger?.warn({ err: (err as Error).message, lease: this.lease }, 'election round failed'))
          .finally(() => {
            this.running = null;
            if (this.started) tick(Math.max(10, Math.floor(this.leaseMs / 3)));
          });
      }, delay);
      this.timer.unref();
    };
    tick(0);
  }

  /** Stops electing and gives the lease up, so another process takes over at once. Safe twice and when never started. */
  async stop(): Promise<void> {
    this.started = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
    const l = this.current;
    if (l) await this.stepDown('stopped');
    // Leader-only code has finished before the lease is given up (and before a close goes on).
    await Promise.all(this.listeners.map((li) => li.settled));
    if (l) await this.release(l.token);
  }
}
