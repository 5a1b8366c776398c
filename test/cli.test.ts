/**
 * The CLI as a user meets it: exit codes (0 ok, 1 failure, 2 bad usage),
 * one-line errors, --json output, and bad input that changes nothing.
 */
import { spawn } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createRebound, defineJob, PermanentError, StoreUnavailableError, ValidationError } from '../src/index.ts';
import { BIN, exited, FIXTURE_JOBS, runCli, startCli } from './helpers/cli.ts';
import { databaseUrl, dropStore, freshStoreUrl, storeKinds, waitFor } from './helpers/stores.ts';

/** A jobs file whose job loads but whose `schedules` export is not schedules. */
const BAD_SCHEDULES = join(mkdtempSync(join(tmpdir(), 'rebound-cli-')), 'bad-schedules.mjs');
writeFileSync(BAD_SCHEDULES, 'export default { ok: { handler: async () => 1 } };\nexport const schedules = 42;\n');

/** How many jobs the store at `url` holds, read by a client of its own. */
async function countJobsAt(url: string): Promise<number> {
  const r = await createRebound({ store: url });
  try {
    return await r.countJobs();
  } finally {
    await r.close();
  }
}

describe.each(storeKinds)('rebound CLI on %s', (kind) => {
  let url: string;
  afterEach(async () => dropStore(url));
  const cli = (...args: string[]) => runCli(['--store', url, ...args]);
  const count = () => countJobsAt(url);

  it('enqueues, deduplicates by key, runs with --drain, and shows a job with its history', async () => {
    url = freshStoreUrl(kind);
    const first = await cli('enqueue', 'order', '{"orderId":"o1","amount":5}', '--key', 'k1', '--json', '--jobs', FIXTURE_JOBS);
    expect(first.code).toBe(0);
    const out = JSON.parse(first.stdout);
    expect(out).toEqual({ id: expect.any(String), state: 'available', deduplicated: false });
    const again = JSON.parse((await cli('enqueue', 'order', '{"amount":5,"orderId":"o1"}', '--key', 'k1', '--json')).stdout);
    expect(again).toEqual({ id: out.id, state: 'available', deduplicated: true });
    const conflict = await cli('enqueue', 'order', '{"orderId":"o2","amount":5}', '--key', 'k1');
    expect(conflict.code).toBe(1);
    expect(conflict.stderr).toMatch(/^error: idempotency_conflict: idempotency key "k1"/);

    const worker = await cli('worker', '--jobs', FIXTURE_JOBS, '--drain', '--concurrency', '2');
    expect(worker.code).toBe(0);
    const shown = JSON.parse((await cli('job', out.id, '--json')).stdout);
    expect(shown.job).toMatchObject({ state: 'completed', result: { charged: 'o1' } });
    expect(shown.history.map((h: { kind: string }) => h.kind)).toEqual(['enqueued', 'claimed', 'completed']);
    const listed = JSON.parse((await cli('jobs', '--state', 'completed', '--json')).stdout);
    expect(listed.map((j: { id: string }) => j.id)).toEqual([out.id]);
    const table = await cli('jobs');
    expect(table.stdout).toMatch(/^ID\s+TYPE\s+QUEUE\s+STATE/);
  });

  it('lists, redrives and purges the dead letter queue by filter', async () => {
    url = freshStoreUrl(kind);
    await cli('enqueue', 'order', '{"orderId":"big","amount":5000}');
    await cli('enqueue', 'order', '{"orderId":"big2","amount":7000}');
    expect((await cli('worker', '--jobs', FIXTURE_JOBS, '--drain')).code).toBe(0);
    const dead = JSON.parse((await cli('dlq', '--json')).stdout);
    expect(dead).toHaveLength(2);
    expect(dead[0]).toMatchObject({ deadReason: 'permanent', lastError: { message: 'amount over limit' } });
    expect(dead[0].lastError.fingerprint).toBe(dead[1].lastError.fingerprint);
    const redriven = JSON.parse((await cli('dlq', 'redrive', '--id', dead[0].id, '--json')).stdout);
    expect(redriven).toEqual({ redriven: 1, ids: [dead[0].id] });
    const purged = JSON.parse((await cli('dlq', 'purge', '--fingerprint', dead[1].lastError.fingerprint, '--json')).stdout);
    expect(purged).toEqual({ purged: 1 });
    expect(await count()).toBe(1);
    const cancel = await cli('cancel', dead[0].id);
    expect(cancel.code).toBe(0);
    expect((await cli('cancel', dead[0].id)).code).toBe(1);
  });

  it('breaker events --limit outside 1..100000 is a usage error naming --limit, and the library refuses such a limit', async () => {
    url = freshStoreUrl(kind);
    const r = await createRebound({ store: url });
    try {
      await r.breakers.force('payments', 'open', { actor: 'test' });
      for (const limit of [0, -1, 100_001, 1.5]) {
        const refused = await r.breakers.events({ limit }).catch((e: unknown) => e);
        expect(refused, String(limit)).toBeInstanceOf(ValidationError);
        expect((refused as ValidationError).field).toBe('filter.limit');
      }
      expect(await r.breakers.events({ limit: 1 })).toHaveLength(1);
    } finally {
      await r.close();
    }
    const results = await Promise.all(['0', '-1', '100001'].map((n) => cli('breaker', 'events', '--limit', n)));
    for (const res of results) {
      expect(res.code).toBe(2);
      expect(res.stderr).toMatch(/--limit must be from 1 to 100000/);
    }
    const one = await cli('breaker', 'events', '--limit', '1', '--json');
    expect(JSON.parse(one.stdout)).toHaveLength(1);
  });

  /** Two dead jobs of type `a` and one of type `b`, killed by an in-process worker. */
  const deadOfTwoTypes = async () => {
    const fail = async () => {
      throw new PermanentError('no');
    };
    const r = await createRebound({ store: url, jobs: [defineJob('a', { handler: fail }), defineJob('b', { handler: fail })] });
    try {
      await r.enqueueMany([{ type: 'a', payload: {} }, { type: 'a', payload: {} }, { type: 'b', payload: {} }]);
      await r.work({ drain: true }).done;
      expect(await r.countJobs({ state: 'dead' })).toBe(3);
    } finally {
      await r.close();
    }
  };
  const deadTypes = async () => (JSON.parse((await cli('dlq', '--json')).stdout) as { type: string }[]).map((j) => j.type).sort();

  it('dlq redrive and purge --type act on that type only; --type with --all is refused and changes nothing', async () => {
    url = freshStoreUrl(kind);
    await deadOfTwoTypes();
    const both = await cli('dlq', 'purge', '--type', 'a', '--all');
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/give exactly one of/);
    expect(await deadTypes()).toEqual(['a', 'a', 'b']);

    const redriven = await cli('dlq', 'redrive', '--type', 'b', '--json');
    expect(redriven.code).toBe(0);
    expect(JSON.parse(redriven.stdout)).toMatchObject({ redriven: 1 });
    expect(await deadTypes()).toEqual(['a', 'a']);

    const purged = await cli('dlq', 'purge', '--type', 'a', '--json');
    expect(JSON.parse(purged.stdout)).toEqual({ purged: 2 });
    expect(await deadTypes()).toEqual([]);
    expect(await count()).toBe(1); // the redriven b waits in its queue
  });

  it('dlq purge --all needs --yes; without it nothing is deleted', async () => {
    url = freshStoreUrl(kind);
    await deadOfTwoTypes();
    const unconfirmed = await cli('dlq', 'purge', '--all');
    expect(unconfirmed.code).toBe(2);
    expect(unconfirmed.stderr).toMatch(/^error: dlq purge --all deletes every dead job and its history: add --yes to confirm\n$/);
    expect(await deadTypes()).toEqual(['a', 'a', 'b']);
    expect(JSON.parse((await cli('dlq', 'purge', '--all', '--yes', '--json')).stdout)).toEqual({ purged: 3 });
    expect(await count()).toBe(0);
  });
});

