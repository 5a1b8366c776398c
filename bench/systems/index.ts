// All systems by name. Adapters import their libraries lazily, so a worker
// child loads only the system it runs (and its RSS is that system's alone).
import type { System } from './types.ts';
import { reboundPg, reboundSqlite } from './rebound.ts';
import { graphile } from './graphile.ts';
import { pgboss } from './pgboss.ts';
import { bullmq } from './bullmq.ts';
import { rawPg } from './raw-pg.ts';
import { rawSqlite } from './raw-sqlite.ts';

export const SYSTEMS: System[] = [reboundPg, reboundSqlite, graphile, pgboss, bullmq, rawPg, rawSqlite];

export function system(name: string): System {
  const s = SYSTEMS.find((x) => x.name === name);
  if (!s) throw new Error(`unknown system ${name}; known: ${SYSTEMS.map((x) => x.name).join(', ')}`);
  return s;
}
