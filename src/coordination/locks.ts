/**
 * Distributed locks on the store's lease table. Every acquisition of a lock
 * name gets a higher token than the last, so a system downstream that records
 * the highest token it has seen can refuse a stale holder (one paused past its
 * TTL while another took the lock). The lock is renewed every ttlMs / 3 while
 * `fn` runs; if renewal fails, `lock.signal` is aborted.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { LockUnavailableError, ValidationError } from '../errors.ts';
import type { CoordinationStore, Lease } from '../store/coordination.ts';

export interface LockOptions {
  /** How long the lock lasts without renewal (default 30 s). */
  ttlMs?: number;
  /** How long to wait for a busy lock before LockUnavailableError (default 0: try once). */
  waitMs?: number;
  holder?: string;
}

export interface HeldLock {
  name: string;
  /** The fencing token: higher than every earlier holder's. Pass it to downstream writes. */
  token: number;
  /** Aborted when the lock could not be renewed: stop writing. */
  signal: AbortSignal;
}

const LOCK_PREFIX = 'lock:';

export async function withLock<T>(
  store: CoordinationStore,
  name: string,
  fn: (lock: HeldLock) => Promise<T> | T,
  opts: LockOptions & { now?: () => number } = {},
): Promise<T> {
  if (typeof name !== 'string' || name.length === 0 || name.length > 200) throw new ValidationError('lock name', 'must be 1-200 characters');
  const ttlMs = opts.ttlMs ?? 30_000;
  if (!Number.isInteger(ttlMs) || ttlMs < 50) throw new ValidationError('ttlMs', 'must be an integer of at least 50 ms');
  const now = opts.now ?? Date.now;
  const holder = opts.holder ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  const leaseName = LOCK_PREFIX + name;
  const deadline = now() + (opts.waitMs ?? 0);
  let lease: Lease | null = null;
  for (;;) {
    lease = await store.acquireLease({ name: leaseName, holder, ttlMs, now: now() });
    if (lease || now() >= deadline) break;
    await new Promise((r) => setTimeout(r, Math.min(100, Math.max(10, deadline - now()))));
  }
  if (!lease) throw new LockUnavailableError(name, (await store.getLease(leaseName))?.holder ?? null);
  const token = lease.token;
  const controller = new AbortController();
  let renewing: Promise<void> | null = null;
  const renew = setInterval(() => {
    if (renewing) return; // one at a time: a slow store gets no pile of renewals
    renewing = store
      .renewLease({ name: leaseName, token, ttlMs, now: now() })
      .catch(() => null)
      .then((ok) => {
        if (!ok && !controller.signal.aborted) controller.abort(new LockUnavailableError(name, null));
      })
      .finally(() => (renewing = null));
  }, Math.max(10, Math.floor(ttlMs / 3)));
  renew.unref();
  try {
    return await fn({ name, token, signal: controller.signal });
  } finally {
    clearInterval(renew);
    // A renewal still in flight carries a `now` from before the release: landing after it, it would hold
    // the released lock for another TTL. So the release waits for it.
    await renewing;
    await store.releaseLease({ name: leaseName, token, now: now() }).catch(() => {});
  }
}

/** Whether `token` is still the current, unexpired holder of lock `name`. */
export async function holdsLock(store: CoordinationStore, name: string, token: number, now = Date.now()): Promise<boolean> {
  const lease = await store.getLease(LOCK_PREFIX + name);
  return !!lease && lease.token === token && lease.expiresAt > now;
}
