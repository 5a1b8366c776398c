/**
 * How long the lease rescue takes to bring back N jobs whose worker died holding them
 * (docs/core.md, "Rescue of dead workers' jobs"). Not part of `npm run bench`:
 *
 *   node --import tsx bench/probes/rescue.ts [postgres|sqlite] [N]
 *
 * One job in ten is sent to the dead letter queue, the rest requeued; passes of 1,000 as the rescuer runs them.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { openStore } from '../../src/store/open.ts';
import type { ErrorInfo } from '../../src/job.ts';
import { jobFactory, T0 } from '../../test/helpers/new-job.ts';

const kind = process.argv[2] ?? 'postgres';
const N = Number(process.argv[3] ?? 2000);
const pgUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const url =
  kind === 'sqlite'
    ? `sqlite:/tmp/rebound-rescue-${randomUUID()}.db`
    : `${pgUrl}${pgUrl.includes('?') ? '&' : '?'}schema=rescue_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
const store = await openStore(url);
await store.migrate();
const newJob = jobFactory('email');
for (let i = 0; i < N; i += 1000) await store.insertJobs(Array.from({ length: Math.min(1000, N - i) }, () => newJob()), T0);
for (let claimed = 0; claimed < N; ) {
  claimed += (await store.claimJobs({ workerId: 'dead-worker', queues: ['default'], types: ['email'], limit: 1000, leaseMs: 1000, now: T0 })).length;
}

const error: ErrorInfo = { name: 'LeaseExpired', message: 'lease expired', kind: 'lease_lost', fingerprint: 'probe' };
const started = performance.now();
let passes = 0;
let rescued = 0;
for (;;) {
  const r = await store.rescueExpiredLeases({
    now: T0 + 5000,
    limit: 1000,
    decide: (job, crash) =>
      Number(job.id) % 10 === 0 ? { kind: 'dead', reason: 'poison', error, crashes: 1 } : { kind: 'requeue', error, crashes: 1, isolate: crash.alone },
  });
  passes++;
  if (r.requeued.length + r.dead.length === 0) break;
  rescued += r.requeued.length + r.dead.length;
}
console.log(`${kind}: ${rescued} expired leases rescued in ${passes - 1} passes, ${Math.round(performance.now() - started)} ms`);
await store.close();
if (kind !== 'sqlite') {
  const client = new pg.Client({ connectionString: pgUrl });
  await client.connect();
  await client.query(`DROP SCHEMA "${new URL(url).searchParams.get('schema')}" CASCADE`);
  await client.end();
}
