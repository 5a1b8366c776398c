/**
 * Brings dead jobs back on their own when their cause has passed, at a bounded
 * rate, and records who did it (the actor `auto-redrive:<policy>:<name>` on
 * every redriven job's history).
 */
import type { Logger } from '../define.ts';
import type { ReboundEmitter } from '../events.ts';
import type { Job } from '../job.ts';
import type { Store } from '../store/store.ts';

export interface RedriveDeps {
  store: Store;
  events: ReboundEmitter;
  logger: Logger;
  now: () => number;
}

/** Waits `ms`, or less if `signal` aborts meanwhile. */
const pause = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });

/** Dead reasons a downstream outage explains; permanent errors and poison stay dead. */
const OUTAGE_REASONS = new Set(['exhausted', 'timeout']);

/**
 * Finds dead jobs matching `match` (newest first, in pages) and redrives them, `perSecond` at a time. An aborted
 * `signal` (the process is stopping) ends it after the batch under way; the caller knows it did not finish.
 */
export async function redriveMatching(
  deps: RedriveDeps,
  opts: { types?: string[]; fingerprint?: string; match: (job: Job) => boolean; perSecond: number; actor: string; limit?: number; signal?: AbortSignal },
): Promise<string[]> {
  const ids: string[] = [];
  for (const type of opts.types ?? [undefined]) {
    let beforeId: string | undefined;
    for (;;) {
      const page = await deps.store.listJobs({ state: 'dead', type, fingerprint: opts.fingerprint, beforeId, limit: 500 });
      if (page.length === 0) break;
      ids.push(...page.filter(opts.match).map((j) => j.id));
      beforeId = page[page.length - 1].id;
      if (opts.limit != null && ids.length >= opts.limit) break;
    }
  }
  const wanted = opts.limit != null ? ids.slice(0, opts.limit) : ids;
  const redriven: string[] = [];
  // Whole jobs per batch, and the pause after a batch that keeps the rate: 0.5 a second is one every 2 s.
  const batch = Math.max(1, Math.floor(opts.perSecond));
  const pauseMs = Math.ceil((batch / opts.perSecond) * 1000);
  for (let i = 0; i < wanted.length; i += batch) {
    if (i > 0) await pause(pauseMs, opts.signal);
    if (opts.signal?.aborted) break;
    const done = await deps.store.redriveDead({ ids: wanted.slice(i, i + batch) }, opts.actor, deps.now());
    if (done.length) deps.events.emit('job:redriven', { jobIds: done, actor: opts.actor });
    redriven.push(...done);
  }
  if (redriven.length) deps.logger.info({ actor: opts.actor, count: redriven.length }, 'dead jobs redriven automatically');
  return redriven;
}

/** After a breaker's outage: the jobs of its types that died of transient failures or timeouts during it. */
export function redriveAfterOutage(
  deps: RedriveDeps,
  o: { breaker: string; types: string[]; since: number; until: number; perSecond: number; signal?: AbortSignal },
): Promise<string[]> {
  return redriveMatching(deps, {
    types: o.types,
    perSecond: o.perSecond,
    signal: o.signal,
    actor: `auto-redrive:breaker:${o.breaker}`,
    match: (j) =>
      OUTAGE_REASONS.has(String(j.deadReason)) &&
      (j.finishedAt ?? 0) >= o.since &&
      (j.finishedAt ?? 0) <= o.until &&
      j.lastError?.kind !== 'permanent',
  });
}
