/**
 * Subscribing to events by name, including events that other capabilities may
 * add later (breakers, supervisors): the emitter is typed, these may not be in
 * its map yet, so they are read defensively.
 */
import type { EventName, ReboundEmitter, ReboundEvents } from '../events.ts';

export type Unsubscribe = () => void;

export function on<K extends EventName>(events: ReboundEmitter, name: K, fn: (e: ReboundEvents[K]) => void): Unsubscribe {
  return events.on(name, fn);
}

/** An event that may not exist in this version's event map: its payload is read field by field. */
export function onLoose(events: ReboundEmitter, name: string, fn: (e: Record<string, unknown>) => void): Unsubscribe {
  return events.on(name as EventName, ((e: unknown) => fn(e && typeof e === 'object' ? (e as Record<string, unknown>) : {})) as never);
}

export const str = (v: unknown, fallback = ''): string => (typeof v === 'string' ? v : typeof v === 'number' ? String(v) : fallback);
