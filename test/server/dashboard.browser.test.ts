/**
 * The dashboard in a real browser (Debian's Chromium through playwright-core)
 * against a real server: charts with data, redriving a dead job until it
 * completes, and what a viewer may see and do. Screenshots go to test-artifacts/.
 */
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:http';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineJob, defineWorkflow, PermanentError, type Worker } from '../../src/index.ts';
import { waitFor } from '../helpers/stores.ts';
import { startHarness, testJobs, type Harness } from './harness.ts';

const ARTIFACTS = 'test-artifacts/dashboard';
let h: Harness;
let browser: Browser;
let worker: Worker;
/** While true, `ledger.post` fails permanently: the job dies, and succeeds once redriven after the fix. */
let ledgerBroken = true;

const jobs = [
  ...testJobs.filter((d) => d.type !== 'charge'),
  defineWorkflow('onboard', {
    run: async (ctx, input: { user: string }) => {
      const account = await ctx.step('create-account', () => ({ id: `acct-${input.user}` }));
      await ctx.step('send-welcome', () => ({ sent: true }));
      return account;
    },
  }),
  // Redaction comes from the job definition, as in production.
  defineJob('charge', {
    redact: ['card'],
    retry: { maxAttempts: 1 },
    handler: async (p: { card: string; fail?: boolean }) => {
      if (p.fail) throw new PermanentError('card declined');
      return { charged: true };
    },
  }),
  defineJob('ledger.post', {
    breaker: 'ledger',
    retry: { maxAttempts: 1 },
    handler: async (p: { entry: number }) => {
      if (ledgerBroken) throw new PermanentError('ledger rejected the entry: account locked');
      return { posted: p.entry };
    },
  }),
];

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  // Wired as `rebound start` wires it: breakers, schedules, audit, metrics and redaction are real.
  h = await startHarness({ jobs, wire: true });
  worker = h.rebound.work({ pollIntervalMs: 20 });
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
});

afterAll(async () => {
  await browser?.close();
  await worker?.stop();
  await h?.close();
});

