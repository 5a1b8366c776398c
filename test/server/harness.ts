/** A real operator server on 127.0.0.1 (port 0) over a fresh store, with one token per role. */
import { z } from 'zod';
import { createRebound, defineJob, PermanentError, type JobDefinition, type Rebound, type ReboundOptions } from '../../src/index.ts';
import { createToken } from '../../src/server/auth.ts';
import { capabilityProviders } from '../../src/server/capabilities.ts';
import type { OperatorProviders } from '../../src/server/providers.ts';
import { buildServer, type OperatorServer } from '../../src/server/server.ts';
import { dropStore, freshStoreUrl, type StoreKind } from '../helpers/stores.ts';

export const testJobs = [
  defineJob('ok', { handler: async (p: { n?: number }) => ({ doubled: (p?.n ?? 0) * 2 }) }),
  defineJob('charge', {
    queue: 'payments',
    schema: z.object({ card: z.string(), fail: z.boolean().optional() }),
    retry: { maxAttempts: 1 },
    handler: async (p: { card: string; fail?: boolean }) => {
      if (p.fail) throw new PermanentError('card declined');
      return { charged: true };
    },
  }),
];

export interface Harness {
  url: string;
  /** The store, for another client (a worker process with other job definitions) to share. */
  storeUrl: string;
  rebound: Rebound;
  server: OperatorServer;
  tokens: { viewer: string; operator: string; admin: string };
  call(method: string, path: string, opts?: { token?: string | null; body?: unknown; raw?: string; headers?: Record<string, string> }): Promise<{ status: number; body: any; headers: Headers }>;
  close(): Promise<void>;
}

export async function startHarness(
  opts: { kind?: StoreKind; providers?: OperatorProviders; withTokens?: boolean; maxBadTokens?: number; jobs?: JobDefinition[]; wire?: boolean; queues?: ReboundOptions['queues'] } = {},
): Promise<Harness> {
  const storeUrl = freshStoreUrl(opts.kind ?? 'sqlite');
  const rebound = await createRebound({ store: storeUrl, jobs: opts.jobs ?? testJobs, queues: opts.queues });
  const providers = opts.wire ? await capabilityProviders(rebound) : opts.providers;
  const server = await buildServer({ rebound, host: '127.0.0.1', providers, maxBadTokens: opts.maxBadTokens });
  const address = await server.app.listen({ port: 0, host: '127.0.0.1' });
  const tokens = { viewer: '', operator: '', admin: '' };
  if (opts.withTokens !== false) {
    for (const role of ['viewer', 'operator', 'admin'] as const) {
      tokens[role] = (await createToken(rebound.store.tokens, `${role}-token`, role, Date.now())).token;
    }
  }
  return {
    url: address,
    storeUrl,
    rebound,
    server,
    tokens,
    async call(method, path, o = {}) {
      const headers: Record<string, string> = { ...o.headers };
      const token = o.token === undefined ? tokens.admin : o.token;
      if (token) headers.authorization = `Bearer ${token}`;
      let body: string | undefined = o.raw;
      if (o.body !== undefined) body = JSON.stringify(o.body);
      if (body !== undefined && !headers['content-type']) headers['content-type'] = 'application/json';
      const res = await fetch(`${address}${path}`, { method, headers, body });
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        // Not JSON (metrics, the dashboard): keep the text.
      }
      return { status: res.status, body: parsed, headers: res.headers };
    },
    async close() {
      await server.app.close();
      await rebound.close();
      await dropStore(storeUrl);
    },
  };
}
