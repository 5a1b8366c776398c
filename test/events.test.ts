/** The engine's event emitter (src/events.ts): what listeners can rely on. */
import { describe, expect, it } from 'vitest';
import { ReboundEmitter } from '../src/events.ts';

const started = (id: string) => ({ job: { id } as never, workerId: 'w1' });

describe('ReboundEmitter', () => {
  it('calls every listener in order of subscription, and not after it unsubscribes', () => {
    const events = new ReboundEmitter();
    const seen: string[] = [];
    const offA = events.on('job:started', (e) => seen.push(`a:${e.job.id}`));
    events.on('job:started', (e) => seen.push(`b:${e.job.id}`));
    events.emit('job:started', started('1'));
    offA();
    offA(); // a second call is harmless
    events.emit('job:started', started('2'));
    expect(seen).toEqual(['a:1', 'b:1', 'b:2']);
  });

  it('reports a throwing listener as worker:error and still calls the others', () => {
    const events = new ReboundEmitter();
    const errors: string[] = [];
    let reached = false;
    events.on('worker:error', (e) => errors.push(`${e.during}: ${(e.error as Error).message}`));
    events.on('job:started', () => {
      throw new Error('listener bug');
    });
    events.on('job:started', () => (reached = true));
    expect(() => events.emit('job:started', started('1'))).not.toThrow();
    expect(reached).toBe(true);
    expect(errors).toEqual(['listener of job:started: listener bug']);
  });

  it('an emit in progress calls the listeners subscribed when it began', () => {
    const events = new ReboundEmitter();
    const seen: string[] = [];
    let offB = () => {};
    events.on('job:started', () => {
      seen.push('a');
      offB(); // removed during the emit: this emit still calls b
      events.on('job:started', () => seen.push('late')); // added during the emit: called from the next one
    });
    offB = events.on('job:started', () => seen.push('b'));
    events.emit('job:started', started('1'));
    expect(seen).toEqual(['a', 'b']);
    events.emit('job:started', started('2'));
    expect(seen).toEqual(['a', 'b', 'a', 'late']);
  });

  it('keeps a listener subscribed twice until both subscriptions end', () => {
    const events = new ReboundEmitter();
    let calls = 0;
    const fn = () => calls++;
    const off1 = events.on('job:started', fn);
    const off2 = events.on('job:started', fn);
    events.emit('job:started', started('1'));
    off1();
    events.emit('job:started', started('2'));
    off2();
    events.emit('job:started', started('3'));
    expect(calls).toBe(3);
  });
});