async function signIn(token: string, hash = '#/overview'): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${h.url}/${hash}`);
  await page.getByLabel('API token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByTestId('whoami').waitFor();
  expect(errors).toEqual([]);
  return page;
}

describe('dashboard in Chromium', () => {
  it('renders the overview charts with live data', async () => {
    for (let i = 0; i < 20; i++) await h.rebound.enqueue('ok', { n: i });
    await h.rebound.enqueue('charge', { card: '4000 0000 0000 0002', fail: true });
    await waitFor(async () => (await h.rebound.countJobs({ state: 'completed' })) >= 20 && (await h.rebound.countJobs({ state: 'dead' })) >= 1);
    const page = await signIn(h.tokens.admin);
    const throughput = page.locator('[data-chart="Throughput"]');
    await expect.poll(async () => Number(await throughput.getAttribute('data-max')), { timeout: 15_000 }).toBeGreaterThan(0);
    expect(await throughput.locator('polyline, circle').count()).toBeGreaterThan(0);
    expect(Number(await page.locator('[data-chart="Run latency"]').getAttribute('data-points'))).toBeGreaterThan(0);
    await expect.poll(async () => Number(await page.locator('[data-chart="Dead letter queue"]').getAttribute('data-max')), { timeout: 15_000 }).toBeGreaterThan(0);
    await expect.poll(() => page.locator('[data-chart="Errors by job type (5 min)"]').textContent()).toContain('charge');
    expect(await page.locator('[data-card="Completed"] .v').textContent()).toMatch(/^\d+$/);
    await page.screenshot({ path: `${ARTIFACTS}/overview.png`, fullPage: true });
    await page.goto(`${h.url}/#/jobs`);
    await page.locator('tr[data-job]').first().waitFor();
    await page.screenshot({ path: `${ARTIFACTS}/jobs.png`, fullPage: true });
    const run = await h.rebound.enqueue('onboard', { user: 'ada' });
    await waitFor(async () => (await h.rebound.getJob(run.id))?.state === 'completed');
    await page.goto(`${h.url}/#/jobs/${run.id}`);
    await expect.poll(() => page.getByTestId('workflow-steps').textContent()).toContain('send-welcome');
    expect(await page.getByTestId('workflow-steps').locator('.state.completed').count()).toBe(2);
    await page.screenshot({ path: `${ARTIFACTS}/workflow.png`, fullPage: true });
    await page.close();
  });

  it('shows breakers, schedules and the audit trail, and an operator action lands in the audit as the token', async () => {
    await h.rebound.coordination.addSchedule('nightly-report', { cron: '0 3 * * *', type: 'ok' });
    const page = await signIn(h.tokens.operator, '#/breakers');
    const row = page.locator('tr', { hasText: 'ledger' });
    await row.getByRole('button', { name: 'Force open' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Force open' }).click();
    await expect.poll(() => row.locator('.state').textContent()).toBe('open');
    await row.getByRole('button', { name: 'Reset' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Reset' }).click();
    await expect.poll(() => row.locator('.state').textContent()).toBe('closed');
    await page.screenshot({ path: `${ARTIFACTS}/breakers.png`, fullPage: true });
    await page.goto(`${h.url}/#/schedules`);
    const schedule = page.locator('tr', { hasText: 'nightly-report' });
    await schedule.getByRole('button', { name: 'Pause' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Pause' }).click();
    await expect.poll(() => schedule.locator('.state').textContent()).toBe('paused');
    await page.screenshot({ path: `${ARTIFACTS}/schedules.png`, fullPage: true });
    await page.goto(`${h.url}/#/audit`);
    await expect.poll(() => page.getByTestId('audit-verify').textContent()).toContain('chain intact');
    await expect.poll(() => page.locator('#audit').textContent(), { timeout: 15_000 }).toContain('schedule.pause');
    const operatorRows = await page.locator('#audit tr', { hasText: 'operator-token' }).allTextContents();
    expect(operatorRows.join('\n')).toMatch(/breaker\.force_open/);
    await page.screenshot({ path: `${ARTIFACTS}/audit.png`, fullPage: true });
    await page.close();
  });

  it('verifies the audit chain when the Audit page opens and when asked, not on every refresh of the recent actions', async () => {
    const page = await signIn(h.tokens.viewer);
    let verifies = 0;
    let recents = 0;
    page.on('request', (r) => {
      const path = new URL(r.url()).pathname;
      if (path === '/api/audit/verify') verifies++;
      else if (path === '/api/audit') recents++;
    });
    await page.goto(`${h.url}/#/audit`);
    await expect.poll(() => page.getByTestId('audit-verify').textContent()).toContain('chain intact');
    await expect.poll(() => recents, { timeout: 15_000 }).toBeGreaterThanOrEqual(2);
    expect(verifies).toBe(1);
    await page.getByRole('button', { name: 'Verify again' }).click();
    await expect.poll(() => verifies).toBe(2);
    await expect.poll(() => page.getByTestId('audit-verify').textContent()).toContain('chain intact');
    await page.close();
  });

  it('opens a dead job from the dead letter queue, redrives it, and sees it complete', async () => {
    const dead = await h.rebound.enqueue('ledger.post', { entry: 7 });
    await waitFor(async () => (await h.rebound.getJob(dead.id))?.state === 'dead');
    const page = await signIn(h.tokens.operator, '#/dlq');
    const group = page.locator('tr[data-fp]', { hasText: 'account locked' });
    await group.waitFor();
    await page.screenshot({ path: `${ARTIFACTS}/dlq.png`, fullPage: true });
    expect(await group.getByRole('button', { name: 'Purge' }).count()).toBe(0); // operators may not purge
    await group.click();
    await page.getByRole('link', { name: dead.id, exact: true }).click();
    await expect.poll(() => page.getByTestId('job-state').textContent()).toBe('dead');
    ledgerBroken = false; // the fix is deployed
    await page.getByRole('button', { name: 'Redrive' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Redrive' }).click();
    await expect.poll(() => page.getByTestId('job-state').textContent(), { timeout: 15_000 }).toBe('completed');
    await expect.poll(() => page.getByTestId('timeline').textContent()).toContain('redriven');
    expect((await h.rebound.getJob(dead.id))?.result).toEqual({ posted: 7 });
    await page.screenshot({ path: `${ARTIFACTS}/job.png`, fullPage: true });
    await page.close();
  });

  it('shows a viewer masked payloads and no redrive or purge, and the API refuses the viewer with 403', async () => {
    ledgerBroken = true;
    const dead = await h.rebound.enqueue('charge', { card: '4111 1111 1111 1111', fail: true });
    await waitFor(async () => (await h.rebound.getJob(dead.id))?.state === 'dead');
    const page = await signIn(h.tokens.viewer, `#/jobs/${dead.id}`);
    await expect.poll(() => page.getByTestId('job-state').textContent()).toBe('dead');
    const payload = await page.getByTestId('payload').textContent();
    expect(payload).toContain('[REDACTED]');
    expect(payload).not.toContain('4111');
    await page.getByTestId('masked').waitFor();
    expect(await page.getByRole('button', { name: 'Redrive' }).count()).toBe(0);
    expect(await page.getByRole('button', { name: 'Cancel' }).count()).toBe(0);
    await page.screenshot({ path: `${ARTIFACTS}/job-as-viewer.png`, fullPage: true });
    const status = await page.evaluate(async (id) => {
      const token = sessionStorage.getItem('rebound.token');
      const res = await fetch(`/api/jobs/${id}/retry`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
      return res.status;
    }, dead.id);
    expect(status).toBe(403);
    await page.goto(`${h.url}/#/dlq`);
    await page.locator('tr[data-fp]').first().waitFor();
    expect(await page.getByRole('button', { name: /Redrive|Purge/ }).count()).toBe(0);
    expect((await h.rebound.getJob(dead.id))?.state).toBe('dead');
    await page.close();
  });
});

describe('dashboard in Chromium with no tokens (open mode)', () => {
  let open: Harness;
  beforeAll(async () => {
    open = await startHarness({ withTokens: false });
  });
  afterAll(async () => {
    await open?.close();
  });

  it('works from its own origin without sign-in: cancelling a job from its page', async () => {
    const job = await open.rebound.enqueue('ok', {}, { delayMs: 600_000 });
    const page = await browser.newPage();
    await page.goto(`${open.url}/#/jobs/${job.id}`);
    await expect.poll(() => page.getByTestId('whoami').textContent()).toContain('local');
    await page.getByRole('button', { name: 'Cancel' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Cancel job' }).click();
    await expect.poll(() => page.getByTestId('job-state').textContent()).toBe('cancelled');
    await page.close();
  });

  it('keeps the rows loaded with "Load more" while new jobs arrive on top, and filters by every state', async () => {
    for (let i = 0; i < 60; i++) await open.rebound.enqueue('ok', { n: i }, { delayMs: 600_000 });
    const page = await browser.newPage();
    await page.goto(`${open.url}/#/jobs`);
    const rows = page.locator('#job-table tr[data-job]');
    const shown = () => rows.evaluateAll((trs) => trs.map((tr) => (tr as HTMLElement).dataset.job));
    await expect.poll(() => rows.count()).toBe(50);
    await page.getByRole('button', { name: 'Load more' }).click();
    await expect.poll(() => rows.count()).toBeGreaterThan(50);
    const before = await shown();
    const added: string[] = [];
    for (let i = 0; i < 10; i++) added.unshift((await open.rebound.enqueue('ok', { n: 100 + i }, { delayMs: 600_000 })).id);
    // The live refresh (every 3 s) brings the new jobs to the top; the rows they push down stay.
    await expect.poll(async () => (await shown())[0], { timeout: 15_000 }).toBe(added[0]);
    expect(await shown()).toEqual([...added, ...before]);
    await page.getByLabel('state').selectOption('compensated');
    await page.getByRole('button', { name: 'Filter' }).click();
    await expect.poll(() => page.locator('#job-table').textContent()).toContain('no jobs match');
    await page.close();
  });

  it("refuses another site's page that POSTs to it blindly (no-cors)", async () => {
    const job = await open.rebound.enqueue('ok', {}, { delayMs: 600_000 });
    // Another origin on this machine: localhost is a different site from 127.0.0.1.
    const attacker = createServer((_req, res) => res.end('<!doctype html><title>attacker</title>'));
    await new Promise<void>((resolve) => attacker.listen(0, '127.0.0.1', resolve));
    const page = await browser.newPage();
    try {
      await page.goto(`http://localhost:${(attacker.address() as { port: number }).port}/`);
      await page.evaluate(async (url) => {
        await fetch(url, { method: 'POST', mode: 'no-cors' });
      }, `${open.url}/api/jobs/${job.id}/cancel`);
      expect((await open.rebound.getJob(job.id))?.state).toBe('scheduled');
    } finally {
      await page.close();
      attacker.close();
    }
  });
});
