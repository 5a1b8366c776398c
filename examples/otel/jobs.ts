/**
 * Jobs for the OpenTelemetry example: `charge` fails twice then succeeds, so
 * its trace shows one producer span (the enqueue) and three consumer spans
 * (the attempts). Its card number is redacted: it never reaches a span or a log.
 */
import { defineJob } from '../../src/index.ts';

let calls = 0;

export default [
  defineJob('charge', {
    retry: { maxAttempts: 5, baseMs: 200, jitter: 'none' },
    redact: ['card.number'],
    handler: async (payload: { orderId: string; card: { number: string } }, ctx) => {
      ctx.logger.info({ order: payload.orderId }, 'charging');
      if (++calls < 3) throw new Error(`payment gateway timed out for card ${payload.card.number}`);
      return { charged: payload.orderId };
    },
  }),
];
