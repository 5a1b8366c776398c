/** Versions 50-59: the operator surface (API tokens). */
import type { Migration } from './index.ts';

export const operatorMigrations: Migration[] = [
  {
    version: 50,
    name: 'api tokens',
    sql: `
      CREATE TABLE api_tokens (
        id bigserial PRIMARY KEY,
        name text NOT NULL,
        role text NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
        token_hash text NOT NULL UNIQUE,
        created_at bigint NOT NULL,
        last_used_at bigint,
        revoked_at bigint
      );
      CREATE UNIQUE INDEX api_tokens_live_name ON api_tokens (name) WHERE revoked_at IS NULL;
    `,
  },
];
