/**
 * A simulated payment service with scheduled outages: up for `upMs`, then
 * down for `downMs`, over and over. While down, every call fails like a 503.
 */
import { RetryableError } from '../errors.ts';

export class PaymentService {
  private readonly since: number;
  charges = 0;

  constructor(
    private readonly upMs = 40_000,
    private readonly downMs = 15_000,
    private readonly now: () => number = Date.now,
    /** When the first up period began: processes that share it agree on the outages. */
    since?: number,
  ) {
    this.since = since ?? now();
  }

  get healthy(): boolean {
    return (this.now() - this.since) % (this.upMs + this.downMs) < this.upMs;
  }

  async charge(orderId: string, amount: number): Promise<{ chargeId: string; amount: number }> {
    await new Promise((r) => setTimeout(r, 20 + Math.random() * 80));
    if (!this.healthy) throw new RetryableError('payment service unavailable (503)', { code: 'payment_unavailable' });
    this.charges++;
    return { chargeId: `ch_${orderId}`, amount };
  }
}
