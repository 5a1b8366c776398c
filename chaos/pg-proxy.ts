/**
 * A TCP proxy in front of PostgreSQL that can kill a connection at the worst
 * moment: right after the server answers a statement inside a transaction,
 * before the client sends the next one. It sends the client the FATAL message
 * a real pg_terminate_backend sends (57P01), then closes the socket. The
 * moment is exact, so a test of it is deterministic, and no real backend of
 * a shared server is touched.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';

/** ErrorResponse: severity FATAL, code 57P01 (admin_shutdown), as the server sends it. */
function fatalMessage(): Buffer {
  const fields = Buffer.from('SFATAL\0VFATAL\0C57P01\0Mterminating connection due to administrator command\0\0');
  const head = Buffer.alloc(5);
  head.write('E', 0);
  head.writeInt32BE(fields.length + 4, 1);
  return Buffer.concat([head, fields]);
}

export class PgKillProxy {
  private server: Server | null = null;
  private armed = 0;
  private readonly sockets = new Set<Socket>();
  /** Connections killed so far. */
  killed = 0;
  port = 0;

  constructor(
    private readonly upstreamHost: string,
    private readonly upstreamPort: number,
  ) {}

  async start(): Promise<void> {
    this.server = createServer((client) => this.pipe(client));
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', () => r()));
    this.port = (this.server.address() as { port: number }).port;
  }

  /** Kills the next `n` connections that finish a statement inside a transaction. */
  arm(n = 1): void {
    this.armed += n;
  }

  private pipe(client: Socket) {
    const upstream = createConnection(this.upstreamPort, this.upstreamHost);
    this.sockets.add(client).add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      this.sockets.delete(client);
      this.sockets.delete(upstream);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream);
    // Server-to-client: forward message by message, watching for ReadyForQuery in a transaction ('Z', status 'T').
    let pending = Buffer.alloc(0);
    upstream.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      let end = 0;
      while (pending.length - end >= 5) {
        const len = pending.readInt32BE(end + 1);
        if (pending.length - end < 1 + len) break;
        const type = String.fromCharCode(pending[end]);
        const status = len === 5 ? String.fromCharCode(pending[end + 5]) : '';
        end += 1 + len;
        if (type === 'Z' && status === 'T' && this.armed > 0) {
          this.armed--;
          this.killed++;
          // The answer and the FATAL arrive together, as when the backend is terminated right after answering.
          client.end(Buffer.concat([pending.subarray(0, end), fatalMessage()]));
          upstream.destroy();
          return;
        }
      }
      if (end > 0) {
        client.write(pending.subarray(0, end));
        pending = pending.subarray(end);
      }
    });
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}
