/**
 * Structured job logs. Every line about a job carries job_id, parent_job_id,
 * attempt, status, type and trace_id: the worker's per-attempt child logger
 * has the identity fields (and is what handlers get as `ctx.logger`, with
 * status "running"); the lines below, written from the events, carry them all.
 * Lifecycle lines that would be written for every job are at debug level, so
 * the default level (info, or REBOUND_LOG_LEVEL) costs nothing per job.
 */
import type { Logger } from '../define.ts';
import type { ReboundEmitter } from '../events.ts';
import type { Job } from '../job.ts';
import { on, type Unsubscribe } from './subscribe.ts';

export function jobLogFields(job: Job, status: string): Record<string, unknown> {
  return {
    job_id: job.id,
    parent_job_id: job.parentId,
    attempt: job.attempt,
    status,
    type: job.type,
    trace_id: job.traceContext ? (job.traceContext.split('-')[1] ?? null) : null,
  };
}

function levelEnabled(logger: Logger, level: string): boolean {
  const check = (logger as { isLevelEnabled?: (l: string) => boolean }).isLevelEnabled;
  return typeof check === 'function' ? check.call(logger, level) : true;
}

export function subscribeJobLogs(events: ReboundEmitter, logger: Logger): Unsubscribe[] {
  // Checked before a line's fields are built: these events come once or twice per job.
  const debug = (job: Job, status: string, msg: string, extra: () => Record<string, unknown>) => {
    if (levelEnabled(logger, 'debug')) logger.debug({ ...jobLogFields(job, status), ...extra() }, msg);
  };
  return [
    on(events, 'job:enqueued', (e) => debug(e.job, e.job.state, e.deduplicated ? 'enqueue deduplicated' : 'job enqueued', () => ({ deduplicated: e.deduplicated }))),
    on(events, 'job:started', (e) => debug(e.job, 'running', 'attempt started', () => ({ worker: e.workerId }))),
    on(events, 'job:completed', (e) =>
      e.state === 'compensated'
        ? debug(e.job, 'compensated', 'job compensated', () => ({ duration_ms: e.durationMs }))
        : debug(e.job, 'completed', 'job completed', () => ({ duration_ms: e.durationMs })),
    ),
    on(events, 'job:snoozed', (e) => debug(e.job, 'snoozed', 'job snoozed', () => ({ reason: e.reason, run_at: e.runAt }))),
    on(events, 'job:cancelled', (e) => logger.info({ ...jobLogFields(e.job, 'cancelled'), actor: e.actor }, 'job cancelled')),
  ];
}
