/**
 * The payload hash is stored with every job that has an idempotency key, and the audit trail keeps
 * it as the payload's digest: it must not change between releases. It is sha256 over the type, a
 * NUL, and the payload's JSON with every object's keys sorted.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { payloadHash } from '../src/engine/enqueue-input.ts';
import { entryHash, GENESIS_HASH } from '../src/observability/audit.ts';

const sha256 = (...parts: string[]) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex');
};

describe('payload hash', () => {
  it('is sha256(type, NUL, canonical JSON), whatever the key order or the text given', () => {
    const payload = { to: 'ü@example.com', amount: 12.5, nested: { z: [1, { b: 2, a: 1 }], a: null } };
    const canonical = '{"amount":12.5,"nested":{"a":null,"z":[1,{"a":1,"b":2}]},"to":"ü@example.com"}';
    const expected = sha256('email', '\0', canonical);
    expect(payloadHash('email', payload)).toBe(expected);
    expect(payloadHash('email', payload, JSON.stringify(payload))).toBe(expected);
    expect(payloadHash('email', JSON.parse(canonical), canonical)).toBe(expected);
    expect(payloadHash('sms', payload)).not.toBe(expected);
  });

  it('pins one value, so a change of algorithm cannot pass unnoticed', () => {
    expect(payloadHash('noop', { i: 1 })).toBe('0a21ff05061e65e4c523dac72ee25753a038974eeafb3a2b2211bff0d808d9c7');
  });
});

describe('audit entry hash', () => {
  it('is sha256(previous hash, newline, canonical JSON of [seq, id, at, actor, action, target, details])', () => {
    const e = { id: '7', at: 1700000000000, actor: 'cli', action: 'job.submit', target: 'job:7', details: { type: 'noop', count: 1 } };
    const body = '[3,"7",1700000000000,"cli","job.submit","job:7",{"count":1,"type":"noop"}]';
    expect(entryHash(GENESIS_HASH, e, 3)).toBe(sha256(GENESIS_HASH, '\n', body));
  });
});
