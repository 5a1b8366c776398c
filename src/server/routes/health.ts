/** /healthz: the process answers. /readyz: the store answers and every migration is applied. */
import type { FastifyPluginAsync } from 'fastify';
import type { ServerContext } from '../server.ts';

export function healthRoutes(ctx: ServerContext): FastifyPluginAsync {
  return async (app) => {
    app.get('/healthz', async () => ({ status: 'ok' }));
    app.get('/readyz', async (_req, reply) => {
      try {
        // Counting tokens reads the newest migration's table: it fails until migrations are applied.
        await Promise.all([ctx.rebound.countByState(), ctx.rebound.store.tokens.countLiveTokens()]);
        return { status: 'ready' };
      } catch (err) {
        return reply.status(503).send({ error: { code: 'not_ready', message: `the store is not ready: ${(err as Error).message}` } });
      }
    });
  };
}