// Usage errors are refused before the store is touched (the count at the end checks it), so one store will do:
// each case is a process of its own, and they were the file's costliest test on both stores.
describe('bad arguments (sqlite)', () => {
  let url: string;
  const cli = (...args: string[]) => runCli(['--store', url, ...args]);
  const count = () => countJobsAt(url);

  it('bad arguments exit 2 with a one-line error and change nothing', async () => {
    url = freshStoreUrl('sqlite');
    await cli('migrate');
    const cases: [string[], RegExp][] = [
      [['enqueue', 'order', '{not json'], /payload: not valid JSON/],
      [['enqueue', 'order', '{"orderId":"o1","amount":-1}', '--jobs', FIXTURE_JOBS], /payload\.amount/],
      [['enqueue', 'order', '{}', '--delay', 'soon'], /--delay must be an integer/],
      // A value the library refuses names the flag, not the library's field (options.maxAttempts, filter.limit).
      [['enqueue', 'order', '{}', '--max-attempts', '0'], /^error: --max-attempts: /],
      [['enqueue', 'order', '{}', '--delay', '-5'], /^error: --delay: /],
      [['jobs', '--limit', '0'], /^error: --limit: must be an integer from 1 to 100000/],
      [['dlq', '--limit', '0'], /^error: --limit: must be an integer from 1 to 100000/],
      [['enqueue', 'bad type!', '{}'], /type: must be/],
      [['enqueue', 'nope', '{}', '--jobs', FIXTURE_JOBS], /type "nope" is not defined in .*jobs\.ts \(it defines record, pay, crash, order, hello\)/],
      [['jobs', '--state', 'exploded'], /--state must be one of/],
      [['dlq', 'redrive'], /give exactly one of/],
      [['dlq', 'purge', '--id', 'abc'], /--id must be a job id/],
      [['worker'], /--jobs FILE is required/],
      [['worker', '--jobs', '/nope/missing.ts'], /does not exist/],
      [['frobnicate'], /unknown command/],
      // A newline typed into an option stays inside the one line (the fuzz in test/chaos found commander echoing it).
      [['jobs', '-\n.\n/a'], /unknown option '-\\n\.\\n\/a'/],
    ];
    // All at once: each is a process of its own that refuses its input (one after another took 18-56 s).
    const results = await Promise.all(cases.map(([args]) => cli(...args)));
    cases.forEach(([args, message], i) => {
      const r = results[i];
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
      expect(r.stderr, args.join(' ')).toMatch(message);
    });
    expect(await count()).toBe(0);
  });

});

