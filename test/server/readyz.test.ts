/**
 * /readyz tells an orchestrator whether the store answers (200 or 503) without a token, but a store's error
 * can name its host, user or file: only a caller with a valid token reads it in the answer; the log always has it.
 */
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { schemaClient, storeKinds, type StoreKind } from '../helpers/stores.ts';
import { startHarness, type Harness } from './harness.ts';

/** Runs `sql` on the harness's store from a connection of its own. */
async function onStore(h: Harness, kind: StoreKind, sql: (schema: string) => string): Promise<void> {
  if (kind === 'sqlite') {
    const db = new Database(h.storeUrl.slice('sqlite:'.length));
    db.exec(sql('main'));
    db.close();
    return;
  }
  const { client, schema } = await schemaClient(h.storeUrl);
  try {
    await client.query(sql(schema));
  } finally {
    await client.end();
  }
}

describe.each(storeKinds)('readiness on %s', (kind) => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it("a failing store is a 503 whose cause only a caller with a token reads; the log has it for everyone", async () => {
    h = await startHarness({ kind });
    expect(await h.call('GET', '/readyz', { token: null })).toMatchObject({ status: 200, body: { status: 'ready' } });
    const warned: unknown[][] = [];
    vi.spyOn(h.rebound.logger, 'warn').mockImplementation((...args: unknown[]) => void warned.push(args));
    await onStore(h, kind, (schema) => `ALTER TABLE "${schema}".jobs RENAME TO jobs_gone`);
    try {
      const generic = "the store is unreachable or not ready; the server's log has the cause (callers with an API token see it here)";
      for (const token of [null, 'rbt_wrong']) {
        const answer = await h.call('GET', '/readyz', { token });
        expect(answer).toMatchObject({ status: 503, body: { error: { code: 'not_ready', message: generic } } });
        expect(JSON.stringify(answer.body)).not.toMatch(/jobs/);
      }
      const withToken = await h.call('GET', '/readyz', { token: h.tokens.viewer });
      expect(withToken.status).toBe(503);
      expect(withToken.body.error.message).toMatch(/^the store is not ready: .*jobs/);
      const logged = warned.filter(([, msg]) => msg === 'not ready: the store failed the readiness check');
      expect(logged).toHaveLength(3);
      expect(logged[0][0]).toMatchObject({ err: expect.stringMatching(/jobs/) });
    } finally {
      await onStore(h, kind, (schema) => `ALTER TABLE "${schema}".jobs_gone RENAME TO jobs`);
    }
    expect((await h.call('GET', '/readyz', { token: null })).status).toBe(200);
  });
});
