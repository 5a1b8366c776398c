/**
 * The OpenAPI 3.1 document served at /api/openapi.json, written by hand next
 * to the routes it describes. test/server/api.test.ts checks that every route
 * the server registers appears here and the other way round.
 */
import type { FastifyPluginAsync } from 'fastify';
import { MAX_DURATION_MS, PRIORITY_BOUND } from '../config/options.ts';
import { TYPE_PATTERN } from '../define.ts';
import { JOB_STATES } from '../job.ts';
import { TOKEN_NAME } from './routes/tokens.ts';

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: object, description = 'OK') => ({ description, content: { 'application/json': { schema } } });
const err = (description: string) => json(ref('Error'), description);
const common = { 401: err('no token, or an unknown or revoked token'), 403: err('the role may not do this; with no tokens, a non-loopback Host or a change sent by another site (untrusted_host, cross_origin)'), 429: err('too many bad tokens from this address (Retry-After)') };
const idParam = { name: 'id', in: 'path', required: true, schema: { type: 'string', pattern: '^[0-9]{1,15}$' } };
/** Job types, schedule and breaker names. */
const NAME_PATTERN = TYPE_PATTERN.source;
/** The 400 of a route that reads a path parameter, a query or a body. */
const bad = (description = 'a bad field, parameter or body (error.field names it)') => ({ 400: err(description) });
const nameParam = { name: 'name', in: 'path', required: true, schema: { type: 'string' } };
const q = (name: string, schema: object, description?: string) => ({ name, in: 'query', required: false, schema, ...(description ? { description } : {}) });
const limitParam = q('limit', { type: 'integer', minimum: 1, maximum: 500 });
const body = (schema: object) => ({ required: true, content: { 'application/json': { schema } } });
const op = (summary: string, role: string, extra: object) => ({ summary, description: `Role: ${role} or above.`, security: [{ bearer: [] }], ...extra });

const enqueueBody = {
  type: 'object',
  required: ['type'],
  additionalProperties: false,
  properties: {
    type: { type: 'string', pattern: NAME_PATTERN },
    payload: { description: 'any JSON value, at most 1 MiB and 64 levels deep' },
    idempotencyKey: { type: 'string', minLength: 1, maxLength: 255 },
    runAt: {
      oneOf: [
        { type: 'string', description: 'an ISO 8601 date, or date-time with its zone (Z or an offset)', pattern: '^\\d{4}-\\d{2}-\\d{2}([Tt ]\\d{2}:\\d{2}(:\\d{2}(\\.\\d{1,9})?)?([Zz]|[+-]\\d{2}:?\\d{2}))?$' },
        { type: 'number', description: 'epoch milliseconds' },
      ],
    },
    delayMs: { type: 'integer', minimum: 0, maximum: MAX_DURATION_MS, description: 'not with runAt' },
    priority: { type: 'integer', minimum: -PRIORITY_BOUND, maximum: PRIORITY_BOUND },
    orderingKey: { type: 'string', minLength: 1, maxLength: 255, description: 'accepted when the ordering capability is present; otherwise 400' },
    maxAttempts: { type: 'integer', minimum: 1, maximum: 10_000 },
    queue: { type: 'string', minLength: 1, maxLength: 128 },
  },
};
const selection = {
  type: 'object',
  additionalProperties: false,
  description: 'exactly which dead jobs: ids, or a type and/or fingerprint, or all: true',
  properties: {
    ids: { type: 'array', items: { oneOf: [{ type: 'string', pattern: '^[0-9]{1,15}$' }, { type: 'integer', minimum: 0 }] }, minItems: 1, maxItems: 1000 },
    type: { type: 'string', maxLength: 128 },
    fingerprint: { type: 'string', maxLength: 128 },
    all: { type: 'boolean' },
  },
};

