/**
 * The HTTP API over real HTTP: every route, every role, every error shape.
 * Breakers, schedules, audit, metrics and signals are reached through test
 * providers here (their capabilities plug in the same way in `rebound start`).
 */
import { request } from 'node:http';
import { connect } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { ReboundEvents } from '../../src/events.ts';
import type { Job } from '../../src/job.ts';
import { openapiDocument } from '../../src/server/openapi.ts';
import { presentHistory } from '../../src/server/present.ts';
import type { OperatorProviders } from '../../src/server/providers.ts';
import { defineJob } from '../../src/index.ts';
import { waitFor } from '../helpers/stores.ts';
import { startHarness, type Harness } from './harness.ts';

let h: Harness;
afterEach(async () => {
  await h?.close();
});

const actions = (hh: Harness) => {
  const seen: ReboundEvents['operator:action'][] = [];
  hh.rebound.events.on('operator:action', (e) => seen.push(e));
  return seen;
};

const fakeProviders = (): OperatorProviders & { calls: string[] } => {
  const calls: string[] = [];
  return {
    calls,
    breakers: {
      list: async () => [{ name: 'payments', state: 'closed' }],
      force: async (name, action, actor) => {
        calls.push(`breaker ${name} ${action} ${actor}`);
        return { name, state: action === 'open' ? 'open' : 'closed' };
      },
    },
    schedules: {
      list: async () => [{ name: 'nightly', nextFireAt: 1 }],
      change: async (name, action, actor) => {
        calls.push(`schedule ${name} ${action} ${actor}`);
        return { name, paused: action === 'pause' };
      },
      put: async (name, options, actor) => ({ name, ...options, actor }),
      remove: async () => {},
    },
    audit: { verify: async () => ({ ok: true, entries: 3 }), recent: async (n) => [{ action: 'dlq.redrive', n }] },
    metrics: async () => ({ contentType: 'text/plain; version=0.0.4', body: 'rebound_jobs_completed_total 3\n' }),
    signal: async (id, name, payload, actor) => {
      calls.push(`signal ${id} ${name} ${JSON.stringify(payload)} ${actor}`);
      return { accepted: true };
    },
    mask: (_type, payload) => (payload && typeof payload === 'object' && !Array.isArray(payload) && 'card' in payload ? { ...payload, card: '***' } : payload),
  };
};

