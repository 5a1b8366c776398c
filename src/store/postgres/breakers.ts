/** Circuit breakers on PostgreSQL: one row per breaker, locked with FOR UPDATE while a transition is applied. */
import type pg from 'pg';
import { SHARED_LOCK_IDLE_TIMEOUT_MS, withTransaction } from './transaction.ts';
import { freshBreaker, type BreakerRecord, type Step } from '../../policies/breaker.ts';
import type { BreakerEvent, BreakerStore } from '../breakers.ts';

interface EventRow {
  id: number;
  name: string;
  at: number;
  from_state: BreakerEvent['from'];
  to_state: BreakerEvent['to'];
  reason: string;
  actor: string;
}

const toEvent = (r: EventRow): BreakerEvent => ({
  id: String(r.id),
  name: r.name,
  at: r.at,
  from: r.from_state,
  to: r.to_state,
  reason: r.reason,
  actor: r.actor,
});

export class PostgresBreakerStore implements BreakerStore {
  /** `pool` runs with search_path set to the store's schema. */
  constructor(private readonly pool: pg.Pool) {}

  async list(): Promise<BreakerRecord[]> {
    const { rows } = await this.pool.query<{ data: BreakerRecord }>('SELECT data FROM breakers ORDER BY name');
    return rows.map((r) => r.data);
  }

  async get(name: string): Promise<BreakerRecord | null> {
    // Named: a guarded call reads its breaker once (see postgres-store.ts, getOnce).
    const { rows } = await this.pool.query<{ data: BreakerRecord }>({
      name: 'rebound_breaker_get',
      text: 'SELECT data FROM breakers WHERE name = $1',
      values: [name],
    });
    return rows[0]?.data ?? null;
  }

  async update<T>(name: string, now: number, step: (current: BreakerRecord) => Step<T>, actor: string) {
    return withTransaction(this.pool, async (c) => {
      const lock = () =>
        c.query<{ data: BreakerRecord }>({ name: 'rebound_breaker_lock', text: 'SELECT data FROM breakers WHERE name = $1 FOR UPDATE', values: [name] });
      let { rows } = await lock();
      if (!rows[0]) {
        await c.query(
          `INSERT INTO breakers (name, state, forced, data, updated_at) VALUES ($1, 'closed', NULL, $2, $3) ON CONFLICT (name) DO NOTHING`,
          [name, JSON.stringify(freshBreaker(name, now)), now],
        );
        ({ rows } = await lock());
      }
      const current = rows[0].data;
      const s = step(current);
      const record = s.next ?? current;
      if (s.next) {
        await c.query({
          name: 'rebound_breaker_update',
          text: 'UPDATE breakers SET state = $2, forced = $3, data = $4, updated_at = $5 WHERE name = $1',
          values: [name, s.next.state, s.next.forced, JSON.stringify(s.next), now],
        });
      }
      let event: BreakerEvent | null = null;
      if (s.transition) {
        const { rows: ev } = await c.query<EventRow>(
          `INSERT INTO breaker_events (name, at, from_state, to_state, reason, actor) VALUES ($1, $2, $3, $4, $5, $6) RETURNING *`,
          [name, now, s.transition.from, s.transition.to, s.transition.reason, actor],
        );
        event = toEvent(ev[0]);
      }
      return { result: s.result, record, event };
    }, { idleTimeoutMs: SHARED_LOCK_IDLE_TIMEOUT_MS });
  }

  async listEvents(filter: { name?: string; limit?: number }): Promise<BreakerEvent[]> {
    const { rows } = filter.name
      ? await this.pool.query<EventRow>('SELECT * FROM breaker_events WHERE name = $1 ORDER BY id DESC LIMIT $2', [filter.name, filter.limit ?? 100])
      : await this.pool.query<EventRow>('SELECT * FROM breaker_events ORDER BY id DESC LIMIT $1', [filter.limit ?? 100]);
    return rows.map(toEvent);
  }
}
