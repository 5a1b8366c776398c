/**
 * The demo's own guarantees, on a real SQLite store: a demo left running keeps
 * a bounded store (what it finished is pruned within hours, not weeks), and
 * `npm start` never empties the store of a demo that is still running.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createRebound, type Job, type Rebound } from '../src/index.ts';
import { BIN } from './helpers/cli.ts';
import { waitFor } from './helpers/stores.ts';

const MINUTE = 60_000;
const silent = { debug() {}, info() {}, warn() {}, error() {}, child: () => silent };
const tempFile = () => join(mkdtempSync(join(tmpdir(), 'rebound-demo-')), 'demo.db');

describe('the demo', () => {
  let rebound: Rebound | null = null;
  let child: ChildProcess | null = null;
  afterEach(async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => child!.once('exit', r));
    }
    child = null;
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

  it('a second `npm start` in the same directory leaves the running demo\'s store alone and says why', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rebound-demo-'));
    mkdirSync(join(dir, '.rebound'));
    // The running demo: a process with .rebound/demo.db open and a job in it.
    rebound = await createRebound({ store: `sqlite:${join(dir, '.rebound', 'demo.db')}`, jobs: [], logger: silent });
    const { id } = await rebound.enqueue('kept', {});
    const env = { ...process.env };
    delete env.REBOUND_STORE;
    const second = (child = spawn(process.execPath, [BIN, 'start', '--demo', '--port', '0'], { cwd: dir, env }));
    let stderr = '';
    second.stderr.on('data', (d) => (stderr += d));
    const code = await new Promise((r) => second.once('exit', r));
    expect(code).toBe(2);
    expect(stderr).toMatch(/the demo's store \.rebound\/demo\.db is open in another process \(is another `npm start` running\?\)/);
    expect(await rebound.getJob(id)).toMatchObject({ type: 'kept' });
  });

  it("refuses to empty the demo's store while another process has it open, and empties it once none has", async () => {
    const { freshDemoStore } = await import('../src/demo/store.ts');
    const path = tempFile();
    rebound = await createRebound({ store: `sqlite:${path}`, jobs: [], logger: silent });
    const { id } = await rebound.enqueue('kept', {});
    expect(() => freshDemoStore(`sqlite:${path}`)).toThrow(/demo's store .* is open in another process .*--store sqlite:PATH/);
    expect(await rebound.getJob(id)).not.toBeNull();
    await rebound.close();
    rebound = null;
    expect(freshDemoStore(`sqlite:${path}`)).toBe(`sqlite:${path}`);
    expect(existsSync(path)).toBe(false);
    // A file that is not a database holds no demo to keep: it is emptied too.
    writeFileSync(path, 'not a database');
    freshDemoStore(`sqlite:${path}`);
    expect(existsSync(path)).toBe(false);
  });
});