/** fetch cannot forge Host: node:http can, as a DNS-rebinding page's browser would send it. */
function withHost(url: string, method: string, path: string, host: string): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}${path}`, { method, headers: { host } }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('operator API', () => {
  it('documents exactly the routes it serves', async () => {
    h = await startHarness();
    const documented = Object.entries(openapiDocument.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`));
    const served = h.server.routes.filter((r) => r.includes(' /api') || r.includes(' /metrics') || r.includes('z'));
    expect(new Set(served)).toEqual(new Set(documented));
    const doc = await h.call('GET', '/api/openapi.json', { token: null });
    expect(doc.status).toBe(200);
    expect(doc.body.openapi).toBe('3.1.0');
  });

  it('documents a 400 for every route that reads a parameter or a body, and the enqueue bounds the route enforces', async () => {
    type Op = { parameters?: unknown[]; requestBody?: unknown; responses: Record<string, unknown> };
    const without400 = Object.entries(openapiDocument.paths).flatMap(([path, ops]) =>
      Object.entries(ops as Record<string, Op>)
        .filter(([, op]) => (op.parameters?.length || op.requestBody) && !op.responses[400])
        .map(([m]) => `${m.toUpperCase()} ${path}`),
    );
    expect(without400).toEqual([]);

    h = await startHarness();
    const paths = openapiDocument.paths as unknown as Record<string, Record<string, { requestBody: { content: Record<string, { schema: any }> } }>>;
    const fields = paths['/api/jobs'].post.requestBody.content['application/json'].schema.properties as Record<string, { minimum?: number; maximum?: number; maxLength?: number }>;
    const enqueue = (field: string, value: unknown) => h.call('POST', '/api/jobs', { body: { type: 'ok', [field]: value } });
    let checked = 0;
    for (const [field, s] of Object.entries(fields)) {
      for (const [edge, beyond] of [
        [s.minimum, s.minimum! - 1],
        [s.maximum, s.maximum! + 1],
        [s.maxLength && 'k'.repeat(s.maxLength), s.maxLength && 'k'.repeat(s.maxLength + 1)],
      ]) {
        if (edge === undefined) continue;
        checked++;
        expect([field, (await enqueue(field, edge)).status]).toEqual([field, 201]);
        const refused = await enqueue(field, beyond);
        expect([refused.status, refused.body.error.field]).toEqual([400, field]);
      }
    }
    expect(checked).toBeGreaterThanOrEqual(8);
    const bulk = paths['/api/jobs/bulk'].post.requestBody.content['application/json'].schema.properties.jobs;
    expect((await h.call('POST', '/api/jobs/bulk', { body: { jobs: Array(bulk.minItems - 1).fill({ type: 'ok' }) } })).status).toBe(400);
  });

  it('answers health and readiness without a token', async () => {
    h = await startHarness();
    expect(await h.call('GET', '/healthz', { token: null })).toMatchObject({ status: 200, body: { status: 'ok' } });
    expect(await h.call('GET', '/readyz', { token: null })).toMatchObject({ status: 200, body: { status: 'ready' } });
  });

  it('refuses missing, unknown and revoked tokens with 401, and rate-limits repeated bad tokens per address', async () => {
    h = await startHarness({ maxBadTokens: 3 });
    expect(await h.call('GET', '/api/jobs', { token: null })).toMatchObject({ status: 401, body: { error: { code: 'unauthorized' } } });
    expect((await h.call('GET', '/api/jobs', { token: null, headers: { authorization: 'Basic abc' } })).status).toBe(401);
    await h.rebound.store.tokens.revokeToken('viewer-token', Date.now());
    expect((await h.call('GET', '/api/jobs', { token: h.tokens.viewer })).status).toBe(401);
    for (let i = 0; i < 2; i++) expect((await h.call('GET', '/api/jobs', { token: 'rbt_wrong' })).status).toBe(401);
    const limited = await h.call('GET', '/api/jobs', { token: 'rbt_wrong' });
    expect(limited.status).toBe(429);
    expect(limited.body.error.code).toBe('too_many_bad_tokens');
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    // Even a good token waits out the window from that address: guessing cannot be interleaved with real calls.
    expect((await h.call('GET', '/api/jobs', { token: h.tokens.operator })).status).toBe(429);
  });

  it('gives each role exactly its permissions, and refuses the rest with 403', async () => {
    const providers = fakeProviders();
    h = await startHarness({ providers });
    const dead = await h.rebound.enqueue('ok', {});
    const matrix: [string, string, unknown, ('viewer' | 'operator' | 'admin')[]][] = [
      ['GET', '/api/jobs', undefined, ['viewer', 'operator', 'admin']],
      ['GET', `/api/jobs/${dead.id}`, undefined, ['viewer', 'operator', 'admin']],
      ['GET', '/api/dlq', undefined, ['viewer', 'operator', 'admin']],
      ['GET', '/api/stats', undefined, ['viewer', 'operator', 'admin']],
      ['GET', '/api/queues', undefined, ['viewer', 'operator', 'admin']],
      ['GET', '/api/workers', undefined, ['viewer', 'operator', 'admin']],
      ['GET', '/api/breakers', undefined, ['viewer', 'operator', 'admin']],
      ['GET', '/api/schedules', undefined, ['viewer', 'operator', 'admin']],
      ['GET', '/api/audit/verify', undefined, ['viewer', 'operator', 'admin']],
      ['GET', '/api/audit', undefined, ['viewer', 'operator', 'admin']],
      ['GET', '/metrics', undefined, ['viewer', 'operator', 'admin']],
      ['GET', '/api/whoami', undefined, ['viewer', 'operator', 'admin']],
      ['POST', '/api/jobs', { type: 'ok', payload: {} }, ['operator', 'admin']],
      ['POST', '/api/jobs/bulk', { jobs: [{ type: 'ok', payload: {} }] }, ['operator', 'admin']],
      ['POST', `/api/jobs/${dead.id}/signal/go`, {}, ['operator', 'admin']],
      ['POST', '/api/dlq/redrive', { type: 'ok' }, ['operator', 'admin']],
      ['POST', '/api/breakers/payments/open', undefined, ['operator', 'admin']],
      ['POST', '/api/schedules/nightly/pause', undefined, ['operator', 'admin']],
      ['POST', '/api/schedules', { name: 'weekly', cron: '0 0 * * 0', type: 'ok' }, ['operator', 'admin']],
      ['DELETE', '/api/schedules/weekly', undefined, ['operator', 'admin']],
      ['POST', '/api/dlq/purge', { type: 'ok' }, ['admin']],
      ['GET', '/api/tokens', undefined, ['admin']],
    ];
    for (const [method, path, body, allowed] of matrix) {
      for (const role of ['viewer', 'operator', 'admin'] as const) {
        const r = await h.call(method, path, { token: h.tokens[role], body });
        const expected = allowed.includes(role) ? 'allowed' : 'forbidden';
        const got = r.status === 403 ? 'forbidden' : r.status < 300 ? 'allowed' : `status ${r.status}`;
        expect(`${role} ${method} ${path}: ${got}`).toBe(`${role} ${method} ${path}: ${expected}`);
        if (r.status === 403) expect(r.body.error.code).toBe('forbidden');
      }
    }
    // cancel and retry need a job in the right state for each allowed call
    for (const role of ['viewer', 'operator', 'admin'] as const) {
      const j = await h.rebound.enqueue('ok', {}, { delayMs: 60_000 });
      expect((await h.call('POST', `/api/jobs/${j.id}/cancel`, { token: h.tokens[role] })).status).toBe(role === 'viewer' ? 403 : 200);
      expect((await h.call('POST', `/api/jobs/${j.id}/retry`, { token: h.tokens[role] })).status).toBe(role === 'viewer' ? 403 : 409);
    }
  });

  it('enqueues as the token: 201 with the job, 200 deduplicated, 400 naming the field, 409 on an idempotency conflict', async () => {
    h = await startHarness();
    const submitted: [string, boolean, string | undefined][] = [];
    h.rebound.events.on('job:enqueued', (e) => submitted.push([e.job.id, e.deduplicated, e.actor]));
    const created = await h.call('POST', '/api/jobs', { token: h.tokens.operator, body: { type: 'charge', payload: { card: '4242' }, idempotencyKey: 'o-1', priority: 2 } });
    expect(created).toMatchObject({ status: 201, body: { deduplicated: false, state: 'available', job: { type: 'charge', queue: 'payments', priority: 2 } } });
    const again = await h.call('POST', '/api/jobs', { token: h.tokens.operator, body: { type: 'charge', payload: { card: '4242' }, idempotencyKey: 'o-1' } });
    expect(again).toMatchObject({ status: 200, body: { id: created.body.id, deduplicated: true } });
    const conflict = await h.call('POST', '/api/jobs', { body: { type: 'charge', payload: { card: '1111' }, idempotencyKey: 'o-1' } });
    expect(conflict).toMatchObject({ status: 409, body: { error: { code: 'idempotency_conflict' } } });
    expect((await h.call('POST', '/api/jobs', { body: { type: 'charge', payload: { card: 7 } } })).body).toMatchObject({ error: { code: 'validation', field: 'payload.card' } });
    expect((await h.call('POST', '/api/jobs', { body: { type: 'ok', payload: {}, priority: 1.5 } })).body.error.field).toBe('priority');
    expect((await h.call('POST', '/api/jobs', { body: { type: 'ok', payload: {}, runAt: 'soon' } })).body.error.field).toBe('runAt');
    expect((await h.call('POST', '/api/jobs', { body: { type: 'ok', bogus: 1 } })).body.error.field).toBe('bogus');
    expect((await h.call('POST', '/api/jobs', { body: { type: 'bad type!' } })).body.error.field).toBe('type');
    expect((await h.call('POST', '/api/jobs', { body: [1, 2] })).status).toBe(400);
    const delayed = await h.call('POST', '/api/jobs', { body: { type: 'ok', payload: {}, delayMs: 60_000 } });
    expect(delayed.body.state).toBe('scheduled');
    expect(await h.rebound.countJobs()).toBe(2);
    expect(submitted).toEqual([
      [created.body.id, false, 'operator-token'],
      [created.body.id, true, 'operator-token'],
      [delayed.body.id, false, 'admin-token'],
    ]);
  });

  it('refuses malformed, oversized and non-JSON bodies with 400, 413 and 415, never 500', async () => {
    h = await startHarness();
    const malformed = await h.call('POST', '/api/jobs', { raw: '{"type": "ok",' });
    expect(malformed).toMatchObject({ status: 400, body: { error: { code: 'bad_request' } } });
    const big = await h.call('POST', '/api/jobs', { raw: JSON.stringify({ type: 'ok', payload: { blob: 'x'.repeat(3 * 1024 * 1024) } }) });
    expect(big).toMatchObject({ status: 413, body: { error: { code: 'payload_too_large' } } });
    const payloadTooBig = await h.call('POST', '/api/jobs', { body: { type: 'ok', payload: { blob: 'x'.repeat(1024 * 1024 + 10) } } });
    expect(payloadTooBig).toMatchObject({ status: 400, body: { error: { field: 'payload' } } });
    const text = await h.call('POST', '/api/jobs', { raw: 'type=ok', headers: { 'content-type': 'text/plain' } });
    expect(text.status).toBe(415);
    expect(text.body.error.code).toBe('unsupported_media_type');
    expect(await h.rebound.countJobs()).toBe(0);
  });

  it('answers an unexpected failure with 500 internal and no details, and writes it to the client\'s log as it says', async () => {
    h = await startHarness({ providers: { breakers: { list: async () => Promise.reject(new Error('connection to the store lost')), force: async () => null } } });
    const logged: unknown[][] = [];
    vi.spyOn(h.rebound.logger, 'error').mockImplementation((...args: unknown[]) => void logged.push(args));
    const failed = await h.call('GET', '/api/breakers', { token: h.tokens.viewer });
    expect(failed).toMatchObject({ status: 500, body: { error: { code: 'internal', message: expect.stringContaining('see its log') } } });
    expect(JSON.stringify(failed.body)).not.toContain('connection to the store lost');
    expect(logged).toHaveLength(1);
    expect(logged[0][0]).toMatchObject({ err: { message: 'connection to the store lost' }, method: 'GET', url: '/api/breakers' });
  });

  it('on close, answers the requests already running and ends the connections of clients that never finish sending a body', async () => {
    let listed!: () => void;
    const called = new Promise<void>((r) => (listed = r));
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    h = await startHarness({
      providers: {
        breakers: {
          list: async () => {
            listed();
            await gate;
            return [{ name: 'payments', state: 'closed' }];
          },
          force: async () => null,
        },
      },
    });
    // Headers and half a body, never the rest: answered 401 at once, the connection stays open.
    const { port } = new URL(h.url);
    const stalled = connect(Number(port), '127.0.0.1');
    const ended = new Promise<void>((r) => stalled.on('close', () => r()));
    let answer = '';
    const answered = new Promise<void>((r) => stalled.on('data', (c) => ((answer += c), answer.includes('\r\n\r\n') && r())));
    stalled.write(`POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"type":`);
    await answered;
    expect(answer).toMatch(/^HTTP\/1\.1 401/);
    const running = h.call('GET', '/api/breakers', { token: h.tokens.viewer });
    await called;
    const closing = h.server.app.close();
    release();
    expect((await running).status).toBe(200);
    await closing;
    await ended;
  });

  it('answers 429 with Retry-After when the queue is full', async () => {
    h = await startHarness({ queues: { default: { maxDepth: 2 } } });
    for (let i = 0; i < 2; i++) expect((await h.call('POST', '/api/jobs', { body: { type: 'ok', payload: { n: i } } })).status).toBe(201);
    const r = await h.call('POST', '/api/jobs', { body: { type: 'ok', payload: { n: 3 } } });
    expect(r).toMatchObject({ status: 429, body: { error: { code: 'queue_full' } } });
    expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    const bulk = await h.call('POST', '/api/jobs/bulk', { body: { jobs: [{ type: 'ok', payload: { n: 4 } }] } });
    expect(bulk.status).toBe(429);
    expect(await h.rebound.countJobs()).toBe(2);
  });

  it('enqueues in bulk, validating every job before storing any; a key held with another payload stores none', async () => {
    h = await startHarness();
    const bad = await h.call('POST', '/api/jobs/bulk', { body: { jobs: [{ type: 'charge', payload: { card: '1' } }, { type: 'charge', payload: {} }] } });
    expect(bad).toMatchObject({ status: 400, body: { error: { field: 'jobs[1].payload.card' } } });
    expect((await h.call('POST', '/api/jobs/bulk', { body: { jobs: [{ type: 'ok', nope: 1 }] } })).body.error.field).toBe('jobs[0].nope');
    expect((await h.call('POST', '/api/jobs/bulk', { body: { jobs: [] } })).body.error.field).toBe('jobs');
    const extra = await h.call('POST', '/api/jobs/bulk', { body: { jobs: [{ type: 'ok' }], priority: 5 } });
    expect(extra).toMatchObject({ status: 400, body: { error: { code: 'validation', field: 'priority' } } });
    expect(await h.rebound.countJobs()).toBe(0);
    const ok = await h.call('POST', '/api/jobs/bulk', { body: { jobs: [{ type: 'ok', payload: { n: 1 } }, { type: 'charge', payload: { card: '2' }, idempotencyKey: 'k' }] } });
    expect(ok.status).toBe(201);
    expect(ok.body.jobs.map((j: { job: { type: string } }) => j.job.type)).toEqual(['ok', 'charge']);
    const dup = await h.call('POST', '/api/jobs/bulk', { body: { jobs: [{ type: 'charge', payload: { card: '2' }, idempotencyKey: 'k' }] } });
    expect(dup).toMatchObject({ status: 200, body: { jobs: [{ deduplicated: true }] } });
    const held = await h.call('POST', '/api/jobs/bulk', { body: { jobs: [{ type: 'ok', payload: { n: 5 } }, { type: 'charge', payload: { card: '3' }, idempotencyKey: 'k' }] } });
    expect(held).toMatchObject({ status: 409, body: { error: { code: 'idempotency_conflict' } } });
    expect(await h.rebound.countJobs()).toBe(2);
  });

  it('names the HTTP field in errors: minutes, cursor, ids[0], jobs[1]; a number too long to be an id finds nothing', async () => {
    h = await startHarness();
    const field = async (method: string, path: string, body?: unknown) => (await h.call(method, path, { body })).body.error?.field;
    expect(await field('GET', '/api/stats?minutes=31')).toBe('minutes');
    expect(await field('GET', '/api/jobs?cursor=9999999999999999')).toBe('cursor');
    expect((await h.call('GET', '/api/jobs?cursor=999999999999999')).status).toBe(200);
    expect(await field('POST', '/api/dlq/redrive', { ids: ['9999999999999999'] })).toBe('ids[0]');
    expect(await field('GET', '/api/jobs/9999999999999999')).toBe('id');
    expect(await field('POST', '/api/jobs/bulk', { jobs: [{ type: 'ok' }, 5] })).toBe('jobs[1]');
    for (const [path, name] of [['/api/jobs?type=a%00b', 'type'], ['/api/jobs?queue=a%00b', 'queue'], ['/api/dlq?fingerprint=a%00b', 'fingerprint'], ['/api/jobs?text=a%00b', 'text']]) {
      expect((await h.call('GET', path)).body.error).toMatchObject({ field: name, message: `${name}: must not contain U+0000 or unpaired UTF-16 surrogates` });
    }
    expect(await field('POST', '/api/dlq/redrive', { type: 'a\u0000' })).toBe('type');
    const twice = await h.call('POST', '/api/jobs/bulk', { body: { jobs: [{ type: 'ok', payload: 1, idempotencyKey: 'd' }, { type: 'ok', payload: 2, idempotencyKey: 'd' }] } });
    expect(twice.body.error).toMatchObject({ field: 'jobs[1].idempotencyKey', message: expect.stringMatching(/^jobs\[1\]\.idempotencyKey: "d" is also the key of jobs\[0\]/) });
    expect(await field('POST', '/api/jobs', { type: 'ok', priority: 'high' })).toBe('priority');
    expect(await h.rebound.countJobs()).toBe(0);
    await h.rebound.enqueue('ok', {});
    expect(await h.call('GET', '/api/jobs?text=99999999999999999999')).toMatchObject({ status: 200, body: { jobs: [], nextCursor: null } });
  });

  it('lists jobs with filters, text search and cursor pagination', async () => {
    h = await startHarness();
    for (let i = 0; i < 5; i++) await h.rebound.enqueue('ok', { n: i });
    await h.rebound.enqueue('charge', { card: '1' }, { idempotencyKey: 'order-77' });
    await h.rebound.enqueue('ok', {}, { delayMs: 60_000 });
    const page1 = await h.call('GET', '/api/jobs?type=ok&limit=3', { token: h.tokens.viewer });
    expect(page1.body.jobs).toHaveLength(3);
    const page2 = await h.call('GET', `/api/jobs?type=ok&limit=3&cursor=${page1.body.nextCursor}`, { token: h.tokens.viewer });
    expect(page2.body.jobs).toHaveLength(3);
    const ids = [...page1.body.jobs, ...page2.body.jobs].map((j: { id: string }) => Number(j.id));
    expect(new Set(ids).size).toBe(6);
    expect([...ids].sort((a, b) => b - a)).toEqual(ids);
    expect((await h.call('GET', '/api/jobs?state=scheduled')).body.jobs).toHaveLength(1);
    expect((await h.call('GET', '/api/jobs?queue=payments')).body.jobs.map((j: { type: string }) => j.type)).toEqual(['charge']);
    expect((await h.call('GET', '/api/jobs?text=order-7')).body.jobs.map((j: { type: string }) => j.type)).toEqual(['charge']);
    const byId = await h.call('GET', `/api/jobs?text=${page1.body.jobs[0].id}`);
    expect(byId.body.jobs.map((j: { id: string }) => j.id)).toEqual([page1.body.jobs[0].id]);
    expect((await h.call('GET', '/api/jobs?state=lost')).body.error).toMatchObject({ code: 'validation', field: 'state' });
    expect((await h.call('GET', '/api/jobs?limit=0')).body.error.field).toBe('limit');
    expect((await h.call('GET', '/api/jobs?cursor=abc')).body.error.field).toBe('cursor');
  });

  it('pages a text search through every match, also when a short last page fills the limit', async () => {
    h = await startHarness();
    for (let i = 0; i < 5; i++) await h.rebound.enqueue('ok', { n: i }, { idempotencyKey: `match-${i}` });
    await h.rebound.enqueue('ok', { n: 9 }, { idempotencyKey: 'other' });
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const r: { body: { jobs: { idempotencyKey: string }[]; nextCursor: string | null } } = await h.call('GET', `/api/jobs?text=match&limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      seen.push(...r.body.jobs.map((j) => j.idempotencyKey));
      cursor = r.body.nextCursor;
    } while (cursor);
    expect(seen).toEqual(['match-4', 'match-3', 'match-2', 'match-1', 'match-0']);
  });

  it('shows a job with its timeline and attempts; 404 for a missing job, 400 for a bad id', async () => {
    h = await startHarness();
    const worker = h.rebound.work({ pollIntervalMs: 20 });
    const j = await h.rebound.enqueue('ok', { n: 21 });
    await waitFor(async () => (await h.rebound.getJob(j.id))?.state === 'completed');
    await worker.stop();
    const r = await h.call('GET', `/api/jobs/${j.id}`, { token: h.tokens.viewer });
    expect(r.status).toBe(200);
    expect(r.body.job).toMatchObject({ id: j.id, state: 'completed', result: { doubled: 42 } });
    expect(r.body.history.map((e: { kind: string }) => e.kind)).toEqual(['enqueued', 'claimed', 'completed']);
    expect(r.body.attempts).toEqual([expect.objectContaining({ attempt: 1, outcome: 'completed', worker: worker.id })]);
    expect(r.body).toHaveProperty('traceId', null);
    expect(await h.call('GET', '/api/jobs/999999')).toMatchObject({ status: 404, body: { error: { code: 'not_found' } } });
    expect(await h.call('GET', '/api/jobs/abc')).toMatchObject({ status: 400, body: { error: { field: 'id' } } });
  });

  it('cancels a waiting job (409 once finished) and retries a dead job (409 when it is not dead), as the token', async () => {
    h = await startHarness();
    const seen = actions(h);
    const waiting = await h.rebound.enqueue('ok', {}, { delayMs: 60_000 });
    expect(await h.call('POST', `/api/jobs/${waiting.id}/cancel`, { token: h.tokens.operator })).toMatchObject({ status: 200, body: { job: { state: 'cancelled' } } });
    expect(await h.call('POST', `/api/jobs/${waiting.id}/cancel`, { token: h.tokens.operator })).toMatchObject({ status: 409, body: { error: { code: 'invalid_state' } } });
    expect((await h.call('POST', '/api/jobs/424242/cancel')).status).toBe(404);
    const worker = h.rebound.work({ pollIntervalMs: 20 });
    const doomed = await h.rebound.enqueue('charge', { card: '9', fail: true });
    await waitFor(async () => (await h.rebound.getJob(doomed.id))?.state === 'dead');
    await worker.stop();
    const retried = await h.call('POST', `/api/jobs/${doomed.id}/retry`, { token: h.tokens.operator });
    expect(retried).toMatchObject({ status: 200, body: { job: { state: 'available', attempt: 0 } } });
    expect((await h.call('POST', `/api/jobs/${doomed.id}/retry`)).status).toBe(409);
    expect((await h.call('POST', '/api/jobs/424242/retry')).status).toBe(404);
    expect(seen.map((e) => [e.actor, e.action, e.target])).toEqual([
      ['operator-token', 'job.cancel', `job:${waiting.id}`],
      ['operator-token', 'dlq.redrive', `ids:${doomed.id}`],
    ]);
  });

  it('groups the dead letter queue by fingerprint; redrives by filter and purges by ids, refusing empty selections', async () => {
    h = await startHarness();
    const seen = actions(h);
    const worker = h.rebound.work({ pollIntervalMs: 20 });
    const dead = [];
    for (let i = 0; i < 3; i++) dead.push((await h.rebound.enqueue('charge', { card: String(i), fail: true })).id);
    await waitFor(async () => (await h.rebound.countJobs({ state: 'dead' })) === 3);
    await worker.stop();
    const dlq = await h.call('GET', '/api/dlq', { token: h.tokens.viewer });
    expect(dlq.body.total).toBe(3);
    expect(dlq.body.groups).toEqual([
      expect.objectContaining({ count: 3, types: ['charge'], reasons: ['permanent'], sampleError: expect.objectContaining({ message: 'card declined' }) }),
    ]);
    const fp = dlq.body.groups[0].fingerprint;
    expect((await h.call('GET', `/api/dlq?fingerprint=${fp}`)).body.jobs).toHaveLength(3);
    expect(await h.call('POST', '/api/dlq/redrive', { body: {} })).toMatchObject({ status: 400, body: { error: { code: 'validation' } } });
    expect((await h.call('POST', '/api/dlq/redrive', { body: { ids: ['x'] } })).body.error.field).toBe('ids[0]');
    expect((await h.call('POST', '/api/dlq/redrive', { body: { all: true, type: 'charge' } })).status).toBe(400);
    const purged = await h.call('POST', '/api/dlq/purge', { token: h.tokens.admin, body: { ids: [dead[0]] } });
    expect(purged).toMatchObject({ status: 200, body: { purged: 1 } });
    const redriven = await h.call('POST', '/api/dlq/redrive', { token: h.tokens.operator, body: { fingerprint: fp } });
    expect(redriven.body).toMatchObject({ redriven: 2 });
    expect(new Set(redriven.body.ids)).toEqual(new Set(dead.slice(1)));
    expect((await h.call('GET', '/api/dlq')).body.total).toBe(0);
    expect(seen.map((e) => [e.actor, e.action])).toEqual([
      ['admin-token', 'dlq.purge'],
      ['operator-token', 'dlq.redrive'],
    ]);
  });

  it('reports stats over time, queues with depth, lag and drain time, and in-process workers', async () => {
    h = await startHarness();
    const worker = h.rebound.work({ pollIntervalMs: 20, queues: ['default'] });
    for (let i = 0; i < 4; i++) await h.rebound.enqueue('ok', { n: i });
    await waitFor(async () => (await h.rebound.countJobs({ state: 'completed' })) === 4);
    h.server.ctx.workers = () => [worker];
    await h.rebound.enqueue('charge', { card: '1' }, { runAt: Date.now() - 5000 });
    await h.server.ctx.series.sample();
    const stats = await h.call('GET', '/api/stats?minutes=2', { token: h.tokens.viewer });
    expect(stats.body.counts).toMatchObject({ completed: 4, available: 1 });
    expect(stats.body.series).toHaveLength(24);
    const total = stats.body.series.reduce((n: number, p: { completed: number }) => n + p.completed, 0);
    expect(total).toBe(4);
    const withRun = stats.body.series.find((p: { run: unknown }) => p.run);
    expect(withRun.run.p50).toBeGreaterThanOrEqual(0);
    expect(withRun.successRate).toBe(1);
    const queues = await h.call('GET', '/api/queues', { token: h.tokens.viewer });
    const payments = queues.body.queues.find((q: { queue: string }) => q.queue === 'payments');
    expect(payments).toMatchObject({ depth: 1, running: 0, drainTimeMs: null });
    expect(payments.lagMs).toBeGreaterThanOrEqual(5000);
    expect(queues.body.queues.find((q: { queue: string }) => q.queue === 'default')).toMatchObject({ depth: 0, lagMs: 0, drainTimeMs: 0 });
    const workers = await h.call('GET', '/api/workers', { token: h.tokens.viewer });
    expect(workers.body.processes[0].workers).toEqual([{ id: worker.id, inFlight: 0 }]);
    await worker.stop();
  });

  it('counts errors and completions of types and queues named like Object.prototype members (constructor, __proto__, toString) as numbers', async () => {
    const fail = async () => {
      throw new Error('down');
    };
    h = await startHarness({
      jobs: [
        defineJob('constructor', { retry: { maxAttempts: 1 }, handler: fail }),
        defineJob('__proto__', { retry: { maxAttempts: 1 }, handler: fail }),
        defineJob('toString', { queue: 'constructor', handler: async () => null }),
      ],
    });
    await h.server.ctx.series.sample(); // the baseline
    const worker = h.rebound.work({ pollIntervalMs: 20, queues: ['default', 'constructor'] });
    for (const type of ['constructor', '__proto__', 'toString']) await h.rebound.enqueue(type, {});
    await waitFor(async () => (await h.rebound.countJobs({ state: 'dead' })) === 2 && (await h.rebound.countJobs({ state: 'completed' })) === 1);
    await worker.stop();
    await h.server.ctx.series.sample();
    const stats = await h.call('GET', '/api/stats?minutes=2', { token: h.tokens.viewer });
    expect(Object.entries(stats.body.errorsByType).sort()).toEqual([
      ['__proto__', 1],
      ['constructor', 1],
    ]);
    const queues = await h.call('GET', '/api/queues', { token: h.tokens.viewer });
    const q = queues.body.queues.find((x: { queue: string }) => x.queue === 'constructor');
    expect(q.throughputPerSec).toBeCloseTo(1 / 60);
  });

  it('answers 501 not_implemented where a capability is absent', async () => {
    h = await startHarness();
    const j = await h.rebound.enqueue('ok', {});
    for (const [method, path, body] of [
      ['GET', '/api/breakers'],
      ['POST', '/api/breakers/payments/open'],
      ['GET', '/api/schedules'],
      ['POST', '/api/schedules/nightly/pause'],
      ['POST', '/api/schedules', { name: 'x', cron: '* * * * *', type: 'ok' }],
      ['DELETE', '/api/schedules/x'],
      ['GET', '/api/audit/verify'],
      ['GET', '/api/audit'],
      ['GET', '/metrics'],
      ['POST', `/api/jobs/${j.id}/signal/approve`],
    ] as [string, string, unknown?][]) {
      const r = await h.call(method, path, { body });
      expect(`${method} ${path} ${r.status} ${r.body.error?.code}`).toBe(`${method} ${path} 501 not_implemented`);
    }
    expect((await h.call('GET', '/api/whoami')).body.capabilities).toMatchObject({ breakers: false, schedules: false, audit: false });
  });

  it('passes breakers, schedules, signals, audit and metrics through their providers, as the token', async () => {
    const providers = fakeProviders();
    h = await startHarness({ providers });
    const seen = actions(h);
    expect((await h.call('GET', '/api/breakers')).body).toEqual({ breakers: [{ name: 'payments', state: 'closed' }] });
    expect((await h.call('POST', '/api/breakers/payments/open', { token: h.tokens.operator })).body).toEqual({ breaker: { name: 'payments', state: 'open' } });
    expect((await h.call('POST', '/api/breakers/payments/explode')).status).toBe(404);
    expect((await h.call('GET', '/api/schedules')).body.schedules[0].name).toBe('nightly');
    expect((await h.call('POST', '/api/schedules/nightly/resume', { token: h.tokens.operator })).body).toEqual({ schedule: { name: 'nightly', paused: false } });
    expect((await h.call('POST', '/api/schedules/nightly/explode')).status).toBe(404);
    const j = await h.rebound.enqueue('ok', {});
    expect((await h.call('POST', `/api/jobs/${j.id}/signal/approve`, { token: h.tokens.operator, body: { payload: { by: 'ann' } } })).body).toEqual({ delivered: true, result: { accepted: true } });
    expect((await h.call('POST', `/api/jobs/${j.id}/signal/bad name`)).status).toBe(400);
    expect(providers.calls).toEqual(['breaker payments open operator-token', 'schedule nightly resume operator-token', `signal ${j.id} approve {"by":"ann"} operator-token`]);
    expect((await h.call('GET', '/api/audit/verify')).body).toEqual({ ok: true, entries: 3 });
    expect((await h.call('GET', '/api/audit?limit=5')).body).toEqual({ entries: [{ action: 'dlq.redrive', n: 5 }] });
    const metrics = await h.call('GET', '/metrics', { token: h.tokens.viewer });
    expect(metrics.headers.get('content-type')).toContain('text/plain');
    expect(metrics.body).toContain('rebound_jobs_completed_total 3');
  });

  it('masks sensitive payload fields for viewers and operators, not for admins', async () => {
    h = await startHarness({ providers: fakeProviders() });
    const j = await h.rebound.enqueue('charge', { card: '4242424242424242' });
    const asViewer = await h.call('GET', `/api/jobs/${j.id}`, { token: h.tokens.viewer });
    expect(asViewer.body.job).toMatchObject({ payload: { card: '***' }, masked: true });
    expect((await h.call('GET', '/api/jobs', { token: h.tokens.viewer })).body.jobs[0].payload.card).toBe('***');
    expect((await h.call('GET', `/api/jobs/${j.id}`, { token: h.tokens.operator })).body.job.payload.card).toBe('***');
    const asAdmin = await h.call('GET', `/api/jobs/${j.id}`, { token: h.tokens.admin });
    expect(asAdmin.body.job).toMatchObject({ payload: { card: '4242424242424242' }, masked: false });
    const plain = await h.rebound.enqueue('ok', { n: 1 });
    expect((await h.call('GET', `/api/jobs/${plain.id}`, { token: h.tokens.viewer })).body.job).toMatchObject({ payload: { n: 1 }, masked: false });
  });

  it('masks the payload copies that history events carry', () => {
    const viewer = { name: 'v', role: 'viewer' as const, open: false };
    const job = { type: 'charge' } as Job;
    const history = [
      { seq: 1, at: 1, kind: 'enqueued', attempt: 0 },
      { seq: 2, at: 2, kind: 'dead', attempt: 1, data: { reason: 'permanent', payload: { card: '4242' } } },
    ];
    const shown = presentHistory(job, history, viewer, fakeProviders());
    expect(shown[1].data).toEqual({ reason: 'permanent', payload: { card: '***' } });
    expect(presentHistory(job, history, { ...viewer, role: 'admin' }, fakeProviders())[1].data!.payload).toEqual({ card: '4242' });
  });

  it('lets admins create, list and revoke tokens; the new token works at once and is stored only as a hash', async () => {
    h = await startHarness();
    const seen = actions(h);
    const created = await h.call('POST', '/api/tokens', { body: { name: 'grafana', role: 'viewer' } });
    expect(created.status).toBe(201);
    expect(created.body.token).toMatch(/^rbt_/);
    expect((await h.call('GET', '/api/whoami', { token: created.body.token })).body).toMatchObject({ name: 'grafana', role: 'viewer', open: false });
    const listed = await h.call('GET', '/api/tokens');
    expect(JSON.stringify(listed.body)).not.toContain(created.body.token);
    expect(listed.body.tokens.map((t: { name: string }) => t.name)).toContain('grafana');
    expect((await h.call('POST', '/api/tokens', { body: { name: 'grafana', role: 'viewer' } })).body.error.field).toBe('name');
    expect((await h.call('POST', '/api/tokens', { body: { name: 'x', role: 'root' } })).body.error.field).toBe('role');
    expect((await h.call('DELETE', '/api/tokens/grafana')).body).toEqual({ revoked: 'grafana' });
    expect((await h.call('DELETE', '/api/tokens/grafana')).status).toBe(404);
    expect((await h.call('GET', '/api/whoami', { token: created.body.token })).status).toBe(401);
    expect(seen.map((e) => [e.actor, e.action, e.target])).toEqual([
      ['admin-token', 'token.create', 'token:grafana'],
      ['admin-token', 'token.revoke', 'token:grafana'],
    ]);
  });

  it('with no tokens on loopback, callers act as a local admin until the first token exists', async () => {
    h = await startHarness({ withTokens: false });
    expect((await h.call('GET', '/api/whoami', { token: null })).body).toMatchObject({ name: 'local', role: 'admin', open: true });
    const created = await h.call('POST', '/api/tokens', { token: null, body: { name: 'first', role: 'admin' } });
    expect(created.status).toBe(201);
    expect((await h.call('GET', '/api/whoami', { token: null })).status).toBe(401);
    expect((await h.call('GET', '/api/whoami', { token: created.body.token })).body).toMatchObject({ name: 'first', open: false });
  });

  it('with no tokens, refuses a request addressed to another name (DNS rebinding) with 403 naming the Host header', async () => {
    h = await startHarness({ withTokens: false });
    const port = new URL(h.url).port;
    const rebound = await withHost(h.url, 'GET', '/api/whoami', `attacker.example:${port}`);
    expect(rebound).toMatchObject({ status: 403, body: { error: { code: 'untrusted_host', field: 'Host' } } });
    expect(rebound.body.error.message).toMatch(/rebound token create/);
    expect((await withHost(h.url, 'GET', '/api/whoami', `127.0.0.1:${Number(port) + 1}`)).status).toBe(403);
    expect((await withHost(h.url, 'GET', '/api/whoami', 'attacker.example')).status).toBe(403);
    for (const local of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`]) {
      expect((await withHost(h.url, 'GET', '/api/whoami', local)).body).toMatchObject({ name: 'local', role: 'admin' });
    }
  });

  it('with no tokens, refuses a change sent by another site (Origin or Sec-Fetch-Site) and accepts same-origin pages and curl', async () => {
    h = await startHarness({ withTokens: false });
    const job = await h.rebound.enqueue('ok', {}, { delayMs: 60_000 });
    const cancel = (headers: Record<string, string>) => h.call('POST', `/api/jobs/${job.id}/cancel`, { token: null, headers });
    const foreign = await cancel({ origin: 'https://attacker.example' });
    expect(foreign).toMatchObject({ status: 403, body: { error: { code: 'cross_origin', field: 'Origin' } } });
    expect(foreign.body.error.message).toMatch(/rebound token create/);
    expect((await cancel({ origin: 'null' })).status).toBe(403);
    expect((await cancel({ origin: `http://localhost:${new URL(h.url).port}` })).status).toBe(403); // another origin on the same port
    expect((await cancel({ 'sec-fetch-site': 'cross-site' })).body.error).toMatchObject({ code: 'cross_origin', field: 'Sec-Fetch-Site' });
    expect((await cancel({ 'sec-fetch-site': 'same-site' })).status).toBe(403);
    expect((await h.rebound.getJob(job.id))?.state).toBe('scheduled');
    // Reading is not refused for Origin: a foreign page cannot read the answer without CORS.
    expect((await h.call('GET', '/api/whoami', { token: null, headers: { origin: 'https://attacker.example' } })).status).toBe(200);
    expect((await cancel({ origin: h.url, 'sec-fetch-site': 'same-origin' })).body.job.state).toBe('cancelled');
    const other = await h.rebound.enqueue('ok', {}, { delayMs: 60_000 });
    expect((await h.call('POST', `/api/jobs/${other.id}/cancel`, { token: null })).status).toBe(200); // curl, the CLI: no Origin
  });

  it('with tokens, the bearer token is the guard: a request with a valid token is served whatever its Origin', async () => {
    h = await startHarness();
    const job = await h.rebound.enqueue('ok', {}, { delayMs: 60_000 });
    const res = await h.call('POST', `/api/jobs/${job.id}/cancel`, { token: h.tokens.operator, headers: { origin: 'https://ops.example', 'sec-fetch-site': 'cross-site' } });
    expect(res.status).toBe(200);
    expect((await h.call('GET', '/api/whoami', { token: null, headers: { origin: 'https://ops.example' } })).status).toBe(401);
  });

  it('reaches schedules, breakers and signals by names of up to 128 characters; the router refusals keep the error shape', async () => {
    h = await startHarness({ wire: true });
    const name = 's'.repeat(128);
    const operator = { token: h.tokens.operator };
    expect((await h.call('POST', '/api/schedules', { ...operator, body: { name, cron: '* * * * *', type: 'ok' } })).status).toBe(201);
    expect((await h.call('POST', `/api/schedules/${name}/pause`, operator)).body.schedule).toMatchObject({ name, paused: true });
    expect(await h.call('DELETE', `/api/schedules/${name}`, operator)).toMatchObject({ status: 200, body: { removed: name } });
    expect((await h.call('POST', `/api/breakers/${'b'.repeat(128)}/open`, operator)).body.breaker).toMatchObject({ state: 'open' });
    expect((await h.call('POST', `/api/jobs/1/signal/${'g'.repeat(128)}`, operator)).body.error).toMatchObject({ code: 'not_found' });
    expect(await h.call('GET', '/api/jobs/%E0%A4%A')).toMatchObject({ status: 400, body: { error: { code: 'bad_request' } } });
    expect(await h.call('POST', `/api/breakers/${'b'.repeat(1025)}/open`, operator)).toMatchObject({ status: 414, body: { error: { code: 'uri_too_long' } } });
  });

  it('answers unknown routes with a JSON 404, and serves the dashboard with a strict content security policy', async () => {
    h = await startHarness();
    expect(await h.call('GET', '/api/nope')).toMatchObject({ status: 404, body: { error: { code: 'not_found' } } });
    expect((await h.call('DELETE', '/api/jobs')).status).toBe(404);
    const page = await h.call('GET', '/', { token: null });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
    expect(page.headers.get('content-security-policy')).toContain("default-src 'self'");
    expect((await h.call('GET', '/dashboard/nope.js', { token: null })).status).toBe(404);
    for (const path of ['/dashboard', '/dashboard/']) {
      const again = await h.call('GET', path, { token: null });
      expect(again.body).toBe(page.body);
      expect(again.headers.get('content-security-policy')).toContain("default-src 'self'");
    }
  });
});