export const openapiDocument = {
  openapi: '3.1.0',
  info: { title: 'Rebound operator API', version: '0.1.0', description: 'Jobs, the dead letter queue, breakers, schedules, workers and audit. See docs/operator.md.' },
  components: {
    securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'an API token from `rebound token create`' } },
    schemas: {
      Error: {
        type: 'object',
        required: ['error'],
        properties: { error: { type: 'object', required: ['code', 'message'], properties: { code: { type: 'string' }, message: { type: 'string' }, field: { type: 'string' } } } },
      },
      Job: {
        type: 'object',
        properties: {
          id: { type: 'string' },
          type: { type: 'string' },
          queue: { type: 'string' },
          state: { enum: [...JOB_STATES] },
          payload: { description: 'masked for roles without "unmasked" when a mask is configured' },
          masked: { type: 'boolean' },
          attempt: { type: 'integer' },
          maxAttempts: { type: 'integer' },
          runAt: { type: 'integer' },
          result: {},
          lastError: { type: ['object', 'null'] },
          deadReason: { type: ['string', 'null'] },
        },
      },
      Enqueued: { type: 'object', properties: { id: { type: 'string' }, state: { type: 'string' }, deduplicated: { type: 'boolean' }, job: ref('Job') } },
    },
  },
  paths: {
    '/healthz': { get: { summary: 'the process is alive', security: [], responses: { 200: json({ type: 'object' }) } } },
    '/readyz': { get: { summary: 'the store answers and migrations are applied', security: [], responses: { 200: json({ type: 'object' }), 503: err('not ready') } } },
    '/metrics': { get: op('Prometheus text exposition', 'viewer', { responses: { 200: { description: 'text/plain metrics' }, 501: err('metrics are not available'), ...common } }) },
    '/api/openapi.json': { get: { summary: 'this document', security: [], responses: { 200: json({ type: 'object' }) } } },
    '/api/whoami': { get: op("the caller's token name, role, permissions and the server's capabilities", 'viewer', { responses: { 200: json({ type: 'object' }), ...common } }) },
    '/api/jobs': {
      post: op('enqueue a job', 'operator', {
        requestBody: body(enqueueBody),
        responses: {
          201: json(ref('Enqueued'), 'created'),
          200: json(ref('Enqueued'), 'deduplicated: the idempotency key already names this job'),
          400: err('a bad field (error.field names it)'),
          409: err('idempotency conflict: the key was used with a different payload'),
          413: err('body too large'),
          ...common,
          429: err('the queue is full (Retry-After), or too many bad tokens'),
        },
      }),
      get: op('list and search jobs, newest first', 'viewer', {
        parameters: [
          q('state', { enum: [...JOB_STATES] }),
          q('type', { type: 'string' }),
          q('queue', { type: 'string' }),
          q('text', { type: 'string' }, 'a job id, or text found in the type, idempotency key or last error'),
          limitParam,
          q('cursor', { type: 'string', pattern: '^[0-9]{1,15}$' }, 'nextCursor of the previous page'),
        ],
        responses: { 200: json({ type: 'object', properties: { jobs: { type: 'array', items: ref('Job') }, nextCursor: { type: ['string', 'null'] } } }), 400: err('bad filter'), ...common },
      }),
    },
    '/api/jobs/bulk': {
      post: op('enqueue up to 1000 jobs at once; all are validated before any is stored', 'operator', {
        requestBody: body({ type: 'object', required: ['jobs'], additionalProperties: false, properties: { jobs: { type: 'array', items: enqueueBody, minItems: 1, maxItems: 1000 } } }),
        responses: { 201: json({ type: 'object', properties: { jobs: { type: 'array', items: ref('Enqueued') } } }), 200: json({ type: 'object' }, 'every job was deduplicated'), 400: err('a bad field, e.g. jobs[3].payload.amount'), 409: err('idempotency conflict'), 413: err('body too large'), ...common },
      }),
    },
    '/api/jobs/{id}': {
      get: op('a job with its history (timeline), attempts, trace id and workflow state', 'viewer', {
        parameters: [idParam],
        responses: { 200: json({ type: 'object', properties: { job: ref('Job'), history: { type: 'array' }, attempts: { type: 'array' }, traceId: { type: ['string', 'null'] }, workflow: {} } }), ...bad('a bad id'), 404: err('no such job'), ...common },
      }),
    },
    '/api/jobs/{id}/cancel': { post: op('cancel a job that has not finished', 'operator', { parameters: [idParam], responses: { 200: json({ type: 'object' }), ...bad('a bad id'), 404: err('no such job'), 409: err('the job already finished'), ...common } }) },
    '/api/jobs/{id}/retry': { post: op('send one dead job back to the queue with a fresh attempt budget', 'operator', { parameters: [idParam], responses: { 200: json({ type: 'object' }), ...bad('a bad id'), 404: err('no such job'), 409: err('the job is not dead'), ...common } }) },
    '/api/jobs/{id}/signal/{name}': {
      post: op("deliver a signal to a workflow job", 'operator', {
        parameters: [idParam, nameParam],
        requestBody: { required: false, content: { 'application/json': { schema: { type: 'object', properties: { payload: {} } } } } },
        responses: { 200: json({ type: 'object', properties: { delivered: { type: 'boolean' }, result: {} } }), 400: err('a bad signal name or payload'), 404: err('no such job'), 409: err('invalid_state: the job has finished, or is not a workflow'), 501: err('workflows are not available'), ...common },
      }),
    },
    '/api/dlq': {
      get: op('dead jobs grouped by error fingerprint, with counts and a sample error', 'viewer', {
        parameters: [q('type', { type: 'string', maxLength: 128 }), q('fingerprint', { type: 'string', maxLength: 128 }, 'also list the jobs of this group'), q('limit', { type: 'integer', minimum: 1, maximum: 500 }, "how many of the group's jobs (default 100)")],
        responses: { 200: json({ type: 'object', properties: { total: { type: 'integer' }, groups: { type: 'array' }, jobs: { type: 'array', items: ref('Job') } } }), ...bad(), ...common },
      }),
    },
    '/api/dlq/redrive': { post: op('redrive dead jobs by ids or filter', 'operator', { requestBody: body(selection), responses: { 200: json({ type: 'object', properties: { redriven: { type: 'integer' }, ids: { type: 'array' } } }), 400: err('empty or bad selection'), ...common } }) },
    '/api/dlq/purge': { post: op('delete dead jobs and their history, by ids or filter', 'admin', { requestBody: body(selection), responses: { 200: json({ type: 'object', properties: { purged: { type: 'integer' } } }), 400: err('empty or bad selection'), ...common } }) },
    '/api/stats': { get: op('counts by state and the charts over time (throughput, success rate, latency percentiles, DLQ size, errors by type)', 'viewer', { parameters: [q('minutes', { type: 'integer', minimum: 1, maximum: 30 })], responses: { 200: json({ type: 'object' }), ...bad(), ...common } }) },
    '/api/queues': { get: op('per queue: depth, scheduled, running, lag and drain time', 'viewer', { responses: { 200: json({ type: 'object' }), ...common } }) },
    '/api/breakers': { get: op('circuit breakers and their states', 'viewer', { responses: { 200: json({ type: 'object' }), 501: err('breakers are not available'), ...common } }) },
    '/api/breakers/{name}/{action}': {
      post: op('force a breaker open or closed, or reset it (action: open | close | reset); any name may be forced, also one no job uses yet, to open it before an outage', 'operator', {
        parameters: [nameParam, { name: 'action', in: 'path', required: true, schema: { enum: ['open', 'close', 'reset'] } }],
        responses: { 200: json({ type: 'object' }), 400: err('a bad breaker name (1-128 letters, digits or _ . : - /)'), 404: err('no such action'), 501: err('breakers are not available'), ...common },
      }),
    },
    '/api/schedules': {
      get: op('schedules with their next fire times', 'viewer', { responses: { 200: json({ type: 'object' }), 501: err('schedules are not available'), ...common } }),
      post: op('add a schedule, or change the one of that name', 'operator', {
        requestBody: body({
          type: 'object',
          required: ['name', 'cron', 'type'],
          additionalProperties: false,
          properties: {
            name: { type: 'string', pattern: NAME_PATTERN },
            cron: { type: 'string' },
            type: { type: 'string', pattern: NAME_PATTERN },
            payload: {},
            tz: { type: 'string', description: 'an IANA time zone (default UTC)' },
            misfire: { oneOf: [{ enum: ['skip', 'once'] }, { type: 'object', required: ['all'], additionalProperties: false, properties: { all: { type: 'integer', minimum: 1, maximum: 10_000 } } }] },
            jitterMs: { type: 'integer', minimum: 0, maximum: 86_400_000 },
          },
        }),
        responses: { 201: json({ type: 'object' }, 'added'), 200: json({ type: 'object' }, 'changed'), 400: err('a bad field'), 501: err('schedules are not available'), ...common },
      }),
    },
    '/api/schedules/{name}': { delete: op('remove a schedule', 'operator', { parameters: [nameParam], responses: { 200: json({ type: 'object' }), ...bad('a bad schedule name'), 404: err('no such schedule'), 501: err('schedules are not available'), ...common } }) },
    '/api/schedules/{name}/{action}': {
      post: op('pause or resume a schedule (action: pause | resume)', 'operator', {
        parameters: [nameParam, { name: 'action', in: 'path', required: true, schema: { enum: ['pause', 'resume'] } }],
        responses: { 200: json({ type: 'object' }), ...bad('a bad schedule name'), 404: err('no such schedule or action'), 501: err('schedules are not available'), ...common },
      }),
    },
    '/api/workers': { get: op('worker processes, restarts and jobs in flight', 'viewer', { responses: { 200: json({ type: 'object' }), ...common } }) },
    '/api/audit/verify': { get: op("verify the audit trail's hash chain", 'viewer', { responses: { 200: json({ type: 'object' }), 501: err('the audit trail is not available'), ...common } }) },
    '/api/audit': { get: op('recent audit entries, newest first', 'viewer', { parameters: [limitParam, q('kind', { enum: ['all', 'operator'] }, 'operator: leave out job submissions')], responses: { 200: json({ type: 'object' }), ...bad(), 501: err('the audit trail is not available'), ...common } }) },
    '/api/tokens': {
      get: op('API tokens (never the tokens themselves)', 'admin', { responses: { 200: json({ type: 'object' }), ...common } }),
      post: op('create a token; the response holds the token, shown this once', 'admin', {
        requestBody: body({ type: 'object', required: ['name', 'role'], properties: { name: { type: 'string', pattern: TOKEN_NAME.source }, role: { enum: ['viewer', 'operator', 'admin'] } } }),
        responses: { 201: json({ type: 'object' }), 400: err('bad name or role, or the name is taken'), ...common },
      }),
    },
    '/api/tokens/{name}': { delete: op('revoke a token', 'admin', { parameters: [nameParam], responses: { 200: json({ type: 'object' }), ...bad('a bad token name'), 404: err('no live token of that name'), ...common } }) },
  },
};

export function openapiRoutes(): FastifyPluginAsync {
  return async (app) => {
    app.get('/api/openapi.json', async () => openapiDocument);
  };
}
