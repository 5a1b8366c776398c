/**
 * Real stores for tests: a fresh SQLite file, or a fresh schema on the suite's
 * PostgreSQL server. `storeKinds` lets one test body run against both.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';

export const storeKinds = ['sqlite', 'postgres'] as const;
export type StoreKind = (typeof storeKinds)[number];

export function databaseUrl(): string {
  return inject('databaseUrl');
}

/** A URL for a new, empty store of the given kind. */
export function freshStoreUrl(kind: StoreKind): string {
  if (kind === 'sqlite') return `sqlite:${join(mkdtempSync(join(tmpdir(), 'rebound-test-')), 'rebound.db')}`;
  const schema = `t_${randomUUID().replace(/-/g, '').slice(0, 16)}`;
  const url = new URL(databaseUrl());
  url.searchParams.set('schema', schema);
  return url.toString();
}

/** A raw client connected to a PostgreSQL store URL's server, and the URL's schema; the caller ends the client. */
export async function schemaClient(url: string): Promise<{ client: pg.Client; schema: string }> {
  const u = new URL(url);
  const schema = u.searchParams.get('schema')!;
  u.searchParams.delete('schema');
  const client = new pg.Client({ connectionString: u.toString() });
  await client.connect();
  return { client, schema };
}

/** Drops a test schema (PostgreSQL); SQLite files live in the temp dir. */
export async function dropStore(url: string): Promise<void> {
  if (!url.startsWith('postgres')) return;
  const { client, schema } = await schemaClient(url);
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end();
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it returns a truthy value or the time runs out. */
export async function waitFor<T>(check: () => Promise<T> | T, timeoutMs = 20_000, stepMs = 25): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > end) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(stepMs);
  }
}