describe('operator API on postgres', () => {
  it('authenticates by token, enqueues as the token, and redrives a dead job through the API', async () => {
    h = await startHarness({ kind: 'postgres', wire: true });
    expect((await h.call('GET', '/api/jobs', { token: 'rbt_nope' })).status).toBe(401);
    const created = await h.call('POST', '/api/jobs', { token: h.tokens.operator, body: { type: 'charge', payload: { card: '1', fail: true } } });
    expect(created.status).toBe(201);
    const worker = h.rebound.work({ pollIntervalMs: 20 });
    await waitFor(async () => (await h.rebound.getJob(created.body.id))?.state === 'dead');
    await worker.stop();
    const dlq = await h.call('GET', '/api/dlq', { token: h.tokens.viewer });
    expect(dlq.body.groups[0]).toMatchObject({ count: 1, types: ['charge'] });
    expect((await h.call('POST', '/api/dlq/redrive', { token: h.tokens.viewer, body: { ids: [created.body.id] } })).status).toBe(403);
    expect((await h.call('POST', '/api/dlq/redrive', { token: h.tokens.operator, body: { ids: [created.body.id] } })).body).toEqual({ redriven: 1, ids: [created.body.id] });
    const detail = await h.call('GET', `/api/jobs/${created.body.id}`, { token: h.tokens.viewer });
    expect(detail.body.history.map((e: { kind: string }) => e.kind)).toContain('redriven');
    expect((await h.call('GET', '/readyz', { token: null })).status).toBe(200);
  });
});