describe('a worker with a bad configuration', () => {
  let url: string;
  afterEach(async () => dropStore(url));

  it('exits 2 with a one-line error before it starts, with or without --processes', async () => {
    url = freshStoreUrl('sqlite');
    const cases: [string[], RegExp][] = [
      // Found after the worker started, these left it running with the error logged (runCli's timeout catches that).
      [['worker', '--jobs', BAD_SCHEDULES], /the schedules export of .*bad-schedules\.mjs must be an array/],
      [['worker', '--jobs', FIXTURE_JOBS, '--leader-lease-ms', '99999999999'], /--leader-lease-ms must be from 300 to 44250/],
      [['worker', '--jobs', FIXTURE_JOBS, '--processes', '1', '--restart-delay', '-1'], /^error: --restart-delay: /],
      [['worker', '--jobs', FIXTURE_JOBS, '--processes', '1', '--leader-lease-ms', '50000'], /--leader-lease-ms must be from 300 to 44250/],
      // One range for --processes, refused before anything starts (start allowed 64, worker 256).
      [['worker', '--jobs', FIXTURE_JOBS, '--processes', '0'], /--processes must be from 1 to 256, got 0/],
      [['start', '--jobs', FIXTURE_JOBS, '--processes', '257', '--port', '0'], /--processes must be from 1 to 256, got 257/],
      // The leader's retention flags reach the coordinator's checks, with and without a supervisor.
      [['worker', '--jobs', FIXTURE_JOBS, '--audit-retention', '10s'], /^error: --audit-retention: must be whole milliseconds from 60000/],
      [['worker', '--jobs', FIXTURE_JOBS, '--processes', '1', '--stats-retention', '30s'], /^error: --stats-retention: must be whole milliseconds from 60000/],
      [['worker', '--jobs', FIXTURE_JOBS, '--audit-retention', 'soon'], /--audit-retention.*"soon" must be a duration such as 90d/],
      // Checked by the supervisor before it spawns: each process refusing it was restarted forever.
      [['worker', '--processes', '2', '--jobs', '/nope/missing.ts'], /does not exist/],
      [['worker', '--processes', '2', '--jobs', BAD_SCHEDULES], /the schedules export of .*bad-schedules\.mjs must be an array/],
      // The supervisor's flags without a supervisor: ignored, they left a worker running without the protection asked for.
      [['worker', '--jobs', FIXTURE_JOBS, '--timeout-grace', '1000'], /^error: --timeout-grace needs --processes N/],
      [['worker', '--jobs', FIXTURE_JOBS, '--drain', '--liveness-timeout', '5000'], /^error: --liveness-timeout needs --processes N/],
    ];
    const results = await Promise.all(cases.map(([args]) => runCli(['--store', url, ...args])));
    cases.forEach(([args, message], i) => {
      const r = results[i];
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
      expect(r.stderr, args.join(' ')).toMatch(message);
    });
  });
});

