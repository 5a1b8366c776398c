/**
 * A jobs file for `rebound worker --jobs examples/orders/jobs.ts`: ProcessOrder
 * on the in-memory fake services (they print their effects to the log).
 * Enqueue one with:
 *   rebound enqueue ProcessOrder '{"orderId":"o-1","amount":42,"items":["sku-1"],"address":"1 Main St","email":"a@example.com"}' --key order-o-1
 */
import { fakeServices } from './services.ts';
import { orderWorkflow } from './order-workflow.ts';

export default [orderWorkflow(fakeServices())];
