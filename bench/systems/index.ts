// All systems by name. Adapters import their libraries lazily, so a worker
// child loads only the system it runs (and its RSS is that system's alone).
import type { System } from './types.ts';
import { reboundPg, reboundSqlite } from './rebound.ts';
import { graphile } from './graphile.ts';
import { pgboss } from './pgboss.ts';
import { bullmq } from './bullmq.ts';
import { rawPg } from './raw-pg.ts';
import { rawSqlite } from './raw-sqlite.ts';
import { reboundStorePg } from './rebound-store.ts';

export const SYSTEMS: System[] = [reboundPg, reboundSqlite, graphile, pgboss, bullmq, rawPg, rawSqlite];

/** Run only when named (--systems, or a probe): they explain a result rather than compare. */
export const DIAGNOSTIC_SYSTEMS: System[] = [reboundStorePg];

export function system(name: string): System {
  const all = [...SYSTEMS, ...DIAGNOSTIC_SYSTEMS];
  const s = all.find((x) => x.name === name);
  if (!s) throw new Error(`unknown system ${name}; known: ${all.map((x) => x.name).join(', ')}`);
  return s;
}
