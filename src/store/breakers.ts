/**
 * Circuit breaker state, shared by every process through the store. The store
 * only reads, locks and writes records; the state machine lives in
 * src/policies/breaker.ts and runs inside the store's lock, so two processes
 * never apply a transition on top of a stale record.
 */
import type { BreakerRecord, BreakerStateName, Step } from '../policies/breaker.ts';

export interface BreakerEvent {
  id: string;
  name: string;
  at: number;
  from: BreakerStateName;
  to: BreakerStateName;
  reason: string;
  /** 'breaker' for the breaker's own transitions, else who forced it (cli, an API token's name...). */
  actor: string;
}

export interface BreakerStore {
  list(): Promise<BreakerRecord[]>;
  get(name: string): Promise<BreakerRecord | null>;
  /**
   * Locks the breaker (a fresh closed one if it was never stored), runs `step`
   * on it, writes the new record and the transition (if any) as one event, and
   * returns the step's result. `step` must be synchronous and free of I/O.
   */
  update<T>(name: string, now: number, step: (current: BreakerRecord) => Step<T>, actor: string): Promise<{ result: T; record: BreakerRecord; event: BreakerEvent | null }>;
  /** State changes, newest first. */
  listEvents(filter: { name?: string; limit?: number }): Promise<BreakerEvent[]>;
}
