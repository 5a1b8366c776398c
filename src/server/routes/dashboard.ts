/**
 * The dashboard: static files from src/server/dashboard/, served as they are
 * (no build step, no CDN). The page talks to the API with the same bearer
 * tokens; a strict Content-Security-Policy keeps it to its own origin.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyPluginAsync } from 'fastify';

const DIR = fileURLToPath(new URL('../dashboard/', import.meta.url));
const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

export function dashboardRoutes(): FastifyPluginAsync {
  const files = new Map<string, { body: Buffer; type: string }>();
  for (const name of readdirSync(DIR)) {
    const type = TYPES[extname(name)];
    if (type) files.set(name, { body: readFileSync(join(DIR, name)), type });
  }
  return async (app) => {
    const index = files.get('index.html')!;
    const sendIndex = async (_req: unknown, reply: import('fastify').FastifyReply) =>
      reply.type(index.type).header('Content-Security-Policy', CSP).header('Cache-Control', 'no-cache').send(index.body);
    app.get('/', sendIndex);
    app.get('/dashboard', sendIndex);
    // The page loads its files by absolute path, so it works under a trailing slash too.
    app.get('/dashboard/', sendIndex);
    app.get('/dashboard/:file', async (req, reply) => {
      const f = files.get((req.params as { file: string }).file);
      if (!f) return reply.status(404).send({ error: { code: 'not_found', message: 'no such dashboard file' } });
      return reply.type(f.type).header('Content-Security-Policy', CSP).header('Cache-Control', 'no-cache').send(f.body);
    });
  };
}
