/** A simulated downstream service on 127.0.0.1 that a test can take down and bring back. */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Downstream {
  url: string;
  up: boolean;
  /** Requests received, by whether the service was up. */
  calls: { up: number; down: number };
  close(): Promise<void>;
}

export async function startDownstream(): Promise<Downstream> {
  const state = { up: true, calls: { up: 0, down: 0 } };
  const server: Server = createServer((req, res) => {
    if (state.up) {
      state.calls.up++;
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    } else {
      state.calls.down++;
      res.writeHead(503).end('unavailable');
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/charge`,
    get up() {
      return state.up;
    },
    set up(v: boolean) {
      state.up = v;
    },
    calls: state.calls,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
