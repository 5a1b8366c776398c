/** The `ctx` a handler receives: its job, its abort signal, its lease and its once-ledger. */
import type { JobContext, Logger, OnceInfo } from '../define.ts';
import { ConfigError, ValidationError } from '../errors.ts';
import type { Job, Json } from '../job.ts';
import type { Store } from '../store/store.ts';

export interface ContextDeps {
  job: Job;
  controller: AbortController;
  store: Store;
  now: () => number;
  logger: Logger;
  heartbeat: () => Promise<void>;
}

export function makeContext({ job, controller, store, now, logger, heartbeat }: ContextDeps): JobContext {
  return {
    jobId: job.id,
    type: job.type,
    queue: job.queue,
    attempt: job.attempt,
    maxAttempts: job.maxAttempts,
    parentId: job.parentId,
    signal: controller.signal,
    heartbeat,
    logger,
    job,
    fencingToken: job.leaseToken,
    // Replaced by the breaker plugin that every Rebound client installs (runtime/breakers.ts).
    breaker: () => {
      throw new ConfigError('ctx.breaker needs a worker started by a Rebound client');
    },
    async once<T extends Json | void>(key: string, fn: (info: OnceInfo) => Promise<T> | T): Promise<T> {
      if (typeof key !== 'string' || key.length === 0 || key.length > 255) {
        throw new ValidationError('once.key', 'must be a non-empty string of at most 255 characters');
      }
      const stored = await store.getOnce(job.id, key);
      if (stored) return stored.value as T;
      const value = await fn({ idempotencyKey: `rebound:${job.id}:${key}` });
      const json = (value === undefined ? null : JSON.parse(JSON.stringify(value))) as Json;
      await store.putOnce(job.id, key, json, now());
      // If another executor recorded first, its result is the one that counts.
      return ((await store.getOnce(job.id, key))?.value ?? json) as T;
    },
  };
}
