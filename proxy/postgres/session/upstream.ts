// The server side of a session, up to ReadyForQuery: connect to the resource's upstream with the
// gateway-held credentials (SCRAM-SHA-256, md5 or cleartext; TLS when configured), pass the
// client's startup parameters through, collect ParameterStatus and BackendKeyData.
//
// Once `connectUpstream` resolves, the socket belongs to the relay (pg-session.ts); bytes that
// arrived after ReadyForQuery are handed over in `rest`.
//
// Before handing over, the gateway asks the session itself for its effective search_path and role
// (SESSION_PROBE): the value comes from the client's startup parameters and options, the role's and
// database's settings and the server's configuration, and only the session knows the result.

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { createRequire } from 'node:module';
import type { UpstreamTls } from '../../config.ts';
import { decodeBackend, errorField, type ErrorFields, type TransactionStatus } from '../wire/backend.ts';
import { Framer } from '../wire/framer.ts';
import { encodeFrontend, encodePassword, encodeSaslInitialResponse, encodeSaslResponse } from '../wire/frontend.ts';
import { encodeStartup, PROTOCOL_V3 } from '../wire/startup.ts';

const require = createRequire(import.meta.url);
// node-postgres' SCRAM client (RFC 5802/7677 with SASLprep): reused rather than re-implemented.
const sasl = require('pg/lib/crypto/sasl.js') as {
  startSession(mechanisms: string[], stream?: unknown): { mechanism: string; response: string; message: string; clientNonce: string };
  continueSession(session: object, password: string, serverData: string, stream?: unknown): Promise<void>;
  finalizeSession(session: object, serverData: string): void;
};

export interface UpstreamTarget {
  host: string;
  port: number;
  database: string;
  user: string;
  password?: string;
  tls: UpstreamTls;
}

export type UpstreamServerState = 'connecting' | 'tls_handshake' | 'authenticating' | 'starting' | 'ready' | 'failed';

export type UpstreamResult =
  | {
      ok: true;
      socket: Socket | TLSSocket;
      /** ParameterStatus messages in arrival order (raw bytes, relayed to the client as-is). */
      parameterStatus: Buffer[];
      /** Notices during startup, relayed too. */
      notices: Buffer[];
      backendKey?: { pid: number; secret: number };
      status: TransactionStatus;
      rest: Buffer;
      /** The session's search_path and role at startup (SESSION_PROBE). */
      session: { searchPath: string; user: string };
    }
  | { ok: false; /** SQLSTATE to show the client */ code: string; reason: string; fields?: ErrorFields };

