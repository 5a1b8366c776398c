/**
 * The supervisor with real worker processes: kill -9 a child while jobs run,
 * a poison job that kills its process every time, a child whose event loop is
 * blocked, a handler that ignores its abort, a crash loop, SIGTERM drains, and
 * SIGKILL of the supervisor loses nothing.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { createRebound, type Rebound, type ReboundEvents } from '../src/index.ts';
import { ReboundEmitter } from '../src/events.ts';
import { superviseWorkers, type Supervisor, type SupervisorOptions } from '../src/runtime/supervisor.ts';
import { exited, startCli } from './helpers/cli.ts';
import { startDownstream, type Downstream } from './helpers/downstream.ts';
import { dropStore, freshStoreUrl, sleep, storeKinds, waitFor } from './helpers/stores.ts';

const JOBS = fileURLToPath(new URL('./fixtures/self-healing-jobs.ts', import.meta.url));

function ledgerFile() {
  const file = join(mkdtempSync(join(tmpdir(), 'rebound-ledger-')), 'ledger.txt');
  writeFileSync(file, '');
  return file;
}
/** A jobs file (.mjs) with this source, in a directory of its own. */
function jobsFileThat(source: string) {
  const file = join(mkdtempSync(join(tmpdir(), 'rebound-jobs-')), 'jobs.mjs');
  writeFileSync(file, source);
  return file;
}
const lines = (file: string) => readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => l.split(' '));
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/**
 * SIGKILLs `pid` at a moment when each effect it applied has its outcome stored (a `recorded` line
 * follows every `effect` line). It freezes the process with SIGSTOP to look, and lets it run on a
 * little when an effect is still unrecorded. A kill inside that window repeats the effect by design:
 * `ctx.once` closes it only with the idempotency key it hands downstream (docs/core.md).
 */
async function killBetweenEffects(pid: number, ledger: string) {
  for (;;) {
    process.kill(pid, 'SIGSTOP');
    const own = lines(ledger).filter((l) => l[2] === String(pid));
    const recorded = new Set(own.filter((l) => l[0] === 'recorded').map((l) => l[1]));
    if (own.every((l) => l[0] !== 'effect' || recorded.has(l[1]))) {
      process.kill(pid, 'SIGKILL');
      return;
    }
    process.kill(pid, 'SIGCONT');
    await sleep(2);
  }
}

type Recorded = { [K in keyof ReboundEvents]?: ReboundEvents[K][] };

function setup(kind: (typeof storeKinds)[number]) {
  const ctx = {
    url: '',
    rebound: undefined as Rebound | undefined,
    supervisors: [] as Supervisor[],
    recorded: {} as Recorded,
    async open() {
      ctx.url = freshStoreUrl(kind);
      ctx.rebound = await createRebound({ store: ctx.url });
      return ctx.rebound;
    },
    supervise(ledger: string, over: Partial<SupervisorOptions> = {}) {
      const events = new ReboundEmitter();
      for (const name of [
        'supervisor:process_started',
        'supervisor:process_exited',
        'supervisor:process_restarting',
        'supervisor:process_unresponsive',
        'supervisor:process_recycling',
        'supervisor:crash_loop',
      ] as const) {
        events.on(name, (e) => ((ctx.recorded[name] ??= []) as unknown[]).push(e));
      }
      const s = superviseWorkers({
        jobsFile: JOBS,
        processes: 2,
        store: ctx.url,
        restartBaseMs: 50,
        stdio: 'ignore',
        env: { LEDGER: ledger, REBOUND_LOG_LEVEL: 'silent' },
        events,
        stopTimeoutMs: 5000,
        ...over,
      });
      ctx.supervisors.push(s);
      return s;
    },
    async cleanup() {
      for (const s of ctx.supervisors.splice(0)) {
        for (const p of s.processes()) if (p.pid && alive(p.pid)) process.kill(p.pid, 'SIGKILL');
        await s.stop();
      }
      ctx.recorded = {};
      await ctx.rebound?.close();
      await dropStore(ctx.url);
    },
  };
  return ctx;
}

