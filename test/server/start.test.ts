/** `rebound token` and `rebound start` as real processes. */
import { createServer, type AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { defineJob } from '../../src/index.ts';
import { startOperator } from '../../src/server/start.ts';
import { exited, FIXTURE_JOBS, runCli, startCli } from '../helpers/cli.ts';
import { dropStore, freshStoreUrl, waitFor } from '../helpers/stores.ts';

describe('rebound token and rebound start', () => {
  let url: string;
  let child: ReturnType<typeof startCli> | null = null;
  afterEach(async () => {
    if (child && child.exitCode === null) {
      child.kill('SIGTERM');
      await exited(child);
    }
    child = null;
    await dropStore(url);
  });

  it('creates a token (printed once), lists it without the secret, and revokes it', async () => {
    url = freshStoreUrl('sqlite');
    const created = await runCli(['--store', url, 'token', 'create', '--role', 'operator', '--name', 'ci-bot']);
    expect(created.code).toBe(0);
    const token = created.stdout.trim();
    expect(token).toMatch(/^rbt_[A-Za-z0-9_-]{43}$/);
    const listed = await runCli(['--store', url, '--json', 'token', 'list']);
    expect(JSON.parse(listed.stdout)).toEqual([expect.objectContaining({ name: 'ci-bot', role: 'operator', revokedAt: null })]);
    expect(listed.stdout).not.toContain(token);
    expect((await runCli(['--store', url, 'token', 'create', '--role', 'root', '--name', 'x'])).code).toBe(2);
    expect((await runCli(['--store', url, 'token', 'revoke', 'ci-bot'])).stdout).toContain('revoked: ci-bot');
    const again = await runCli(['--store', url, 'token', 'revoke', 'ci-bot']);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/no live token named "ci-bot"/);
  });

  it('refuses to listen beyond loopback with no tokens', async () => {
    url = freshStoreUrl('sqlite');
    const r = await runCli(['--store', url, 'start', '--host', '0.0.0.0', '--port', '0', '--jobs', FIXTURE_JOBS]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/refusing to listen on 0\.0\.0\.0 with no API tokens/);
  });

  it('says which port is taken and how to choose another, with a usage exit code', async () => {
    url = freshStoreUrl('sqlite');
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const { port } = taken.address() as AddressInfo;
    try {
      const r = await runCli(['--store', url, 'start', '--port', String(port), '--jobs', FIXTURE_JOBS]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`port ${port} on 127.0.0.1 is in use`);
      expect(r.stderr).toMatch(/--port N \(npm start -- --port N\), or --port 0 for any free one/);
      // It listens before anything runs: no worker, no schedule, no demo feeder starts on a port it cannot have.
      let fed = false;
      const refused = await startOperator({
        store: url,
        jobs: [defineJob('noop', { handler: async () => null })],
        host: '127.0.0.1',
        port,
        concurrency: 1,
        extra: () => {
          fed = true;
          return { stop: async () => {} };
        },
        say: () => {},
      }).catch((err: unknown) => err);
      expect(refused).toMatchObject({ code: 'EADDRINUSE' });
      expect(fed).toBe(false);
    } finally {
      await new Promise((r) => taken.close(r));
    }
  });

  it('refuses --processes without a jobs file for the worker processes, and --demo with --jobs', async () => {
    url = freshStoreUrl('sqlite');
    const r = await runCli(['--store', url, 'start', '--port', '0', '--processes', '2']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--processes needs --jobs FILE/);
    expect((await runCli(['--store', url, 'start', '--demo', '--jobs', FIXTURE_JOBS])).code).toBe(2);
  });

  it('serves the API and runs the workers; once a token exists, the API requires it', async () => {
    url = freshStoreUrl('sqlite');
    const token = (await runCli(['--store', url, 'token', 'create', '--role', 'operator', '--name', 'ops'])).stdout.trim();
    child = startCli(['--store', url, 'start', '--port', '0', '--jobs', FIXTURE_JOBS]);
    const base = await waitFor(() => /Rebound dashboard: (http:\/\/\S+)\//.exec(child!.output())?.[1], 30_000);
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    expect((await fetch(`${base}/api/jobs`)).status).toBe(401);
    const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    const res = await fetch(`${base}/api/jobs`, { method: 'POST', headers: auth, body: JSON.stringify({ type: 'hello', payload: { name: 'api' } }) });
    expect(res.status).toBe(201);
    const { id } = (await res.json()) as { id: string };
    const done = await waitFor(async () => {
      const j = (await (await fetch(`${base}/api/jobs/${id}`, { headers: auth })).json()) as { job: { state: string; result: unknown } };
      return j.job.state === 'completed' ? j.job : null;
    });
    expect(done?.result).toBe('hello api');
    child.kill('SIGTERM');
    expect(await exited(child)).toBe(0);
  });
});
