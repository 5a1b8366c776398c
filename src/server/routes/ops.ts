/**
 * What the operator watches and steers: stats, queues, breakers, schedules,
 * workers, audit, metrics, and who the caller is. Breakers, schedules, audit
 * and metrics come from their capabilities (providers.ts); without one, the
 * route answers 501.
 */
import type { FastifyPluginAsync } from 'fastify';
import { ValidationError } from '../../errors.ts';
import { GRANTS } from '../auth.ts';
import { ApiError, badRequest, notImplemented } from '../errors.ts';
import { presentSchedule } from '../present.ts';
import type { BreakerAction, ScheduleAction } from '../providers.ts';
import type { ServerContext } from '../server.ts';
import { body, limit } from './params.ts';

const NAME = /^[A-Za-z0-9_.:\-/]{1,128}$/;

/** The library names fields `defineSchedule("n").cron`; over HTTP they are body fields. */
function scheduleField(err: unknown): unknown {
  if (!(err instanceof ValidationError)) return err;
  const field = err.field.replace(/^defineSchedule\(".*?"\)\./, '');
  // The union's own message is "Invalid input": say which values are allowed.
  const message = field.startsWith('misfire') ? 'must be "skip", "once" or { "all": N } with N from 1 to 10000' : err.message.slice(err.field.length + 2);
  return badRequest(field, message);
}