/** A job whose handler ignores its abort: it times out at once and would run on for ten minutes. */
const STUBBORN = join(mkdtempSync(join(tmpdir(), 'rebound-cli-')), 'stubborn.mjs');
writeFileSync(STUBBORN, 'export default { stubborn: { timeoutMs: 100, retry: { maxAttempts: 1 }, handler: () => new Promise((r) => setTimeout(r, 600_000)) } };\n');

describe('a handler that ignored its abort', () => {
  let url: string;
  afterEach(async () => dropStore(url));

  it('does not keep `rebound worker` or `rebound start` running once they have stopped', async () => {
    url = freshStoreUrl('sqlite');
    const cli = (...args: string[]) => runCli(['--store', url, ...args]);
    const rebound = await createRebound({ store: url });
    const dead = async () => (await rebound.listDead({})).length;
    // Before, each logged "worker stopped" and lived on until the handler returned.
    expect((await cli('enqueue', 'stubborn', '{}', '--jobs', STUBBORN)).code).toBe(0);
    expect((await cli('worker', '--jobs', STUBBORN, '--drain')).code).toBe(0);
    expect(await dead()).toBe(1);

    expect((await cli('enqueue', 'stubborn', '{}', '--jobs', STUBBORN)).code).toBe(0);
    const server = startCli(['--store', url, 'start', '--jobs', STUBBORN, '--port', '0']);
    await waitFor(async () => (await dead()) === 2, 30_000);
    server.kill('SIGTERM');
    expect(await exited(server)).toBe(0);
    await rebound.close();
  });
});

/** A job that runs until it is aborted. */
const PATIENT = join(mkdtempSync(join(tmpdir(), 'rebound-cli-')), 'patient.mjs');
writeFileSync(PATIENT, "export default { patient: { handler: (_p, ctx) => new Promise((r) => ctx.signal.addEventListener('abort', r)) } };\n");

