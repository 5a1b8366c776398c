/**
 * The operator surface's HTTP server: the JSON API under /api, the dashboard
 * at /, health at /healthz and /readyz, Prometheus text at /metrics.
 * Every /api route names the permission it needs; one hook authenticates
 * the caller and checks it (auth.ts), so a route cannot forget.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import type { Rebound } from '../rebound.ts';
import type { Worker } from '../runtime/worker.ts';
import { Authenticator, can, type Permission, type Principal } from './auth.ts';
import { ApiError, errorHandler, handleNotFound } from './errors.ts';
import { LiveSeries } from './live-series.ts';
import type { OperatorProviders } from './providers.ts';
import { dashboardRoutes } from './routes/dashboard.ts';
import { dlqRoutes } from './routes/dlq.ts';
import { healthRoutes } from './routes/health.ts';
import { jobRoutes } from './routes/jobs.ts';
import { opsRoutes } from './routes/ops.ts';
import { tokenRoutes } from './routes/tokens.ts';
import { openapiRoutes } from './openapi.ts';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal;
  }
  interface FastifyContextConfig {
    /** The permission a caller's role needs for this route; routes without one are public. */
    permission?: Permission;
  }
}

export interface ServerOptions {
  rebound: Rebound;
  /** The address the server will listen on: decides whether tokenless (open) mode is allowed. */
  host: string;
  providers?: OperatorProviders;
  /** In-process workers, for GET /api/workers when no supervisor provider is given. */
  workers?: () => Worker[];
  /** Largest accepted request body in bytes (default 2 MiB: a 1 MiB payload plus its envelope). */
  bodyLimit?: number;
  /** Bad tokens allowed per address per minute before 429. */
  maxBadTokens?: number;
  series?: LiveSeries;
}

export interface ServerContext {
  rebound: Rebound;
  auth: Authenticator;
  providers: OperatorProviders;
  series: LiveSeries;
  workers: () => Worker[];
  startedAt: number;
}

export interface OperatorServer {
  app: FastifyInstance;
  ctx: ServerContext;
  /** Every registered route, as `METHOD /path` (OpenAPI path syntax). */
  routes: string[];
}

const MAX_PARAM_LENGTH = 1024;

export async function buildServer(opts: ServerOptions): Promise<OperatorServer> {
  // Fastify's own logger stays off: failures go to the client's logger, with the rest of Rebound's logs.
  const handleError = errorHandler(opts.rebound.logger);
  const app = Fastify({
    logger: false,
    bodyLimit: opts.bodyLimit ?? 2 * 1024 * 1024,
    trustProxy: false,
    // Names in paths may be 128 characters, three times that once percent-encoded.
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    // The router's own refusals (a malformed URL, a parameter too long) answer in the API's error shape too.
    frameworkErrors: handleError,
  });
  const ctx: ServerContext = {
    rebound: opts.rebound,
    auth: new Authenticator(opts.rebound.store.tokens, { host: opts.host, now: opts.rebound.now, maxFailures: opts.maxBadTokens }),
    providers: opts.providers ?? {},
    series: opts.series ?? new LiveSeries(opts.rebound).start(),
    workers: opts.workers ?? (() => []),
    startedAt: opts.rebound.now(),
  };
  app.decorateRequest('principal', null as unknown as Principal);
  const routes: string[] = [];
  app.addHook('onRoute', (r) => {
    for (const m of [r.method].flat()) if (m !== 'HEAD') routes.push(`${m} ${r.url.replace(/:(\w+)/g, '{$1}')}`);
  });
  // The API speaks JSON only: any other body is 415, not a string for handlers to misread.
  app.removeContentTypeParser('text/plain');
  app.setErrorHandler(handleError);
  app.setNotFoundHandler(handleNotFound);

  app.addHook('onRequest', async (req, reply) => {
    reply.header('X-Content-Type-Options', 'nosniff');
    reply.header('Referrer-Policy', 'no-referrer');
    reply.header('X-Frame-Options', 'DENY');
    const permission = req.routeOptions.config?.permission;
    if (!permission) return;
    reply.header('Cache-Control', 'no-store');
    const h = req.headers;
    const source = { method: req.method, host: h.host, origin: h.origin, fetchSite: header(h['sec-fetch-site']), port: req.socket.localPort };
    req.principal = await ctx.auth.authenticate(h.authorization, req.ip, source);
    if (!can(req.principal.role, permission)) {
      throw new ApiError(403, 'forbidden', `the ${req.principal.role} role may not do this (needs "${permission}")`);
    }
  });

  await app.register(healthRoutes(ctx));
  await app.register(openapiRoutes());
  await app.register(jobRoutes(ctx));
  await app.register(dlqRoutes(ctx));
  await app.register(opsRoutes(ctx));
  await app.register(tokenRoutes(ctx));
  await app.register(dashboardRoutes());
  app.addHook('onClose', async () => {
    if (!opts.series) ctx.series.stop();
  });
  drainOnClose(app);
  return { app, ctx, routes };
}

/**
 * Closing lets every handler already running finish and send its answer, then ends every connection.
 * Without this, close waited for each open connection, so one client that sent a request's headers but
 * not its body (even one answered 401 at once) held the shutdown of `rebound start`, and the workers'
 * graceful stop after it, for as long as Node waits for a request (5 minutes).
 */
function drainOnClose(app: FastifyInstance): void {
  let running = 0;
  let drained: (() => void) | null = null;
  app.addHook('preHandler', async (_req, reply) => {
    running++;
    // 'close' comes once the answer is sent or the connection is gone, whichever happens.
    reply.raw.once('close', () => {
      if (--running === 0) drained?.();
    });
  });
  app.addHook('preClose', async () => {
    if (running > 0) await new Promise<void>((resolve) => (drained = resolve));
    app.server.closeAllConnections();
  });
}

function header(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}
