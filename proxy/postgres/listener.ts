// The PostgreSQL listener: one PgSession per accepted connection. A failing session never takes
// the listener (or other sessions) down.

import { createServer, type Server, type Socket } from 'node:net';
import { PgSession } from './session/pg-session.ts';
import type { SessionServices } from './session/services.ts';
import { UnauthenticatedConnections } from './session/unauthenticated.ts';
import { DEFAULT_LIMITS } from '../limits.ts';

export interface PgListener {
  port: number;
  host: string;
  /** Sessions currently open. */
  readonly sessions: number;
  /** Stops accepting, ends every session. */
  close(): Promise<void>;
}

export function startPgListener(host: string, port: number, services: SessionServices): Promise<PgListener> {
  const limits = services.limits ?? DEFAULT_LIMITS;
  const svc: SessionServices = { ...services, limits, unauthenticated: services.unauthenticated ?? new UnauthenticatedConnections(limits.maxUnauthenticatedPerClient) };
  const live = new Set<PgSession>();
  const sockets = new Set<Socket>();
  const server: Server = createServer((sock) => {
    sockets.add(sock);
    sock.once('close', () => sockets.delete(sock));
    let session: PgSession;
    try {
      session = new PgSession(sock, svc);
    } catch (e) {
      svc.log?.(`cannot start session: ${(e as Error).message}`);
      sock.destroy();
      return;
    }
    live.add(session);
    sock.once('close', () => live.delete(session));
  });
  server.on('error', (e) => svc.log?.(`postgres listener: ${e.message}`));
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const addr = server.address();
      const bound = typeof addr === 'object' && addr ? addr.port : port;
      resolve({
        port: bound,
        host,
        get sessions() {
          return live.size;
        },
        close: () =>
          new Promise<void>((r) => {
            server.close(() => r());
            for (const s of live) s.end();
            for (const s of sockets) s.destroy();
          }),
      });
    });
  });
}