export function opsRoutes(ctx: ServerContext): FastifyPluginAsync {
  const { rebound, providers, series } = ctx;

  async function queues(): Promise<unknown[]> {
    if (providers.queues) return providers.queues();
    const defs = [...rebound.definitions.values()];
    const names = [...new Set(defs.map((d) => d.queue))].sort();
    const now = rebound.now();
    return Promise.all(
      names.map(async (queue) => {
        const types = defs.filter((d) => d.queue === queue).map((d) => d.type);
        const [available, scheduled, running, next] = await Promise.all([
          rebound.countJobs({ state: 'available', queue }),
          rebound.countJobs({ state: 'scheduled', queue }),
          rebound.countJobs({ state: 'running', queue }),
          rebound.store.nextRunAt([queue], types),
        ]);
        const throughput = series.recentThroughput(queue);
        return {
          queue,
          depth: available,
          scheduled,
          running,
          // How long the oldest due job has waited.
          lagMs: next != null && next <= now ? now - next : 0,
          throughputPerSec: throughput,
          // At the last minute's completion rate; null when nothing completed.
          drainTimeMs: available === 0 ? 0 : throughput > 0 ? Math.round((available / throughput) * 1000) : null,
        };
      }),
    );
  }

  return async (app) => {
    app.get('/api/whoami', { config: { permission: 'read' } }, async (req) => ({
      name: req.principal.name,
      role: req.principal.role,
      open: req.principal.open,
      permissions: GRANTS[req.principal.role],
      capabilities: {
        breakers: !!providers.breakers,
        schedules: !!providers.schedules,
        audit: !!providers.audit,
        metrics: !!providers.metrics,
        signals: !!providers.signal,
        workflows: !!providers.workflow,
        supervisor: !!providers.workers,
      },
    }));

    app.get('/api/stats', { config: { permission: 'read' } }, async (req) => {
      const q = req.query as Record<string, unknown>;
      const minutes = limit(q.minutes, 30, 10, 'minutes');
      const [counts, extra] = await Promise.all([rebound.countByState(), providers.stats ? providers.stats() : Promise.resolve({})]);
      return {
        now: rebound.now(),
        counts,
        bucketMs: series.bucketMs,
        series: series.points(minutes * 60_000),
        errorsByType: series.errorsByType(minutes * 60_000),
        ...extra,
      };
    });

    app.get('/api/queues', { config: { permission: 'read' } }, async () => ({ queues: await queues() }));

    app.get('/api/breakers', { config: { permission: 'read' } }, async () => {
      if (!providers.breakers) throw notImplemented('circuit breakers');
      return { breakers: await providers.breakers.list() };
    });

    app.post('/api/breakers/:name/:action', { config: { permission: 'breakers' } }, async (req) => {
      const p = req.params as { name: string; action: string };
      if (!NAME.test(p.name)) throw badRequest('name', 'must be a breaker name');
      if (!['open', 'close', 'reset'].includes(p.action)) throw new ApiError(404, 'not_found', `no breaker action "${p.action}"; use open, close or reset`);
      if (!providers.breakers) throw notImplemented('circuit breakers');
      const breaker = await providers.breakers.force(p.name, p.action as BreakerAction, req.principal.name);
      return { breaker };
    });

    app.get('/api/schedules', { config: { permission: 'read' } }, async (req) => {
      if (!providers.schedules) throw notImplemented('schedules');
      return { schedules: (await providers.schedules.list()).map((s) => presentSchedule(s, req.principal, providers)) };
    });

    app.post('/api/schedules', { config: { permission: 'schedules' } }, async (req, reply) => {
      const b = body(req.body);
      const { name, ...options } = b;
      if (typeof name !== 'string' || !NAME.test(name)) throw badRequest('name', 'must be 1-128 letters, digits or _ . : - /');
      if (!providers.schedules) throw notImplemented('schedules');
      const existed = ((await providers.schedules.list()) as { name: string }[]).some((s) => s.name === name);
      const schedule = await providers.schedules.put(name, options, req.principal.name).catch((e) => Promise.reject(scheduleField(e)));
      return reply.status(existed ? 200 : 201).send({ schedule: presentSchedule(schedule, req.principal, providers) });
    });

    app.delete('/api/schedules/:name', { config: { permission: 'schedules' } }, async (req) => {
      const name = (req.params as { name: string }).name;
      if (!NAME.test(name)) throw badRequest('name', 'must be a schedule name');
      if (!providers.schedules) throw notImplemented('schedules');
      await providers.schedules.remove(name, req.principal.name);
      return { removed: name };
    });

    app.post('/api/schedules/:name/:action', { config: { permission: 'schedules' } }, async (req) => {
      const p = req.params as { name: string; action: string };
      if (!NAME.test(p.name)) throw badRequest('name', 'must be a schedule name');
      if (!['pause', 'resume'].includes(p.action)) throw new ApiError(404, 'not_found', `no schedule action "${p.action}"; use pause or resume`);
      if (!providers.schedules) throw notImplemented('schedules');
      const schedule = await providers.schedules.change(p.name, p.action as ScheduleAction, req.principal.name);
      return { schedule: presentSchedule(schedule, req.principal, providers) };
    });

    app.get('/api/workers', { config: { permission: 'read' } }, async () => {
      if (providers.workers) return await providers.workers();
      return {
        supervised: false,
        processes: [
          {
            pid: process.pid,
            restarts: 0,
            uptimeMs: rebound.now() - ctx.startedAt,
            workers: ctx.workers().map((w) => ({ id: w.id, inFlight: w.activeJobs })),
            inFlight: ctx.workers().reduce((n, w) => n + w.activeJobs, 0),
          },
        ],
      };
    });

    app.get('/api/audit/verify', { config: { permission: 'read' } }, async () => {
      if (!providers.audit) throw notImplemented('the audit trail');
      return await providers.audit.verify();
    });

    app.get('/api/audit', { config: { permission: 'read' } }, async (req) => {
      if (!providers.audit) throw notImplemented('the audit trail');
      const q = req.query as Record<string, unknown>;
      const n = limit(q.limit, 500, 50);
      if (q.kind !== undefined && q.kind !== 'all' && q.kind !== 'operator') throw badRequest('kind', 'must be all or operator');
      return { entries: await providers.audit.recent(n, { operatorOnly: q.kind === 'operator' }) };
    });

    app.get('/metrics', { config: { permission: 'read' } }, async (_req, reply) => {
      if (!providers.metrics) throw notImplemented('Prometheus metrics');
      const m = await providers.metrics();
      return reply.type(m.contentType).send(m.body);
    });
  };
}