describe('a second Ctrl-C', () => {
  it('aborts and releases the running job at once, uncharged, instead of killing the worker with it', async () => {
    const url = freshStoreUrl('sqlite');
    const rebound = await createRebound({ store: url });
    try {
      const { id } = await rebound.enqueue('patient', {});
      const worker = startCli(['--store', url, 'worker', '--jobs', PATIENT, '--no-coordinator'], { REBOUND_LOG_LEVEL: 'info' });
      await waitFor(async () => (await rebound.getJob(id))?.state === 'running', 30_000);
      worker.kill('SIGINT');
      await waitFor(() => worker.output().includes('stopping: running jobs have the shutdown grace'));
      // Before, Node's default action for the second SIGINT killed the process; the job stayed running until its lease lapsed.
      worker.kill('SIGINT');
      expect(await exited(worker)).toBe(0);
      expect(worker.output()).toMatch(/second signal: the running jobs are aborted and released now/);
      expect(await rebound.getJob(id)).toMatchObject({ state: 'available', attempt: 0 });
    } finally {
      await rebound.close();
    }
  });

  it('does the same for `rebound start` and for a supervisor, whose processes get every Ctrl-C of the terminal', async () => {
    const url = freshStoreUrl('sqlite');
    const rebound = await createRebound({ store: url });
    try {
      // rebound start, its workers in this process. Before, the second SIGINT killed the server with the job.
      const first = await rebound.enqueue('patient', {});
      const server = startCli(['--store', url, 'start', '--jobs', PATIENT, '--port', '0']);
      await waitFor(async () => (await rebound.getJob(first.id))?.state === 'running', 30_000);
      server.kill('SIGINT');
      await waitFor(() => server.output().includes('stopping…'));
      server.kill('SIGINT');
      expect(await exited(server)).toBe(0);
      expect(server.output()).toMatch(/second signal: the running jobs are aborted and released now/);
      expect(await rebound.getJob(first.id)).toMatchObject({ state: 'available', attempt: 0 });

      // A supervisor and its process, signalled as a group, as a terminal's Ctrl-C does: the process takes its own
      // repeats as one stop, and the supervisor's second signal hurries it. Before, the second signal killed the
      // supervisor, and its orphaned process drained for the whole grace.
      const sup = startCli(['--store', url, 'worker', '--jobs', PATIENT, '--processes', '1', '--no-coordinator'], { REBOUND_LOG_LEVEL: 'info' }, { group: true });
      await waitFor(async () => (await rebound.getJob(first.id))?.state === 'running', 30_000);
      process.kill(-sup.pid!, 'SIGINT');
      await waitFor(() => sup.output().includes('stopping: running jobs have the shutdown grace'));
      process.kill(-sup.pid!, 'SIGINT');
      expect(await exited(sup)).toBe(0);
      expect(sup.output()).toMatch(/supervisor hurried the stop/);
      expect(sup.output()).toMatch(/"code":0,"signal":null,"reason":"stopped","msg":"worker process exited"/);
      expect(await rebound.getJob(first.id)).toMatchObject({ state: 'available', attempt: 0 });
    } finally {
      await rebound.close();
    }
  });
});

describe('flags named in errors', () => {
  it('schedule add names the flag a bad value came from, not the library\'s defineSchedule("n") fields', async () => {
    const url = freshStoreUrl('sqlite');
    const add = (...args: string[]) => runCli(['--store', url, 'schedule', 'add', ...args]);
    const cases: [string[], RegExp][] = [
      [['n', '--cron', '61 * * * *', '--type', 't'], /^error: --cron: "61 \* \* \* \*" is not a valid cron pattern/],
      [['n', '--cron', '* * * * *', '--type', 't', '--tz', 'Nope/Zone'], /^error: --tz: "Nope\/Zone" is not an IANA time zone/],
      [['n', '--cron', '* * * * *', '--type', 'bad type!'], /^error: --type: must be 1-128/],
      [['bad name!', '--cron', '* * * * *', '--type', 't'], /^error: <name>: "bad name!" must be/],
    ];
    const results = await Promise.all(cases.map(([args]) => add(...args)));
    cases.forEach(([args, message], i) => {
      expect(results[i].code, args.join(' ')).toBe(2);
      expect(results[i].stderr, args.join(' ')).toMatch(message);
    });
    const listed = await runCli(['--store', url, 'schedule', 'list', '--json']);
    expect(JSON.parse(listed.stdout)).toEqual([]);
  });

  it('an id too long to be a job id and a concurrency work() refuses name their flags', async () => {
    const url = freshStoreUrl('sqlite');
    const [id, start] = await Promise.all([
      runCli(['--store', url, 'dlq', 'redrive', '--id', '1234567890123456']),
      runCli(['--store', url, 'start', '--jobs', FIXTURE_JOBS, '--port', '0', '--concurrency', '10001']),
    ]);
    // Before: "selection.ids: must be an array of job ids" and "options.concurrency: …", the library's names.
    expect(id.stderr).toBe('error: option \'--id <id...>\' argument \'1234567890123456\' is invalid. --id must be a job id (1 to 15 digits), got "1234567890123456"\n');
    expect(start.stderr).toBe('error: option \'--concurrency <n>\' argument \'10001\' is invalid. --concurrency must be from 1 to 10000, got 10001\n');
    expect([id.code, start.code]).toEqual([2, 2]);
  });

  it('queues --window is refused outside 1000 ms to 7 days, naming the flag', async () => {
    const url = freshStoreUrl('sqlite');
    expect((await runCli(['--store', url, 'migrate'])).code).toBe(0);
    const [low, high, week] = await Promise.all(['999', '604800001', '604800000'].map((w) => runCli(['--store', url, 'queues', '--window', w, '--json'])));
    expect(low.stderr).toMatch(/--window must be from 1000 to 604800000, got 999/);
    expect(high.stderr).toMatch(/--window must be from 1000 to 604800000, got 604800001/);
    expect([low.code, high.code]).toEqual([2, 2]);
    expect(week.code).toBe(0);
    expect(JSON.parse(week.stdout)).toEqual([]);
  });
});

