/** /healthz: the process answers. /readyz: the store answers and every migration is applied. */
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { ServerContext } from '../server.ts';

export function healthRoutes(ctx: ServerContext): FastifyPluginAsync {
  return async (app) => {
    app.get('/healthz', async () => ({ status: 'ok' }));
    app.get('/readyz', async (req, reply) => {
      try {
        // Counting tokens reads the newest migration's table: it fails until migrations are applied.
        await Promise.all([ctx.rebound.countByState(), ctx.rebound.store.tokens.countLiveTokens()]);
        return { status: 'ready' };
      } catch (err) {
        const cause = (err as Error).message;
        ctx.rebound.logger.warn({ err: cause }, 'not ready: the store failed the readiness check');
        // A store's error can name its host, user or file: only a caller with a valid token reads it here.
        const message = (await holdsToken(ctx, req))
          ? `the store is not ready: ${cause}`
          : "the store is unreachable or not ready; the server's log has the cause (callers with an API token see it here)";
        return reply.status(503).send({ error: { code: 'not_ready', message } });
      }
    });
  };
}

/**
 * Whether the request carries a token the store accepts (or comes in open mode). /readyz takes no token, so a
 * missing or bad one is not refused here; a store that cannot check tokens counts as none.
 */
async function holdsToken(ctx: ServerContext, req: FastifyRequest): Promise<boolean> {
  const h = req.headers;
  const fetchSite = Array.isArray(h['sec-fetch-site']) ? h['sec-fetch-site'][0] : h['sec-fetch-site'];
  try {
    await ctx.auth.authenticate(h.authorization, req.ip, { method: req.method, host: h.host, origin: h.origin, fetchSite, port: req.socket.localPort });
    return true;
  } catch {
    return false;
  }
}
