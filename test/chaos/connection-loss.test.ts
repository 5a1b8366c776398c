/**
 * A PostgreSQL connection killed between two statements of a transaction (a
 * server restart or pg_terminate_backend at the worst moment) fails that one
 * operation; it does not crash the process, and the store keeps working.
 * The kill is injected by a proxy, so no real backend of the shared server is touched.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { PgKillProxy } from '../../chaos/pg-proxy.ts';
import { createRebound, type Rebound } from '../../src/index.ts';
import type { PostgresStore } from '../../src/store/postgres/postgres-store.ts';
import { dropStore, freshStoreUrl } from '../helpers/stores.ts';

describe('PostgreSQL store under a killed connection', () => {
  let url: string;
  let proxy: PgKillProxy;
  let rebound: Rebound;
  afterEach(async () => {
    await rebound?.close();
    await proxy?.stop();
    await dropStore(url);
  });

  it('a connection killed inside a transaction fails that operation without crashing the process, and changes nothing', async () => {
    url = freshStoreUrl('postgres');
    const direct = new URL(url);
    proxy = new PgKillProxy(direct.hostname, Number(direct.port || 5432));
    await proxy.start();
    const viaProxy = new URL(url);
    viaProxy.port = String(proxy.port);
    rebound = await createRebound({ store: viaProxy.toString() });
    const { id } = await rebound.enqueue('mail.send', { to: 'a@example.com' });

    // cancel runs in a transaction: the connection dies right after BEGIN is answered.
    proxy.arm(1);
    await expect(rebound.cancel(id)).rejects.toThrow();
    expect(proxy.killed).toBe(1);

    // Nothing half-done was kept, and the next operations run on a fresh connection.
    expect((await rebound.getJob(id))?.state).toBe('available');
    expect((await rebound.cancel(id)).state).toBe('cancelled');
  });

  it('any client checked out of the store pool (as capability stores do for their transactions) survives a kill', async () => {
    url = freshStoreUrl('postgres');
    const direct = new URL(url);
    proxy = new PgKillProxy(direct.hostname, Number(direct.port || 5432));
    await proxy.start();
    const viaProxy = new URL(url);
    viaProxy.port = String(proxy.port);
    rebound = await createRebound({ store: viaProxy.toString() });
    const pool = (rebound.store as PostgresStore).pool;

    const client = await pool.connect();
    proxy.arm(1);
    await client.query('BEGIN');
    // The FATAL arrived with BEGIN's answer; give the client a turn to take it in.
    await new Promise((r) => setTimeout(r, 50));
    await expect(client.query('SELECT 1')).rejects.toThrow();
    client.release();
    expect(proxy.killed).toBe(1);
    expect((await pool.query<{ n: number }>('SELECT 1 AS n')).rows[0].n).toBe(1);
  });
});