/** Parses `postgres://user:pw@host:port/db` into a target; credentials from config win over the URL's. */
export function upstreamTarget(url: string, creds: { user?: string; password?: string }, tls: UpstreamTls): UpstreamTarget | string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return `invalid upstream URL`;
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') return `upstream URL must start with postgres://`;
  const user = creds.user ?? decodeURIComponent(u.username);
  if (!user) return 'no upstream user configured';
  const password = creds.password ?? (u.password ? decodeURIComponent(u.password) : undefined);
  return {
    host: u.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1',
    port: u.port ? Number(u.port) : 5432,
    database: decodeURIComponent(u.pathname.replace(/^\//, '')) || user,
    user,
    ...(password !== undefined ? { password } : {}),
    tls,
  };
}

const CONNECT_TIMEOUT_MS = 10_000;

/** Run on the session's own connection once it is ready, before the client's first message. */
export const SESSION_PROBE = "SELECT pg_catalog.current_setting('search_path'), CURRENT_USER";

export async function connectUpstream(target: UpstreamTarget, clientParams: Record<string, string>): Promise<UpstreamResult> {
  let socket: Socket | TLSSocket;
  try {
    socket = await openUpstreamSocket(target);
  } catch (e) {
    return { ok: false, code: '08001', reason: `cannot reach the upstream server: ${(e as Error).message}` };
  }
  try {
    return await startup(socket, target, clientParams);
  } catch (e) {
    socket.destroy();
    return { ok: false, code: '08006', reason: `upstream startup failed: ${(e as Error).message}` };
  }
}

/** A connection to the upstream, TLS-negotiated (SSLRequest first) when the resource says so. */
export function openUpstreamSocket(target: Pick<UpstreamTarget, 'host' | 'port' | 'tls'>): Promise<Socket | TLSSocket> {
  return new Promise((resolve, reject) => {
    const sock = netConnect({ host: target.host, port: target.port });
    sock.setNoDelay(true);
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error('connection timed out'));
    }, CONNECT_TIMEOUT_MS);
    sock.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    sock.once('connect', () => {
      clearTimeout(timer);
      if (target.tls.mode === 'disable') {
        sock.removeAllListeners('error');
        resolve(sock);
        return;
      }
      // SSLRequest, then a one-byte answer: 'S' to go ahead with TLS, 'N' to refuse.
      sock.write(encodeStartup({ name: 'sslRequest' }));
      sock.once('data', (b: Buffer) => {
        if (b.length !== 1 || b[0] !== 0x53) {
          sock.destroy();
          reject(new Error('the upstream server refused TLS'));
          return;
        }
        const verify = target.tls.mode === 'verify-full';
        // Read at each connection (a rotated CA file takes effect); an unreadable one fails this
        // connection with a clear reason instead of throwing out of a socket callback.
        let ca: Buffer | undefined;
        try {
          if (target.tls.ca) ca = readFileSync(target.tls.ca);
        } catch (e) {
          sock.destroy();
          reject(new Error(`cannot read the upstream CA file ${target.tls.ca}: ${(e as Error).message}`));
          return;
        }
        const t = tlsConnect({
          socket: sock,
          servername: target.tls.servername ?? target.host,
          rejectUnauthorized: verify,
          ...(ca ? { ca } : {}),
        });
        t.once('secureConnect', () => {
          t.removeAllListeners('error');
          t.setNoDelay?.(true);
          resolve(t);
        });
        t.once('error', reject);
      });
    });
  });
}

function encodeQuery(text: string): Buffer {
  return encodeFrontend({ name: 'query', text });
}

function md5hex(s: string | Buffer): string {
  return createHash('md5').update(s).digest('hex');
}

