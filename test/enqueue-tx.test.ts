/**
 * An enqueue inside a caller's PostgreSQL transaction returns the same job an enqueue on Rebound's own
 * connections returns: times and ordering sequence numbers are numbers, whatever the caller's client parses.
 */
import { afterEach, describe, expect, it } from 'vitest';
import pg from 'pg';
import { createRebound, defineJob, type Rebound } from '../src/index.ts';
import { databaseUrl, dropStore, freshStoreUrl } from './helpers/stores.ts';

const silent = { debug() {}, info() {}, warn() {}, error() {}, child: () => silent };

describe("enqueue inside a caller's transaction (PostgreSQL)", () => {
  let url: string;
  let rebound: Rebound;
  let client: pg.Client;
  afterEach(async () => {
    await client?.end();
    await rebound?.close();
    await dropStore(url);
  });

  it('a deduplicated or ordered job comes back with numeric times and sequence, as it is read later', async () => {
    url = freshStoreUrl('postgres');
    rebound = await createRebound({ store: url, jobs: [defineJob('t', { handler: async () => {} })], logger: silent });
    const first = await rebound.enqueue('t', { n: 1 }, { idempotencyKey: 'k', delayMs: 60_000 });
    client = new pg.Client({ connectionString: databaseUrl() });
    await client.connect();
    await client.query('BEGIN');
    const again = await rebound.enqueue('t', { n: 1 }, { idempotencyKey: 'k', tx: client });
    const ordered = await rebound.enqueue('t', { n: 2 }, { orderingKey: 'acct-1', tx: client });
    const [many] = await rebound.enqueueMany([{ type: 't', payload: { n: 3 }, opts: { orderingKey: 'acct-1' } }], { tx: client });
    await client.query('COMMIT');

    expect(again.deduplicated).toBe(true);
    expect(again.job).toEqual(await rebound.getJob(first.id));
    expect(again.job.runAt).toBe(first.job.runAt);
    expect(ordered.job).toEqual(await rebound.getJob(ordered.id));
    expect(ordered.job).toMatchObject({ orderingKey: 'acct-1', orderingSeq: 1 });
    expect(typeof ordered.job.runAt).toBe('number');
    expect(typeof ordered.job.createdAt).toBe('number');
    expect(many.job).toMatchObject({ orderingKey: 'acct-1', orderingSeq: 2 });
  });
});