describe('output to a reader that went away', () => {
  it('ends quietly with exit 0 when stdout is closed (`rebound stats | head -1`)', async () => {
    const url = freshStoreUrl('sqlite');
    expect((await runCli(['--store', url, 'migrate'])).code).toBe(0);
    const child = spawn(process.execPath, [BIN, '--store', url, 'stats'], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.destroy(); // closed before the CLI writes anything: its first write meets EPIPE
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const code = await new Promise((r) => child.on('close', r));
    expect(stderr).toBe('');
    expect(code).toBe(0);
  });
});

describe('a SQLite store that does not exist', () => {
  it('is refused by commands that only read (exit 2 naming --store and the path), and created by migrate', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'rebound-cli-')), 'not', 'yet');
    const url = `sqlite:${join(dir, 'rebound.db')}`;
    const reads = [['jobs'], ['job', '1'], ['dlq'], ['stats'], ['queues'], ['breaker', 'list'], ['breaker', 'events'], ['audit', 'verify'], ['schedule', 'list'], ['token', 'list']];
    const results = await Promise.all(reads.map((args) => runCli(['--store', url, ...args])));
    results.forEach((r, i) => {
      expect(r.code, reads[i].join(' ')).toBe(2);
      expect(r.stderr).toBe(`error: config: --store: no SQLite store at ${join(dir, 'rebound.db')} (this command only reads; \`rebound migrate\` or a worker creates one)\n`);
    });
    expect(existsSync(dir)).toBe(false); // nor its directories
    expect((await runCli(['--store', url, 'migrate'])).code).toBe(0);
    expect((await runCli(['--store', url, 'jobs', '--json'])).stdout).toBe('[]\n');
  });
});

describe('store selection', () => {
  it('uses REBOUND_STORE when --store is not given', async () => {
    const url = freshStoreUrl('sqlite');
    const r = await runCli(['enqueue', 'hello', '{}', '--json'], { REBOUND_STORE: url });
    expect(r.code).toBe(0);
    const client = await createRebound({ store: url });
    expect(await client.countJobs()).toBe(1);
    await client.close();
  });

  it('tells a PostgreSQL that does not answer (exit 1, try again) from one wrongly named (exit 2)', async () => {
    // A port nothing listens on: bound, then closed.
    const closed = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const { port } = s.address() as AddressInfo;
        s.close(() => resolve(port));
      });
    });
    const down = new URL(databaseUrl());
    down.port = String(closed);
    const wrong = new URL(databaseUrl());
    wrong.pathname = '/rebound_no_such_database';
    const [unreachable, misnamed] = await Promise.all([runCli(['jobs', '--store', down.toString()]), runCli(['jobs', '--store', wrong.toString()])]);
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toMatch(/^error: store_unavailable: cannot prepare the store: connect ECONNREFUSED .*; try again once it answers\n$/);
    expect(misnamed.code).toBe(2);
    expect(misnamed.stderr).toMatch(/^error: config: cannot prepare the store: database "rebound_no_such_database" does not exist\n$/);
    // The library's error says the same, with the driver's error as its cause.
    const refused = await createRebound({ store: down.toString() }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(StoreUnavailableError);
    expect((refused as StoreUnavailableError).cause).toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('refuses an unknown store URL with a clear error', async () => {
    const r = await runCli(['migrate', '--store', 'mysql://nope']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/store URL "mysql:\/\/nope" is not supported/);
  });
});
