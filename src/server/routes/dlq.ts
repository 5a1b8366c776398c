/** The dead letter queue: grouped by error fingerprint, redrive and purge by ids or filter. */
import type { FastifyPluginAsync } from 'fastify';
import type { Job } from '../../job.ts';
import type { Selection } from '../../store/store.ts';
import { badRequest } from '../errors.ts';
import { presentJob } from '../present.ts';
import type { ServerContext } from '../server.ts';
import { body, jobId, limit, optionalString } from './params.ts';

export interface DlqGroup {
  fingerprint: string;
  types: string[];
  reasons: string[];
  count: number;
  sampleError: { name: string; message: string; code?: string } | null;
  jobIds: string[];
  firstDeadAt: number | null;
  lastDeadAt: number | null;
}

/** Groups at most this many of the newest dead jobs; `total` counts them all. */
const SCAN = 5000;

function selection(raw: unknown): Selection {
  const b = body(raw);
  const unknown = Object.keys(b).find((k) => !['ids', 'type', 'fingerprint', 'all'].includes(k));
  if (unknown) throw badRequest(unknown, 'is not a selection field; use ids, type, fingerprint or all');
  const sel: Selection = {};
  if (b.ids !== undefined) {
    if (!Array.isArray(b.ids) || b.ids.length === 0 || b.ids.length > 1000) throw badRequest('ids', 'must be an array of 1 to 1000 job ids');
    sel.ids = b.ids.map((id, i) => jobId(typeof id === 'number' ? String(id) : id, `ids[${i}]`));
  }
  sel.type = optionalString(b.type, 'type', 128);
  sel.fingerprint = optionalString(b.fingerprint, 'fingerprint', 128);
  if (b.all !== undefined && typeof b.all !== 'boolean') throw badRequest('all', 'must be true or false');
  if (b.all) sel.all = true;
  const given = [sel.ids, sel.type, sel.fingerprint, sel.all].filter(Boolean).length;
  if (given === 0) throw badRequest('ids', 'give ids, type, fingerprint or all: true; an empty selection is refused');
  if (sel.all && given > 1) throw badRequest('all', 'all: true cannot be combined with other filters');
  return sel;
}

export function groupDead(jobs: Job[]): DlqGroup[] {
  const groups = new Map<string, DlqGroup>();
  for (const j of jobs) {
    const fp = j.lastError?.fingerprint ?? 'unknown';
    let g = groups.get(fp);
    if (!g) {
      const e = j.lastError;
      g = { fingerprint: fp, types: [], reasons: [], count: 0, sampleError: e ? { name: e.name, message: e.message, code: e.code } : null, jobIds: [], firstDeadAt: null, lastDeadAt: null };
      groups.set(fp, g);
    }
    g.count++;
    if (!g.types.includes(j.type)) g.types.push(j.type);
    if (j.deadReason && !g.reasons.includes(j.deadReason)) g.reasons.push(j.deadReason);
    if (g.jobIds.length < 20) g.jobIds.push(j.id);
    if (j.finishedAt != null) {
      g.firstDeadAt = g.firstDeadAt == null ? j.finishedAt : Math.min(g.firstDeadAt, j.finishedAt);
      g.lastDeadAt = g.lastDeadAt == null ? j.finishedAt : Math.max(g.lastDeadAt, j.finishedAt);
    }
  }
  return [...groups.values()].sort((a, b) => b.count - a.count);
}

export function dlqRoutes(ctx: ServerContext): FastifyPluginAsync {
  const { rebound } = ctx;
  return async (app) => {
    app.get('/api/dlq', { config: { permission: 'read' } }, async (req) => {
      const q = req.query as Record<string, unknown>;
      const type = optionalString(q.type, 'type', 128);
      const fingerprint = optionalString(q.fingerprint, 'fingerprint', 128);
      const [total, dead] = await Promise.all([rebound.countJobs({ state: 'dead', type }), rebound.listDead({ type, fingerprint, limit: SCAN })]);
      const jobs = fingerprint ? dead.slice(0, limit(q.limit, 500, 100)).map((j) => presentJob(j, req.principal, ctx.providers)) : undefined;
      return { total, groups: groupDead(dead), ...(jobs ? { jobs } : {}) };
    });

    app.post('/api/dlq/redrive', { config: { permission: 'redrive' } }, async (req) => {
      const ids = await rebound.redrive(selection(req.body), { actor: req.principal.name });
      return { redriven: ids.length, ids };
    });

    app.post('/api/dlq/purge', { config: { permission: 'purge' } }, async (req) => {
      const purged = await rebound.purge(selection(req.body), { actor: req.principal.name });
      return { purged };
    });
  };
}
