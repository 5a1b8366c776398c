/**
 * The CLI through real processes: an enqueue is audited with the CLI as its
 * actor, and `rebound job ID --jobs FILE` masks the type's redacted paths.
 */
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/open.ts';
import { runCli } from '../helpers/cli.ts';
import { dropStore, freshStoreUrl } from '../helpers/stores.ts';

const JOBS = fileURLToPath(new URL('../fixtures/redacted-jobs.ts', import.meta.url));

describe('visibility through the CLI', () => {
  let url: string;
  afterEach(async () => dropStore(url));

  it('audits a CLI enqueue as actor "cli" and masks redacted fields when the definitions are given', async () => {
    url = freshStoreUrl('sqlite');
    const card = '4111111111111111';
    const enq = await runCli(['enqueue', 'charge', JSON.stringify({ card: { number: card, brand: 'visa' } }), '--jobs', JOBS, '--json', '--store', url]);
    expect(enq.code).toBe(0);
    const { id } = JSON.parse(enq.stdout);
    const shown = await runCli(['job', id, '--jobs', JOBS, '--json', '--store', url]);
    expect(shown.code).toBe(0);
    expect(JSON.parse(shown.stdout).job.payload).toEqual({ card: { number: '[REDACTED]', brand: 'visa' } });
    expect(shown.stdout).not.toContain(card);

    const store = await openStore(url);
    try {
      const [entry] = await store.visibility.readAudit({ afterSeq: 0, limit: 10 });
      expect(entry).toMatchObject({ seq: 1, actor: 'cli', action: 'job.submit', target: `job:${id}` });
      expect(JSON.stringify(entry)).not.toContain(card);
    } finally {
      await store.close();
    }
  });
});
