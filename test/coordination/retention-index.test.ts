/**
 * Retention reads each final state's oldest finished jobs through an index on
 * PostgreSQL, compensated workflows included: without one, every prune pass
 * read the whole jobs table for them.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/open.ts';
import { dropStore, freshStoreUrl, schemaClient } from '../helpers/stores.ts';

describe('retention on postgres', () => {
  let url: string;
  afterEach(async () => {
    await dropStore(url);
  });

  it.each(['completed', 'compensated', 'dead', 'cancelled'])('finds the oldest %s jobs through the finished-jobs index', async (state) => {
    url = freshStoreUrl('postgres');
    const store = await openStore(url);
    await store.migrate();
    await store.close();
    const { client, schema } = await schemaClient(url);
    try {
      await client.query(`SET search_path TO "${schema}"`);
      await client.query('SET enable_seqscan = off'); // an empty table: make the planner say whether an index serves the query
      const { rows } = await client.query(`EXPLAIN SELECT id FROM jobs WHERE state = $1 AND finished_at < $2 ORDER BY finished_at LIMIT 500`, [state, 1]);
      const plan = rows.map((r) => r['QUERY PLAN']).join('\n');
      expect(plan).toMatch(/Index Scan using jobs_finished/);
    } finally {
      await client.end();
    }
  });
});