describe.each(storeKinds)('supervised worker processes on %s', (kind) => {
  const t = setup(kind);
  afterEach(() => t.cleanup());

  it('a child killed with -9 while jobs run is restarted, and every job completes with its effect applied once', async () => {
    const rebound = await t.open();
    const ledger = ledgerFile();
    await rebound.enqueueMany(Array.from({ length: 30 }, () => ({ type: 'work', payload: { ms: 150 } })));
    const s = t.supervise(ledger, { concurrency: 3 });
    await waitFor(() => lines(ledger).filter((l) => l[0] === 'effect').length >= 4);
    const victim = s.processes().find((p) => p.inFlight > 0 && p.pid) ?? s.processes()[0];
    await killBetweenEffects(victim.pid!, ledger);
    await waitFor(() => (t.recorded['supervisor:process_started']?.length ?? 0) >= 3);
    await waitFor(async () => (await rebound.countJobs({ state: 'completed' })) === 30, 40_000);
    const effects = lines(ledger).filter((l) => l[0] === 'effect').map((l) => l[1]);
    expect(effects).toHaveLength(30);
    expect(new Set(effects).size).toBe(30);
    expect(t.recorded['supervisor:process_exited']?.[0]).toMatchObject({ slot: victim.slot, pid: victim.pid, signal: 'SIGKILL', reason: 'crashed' });
    expect(s.processes()[victim.slot]).toMatchObject({ restarts: 1, crashes: 1 });
  });

  it('a job that crashes its process every time ends in the DLQ as poison, and the other jobs complete', async () => {
    const rebound = await t.open();
    const ledger = ledgerFile();
    const poison = await rebound.enqueue('crash', {}, { maxAttempts: 10 });
    await rebound.enqueueMany(Array.from({ length: 6 }, () => ({ type: 'work', payload: {} })));
    const s = t.supervise(ledger, { drain: true });
    await s.done; // drained: every process exited 0 once no work was left
    expect(await rebound.getJob(poison.id)).toMatchObject({ state: 'dead', deadReason: 'poison', crashCount: 3 });
    // Three crashes are blamed on it (it ran alone); a crash that also took another job's lease is not
    // blamed, and the jobs it took down rerun alone as suspects. Every crash restarted a process.
    const crashes = lines(ledger).filter((l) => l[0] === 'crash').length;
    expect(crashes).toBeGreaterThanOrEqual(3);
    expect(await rebound.countJobs({ type: 'work', state: 'completed' })).toBe(6);
    expect(t.recorded['supervisor:process_exited']?.filter((e) => e.reason === 'crashed')).toHaveLength(crashes);
  });
});

