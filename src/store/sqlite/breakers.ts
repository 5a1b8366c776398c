/** Circuit breakers on SQLite: one row per breaker, its state machine's record as JSON. */
import type Database from 'better-sqlite3';
import { freshBreaker, type BreakerRecord, type Step } from '../../policies/breaker.ts';
import type { BreakerEvent, BreakerStore } from '../breakers.ts';
import { writeTransaction } from './write-lock.ts';

interface Row {
  name: string;
  data: string;
}

interface EventRow {
  id: number;
  name: string;
  at: number;
  from_state: BreakerEvent['from'];
  to_state: BreakerEvent['to'];
  reason: string;
  actor: string;
}

const toRecord = (r: Row): BreakerRecord => JSON.parse(r.data) as BreakerRecord;
const toEvent = (r: EventRow): BreakerEvent => ({
  id: String(r.id),
  name: r.name,
  at: r.at,
  from: r.from_state,
  to: r.to_state,
  reason: r.reason,
  actor: r.actor,
});

export class SqliteBreakerStore implements BreakerStore {
  constructor(private readonly db: Database.Database) {}

  async list(): Promise<BreakerRecord[]> {
    return (this.db.prepare('SELECT name, data FROM breakers ORDER BY name').all() as Row[]).map(toRecord);
  }

  async get(name: string): Promise<BreakerRecord | null> {
    const row = this.db.prepare('SELECT name, data FROM breakers WHERE name = ?').get(name) as Row | undefined;
    return row ? toRecord(row) : null;
  }

  async update<T>(name: string, now: number, step: (current: BreakerRecord) => Step<T>, actor: string) {
    // IMMEDIATE: the write lock is held from the read, so no other process changes the breaker in between.
    return writeTransaction(this.db, () => {
      const row = this.db.prepare('SELECT name, data FROM breakers WHERE name = ?').get(name) as Row | undefined;
      const current = row ? toRecord(row) : freshBreaker(name, now);
      const s = step(current);
      const record = s.next ?? current;
      if (s.next) {
        this.db
          .prepare(
            `INSERT INTO breakers (name, state, forced, data, updated_at) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (name) DO UPDATE SET state = excluded.state, forced = excluded.forced, data = excluded.data,
               updated_at = excluded.updated_at`,
          )
          .run(name, s.next.state, s.next.forced, JSON.stringify(s.next), now);
      }
      let event: BreakerEvent | null = null;
      if (s.transition) {
        const row = this.db
          .prepare(
            `INSERT INTO breaker_events (name, at, from_state, to_state, reason, actor) VALUES (?, ?, ?, ?, ?, ?) RETURNING *`,
          )
          .get(name, now, s.transition.from, s.transition.to, s.transition.reason, actor) as EventRow;
        event = toEvent(row);
      }
      return { result: s.result, record, event };
    });
  }

  async listEvents(filter: { name?: string; limit?: number }): Promise<BreakerEvent[]> {
    const rows = filter.name
      ? this.db.prepare('SELECT * FROM breaker_events WHERE name = ? ORDER BY id DESC LIMIT ?').all(filter.name, filter.limit ?? 100)
      : this.db.prepare('SELECT * FROM breaker_events ORDER BY id DESC LIMIT ?').all(filter.limit ?? 100);
    return (rows as EventRow[]).map(toEvent);
  }
}
