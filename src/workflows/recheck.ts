/**
 * How long a workflow waiting in join sleeps before it looks again by itself.
 * Wake-ups are explicit (a finished child makes its parent due at once, see the
 * workflow migrations); this re-check only bounds the cost of a wake-up lost to
 * clock skew between machines. It doubles from 250 ms to at most a minute.
 */
export function recheckDelay(checks: number): number {
  return Math.min(60_000, 250 * 2 ** Math.min(checks, 10));
}