describe.each(storeKinds)('a downstream outage under supervised processes on %s', (kind) => {
  const t = setup(kind);
  let downstream: Downstream | undefined;
  afterEach(async () => {
    await t.cleanup();
    await downstream?.close();
    downstream = undefined;
  });

  it('trips the shared breaker; jobs wait without losing attempts; after recovery the waiting and dead jobs complete', async () => {
    const service = (downstream = await startDownstream());
    service.up = false;
    const rebound = await t.open();
    const ledger = ledgerFile();
    const doomed = await rebound.enqueueMany([0, 1].map(() => ({ type: 'charge', payload: {}, opts: { maxAttempts: 1, priority: -1 } })));
    const waiting = await rebound.enqueueMany([0, 1, 2, 3].map(() => ({ type: 'charge', payload: {}, opts: { maxAttempts: 5 } })));
    t.supervise(ledger, { processes: 2, concurrency: 1, env: { LEDGER: ledger, DOWNSTREAM: service.url, REBOUND_LOG_LEVEL: 'silent' } });
    await waitFor(async () => (await rebound.breakers.get('payments')).state === 'open', 30_000);
    // The other process's claim gate may trust its copy of the breakers for up to 250 ms more
    // (Breakers.refreshMs) and claim a job that it then puts back without charging the attempt.
    // Past that, nothing is claimed until the cool-down ends; wait for the slipped jobs to go back.
    await sleep(300);
    await waitFor(async () => (await rebound.countJobs({ state: 'running' })) === 0);
    for (const d of doomed) expect((await rebound.getJob(d.id))?.state).toBe('dead');
    const calls = service.calls.down;
    const attempts = await Promise.all(waiting.map(async (w) => (await rebound.getJob(w.id))!.attempt));
    const { openUntil } = await rebound.breakers.get('payments');
    await sleep(Math.max(100, openUntil! - Date.now() - 300)); // until shortly before the 1.5 s cool-down ends
    expect(service.calls.down).toBe(calls);
    expect(await Promise.all(waiting.map(async (w) => (await rebound.getJob(w.id))!.attempt))).toEqual(attempts);

    service.up = true;
    await waitFor(async () => (await rebound.countJobs({ state: 'completed' })) === 6, 30_000);
    const charged = lines(ledger).filter((l) => l[0] === 'charged').map((l) => l[1]);
    expect(new Set(charged).size).toBe(6);
    const redriven = (await rebound.inspect(doomed[0].id)).history.find((h) => h.kind === 'redriven');
    expect(redriven?.data).toMatchObject({ actor: 'auto-redrive:breaker:payments' });
    const changes = (await rebound.breakers.events({ name: 'payments' })).map((e) => e.to).reverse();
    expect(changes.slice(0, 1)).toEqual(['open']);
    expect(changes.at(-1)).toBe('closed');
  });
});

