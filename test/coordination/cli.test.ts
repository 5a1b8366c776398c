/** `rebound schedule add | list | remove | pause | resume` through the real CLI. */
import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.ts';
import { dropStore, freshStoreUrl } from '../helpers/stores.ts';

describe('rebound schedule', () => {
  let url: string;
  afterEach(async () => {
    await dropStore(url);
  });

  it('adds, lists with the next fire time, pauses, resumes and removes a schedule; bad input exits 2', async () => {
    url = freshStoreUrl('sqlite');
    const cli = (...args: string[]) => runCli([...args, '--store', url]);
    const add = await cli('schedule', 'add', 'nightly', '--cron', '30 2 * * *', '--tz', 'America/New_York', '--type', 'report', '--payload', '{"full":true}', '--misfire', 'all:3');
    expect(add.stderr).toBe('');
    expect(add.code).toBe(0);
    expect(add.stdout).toMatch(/^scheduled nightly; next fire \d{4}-\d\d-\d\dT\d\d:30:00\.000Z/);

    const list = await cli('schedule', 'list', '--json');
    expect(list.code).toBe(0);
    const [s] = JSON.parse(list.stdout);
    expect(s).toMatchObject({ name: 'nightly', cron: '30 2 * * *', tz: 'America/New_York', type: 'report', payload: { full: true }, misfire: { all: 3 }, paused: false, source: 'runtime' });
    expect(s.nextFireAt).toBeGreaterThan(Date.now());
    const table = await cli('schedule', 'list');
    expect(table.stdout).toMatch(/NAME\s+CRON\s+TZ\s+TYPE\s+STATE\s+NEXT_FIRE/);
    expect(table.stdout).toMatch(/nightly\s+30 2 \* \* \*\s+America\/New_York\s+report\s+active\s+\d{4}-\S+Z\s+\d{4}-\d\d-\d\d 0[23]:\d\d:00\s/);

    expect((await cli('schedule', 'pause', 'nightly')).stdout).toBe('paused nightly\n');
    expect((await cli('schedule', 'resume', 'nightly')).stdout).toMatch(/^resumed nightly; next fire/);
    expect((await cli('schedule', 'remove', 'nightly')).code).toBe(0);

    const missing = await cli('schedule', 'remove', 'nightly');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe('error: not_found: schedule "nightly" does not exist; see `rebound schedule list`\n');
    const badCron = await cli('schedule', 'add', 'x', '--cron', '99 * * * *', '--type', 'report');
    expect(badCron.code).toBe(2);
    expect(badCron.stderr).toMatch(/^error: --cron: "99 \* \* \* \*" is not a valid cron pattern/);
    expect((await cli('schedule', 'add', 'x', '--cron', '* * * * *', '--type', 'report', '--misfire', 'sometimes')).code).toBe(2);
  }, 60_000);
});
