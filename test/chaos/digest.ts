/**
 * A digest of the stored jobs, their history and their once-results, read
 * straight from SQL: equal digests before and after a refused input prove
 * that the input changed nothing.
 */
import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import type pg from 'pg';
import { schemaClient } from '../helpers/stores.ts';

const TABLES = ['jobs', 'job_events', 'job_once'];

export async function tablesDigest(storeUrl: string): Promise<string> {
  const hash = createHash('sha256');
  if (storeUrl.startsWith('sqlite:')) {
    const db = new Database(storeUrl.slice('sqlite:'.length), { readonly: true });
    try {
      for (const t of TABLES) hash.update(t).update(JSON.stringify(db.prepare(`SELECT * FROM ${t} ORDER BY rowid`).all()));
    } finally {
      db.close();
    }
    return hash.digest('hex');
  }
  const { client, schema } = await schemaClient(storeUrl);
  try {
    for (const t of TABLES) {
      const { rows } = await client.query(`SELECT coalesce(md5(string_agg(x::text, '|' ORDER BY x::text)), '') AS d FROM "${schema}".${t} x`);
      hash.update(t).update(rows[0].d);
    }
  } finally {
    await client.end();
  }
  return hash.digest('hex');
}

/** The same digest, from an open store (its SQLite file, or its pool and schema). */
export async function storeDigest(store: { kind: string }): Promise<string> {
  if (store.kind === 'sqlite') return tablesDigest(`sqlite:${(store as unknown as { path: string }).path}`);
  const { pool, schema } = store as unknown as { pool: pg.Pool; schema: string };
  const hash = createHash('sha256');
  for (const t of TABLES) {
    const { rows } = await pool.query(`SELECT coalesce(md5(string_agg(x::text, '|' ORDER BY x::text)), '') AS d FROM "${schema}".${t} x`);
    hash.update(t).update(rows[0].d);
  }
  return hash.digest('hex');
}
