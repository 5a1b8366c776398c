/** fast-check arbitraries for hostile input: injection-shaped, unstorable and oversized values of every type. */
import fc from 'fast-check';

export const INJECTIONS = [
  "'; DROP TABLE jobs; --",
  '" OR 1=1 --',
  "1' OR '1'='1",
  '$1',
  '${process.exit(1)}',
  '`rm -rf /`',
  '<script>alert(1)</script>',
  '../../../../etc/passwd',
  '%00',
  '\u0000',
  'a\u0000b',
  '\uD800',
  'x\uDC00y',
  '\uFFFF',
  '\\',
  '\r\nSet-Cookie: x=1',
  '{{constructor.constructor("return process")()}}',
  '__proto__',
  'constructor',
  '-1',
  '1e400',
  '99999999999999999999999',
  'NaN',
  ' ',
  '',
  '🙂'.repeat(40),
  'x'.repeat(300),
];

const ugly = fc.constantFrom('\u0000', '\uD800', '\uDC00', 'a', "'", '"', ';', '-', '$', '\\', '\n', '🙂', '/', '.');

/** Strings that are injection-shaped, contain NUL or lone surrogates, or are any code points at all. */
export const hostileString = fc.oneof(
  fc.constantFrom(...INJECTIONS),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: ugly, maxLength: 20 }),
);

/** Any JavaScript value, with the unusual ones (BigInt, Map, typed arrays, null prototypes, boxed values). */
export const anyValue = fc.anything({
  maxDepth: 4,
  withBigInt: true,
  withDate: true,
  withMap: true,
  withSet: true,
  withTypedArray: true,
  withSparseArray: true,
  withNullPrototype: true,
  withBoxedValues: true,
  withObjectString: true,
  stringUnit: 'binary',
});

function nested(depth: number): unknown {
  let v: unknown = 'bottom';
  for (let i = 0; i < depth; i++) v = i % 2 ? { k: v } : [v];
  return v;
}

function circular(): unknown {
  const o: Record<string, unknown> = { a: 1 };
  o.self = o;
  return o;
}

/** Payloads: any value, hostile strings deep inside objects, huge, deeply nested, circular. */
export const hostilePayload = fc.oneof(
  { weight: 4, arbitrary: anyValue },
  { weight: 2, arbitrary: fc.dictionary(hostileString, fc.oneof(hostileString, fc.integer(), fc.constant(null)), { maxKeys: 4 }) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 3 }).map((mb) => ({ blob: 'x'.repeat(mb * 600_000) })) },
  { weight: 1, arbitrary: fc.integer({ min: 50, max: 3000 }).map(nested) },
  { weight: 1, arbitrary: fc.constant(null).map(circular) },
);

const anyOf = <T>(a: fc.Arbitrary<T>) => fc.oneof(a, anyValue, hostileString);

/** Enqueue options: right names with wrong or hostile values, unknown names, or not an object at all. */
export const hostileOptions = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record(
      {
        idempotencyKey: anyOf(fc.string({ maxLength: 300 })),
        runAt: anyOf(fc.oneof(fc.double(), fc.date({ noInvalidDate: false }), fc.integer())),
        delayMs: anyOf(fc.oneof(fc.double(), fc.integer())),
        priority: anyOf(fc.integer()),
        maxAttempts: anyOf(fc.integer()),
        queue: anyOf(fc.string({ maxLength: 200 })),
        parentId: anyOf(fc.bigInt().map(String)),
        tx: anyValue,
      },
      { requiredKeys: [] },
    ),
  },
  { weight: 1, arbitrary: fc.dictionary(hostileString, anyValue, { minKeys: 1, maxKeys: 3 }) },
  { weight: 1, arbitrary: anyValue },
);

/** Job types: the one defined, hostile strings, or values of the wrong type. */
export const hostileType = (valid: string) => fc.oneof(fc.constant(valid), hostileString, anyValue);
