/**
 * Where a bulk load goes: the enqueue workload's bulk loop (calls of `batch` jobs, `jobs` in all) in this
 * process, after the same warm-up and, unless `--no-singles`, the same 12,000 single enqueues before it,
 * as bench/harness.ts's `enqueueRates` makes them. Not part of `npm run bench`:
 *
 *   node --import tsx bench/probes/bulk.ts [system,system...] [rounds] [--no-singles]
 *
 * Per round and system: jobs/s, this process's CPU on its main thread and its other threads, and each
 * PostgreSQL process's CPU, read from /proc around the bulk loop. Systems alternate round by round.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { system } from '../systems/index.ts';
import { chunks, ensureBenchDatabase, now, payloads, settlePostgres } from '../lib.ts';

const args = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const singles = !process.argv.includes('--no-singles');
const systems = (args[0] ?? 'rebound-pg,graphile-worker').split(',').map(system);
const rounds = Number(args[1] ?? 3);
const [BULK, BATCH] = [50_000, 1_000];

const statMs = (stat: string) => {
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
};
function cpu() {
  let main = 0;
  let other = 0;
  for (const tid of readdirSync(`/proc/${process.pid}/task`)) {
    const ms = statMs(readFileSync(`/proc/${process.pid}/task/${tid}/stat`, 'utf8'));
    if (tid === String(process.pid)) main += ms;
    else other += ms;
  }
  let pg = 0;
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      if (stat.includes('(postgres)')) pg += statMs(stat);
    } catch {
      // ended meanwhile
    }
  }
  return { main, other, pg };
}

await ensureBenchDatabase();
for (let r = 1; r <= rounds; r++) {
  for (const sys of systems) {
    await sys.reset();
    const c = await sys.connect('producer');
    if (sys.store === 'postgres') await settlePostgres(sys.pgSchema);
    for (let i = 0; i < 100; i++) await c.enqueue({ i: -i });
    await c.enqueueMany(payloads(BATCH));
    if (singles) {
      for (let i = 0; i < 2_000; i++) await c.enqueue({ i });
      let next = 0;
      await Promise.all(Array.from({ length: 100 }, async () => { while (next < 10_000) await c.enqueue({ i: next++ }); }));
    }
    const batches = chunks(payloads(BULK), BATCH);
    const a = cpu();
    const t0 = now();
    for (const b of batches) await c.enqueueMany(b);
    const ms = now() - t0;
    const b = cpu();
    await c.close();
    console.log(`${sys.name} round ${r}: ${Math.round(BULK / (ms / 1000))} jobs/s (${ms.toFixed(0)} ms); CPU ms main ${b.main - a.main}, other ${b.other - a.other}, postgres ${b.pg - a.pg}`);
  }
}
process.exit(0);
