/**
 * Chooses a store from a URL: `sqlite:PATH` or `postgres://…`.
 * The URL comes from `--store`, else REBOUND_STORE, else the embedded default.
 */
import { ConfigError } from '../errors.ts';
import type { Store } from './store.ts';

export const DEFAULT_STORE_URL = 'sqlite:.rebound/rebound.db';

export function resolveStoreUrl(explicit?: string): string {
  return explicit || process.env.REBOUND_STORE || DEFAULT_STORE_URL;
}

/** The file of a `sqlite:` URL (`sqlite:///abs` and `sqlite:/abs` alike), or null for another store. */
export function sqlitePathOf(url: string): string | null {
  return url.startsWith('sqlite:') ? url.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '') : null;
}

/**
 * `sqlite:relative/or/absolute.db` (or `sqlite::memory:`), or
 * `postgres://user@host:port/db?schema=rebound&pool=10`.
 * Only the chosen store's code and driver are loaded: a command-line call starts faster without the other's.
 */
export async function openStore(url: string): Promise<Store> {
  const path = sqlitePathOf(url);
  if (path !== null) {
    if (!path) throw new ConfigError('store URL "sqlite:" needs a path, for example sqlite:.rebound/rebound.db');
    const { SqliteStore } = await import('./sqlite/sqlite-store.ts');
    return new SqliteStore(path);
  }
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
    const parsed = new URL(url);
    const schema = parsed.searchParams.get('schema') ?? 'rebound';
    const pool = parsed.searchParams.get('pool');
    parsed.searchParams.delete('schema');
    parsed.searchParams.delete('pool');
    if (!/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(schema)) {
      throw new ConfigError(`store URL: schema "${schema}" must be a plain identifier (letters, digits, underscore)`);
    }
    const poolSize = pool == null ? undefined : Number(pool);
    if (poolSize !== undefined && !(Number.isInteger(poolSize) && poolSize > 0)) {
      throw new ConfigError(`store URL: pool "${pool}" must be a positive integer`);
    }
    const { PostgresStore } = await import('./postgres/postgres-store.ts');
    return new PostgresStore({ connectionString: parsed.toString(), schema, poolSize });
  }
  throw new ConfigError(`store URL "${url}" is not supported; use sqlite:PATH or postgres://user@host/db`);
}
