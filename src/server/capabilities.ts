/**
 * Wires the capabilities of this build into the server's providers
 * (providers.ts): breakers (self-healing), schedules (coordination), stats,
 * metrics, audit and redaction (visibility), workflows and signals.
 * A capability that is not wired here answers 501.
 */
import { InvalidStateError } from '../errors.ts';
import type { Json } from '../job.ts';
import { verifyAudit } from '../observability/audit.ts';
import { maskPayload } from '../observability/redaction.ts';
import type { Rebound } from '../rebound.ts';
import type { AuditEntry } from '../store/visibility.ts';
import type { OperatorProviders } from './providers.ts';

const AUDIT_PAGE = 1000;

export async function capabilityProviders(rebound: Rebound): Promise<OperatorProviders> {
  const audit = rebound.visibility.audit;
  return {
    breakers: {
      list: () => rebound.breakers.list(),
      force: (name, action, actor) => rebound.breakers.force(name, action === 'close' ? 'closed' : action, { actor }),
    },
    schedules: {
      list: () => rebound.coordination.listSchedules(),
      change: (name, action, actor) =>
        action === 'pause' ? rebound.coordination.pauseSchedule(name, { actor }) : rebound.coordination.resumeSchedule(name, { actor }),
      put: (name, options, actor) => rebound.coordination.addSchedule(name, options as never, { actor }),
      remove: (name, actor) => rebound.coordination.removeSchedule(name, { actor }),
    },
    queues: async () =>
      (await rebound.queueStats()).map((q) => ({
        ...q,
        // The names the dashboard and the fallback use.
        lagMs: q.oldestWaitingMs ?? 0,
        throughputPerSec: q.completionsPerSec,
        drainTimeMs: q.projectedDrainMs,
      })),
    stats: async () => ({ rollup: await rebound.stats({ window: '1h' }) }),
    metrics: async () => ({ contentType: 'text/plain; version=0.0.4; charset=utf-8', body: await rebound.metrics() }),
    ...(audit && {
      audit: {
        async verify() {
          await audit.flush();
          await audit.seal();
          return verifyAudit(rebound.store);
        },
        async recent(limit, { operatorOnly = false } = {}) {
          // Actions still buffered in this process are written and chained first, so the list is current.
          await audit.flush();
          await audit.seal();
          const segments = await rebound.store.visibility.listAuditSegments();
          let through = segments.at(-1)?.lastSeq ?? 0;
          // Operator actions hide among far more job submissions: an index of the others (migration 41) finds them
          // over the whole trail, where a scan of the newest 100,000 entries read them all and could miss older ones.
          if (operatorOnly) return rebound.store.visibility.readOperatorAudit({ throughSeq: through, limit });
          const floor = Math.max(0, through - limit);
          const entries: AuditEntry[] = [];
          while (entries.length < limit && through > floor) {
            const after = Math.max(floor, through - AUDIT_PAGE);
            const page = await rebound.store.visibility.readAudit({ afterSeq: after, throughSeq: through, limit: through - after });
            entries.push(...page.reverse());
            through = after;
          }
          return entries.slice(0, limit);
        },
      },
    }),
    workflow: async (job) => {
      try {
        return (await rebound.workflow(job.id)) as unknown as Json;
      } catch (err) {
        if (err instanceof InvalidStateError) return null;
        throw err;
      }
    },
    signal: (jobId, name, payload, actor) => rebound.signal(jobId, name, payload, { actor }),
    mask: (type, payload) => maskPayload(rebound.definitions.get(type), payload),
    hasDefinition: (type) => rebound.definitions.has(type),
    traceId: (job) => job.traceContext?.split('-')[1] ?? null,
  };
}
