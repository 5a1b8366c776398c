/** API tokens, for admins: list, create (the token is returned once), revoke. */
import type { FastifyPluginAsync } from 'fastify';
import { ROLES, type Role } from '../../store/tokens.ts';
import { createToken } from '../auth.ts';
import { ApiError, badRequest } from '../errors.ts';
import type { ServerContext } from '../server.ts';
import { body } from './params.ts';

export const TOKEN_NAME = /^[A-Za-z0-9_.@:\-]{1,64}$/;

export function tokenRoutes(ctx: ServerContext): FastifyPluginAsync {
  const { rebound } = ctx;
  return async (app) => {
    app.get('/api/tokens', { config: { permission: 'tokens' } }, async () => ({ tokens: await rebound.store.tokens.listTokens() }));

    app.post('/api/tokens', { config: { permission: 'tokens' } }, async (req, reply) => {
      const b = body(req.body);
      if (typeof b.name !== 'string' || !TOKEN_NAME.test(b.name)) throw badRequest('name', 'must be 1-64 letters, digits or _ . @ : -');
      if (!ROLES.includes(b.role as Role)) throw badRequest('role', `must be one of ${ROLES.join(', ')}`);
      const { token, record } = await createToken(rebound.store.tokens, b.name, b.role as Role, rebound.now());
      ctx.auth.invalidate();
      rebound.events.emit('operator:action', { actor: req.principal.name, action: 'token.create', target: `token:${record.name}`, details: { role: record.role } });
      return reply.status(201).send({ token, ...record });
    });

    app.delete('/api/tokens/:name', { config: { permission: 'tokens' } }, async (req) => {
      const name = (req.params as { name: string }).name;
      if (!TOKEN_NAME.test(name)) throw badRequest('name', 'must be a token name');
      if (!(await rebound.store.tokens.revokeToken(name, rebound.now()))) throw new ApiError(404, 'not_found', `no live token named "${name}"`);
      ctx.auth.invalidate();
      rebound.events.emit('operator:action', { actor: req.principal.name, action: 'token.revoke', target: `token:${name}` });
      return { revoked: name };
    });
  };
}