describe('supervisor behaviour (sqlite)', () => {
  const t = setup('sqlite');
  afterEach(() => t.cleanup());

  it('a child whose event loop is blocked is killed and replaced; the others keep working', async () => {
    const rebound = await t.open();
    const ledger = ledgerFile();
    const s = t.supervise(ledger, { processes: 1, livenessTimeoutMs: 1500, heartbeatIntervalMs: 200, concurrency: 1 });
    await waitFor(() => s.processes()[0].state === 'running', 30_000);
    await rebound.enqueue('block', { ms: 60_000 });
    await waitFor(() => t.recorded['supervisor:process_unresponsive']?.length === 1, 30_000);
    const [stuck] = t.recorded['supervisor:process_unresponsive']!;
    expect(stuck.silentMs).toBeGreaterThan(1500);
    await waitFor(() => t.recorded['supervisor:process_exited']?.[0]?.reason === 'unresponsive');
    await waitFor(() => (t.recorded['supervisor:process_started']?.length ?? 0) === 2);
    expect(alive(stuck.pid)).toBe(false);
    // The replacement takes work (the blocked job waits for its lease to expire).
    const { id } = await rebound.enqueue('work', {}, { priority: -1 });
    await waitFor(async () => (await rebound.getJob(id))?.state === 'completed', 20_000);
    expect(s.processes()[0].pid).not.toBe(stuck.pid);
  });

  it('a stop while an unresponsive child is being replaced restarts nothing and does not wait out the restart delay', async () => {
    const rebound = await t.open();
    const s = t.supervise(ledgerFile(), { processes: 1, livenessTimeoutMs: 1500, heartbeatIntervalMs: 200, concurrency: 1, restartBaseMs: 60_000, restartMaxMs: 60_000 });
    await waitFor(() => s.processes()[0].state === 'running', 30_000);
    let stopped: Promise<void> | null = null;
    s.events.on('supervisor:process_unresponsive', () => (stopped ??= s.stop()));
    await rebound.enqueue('block', { ms: 60_000 });
    await waitFor(() => stopped !== null, 30_000);
    await stopped;
    expect(t.recorded['supervisor:process_exited']).toEqual([expect.objectContaining({ reason: 'unresponsive' })]);
    expect(t.recorded['supervisor:process_restarting']).toBeUndefined();
    expect(s.processes()[0].state).toBe('exited');
  });

  it('a handler that ignores its abort past timeout + grace: the job fails with a timeout and the process is recycled', async () => {
    const rebound = await t.open();
    const ledger = ledgerFile();
    const { id } = await rebound.enqueue('stubborn', {}, { maxAttempts: 1 });
    t.supervise(ledger, { processes: 1, timeoutGraceMs: 300 });
    await waitFor(() => t.recorded['supervisor:process_exited']?.some((e) => e.reason === 'recycled'), 30_000);
    expect(t.recorded['supervisor:process_recycling']?.[0]).toMatchObject({ jobId: id });
    expect(t.recorded['supervisor:process_restarting']?.[0]).toMatchObject({ delayMs: 0, reason: 'recycled' });
    const job = await rebound.getJob(id);
    expect(job).toMatchObject({ state: 'dead', attempt: 1 });
    expect(job?.lastError).toMatchObject({ kind: 'timeout', code: 'timeout' });
    await waitFor(() => (t.recorded['supervisor:process_started']?.length ?? 0) === 2);
  });

  it('a crash loop is reported once and its restarts slowed', async () => {
    await t.open();
    const s = t.supervise(ledgerFile(), {
      processes: 1,
      jobsFile: jobsFileThat('process.exit(1);\n'),
      restartBaseMs: 20,
      restartMaxMs: 1500,
      crashLoop: { crashes: 2, withinMs: 60_000 },
    });
    await waitFor(() => (t.recorded['supervisor:process_restarting']?.length ?? 0) >= 4, 40_000);
    expect(t.recorded['supervisor:crash_loop']).toHaveLength(1);
    expect(t.recorded['supervisor:crash_loop']![0]).toMatchObject({ crashes: 3, delayMs: 1500 });
    const delays = t.recorded['supervisor:process_restarting']!.map((e) => e.delayMs);
    expect(delays.slice(0, 2)).toEqual([20, 40]);
    expect(delays.slice(2)).toEqual(delays.slice(2).map(() => 1500));
    await s.stop();
  });

  it('a child that exits with a configuration error (2) is not restarted: every process is stopped and the failure reported', async () => {
    await t.open();
    const s = t.supervise(ledgerFile(), { processes: 2, jobsFile: '/nonexistent/jobs.ts', restartBaseMs: 20 });
    await s.done;
    expect(s.failure).toMatchObject({ code: 2 });
    expect(t.recorded['supervisor:process_restarting']).toBeUndefined();
    expect(s.processes().map((p) => p.state)).toEqual(['exited', 'exited']);
  });

  it('an exit 2 after a process came up (the store unreachable while it restarted) is a crash: restarted, the others keep working', async () => {
    const rebound = await t.open();
    const outage = join(mkdtempSync(join(tmpdir(), 'rebound-outage-')), 'down');
    const jobsFile = jobsFileThat(
      `import { existsSync } from 'node:fs';\nif (existsSync(${JSON.stringify(outage)})) throw new Error('store unreachable');\n` +
        `export { default } from ${JSON.stringify(JOBS)};\n`,
    );
    const s = t.supervise(ledgerFile(), { processes: 2, jobsFile, restartBaseMs: 20, restartMaxMs: 200 });
    await waitFor(() => s.processes().every((p) => p.state === 'running'), 30_000);
    const [victim, survivor] = s.processes().map((p) => p.pid!);
    writeFileSync(outage, '');
    process.kill(victim, 'SIGKILL');
    await waitFor(() => t.recorded['supervisor:process_exited']?.some((e) => e.code === 2), 30_000);
    // Before, the supervisor took that exit for a bad configuration and stopped every process, the healthy one too.
    expect(s.failure).toBeNull();
    expect(alive(survivor)).toBe(true);
    rmSync(outage);
    await waitFor(() => s.processes()[0].state === 'running' && s.processes()[0].pid !== victim, 30_000);
    const { id } = await rebound.enqueue('work', {});
    await waitFor(async () => (await rebound.getJob(id))?.state === 'completed', 20_000);
  });

  it('rebound worker --processes exits 2 with the child\'s error when a worker process refuses its configuration', async () => {
    await t.open();
    // Loads in the supervisor (which checks it before spawning) but not in a worker process.
    const jobs = jobsFileThat(
      "if (process.env.REBOUND_SUPERVISED) throw new Error('SECRET_KEY is not set');\nexport default { ok: { handler: async () => 1 } };\n",
    );
    const sup = startCli(['worker', '--jobs', jobs, '--store', t.url, '--processes', '2', '--drain']);
    expect(await exited(sup)).toBe(2);
    expect(sup.output()).toMatch(/error: config: --jobs: cannot load .*: SECRET_KEY is not set/);
    expect(sup.output()).toMatch(/error: config: worker process \d+ \(slot \d\) exited with a configuration error/);
  });

  it('rebound start --processes stops the server too and exits 2 when a worker process refuses its configuration', async () => {
    await t.open();
    const jobs = jobsFileThat(
      "if (process.env.REBOUND_SUPERVISED) throw new Error('SECRET_KEY is not set');\nexport default { ok: { handler: async () => 1 } };\n",
    );
    const server = startCli(['start', '--jobs', jobs, '--store', t.url, '--processes', '1', '--port', '0']);
    expect(await exited(server)).toBe(2);
    expect(server.output()).toMatch(/error: config: worker process \d+ \(slot \d\) exited with a configuration error .*the workers and the server stopped/);
  });

  it('rebound worker --processes: SIGTERM drains the running job; SIGKILL of the supervisor loses nothing', async () => {
    const rebound = await t.open();
    const ledger = ledgerFile();
    const first = await rebound.enqueue('work', { ms: 1500 });
    const sup = startCli(['worker', '--jobs', JOBS, '--store', t.url, '--processes', '2', '--concurrency', '1'], { LEDGER: ledger, REBOUND_LOG_LEVEL: 'info' }, { group: true });
    await waitFor(() => lines(ledger).some((l) => l[0] === 'effect' && l[1] === first.id), 30_000);
    // Both up: a process still loading its modules has no handler yet (and holds no job) and dies of any signal.
    await waitFor(() => (sup.output().match(/"msg":"worker started"/g) ?? []).length === 2, 30_000);
    // To the whole process group, as systemd's default KillMode=control-group stops a service: each child gets
    // this SIGTERM and then its supervisor's. The second one killed a child mid-job (left running for its lease).
    process.kill(-sup.pid!, 'SIGTERM');
    expect(await exited(sup)).toBe(0);
    // Both children (the idle one too) drained and exited 0; none was killed by the second signal.
    const exits = sup.output().match(/"code":\w+,"signal":\S+?,"reason":"stopped","msg":"worker process exited"/g);
    expect(exits).toEqual(Array(2).fill('"code":0,"signal":null,"reason":"stopped","msg":"worker process exited"'));
    expect(await rebound.getJob(first.id)).toMatchObject({ state: 'completed', attempt: 1 });

    const second = await rebound.enqueue('work', { ms: 1500 });
    const sup2 = startCli(['worker', '--jobs', JOBS, '--store', t.url, '--processes', '1'], { LEDGER: ledger });
    await waitFor(() => lines(ledger).some((l) => l[0] === 'effect' && l[1] === second.id), 30_000);
    const childPid = Number(lines(ledger).find((l) => l[1] === second.id)![2]);
    sup2.kill('SIGKILL');
    await exited(sup2);
    // The orphaned child notices its supervisor is gone, finishes or releases its job, and exits.
    await waitFor(() => !alive(childPid), 20_000);
    const job = await rebound.getJob(second.id);
    if (job?.state !== 'completed') {
      const w = startCli(['worker', '--jobs', JOBS, '--store', t.url, '--drain'], { LEDGER: ledger });
      expect(await exited(w)).toBe(0);
    }
    expect(await rebound.getJob(second.id)).toMatchObject({ state: 'completed' });
    expect(lines(ledger).filter((l) => l[0] === 'effect' && l[1] === second.id)).toHaveLength(1);
  });
});
