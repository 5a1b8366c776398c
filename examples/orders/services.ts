/**
 * The outside world of the order example: a payment provider, a warehouse, a
 * carrier and a mailer. These fakes keep their effects in memory (and can be
 * told to fail), so the demo and the tests can show what happened; pass your
 * own implementations to `orderWorkflow()` for real services.
 */
export interface OrderServices {
  chargeCard(order: { orderId: string; amount: number }, idempotencyKey: string): Promise<{ chargeId: string }>;
  refund(chargeId: string, idempotencyKey: string): Promise<void>;
  reserveInventory(order: { orderId: string; items: string[] }, idempotencyKey: string): Promise<{ reservationId: string }>;
  releaseInventory(reservationId: string, idempotencyKey: string): Promise<void>;
  ship(order: { orderId: string; address: string }, idempotencyKey: string): Promise<{ trackingId: string }>;
  notify(order: { orderId: string; email: string }, message: string): Promise<void>;
}

export interface FakeServicesOptions {
  /** Make this operation fail for good (a PermanentError-like error), to see the compensations run. */
  failAt?: 'charge' | 'reserve' | 'ship' | 'notify';
  /** Make this operation fail this many times with a transient error before it succeeds. */
  flaky?: Partial<Record<'charge' | 'reserve' | 'ship' | 'notify', number>>;
}

/** In-memory services: every effect is appended to `effects`, once per idempotency key. */
export function fakeServices(opts: FakeServicesOptions = {}): OrderServices & { effects: string[] } {
  const effects: string[] = [];
  const seen = new Set<string>();
  const flaky = { ...opts.flaky };
  const maybeFail = (op: NonNullable<FakeServicesOptions['failAt']>) => {
    if (opts.failAt === op) throw Object.assign(new Error(`${op} refused`), { permanent: true });
    if ((flaky[op] ?? 0) > 0) {
      flaky[op]! -= 1;
      throw new Error(`${op} timed out`);
    }
  };
  const once = (key: string, effect: string) => {
    if (seen.has(key)) return;
    seen.add(key);
    effects.push(effect);
  };
  return {
    effects,
    async chargeCard(order, key) {
      maybeFail('charge');
      once(key, `charged ${order.orderId} ${order.amount}`);
      return { chargeId: `ch_${order.orderId}` };
    },
    async refund(chargeId, key) {
      once(key, `refunded ${chargeId}`);
    },
    async reserveInventory(order, key) {
      maybeFail('reserve');
      once(key, `reserved ${order.items.join(',')} for ${order.orderId}`);
      return { reservationId: `res_${order.orderId}` };
    },
    async releaseInventory(reservationId, key) {
      once(key, `released ${reservationId}`);
    },
    async ship(order, key) {
      maybeFail('ship');
      once(key, `shipped ${order.orderId} to ${order.address}`);
      return { trackingId: `trk_${order.orderId}` };
    },
    async notify(order, message) {
      maybeFail('notify');
      effects.push(`mailed ${order.email}: ${message}`);
    },
  };
}
