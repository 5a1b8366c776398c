/**
 * The HTTP API under hostile callers. Security: every route, tried with no
 * token, a garbage token, a revoked token and each role, against the role
 * table (auth.ts GRANTS, as documented per route in the OpenAPI document): a
 * lower role never acts, and masked payload fields never reach a role that may
 * not see them. Bad input (fast-check): hostile path segments (invalid UTF-8
 * included), query strings, headers and bodies (malformed JSON, huge, deeply
 * nested, wrong content types) on every route get a 4xx or a success, never a
 * 5xx, and a refused request leaves the stored tables as they were.
 */
import fc from 'fast-check';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { defineJob, PermanentError } from '../../src/index.ts';
import { GRANTS } from '../../src/server/auth.ts';
import { openapiDocument } from '../../src/server/openapi.ts';
import type { Role } from '../../src/store/tokens.ts';
import { startHarness, type Harness } from '../server/harness.ts';
import { storeKinds } from '../helpers/stores.ts';
import { storeDigest } from './digest.ts';
import { anyValue, hostileString } from './hostile.ts';

const tried: Record<string, number> = {};
const count = (target: string) => (tried[target] = (tried[target] ?? 0) + 1);
afterAll(() => {
  process.stdout.write(`http cases tried: ${JSON.stringify(tried)}\n`);
});

const SECRET = '4242-4242-4242-4242';
const jobs = [
  defineJob('pay', { redact: ['card'], handler: async () => ({ paid: true }) }),
  defineJob('doomed', { retry: { maxAttempts: 1 }, handler: async () => {
    throw new PermanentError('declined');
  } }),
];

const RANK: Record<Role | 'public', number> = { public: -1, viewer: 0, operator: 1, admin: 2 };
const ROLES: Role[] = ['viewer', 'operator', 'admin'];

/** The role each route requires, from the OpenAPI document ("Role: X or above."), or public. */
function requiredRoles(): Map<string, Role | 'public'> {
  const out = new Map<string, Role | 'public'>();
  for (const [path, ops] of Object.entries(openapiDocument.paths)) {
    for (const [method, op] of Object.entries(ops as Record<string, { description?: string; security?: unknown[] }>)) {
      const m = /Role: (viewer|operator|admin) or above/.exec(op.description ?? '');
      out.set(`${method.toUpperCase()} ${path}`, m ? (m[1] as Role) : 'public');
    }
  }
  return out;
}

interface Setup {
  h: Harness;
  digest: () => Promise<string>;
  jobId: string;
  deadId: string;
  routes: string[];
  fill: (route: string) => { method: string; path: string };
}

async function setup(kind: (typeof storeKinds)[number]): Promise<Setup> {
  const h = await startHarness({ kind, wire: true, maxBadTokens: 1_000_000, jobs });
  const job = await h.rebound.enqueue('pay', { card: SECRET, amount: 12 });
  const dead = await h.rebound.enqueue('doomed', {});
  const worker = h.rebound.work({ concurrency: 1, drain: true, pollIntervalMs: 20 });
  await worker.done;
  const routes = h.server.routes.filter((r) => !r.startsWith('OPTIONS'));
  const fill = (route: string) => {
    const [method, template] = route.split(' ');
    const path = template
      .replace('{id}', dead.id)
      .replace('/breakers/{name}/{action}', '/breakers/payments/reset')
      .replace('/schedules/{name}/{action}', '/schedules/nightly/pause')
      .replace('/signal/{name}', '/signal/go')
      .replace('{name}', 'nobody')
      .replace(/\{[^}]+\}/g, 'x')
      .replace(/\*$/, 'index.html');
    return { method, path };
  };
  return { h, digest: () => storeDigest(h.rebound.store), jobId: job.id, deadId: dead.id, routes, fill };
}

