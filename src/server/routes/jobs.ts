/** Jobs: enqueue (one or many), list and search, inspect, cancel, retry, signal. */
import type { FastifyPluginAsync } from 'fastify';
import type { EnqueueItem, EnqueueResult } from '../../rebound.ts';
import type { Job } from '../../job.ts';
import { isJobId } from '../../engine/job-query.ts';
import type { Principal } from '../auth.ts';
import { ApiError, badRequest, notImplemented } from '../errors.ts';
import { presentAttempts, presentHistory, presentJob, presentWorkflow } from '../present.ts';
import type { ServerContext } from '../server.ts';
import { body, jobId, limit, optionalString, state } from './params.ts';

const OPTION_FIELDS = ['idempotencyKey', 'runAt', 'delayMs', 'priority', 'orderingKey', 'maxAttempts', 'queue'] as const;
const MAX_BULK = 1000;

function toItem(raw: unknown, prefix: string, actor: string): EnqueueItem {
  const b = body(raw, prefix ? prefix.slice(0, -1) : 'body');
  const known = new Set<string>(['type', 'payload', ...OPTION_FIELDS]);
  const unknown = Object.keys(b).find((k) => !known.has(k));
  if (unknown) throw badRequest(`${prefix}${unknown}`, `is not a field of a job; use ${[...known].join(', ')}`);
  const opts: Record<string, unknown> = { actor };
  for (const f of OPTION_FIELDS) if (b[f] !== undefined) opts[f] = b[f];
  return { type: b.type as string, payload: b.payload, opts };
}

