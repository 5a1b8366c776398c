/** The order-processing workflow example: import it, or run it with `rebound worker --jobs examples/orders/jobs.ts`. */
export { orderWorkflow, orderSchema, ORDER_STATES, type Order } from './order-workflow.ts';
export { fakeServices, type OrderServices, type FakeServicesOptions } from './services.ts';