function startup(socket: Socket | TLSSocket, target: UpstreamTarget, clientParams: Record<string, string>): Promise<UpstreamResult> {
  return new Promise((resolve) => {
    const framer = new Framer({ maxMessageSize: 1024 * 1024 });
    const parameterStatus: Buffer[] = [];
    const notices: Buffer[] = [];
    let backendKey: { pid: number; secret: number } | undefined;
    let scram: ReturnType<typeof sasl.startSession> | undefined;
    let probing = false;
    let probed: (Buffer | null)[] | undefined;
    let done = false;
    const finish = (r: UpstreamResult): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('close', onClose);
      if (!r.ok) socket.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => finish({ ok: false, code: '08006', reason: 'the upstream server did not finish startup in time' }), CONNECT_TIMEOUT_MS);
    const onError = (e: Error): void => finish({ ok: false, code: '08006', reason: `upstream connection error: ${e.message}` });
    const onClose = (): void => finish({ ok: false, code: '08006', reason: 'the upstream server closed the connection during startup' });
    const needPassword = (): string | undefined => {
      if (target.password === undefined) {
        finish({ ok: false, code: '28000', reason: 'the upstream asks for a password and none is configured for this resource' });
      }
      return target.password;
    };
    let chain: Promise<void> = Promise.resolve();
    const onData = (chunk: Buffer): void => {
      framer.push(chunk);
      // SCRAM's continue step is async (PBKDF2); keep message handling in order.
      chain = chain.then(() => drain()).catch((e: unknown) => finish({ ok: false, code: '08006', reason: (e as Error).message }));
    };
    const drain = async (): Promise<void> => {
      for (;;) {
        if (done) return;
        const f = framer.next();
        if (f === null) return;
        if ('error' in f) return finish({ ok: false, code: '08P01', reason: 'invalid message from the upstream server' });
        const d = decodeBackend(f);
        if (!d.ok) return finish({ ok: false, code: '08P01', reason: `invalid message from the upstream server: ${d.reason}` });
        const m = d.message;
        switch (m.name) {
          case 'authenticationOk':
            break;
          case 'authenticationCleartextPassword': {
            const pw = needPassword();
            if (pw === undefined) return;
            socket.write(encodePassword(pw));
            break;
          }
          case 'authenticationMD5Password': {
            const pw = needPassword();
            if (pw === undefined) return;
            const inner = md5hex(pw + target.user);
            socket.write(encodePassword('md5' + md5hex(Buffer.concat([Buffer.from(inner), m.salt]))));
            break;
          }
          case 'authenticationSASL': {
            const pw = needPassword();
            if (pw === undefined) return;
            try {
              scram = sasl.startSession(m.mechanisms);
            } catch (e) {
              return finish({ ok: false, code: '28000', reason: (e as Error).message });
            }
            socket.write(encodeSaslInitialResponse(scram.mechanism, scram.response));
            break;
          }
          case 'authenticationSASLContinue': {
            if (!scram) return finish({ ok: false, code: '08P01', reason: 'unexpected SASL continue from the upstream' });
            await sasl.continueSession(scram, target.password!, m.data.toString('utf8'));
            socket.write(encodeSaslResponse(scram.response));
            break;
          }
          case 'authenticationSASLFinal':
            if (!scram) return finish({ ok: false, code: '08P01', reason: 'unexpected SASL final from the upstream' });
            // Verifies the server signature: a server that does not know the password is refused.
            sasl.finalizeSession(scram, m.data.toString('utf8'));
            break;
          case 'authenticationOther':
            return finish({ ok: false, code: '28000', reason: `unsupported upstream authentication method ${m.type}` });
          case 'parameterStatus':
            parameterStatus.push(Buffer.from(f.raw));
            break;
          case 'backendKeyData':
            backendKey = { pid: m.pid, secret: m.secret };
            break;
          case 'notice':
            notices.push(Buffer.from(f.raw));
            break;
          case 'negotiateProtocolVersion':
            // The server does not know some `_pq_.` option we never send; nothing to do.
            break;
          case 'error':
            return finish({
              ok: false,
              code: errorField(m.fields, 'C') ?? '08006',
              reason: probing
                ? `the session's search_path could not be read: ${errorField(m.fields, 'M') ?? 'unknown error'}`
                : `upstream refused the connection: ${errorField(m.fields, 'M') ?? 'unknown error'}`,
              fields: m.fields,
            });
          case 'rowDescription':
          case 'commandComplete':
            if (!probing) return finish({ ok: false, code: '08P01', reason: `unexpected ${m.name} from the upstream during startup` });
            break;
          case 'dataRow':
            if (!probing) return finish({ ok: false, code: '08P01', reason: 'unexpected dataRow from the upstream during startup' });
            probed = m.values;
            break;
          case 'readyForQuery': {
            if (!probing) {
              probing = true;
              socket.write(encodeQuery(SESSION_PROBE));
              break;
            }
            const [path, user] = probed ?? [];
            if (!path || !user) return finish({ ok: false, code: '08006', reason: "the session's search_path could not be read" });
            return finish({
              ok: true,
              socket,
              parameterStatus,
              notices,
              ...(backendKey ? { backendKey } : {}),
              status: m.status,
              rest: Buffer.from(framer.takeRest()),
              session: { searchPath: path.toString('utf8'), user: user.toString('utf8') },
            });
          }
          default:
            return finish({ ok: false, code: '08P01', reason: `unexpected ${m.name} from the upstream during startup` });
        }
      }
    };
    socket.on('data', onData);
    socket.on('error', onError);
    socket.on('close', onClose);
    const params: Record<string, string> = { ...clientParams, user: target.user, database: target.database };
    socket.write(encodeStartup({ name: 'startup', version: PROTOCOL_V3, params }));
  });
}