describe.each(storeKinds)('HTTP API security on %s', (kind) => {
  let s: Setup;
  afterEach(async () => s?.h.close());

  it('every route refuses no token, a garbage token and a revoked token, and every role below the one it needs', async () => {
    s = await setup(kind);
    const { h } = s;
    const revoked = (await import('../../src/server/auth.ts')).createToken;
    const { token: revokedToken } = await revoked(h.rebound.store.tokens, 'revoked-admin', 'admin', Date.now());
    await h.rebound.store.tokens.revokeToken('revoked-admin', Date.now());
    const roles = requiredRoles();
    let checked = 0;
    for (const route of s.routes) {
      const need = roles.get(route);
      // Every API route states the role it needs: a route missing from the table would be unchecked.
      if (route.includes(' /api/') && route !== 'GET /api/openapi.json') expect(need, `${route} states no role`).toBeDefined();
      if (!need || need === 'public') continue;
      // The document and the policy agree: the role named can do something the one below cannot.
      if (need !== 'viewer') expect(GRANTS[need].length).toBeGreaterThan(GRANTS[ROLES[RANK[need] - 1]].length);
      const { method, path } = s.fill(route);
      const body = method === 'GET' || method === 'DELETE' ? undefined : {};
      for (const token of [null, 'rbt_not-a-real-token', `Bearer-less ${revokedToken}`, revokedToken]) {
        count(`security (${kind})`);
        const before = await s.digest();
        const r = await h.call(method, path, { token, body });
        expect(r.status, `${route} with ${token === null ? 'no token' : 'a bad or revoked token'}`).toBe(401);
        expect(await s.digest()).toBe(before);
      }
      for (const role of ROLES) {
        count(`security (${kind})`);
        const before = await s.digest();
        const r = await h.call(method, path, { token: h.tokens[role], body });
        if (RANK[role] < RANK[need]) {
          expect(r.status, `${route} as ${role} (needs ${need})`).toBe(403);
          expect(await s.digest(), `${route} as ${role} changed the store`).toBe(before);
        } else {
          expect([401, 403], `${route} as ${role} (needs ${need}): ${JSON.stringify(r.body)}`).not.toContain(r.status);
          expect(r.status, `${route} as ${role}: ${JSON.stringify(r.body)}`).toBeLessThan(500);
        }
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(20);
  });

  it('masked payload fields never reach viewers or operators on any readable route; admins see them', async () => {
    s = await setup(kind);
    const { h } = s;
    const gets = s.routes.filter((r) => r.startsWith('GET ') && !r.includes('*') && !r.includes('openapi'));
    for (const role of ['viewer', 'operator'] as const) {
      for (const route of gets) {
        count(`masking (${kind})`);
        const path = s.fill(route).path.replace(s.deadId, s.jobId);
        const r = await h.call('GET', path, { token: h.tokens[role] });
        expect(JSON.stringify(r.body), `${route} as ${role}`).not.toContain(SECRET);
      }
      const list = await h.call('GET', '/api/jobs?type=pay', { token: h.tokens[role] });
      expect(JSON.stringify(list.body)).not.toContain(SECRET);
    }
    // The check can fail: the secret is really there for a role allowed to see it.
    const asAdmin = await h.call('GET', `/api/jobs/${s.jobId}`, { token: h.tokens.admin });
    expect(JSON.stringify(asAdmin.body)).toContain(SECRET);
  });
});

describe.each(storeKinds)('HTTP API bad input on %s', (kind) => {
  let s: Setup;
  afterEach(async () => s?.h.close());

  it('hostile paths, queries, headers and bodies on every route: never a 5xx; refusals change nothing', async () => {
    s = await setup(kind);
    const { h } = s;
    const segment = fc.oneof(
      hostileString.map((v) => {
        try {
          return encodeURIComponent(v);
        } catch {
          return '%ED%A0%80';
        }
      }),
      fc.constantFrom('%FF', '%00', '%C0%AF', '%E0%80%AF', '%ED%A0%80', '%', '%zz', '..%2F..%2Fetc', '99999999999999999999', '-1', '0'),
    );
    const query = fc.array(fc.tuple(fc.constantFrom('state', 'type', 'queue', 'limit', 'before', 'fingerprint', 'minutes', 'kind', 'q', 'x'), segment), { maxLength: 3 });
    const printable = (v: string) => v.replace(/[^\x20-\x7e]/g, '?');
    const body = fc.oneof(
      anyValue.map((v) => {
        try {
          return JSON.stringify(v) ?? 'null';
        } catch {
          return '{"circular":';
        }
      }),
      fc.constantFrom('{', '{"a":', '[1,2', 'nul', '"\\ud800"', '{"payload":"\\u0000"}', '{"type":"pay","payload":{"card":"x"},"opts":{"idempotencyKey":"\\u0000"}}', ''),
      fc.integer({ min: 2, max: 3 }).map((mb) => JSON.stringify({ type: 'pay', payload: { blob: 'x'.repeat(mb * 1024 * 1024) } })),
      fc.integer({ min: 100, max: 5000 }).map((d) => '['.repeat(d) + ']'.repeat(d)),
      fc.constant('{"type":"pay","payload":{"note":"\u00ff\u00fe"}}'),
    );
    const contentType = fc.constantFrom('application/json', 'application/json; charset=utf-16', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', '', 'application/json; charset=latin1');
    const request = fc.record({
      route: fc.constantFrom(...s.routes),
      segments: fc.array(segment, { minLength: 3, maxLength: 3 }),
      query,
      body,
      contentType,
      invalidUtf8: fc.boolean(),
      extraHeader: fc.tuple(fc.constantFrom('x-forwarded-for', 'x-request-id', 'accept', 'idempotency-key', 'authorization'), hostileString.map(printable)),
    });
    await fc.assert(
      fc.asyncProperty(request, async (q) => {
        count(`fuzz (${kind})`);
        const [method, template] = q.route.split(' ');
        let i = 0;
        const path = template.replace(/\{[^}]+\}/g, () => q.segments[i++ % 3]).replace(/\*$/, q.segments[2]);
        const qs = q.query.map(([k, v]) => `${k}=${v}`).join('&');
        const headers: Record<string, string> = { authorization: `Bearer ${h.tokens.admin}` };
        const [hk, hv] = q.extraHeader;
        if (hk !== 'authorization') headers[hk] = hv;
        if (q.contentType) headers['content-type'] = q.contentType;
        const raw = method === 'GET' || method === 'DELETE' ? undefined : q.invalidUtf8 ? Buffer.concat([Buffer.from('{"type":"pay","payload":{"n":"'), Buffer.from([0xff, 0xfe, 0xc0, 0xaf]), Buffer.from('"}}')]) : q.body;
        const before = await s.digest();
        const res = await fetch(`${h.url}${path}${qs ? `?${qs}` : ''}`, { method, headers, body: raw });
        const text = await res.text();
        const shown = `${method} ${path}?${qs} [${q.contentType}] ${String(raw ?? '').slice(0, 200)} -> ${res.status} ${text.slice(0, 300)}`;
        expect(res.status, shown).toBeLessThan(500);
        if (res.status >= 400) {
          expect(await s.digest(), shown).toBe(before);
          if (path.startsWith('/api/')) expect(() => JSON.parse(text), shown).not.toThrow();
        }
      }),
      { numRuns: 150 },
    );
  });
});