export function jobRoutes(ctx: ServerContext): FastifyPluginAsync {
  const { rebound, providers } = ctx;
  const show = (job: Job, who: Principal) => presentJob(job, who, providers);
  const shown = (r: EnqueueResult, who: Principal) => ({ id: r.id, state: r.state, deduplicated: r.deduplicated, job: show(r.job, who) });

  return async (app) => {
    app.post('/api/jobs', { config: { permission: 'enqueue' } }, async (req, reply) => {
      const item = toItem(req.body, '', req.principal.name);
      // The token's name rides on the job:enqueued event: the audit trail records the submission with it.
      const r = await rebound.enqueue(item.type, item.payload, item.opts);
      return reply.status(r.deduplicated ? 200 : 201).send(shown(r, req.principal));
    });

    app.post('/api/jobs/bulk', { config: { permission: 'enqueue' } }, async (req, reply) => {
      const b = body(req.body);
      const unknown = Object.keys(b).find((k) => k !== 'jobs');
      if (unknown) throw badRequest(unknown, 'is not a field of a bulk enqueue; send { "jobs": [...] } and put options on each job');
      if (!Array.isArray(b.jobs) || b.jobs.length === 0 || b.jobs.length > MAX_BULK) {
        throw badRequest('jobs', `must be an array of 1 to ${MAX_BULK} jobs`);
      }
      const items = b.jobs.map((j, i) => toItem(j, `jobs[${i}].`, req.principal.name));
      const results = await rebound.enqueueMany(items);
      const created = results.filter((r) => !r.deduplicated).length;
      return reply.status(created > 0 ? 201 : 200).send({ jobs: results.map((r) => shown(r, req.principal)) });
    });

    app.get('/api/jobs', { config: { permission: 'read' } }, async (req) => {
      const q = req.query as Record<string, unknown>;
      const n = limit(q.limit, 500, 50);
      const filter = { state: state(q.state), type: optionalString(q.type, 'type'), queue: optionalString(q.queue, 'queue') };
      const text = optionalString(q.text, 'text')?.trim().toLowerCase();
      let cursor = q.cursor === undefined || q.cursor === '' ? undefined : jobId(q.cursor, 'cursor');
      if (text && /^\d+$/.test(text)) {
        // A number is looked up as an id; one too long to be an id names no job.
        const jobs = isJobId(text) ? await rebound.listJobs({ ...filter, ids: [text], limit: 1 }) : [];
        return { jobs: jobs.map((j) => show(j, req.principal)), nextCursor: null };
      }
      if (!text) {
        const jobs = await rebound.listJobs({ ...filter, limit: n, beforeId: cursor });
        return { jobs: jobs.map((j) => show(j, req.principal)), nextCursor: jobs.length === n ? jobs[jobs.length - 1].id : null };
      }
      // Text search scans at most 2,000 jobs per request, newest first; the cursor continues the scan.
      const found: Job[] = [];
      let scanned = 0;
      while (found.length < n && scanned < 2000) {
        const page = await rebound.listJobs({ ...filter, limit: 200, beforeId: cursor });
        scanned += page.length;
        for (const j of page) if (found.length < n && matches(j, text)) found.push(j);
        // A full answer continues after its last match, even on the last page: jobs after it may match too.
        if (found.length === n) cursor = found[n - 1].id;
        else cursor = page.length < 200 ? undefined : page[page.length - 1].id;
        if (page.length < 200) break;
      }
      return { jobs: found.map((j) => show(j, req.principal)), nextCursor: cursor ?? null };
    });

    app.get('/api/jobs/:id', { config: { permission: 'read' } }, async (req) => {
      const id = jobId((req.params as { id: string }).id);
      // Unmasked from the library: what this caller may see is decided in present.ts.
      const d = await rebound.inspect(id, { unmasked: true });
      const workflow = providers.workflow ? await providers.workflow(d.job) : null;
      return {
        job: show(d.job, req.principal),
        history: presentHistory(d.job, d.history, req.principal, providers),
        attempts: presentAttempts(d.job, d.attempts, req.principal, providers),
        traceId: providers.traceId?.(d.job, d.history) ?? null,
        workflow: presentWorkflow(d.job, workflow, req.principal, providers),
      };
    });

    app.post('/api/jobs/:id/cancel', { config: { permission: 'cancel' } }, async (req) => {
      const id = jobId((req.params as { id: string }).id);
      const job = await rebound.cancel(id, { actor: req.principal.name });
      return { job: show(job, req.principal) };
    });

    app.post('/api/jobs/:id/retry', { config: { permission: 'retry' } }, async (req) => {
      const id = jobId((req.params as { id: string }).id);
      const job = await rebound.getJob(id);
      if (!job) throw new ApiError(404, 'not_found', `job ${id} does not exist`);
      if (job.state !== 'dead') throw new ApiError(409, 'invalid_state', `job ${id} is ${job.state}; only dead jobs can be retried`);
      const ids = await rebound.redrive({ ids: [id] }, { actor: req.principal.name });
      if (ids.length === 0) throw new ApiError(409, 'invalid_state', `job ${id} left the dead letter queue before it could be retried`);
      return { job: show((await rebound.getJob(id))!, req.principal) };
    });

    app.post('/api/jobs/:id/signal/:name', { config: { permission: 'signal' } }, async (req) => {
      const p = req.params as { id: string; name: string };
      const id = jobId(p.id);
      if (!/^[A-Za-z0-9_.:\-]{1,128}$/.test(p.name)) throw badRequest('name', 'must be 1-128 letters, digits or _ . : -');
      if (!providers.signal) throw notImplemented('signals (durable workflows)');
      const b = body(req.body);
      // The workflow capability records the signal as an operator action, with the token's name.
      const result = await providers.signal(id, p.name, b.payload ?? null, req.principal.name);
      return { delivered: true, result: result ?? null };
    });
  };
}

function matches(j: Job, text: string): boolean {
  return (
    j.type.toLowerCase().includes(text) ||
    (j.idempotencyKey ?? '').toLowerCase().includes(text) ||
    (j.lastError?.message ?? '').toLowerCase().includes(text) ||
    (j.lastError?.fingerprint ?? '').toLowerCase() === text
  );
}
