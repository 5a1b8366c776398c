/**
 * The coordinator, elector, locks and retention with an injected clock, on
 * both stores: one leader at a time, a leader that cannot renew steps down,
 * schedules fire once per fire time whichever instance runs the pass, a stale
 * lock holder's token is lower and refused, and pruning follows the policy.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createRebound, defineJob, defineSchedule, StaleTermError, type Rebound } from '../../src/index.ts';
import { Elector } from '../../src/coordination/leader.ts';
import { withLock, holdsLock } from '../../src/coordination/locks.ts';
import { LockUnavailableError, ValidationError } from '../../src/errors.ts';
import { dropStore, freshStoreUrl, storeKinds } from '../helpers/stores.ts';

const T0 = Date.parse('2026-03-08T06:59:58Z'); // two seconds before 03:00 EDT (spring-forward in New York)
const DAY = 86_400_000;

describe.each(storeKinds)('coordination services on %s', (kind) => {
  let url: string;
  const clients: Rebound[] = [];
  let clock = T0;
  const now = () => clock;
  const client = async () => {
    const r = await createRebound({
      store: url,
      now,
      jobs: [
        defineJob('tick', { handler: () => 'ok' }),
        defineJob('report', { handler: () => 'ok', retention: { completedMs: 1 * DAY } }),
      ],
      logger: silent,
    });
    clients.push(r);
    return r;
  };
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
    await dropStore(url);
    clock = T0;
  });

  it('one leader at a time; a leader that cannot renew in time steps down before its lease can pass on', async () => {
    url = freshStoreUrl(kind);
    const r = await client();
    const a = new Elector(r.store.coordination, { holder: 'a', leaseMs: 1000, now });
    const b = new Elector(r.store.coordination, { holder: 'b', leaseMs: 1000, now });
    const seen: string[] = [];
    a.onLeadership((l) => void seen.push(`a+${l.token}`), (l, why) => void seen.push(`a-${l.token} ${why}`));
    expect((await a.runOnce())?.token).toBe(1);
    expect(await b.runOnce()).toBeNull();
    clock += 300;
    expect((await a.runOnce())?.token).toBe(1); // renewed
    // a is paused: by its own clock it stops trusting its term at renewal + lease - safety (0.8 s)...
    clock += 850;
    expect(a.leadership).toBeNull();
    // ...before b may take the lease (at renewal + 1 s).
    expect(await b.runOnce()).toBeNull();
    clock += 200;
    expect((await b.runOnce())?.token).toBe(2);
    expect(await a.runOnce()).toBeNull();
    expect(seen).toEqual(['a+1', 'a-1 lease not renewed in time']);
    await b.stop();
    // A stopped leader gives its lease up: the next one takes over at once.
    expect((await a.runOnce())?.token).toBe(3);
    // A lease won too slowly to be trusted is given back at once, not left to expire.
    const slow = Object.create(r.store.coordination);
    slow.acquireLease = async (p: Parameters<typeof r.store.coordination.acquireLease>[0]) => {
      const won = await r.store.coordination.acquireLease(p);
      clock += 900;
      return won;
    };
    await a.stop();
    const late = new Elector(slow, { holder: 'late', leaseMs: 1000, now });
    expect(await late.runOnce()).toBeNull();
    expect((await b.runOnce())?.token).toBe(5);
    expect(() => new Elector(r.store.coordination, { leaseMs: 0 })).toThrow(/leaseMs: must be an integer of at least 300 ms/);
  });

  it('code-defined schedules fire once per fire time, across spring-forward, whichever instance runs the pass', async () => {
    url = freshStoreUrl(kind);
    const [r1, r2] = [await client(), await client()];
    const schedule = defineSchedule('ny-hourly', { cron: '0 * * * *', tz: 'America/New_York', type: 'tick', payload: { n: 1 } });
    r1.coordination.define(schedule);
    r2.coordination.define(schedule);
    const c1 = r1.coordination.coordinator({ leaseMs: 10_000 });
    const c2 = r2.coordination.coordinator({ leaseMs: 10_000 });
    await c1.elector.runOnce();
    await c2.elector.runOnce();
    expect(c1.leadership?.token).toBe(1);
    expect(c2.leadership).toBeNull();
    expect((await c1.runOnce()).fired).toEqual([]); // stores the schedule; next fire 03:00 EDT
    expect((await r1.coordination.getSchedule('ny-hourly')).nextFireAt).toBe(Date.parse('2026-03-08T07:00:00Z'));
    clock = Date.parse('2026-03-08T07:00:00.500Z');
    expect(await c2.runOnce()).toMatchObject({ leader: false, fired: [] }); // not the leader: writes nothing
    const pass = await c1.runOnce();
    expect(pass.fired.map((f) => [f.schedule, new Date(f.fireAt).toISOString(), f.created])).toEqual([['ny-hourly', '2026-03-08T07:00:00.000Z', true]]);
    expect((await c1.runOnce()).fired).toEqual([]);
    // Leadership passes to c2; the old leader's pass with its old term is refused by the store, and c2 fires.
    await c1.elector.stop();
    clock = Date.parse('2026-03-08T08:00:01Z');
    expect((await c2.elector.runOnce())?.token).toBe(2);
    await expect(c1.passWith({ lease: 'leader:maintenance', token: 1 })).rejects.toBeInstanceOf(StaleTermError);
    expect((await c2.runOnce()).fired.map((f) => new Date(f.fireAt).toISOString())).toEqual(['2026-03-08T08:00:00.000Z']);
    const jobs = await r1.listJobs({ type: 'tick' });
    expect(jobs.map((j) => j.idempotencyKey).sort()).toEqual(['schedule:ny-hourly:2026-03-08T07:00:00.000Z', 'schedule:ny-hourly:2026-03-08T08:00:00.000Z']);
    expect(jobs.every((j) => JSON.stringify(j.payload) === '{"n":1}')).toBe(true);
  });

  it('a stored schedule this process cannot read (an unknown zone) is reported and skipped: the schedules after it fire', async () => {
    url = freshStoreUrl(kind);
    const r = await client();
    const errors: string[] = [];
    r.events.on('worker:error', (e) => void errors.push(e.during));
    // Written by a process whose Node knew the zone, say; this one's Intl does not.
    await r.store.coordination.upsertSchedule(
      { name: 'a-elsewhere', cron: '0 * * * *', tz: 'Mars/Olympus_Mons', type: 'tick', payload: null, misfire: 'once', jitterMs: 0, source: 'runtime' },
      T0 - 1000,
      T0 - 2000,
    );
    await r.coordination.addSchedule('b-hourly', { cron: '0 * * * *', type: 'tick' });
    const c = r.coordination.coordinator({ leaseMs: 10_000 });
    await c.elector.runOnce();
    clock = Date.parse('2026-03-08T07:00:00.500Z');
    const pass = await c.runOnce();
    expect(pass.fired.map((f) => [f.schedule, new Date(f.fireAt).toISOString()])).toEqual([['b-hourly', '2026-03-08T07:00:00.000Z']]);
    expect(pass.pruned).not.toBeNull();
    expect(errors).toEqual(['schedule a-elsewhere']);
  });

  it('runtime schedules: add, list with next fire times, pause, resume (what passed meanwhile follows the misfire policy), remove; each change is an operator action', async () => {
    url = freshStoreUrl(kind);
    const r = await client();
    const actions: string[] = [];
    r.events.on('operator:action', (e) => void actions.push(`${e.actor} ${e.action} ${e.target}`));
    const s = await r.coordination.addSchedule('nightly', { cron: '30 2 * * *', tz: 'Europe/London', type: 'tick', misfire: 'skip' }, { actor: 'cli' });
    expect(new Date(s.nextFireAt!).toISOString()).toBe('2026-03-09T02:30:00.000Z');
    expect((await r.coordination.listSchedules()).map((x) => [x.name, x.paused, x.source])).toEqual([['nightly', false, 'runtime']]);
    await r.coordination.pauseSchedule('nightly', { actor: 'cli' });
    clock += 3 * DAY;
    const resumed = await r.coordination.resumeSchedule('nightly', { actor: 'cli' });
    expect(new Date(resumed.nextFireAt!).toISOString()).toBe('2026-03-09T02:30:00.000Z'); // where it stopped
    const c = r.coordination.coordinator({ leaseMs: 10_000 });
    await c.elector.runOnce();
    expect((await c.runOnce()).fired).toEqual([]); // misfire 'skip': the three passed while paused are dropped
    expect(new Date((await r.coordination.getSchedule('nightly')).nextFireAt!).toISOString()).toBe('2026-03-12T02:30:00.000Z');
    await r.coordination.removeSchedule('nightly', { actor: 'cli' });
    await expect(r.coordination.removeSchedule('nightly')).rejects.toThrow(/does not exist/);
    await expect(r.coordination.addSchedule('bad', { cron: '* * * * *', tz: 'Nowhere/City', type: 'tick' })).rejects.toThrow(/IANA time zone/);
    expect(actions).toEqual(['cli schedule.add schedule:nightly', 'cli schedule.pause schedule:nightly', 'cli schedule.resume schedule:nightly', 'cli schedule.remove schedule:nightly']);
  });

  it('a fire time already due is not lost to a resume: of a schedule not paused (nothing changes), or right after a pause', async () => {
    url = freshStoreUrl(kind);
    const r = await client();
    const actions: string[] = [];
    r.events.on('operator:action', (e) => void actions.push(`${e.action} ${e.target}`));
    clock = Date.parse('2026-05-01T09:59:00Z');
    for (const name of ['running', 'paused-then-resumed']) await r.coordination.addSchedule(name, { cron: '0 * * * *', type: 'tick' });
    clock = Date.parse('2026-05-01T10:00:05Z'); // 10:00 is due; the leader has not made its pass yet
    const before = await r.coordination.getSchedule('running');
    expect(await r.coordination.resumeSchedule('running')).toEqual(before);
    await r.coordination.pauseSchedule('paused-then-resumed');
    await r.coordination.resumeSchedule('paused-then-resumed');
    expect(actions).toEqual(['schedule.add schedule:running', 'schedule.add schedule:paused-then-resumed', 'schedule.pause schedule:paused-then-resumed', 'schedule.resume schedule:paused-then-resumed']);
    clock += 1000;
    const c = r.coordination.coordinator({ leaseMs: 10_000 });
    await c.elector.runOnce();
    const pass = await c.runOnce();
    expect(pass.fired.map((f) => [f.schedule, new Date(f.fireAt).toISOString()])).toEqual([
      ['paused-then-resumed', '2026-05-01T10:00:00.000Z'],
      ['running', '2026-05-01T10:00:00.000Z'],
    ]);
    // Paused for three days under misfire 'once' (the default): one catch-up, for the latest hour missed, and the hour on time.
    await r.coordination.pauseSchedule('running');
    clock += 3 * DAY;
    await r.coordination.resumeSchedule('running');
    await c.elector.runOnce();
    const fired = (await c.runOnce()).fired.filter((f) => f.schedule === 'running');
    expect(fired.map((f) => new Date(f.fireAt).toISOString())).toEqual(['2026-05-04T09:00:00.000Z', '2026-05-04T10:00:00.000Z']);
  });

  it('a pattern that can never fire (30 February, 31 April) is refused on cron and not stored; 29 February is taken', async () => {
    url = freshStoreUrl(kind);
    const r = await client();
    for (const cron of ['0 0 30 2 *', '0 0 31 4 *', '0 0 31 2,4,6,9,11 *']) {
      const added = r.coordination.addSchedule('never', { cron, type: 'tick' });
      await expect(added).rejects.toThrow(ValidationError);
      await expect(added).rejects.toMatchObject({ field: 'defineSchedule("never").cron' });
    }
    expect(await r.coordination.listSchedules()).toEqual([]);
    const leap = await r.coordination.addSchedule('leap-day', { cron: '0 0 29 2 *', type: 'tick' });
    expect(new Date(leap.nextFireAt!).toISOString()).toBe('2028-02-29T00:00:00.000Z');
  });

  it('start(options) after onLeadership() is refused, naming the option, rather than ignored; repeating them or none is fine', async () => {
    url = freshStoreUrl(kind);
    const r = await client();
    r.onLeadership(() => {}); // creates and starts the coordinator with the defaults
    const refused = (() => {
      try {
        r.coordination.start({ lease: 'leader:billing', leaseMs: 3000 });
      } catch (err) {
        return err as ValidationError;
      }
    })();
    expect(refused).toBeInstanceOf(ValidationError);
    expect(refused?.field).toBe('options.lease');
    expect(refused?.message).toMatch(/already created .* with lease left to its default, not lease "leader:billing"/);
    expect(() => r.coordination.start({ retention: { deadMs: DAY } })).toThrow(/options\.retention\.deadMs/);
    expect(r.coordination.start().elector.lease).toBe('leader:maintenance');

    const r2 = await client();
    const c = r2.coordination.start({ leaseMs: 3000, retention: { completedMs: DAY } });
    expect(r2.coordination.start({ leaseMs: 3000, retention: { completedMs: DAY, deadMs: undefined } })).toBe(c);
    expect(() => r2.coordination.coordinator({ leaseMs: 4000 })).toThrow(/options\.leaseMs: .* with leaseMs 3000, not leaseMs 4000/);
  });

  it('a lock renewal in flight when fn returns lands before the release, so the lock is free at once after it', async () => {
    url = freshStoreUrl(kind);
    const r = await client();
    const store = r.store.coordination;
    // The store, with the first renewal held (in flight) until the test lets it through.
    const events: string[] = [];
    let letRenewalThrough!: () => void;
    const held = new Promise<void>((resolve) => (letRenewalThrough = resolve));
    let renewalSent!: () => void;
    const sent = new Promise<void>((resolve) => (renewalSent = resolve));
    let released: Promise<boolean> | null = null;
    const slow: typeof store = Object.create(store);
    slow.renewLease = async (p) => {
      events.push('renew');
      renewalSent();
      await held;
      const renewed = await store.renewLease(p);
      events.push('renewed');
      return renewed;
    };
    slow.releaseLease = (p) => {
      events.push('release');
      return (released = store.releaseLease(p));
    };
    const done = withLock(slow, 'invoice-42', async (lock) => {
      await sent; // fn returns while the renewal (sent with the time of then) is in flight
      clock += 10;
      return lock.token;
    }, { ttlMs: 150, now });
    await new Promise((resolve) => setImmediate(resolve));
    await released; // (a release made without waiting for the renewal has reached the store)
    letRenewalThrough();
    const token = await done;
    expect(events).toEqual(['renew', 'renewed', 'release']);
    expect(await holdsLock(store, 'invoice-42', token, clock)).toBe(false);
    expect(await r.withLock('invoice-42', (next) => next.token)).toBe(token + 1);
  });

  it('two holders of one lock: the stale holder has the lower token and is refused', async () => {
    url = freshStoreUrl(kind);
    const r = await client();
    const store = r.store.coordination;
    const order: string[] = [];
    let staleToken = 0;
    // Holder A takes the lock and is paused past its TTL (the clock moves without it renewing)...
    await withLock(
      store,
      'invoice-42',
      async (a) => {
        staleToken = a.token;
        clock += 5_000;
        // ...holder B takes the lock with a higher token.
        await withLock(store, 'invoice-42', async (b) => {
          order.push(`b:${b.token}`);
          expect(b.token).toBeGreaterThan(a.token);
          expect(await holdsLock(store, 'invoice-42', b.token, clock)).toBe(true);
          expect(await holdsLock(store, 'invoice-42', a.token, clock)).toBe(false);
          expect(await store.renewLease({ name: 'lock:invoice-42', token: a.token, ttlMs: 1000, now: clock })).toBeNull();
        }, { ttlMs: 1000, holder: 'B', now });
        order.push(`a:${a.token}`);
      },
      { ttlMs: 1000, holder: 'A', now },
    );
    expect(order).toEqual([`b:${staleToken + 1}`, `a:${staleToken}`]);
    // A held lock is refused to another holder at once, or after waitMs.
    await r.withLock('busy', async () => {
      await expect(r.withLock('busy', async () => 'never', { ttlMs: 1000 })).rejects.toBeInstanceOf(LockUnavailableError);
    }, { ttlMs: 10_000 });
    // Tokens keep increasing across acquisitions.
    const tokens: number[] = [];
    for (let i = 0; i < 3; i++) await r.withLock('seq', (l) => void tokens.push(l.token));
    expect(tokens).toEqual([1, 2, 3]);
  });

  it('retention prunes exactly what the policy says (default and per type) and records the counts', async () => {
    url = freshStoreUrl(kind);
    const r = await client();
    const finish = async (type: string, age: number, how: 'complete' | 'cancel') => {
      clock = T0 - age;
      const { id } = await r.enqueue(type, {});
      if (how === 'cancel') return (await r.cancel(id)).id;
      const [job] = await r.store.claimJobs({ workerId: 'w', queues: ['default'], types: [type], limit: 1, leaseMs: 1000, now: clock });
      await r.store.completeJobs([{ id: job.id, token: job.leaseToken, result: null }], clock);
      return id;
    };
    const keep = [await finish('tick', 6 * DAY, 'complete'), await finish('tick', 6 * DAY, 'cancel'), await finish('report', 0.5 * DAY, 'complete')];
    const gone = [await finish('tick', 8 * DAY, 'complete'), await finish('tick', 8 * DAY, 'cancel'), await finish('report', 2 * DAY, 'complete')];
    clock = T0;
    const c = r.coordination.coordinator({ leaseMs: 10_000 });
    await c.elector.runOnce();
    const pass = await c.runOnce();
    expect(pass.pruned?.jobs).toEqual({ completed: { tick: 1, report: 1 }, cancelled: { tick: 1 } });
    for (const id of gone) expect(await r.getJob(id)).toBeNull();
    for (const id of keep) expect(await r.getJob(id)).not.toBeNull();
    expect((await r.coordination.prunedCounts()).map((p) => [p.type, p.state, p.count])).toEqual([
      ['report', 'completed', 1],
      ['tick', 'cancelled', 1],
      ['tick', 'completed', 1],
    ]);
  });
});

describe('ctx.fencingToken', () => {
  it("is the job's lease token: it increases with every claim of the job", async () => {
    const url = freshStoreUrl('sqlite');
    const tokens: number[] = [];
    const r = await createRebound({
      store: url,
      logger: silent,
      jobs: [
        defineJob('fenced', {
          retry: { maxAttempts: 3, baseMs: 1, jitter: 'none' },
          handler: async (_p, ctx) => {
            tokens.push(ctx.fencingToken);
            if (tokens.length < 3) throw new Error('try again');
          },
        }),
      ],
    });
    try {
      const { id } = await r.enqueue('fenced', {});
      await r.work({ drain: true, pollIntervalMs: 10 }).done;
      expect((await r.getJob(id))?.state).toBe('completed');
      expect(tokens).toEqual([1, 2, 3]);
    } finally {
      await r.close();
    }
  });
});

const silent = { debug() {}, info() {}, warn() {}, error() {}, child: () => silent };
