/**
 * The demo's own guarantees, on a real SQLite store: a demo left running keeps
 * a bounded store (what it finished is pruned within hours, not weeks).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createRebound, type Job, type Rebound } from '../src/index.ts';
import { waitFor } from './helpers/stores.ts';

const MINUTE = 60_000;
const silent = { debug() {}, info() {}, warn() {}, error() {}, child: () => silent };
const tempFile = () => join(mkdtempSync(join(tmpdir(), 'rebound-demo-')), 'demo.db');

describe('the demo', () => {
  let rebound: Rebound | null = null;
  afterEach(async () => {
    await rebound?.close();
    rebound = null;
  });

  it('keeps a bounded store: completed jobs are pruned after half an hour, dead ones after two hours', async () => {
    // A payment service that is never down, so every order and capture completes.
    process.env.REBOUND_DEMO_DOWN_MS = '0';
    const { default: jobs } = await import('../src/demo/jobs.ts');
    const { demoFeed } = await import('../src/demo/scenario.ts');
    let skew = 0;
    rebound = await createRebound({ store: `sqlite:${tempFile()}`, jobs, now: () => Date.now() + skew, logger: silent });
    // One batch as the feeder enqueues it, with a malformed invoice and a report that does not crash.
    const batch = demoFeed({ crashEvery: Infinity, poisonRatio: 1 })();
    const ids = (await rebound.enqueueMany(batch)).map((r) => r.id);
    const worker = rebound.work({ concurrency: 10 });
    const finished: Job[] = await waitFor(async () => {
      const all = await Promise.all(ids.map((id) => rebound!.getJob(id)));
      return all.every((j) => j && ['completed', 'dead'].includes(j.state)) ? all.map((j) => j!) : null;
    }).then((all) => all!);
    await worker.stop();
    const dead = finished.filter((j) => j.state === 'dead');
    expect(dead.map((j) => j.type)).toEqual(['invoice.parse']);

    const prune = async (after: number) => {
      skew = after;
      const c = rebound!.coordination.coordinator({ leaseMs: 10_000 });
      await c.elector.runOnce();
      await c.runOnce();
      return (await Promise.all(ids.map((id) => rebound!.getJob(id)))).filter((j) => j !== null).map((j) => j!.id);
    };
    expect(await prune(31 * MINUTE)).toEqual(dead.map((j) => j.id));
    expect(await prune(121 * MINUTE)).toEqual([]);
  });
});
