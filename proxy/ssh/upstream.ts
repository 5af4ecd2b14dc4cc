// The gateway's own SSH connection to a `kind: ssh` resource: ssh2's client, logging in with the
// gateway-held key, and verifying the upstream's host key against the pin on every connection.
// A key that differs is refused (never trust-on-first-use), with both keys in the reason.

import ssh2, { type Client as ClientT, type ClientChannel, type SFTPWrapper } from 'ssh2';
import type { SshUpstream } from './config.ts';

const { Client } = ssh2;

export type UpstreamConnect =
  | { ok: true; conn: ClientT }
  | { ok: false; code: 'upstream_host_key' | 'upstream_unreachable' | 'upstream_auth'; reason: string };

/** Host key algorithms to ask for, so the server presents the kind of key that was pinned. */
function hostKeyAlgorithms(pins: readonly string[]): string[] {
  const out: string[] = [];
  for (const pin of pins) {
    const type = pin.split(' ')[0]!;
    const names = type === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [type];
    for (const n of names) if (!out.includes(n)) out.push(n);
  }
  return out;
}

function keyLine(blob: Buffer): string {
  const len = blob.length >= 4 ? blob.readUInt32BE(0) : 0;
  const type = len > 0 && len < 64 && blob.length >= 4 + len ? blob.subarray(4, 4 + len).toString('latin1') : 'unknown';
  return `${type} ${blob.toString('base64')}`;
}

export function connectUpstream(u: SshUpstream, opts: { timeoutMs?: number } = {}): Promise<UpstreamConnect> {
  return new Promise((resolve) => {
    const conn = new Client();
    let presented: string | undefined;
    let settled = false;
    const done = (r: UpstreamConnect) => {
      if (settled) return;
      settled = true;
      if (!r.ok) conn.end();
      resolve(r);
    };
    conn.on('ready', () => done({ ok: true, conn }));
    conn.on('error', (err: Error & { level?: string }) => {
      if (presented !== undefined) {
        return done({ ok: false, code: 'upstream_host_key', reason: `the upstream ${u.host}:${u.port} presented host key ${presented}, which is not the pinned one (${u.hostKeySource}: ${u.hostKeys.join(', ')})` });
      }
      if (err.level === 'client-authentication') return done({ ok: false, code: 'upstream_auth', reason: `the upstream ${u.host}:${u.port} refused the gateway's key for ${u.user}` });
      done({ ok: false, code: 'upstream_unreachable', reason: `cannot reach the upstream ${u.host}:${u.port}: ${err.message}` });
    });
    conn.on('close', () => done({ ok: false, code: 'upstream_unreachable', reason: `the upstream ${u.host}:${u.port} closed the connection` }));
    try {
      conn.connect({
        host: u.host,
        port: u.port,
        username: u.user,
        privateKey: u.privateKey,
        readyTimeout: opts.timeoutMs ?? 20_000,
        keepaliveInterval: 30_000,
        algorithms: { serverHostKey: hostKeyAlgorithms(u.hostKeys) as never },
        hostVerifier: (key: Buffer) => {
          const line = keyLine(key);
          if (u.hostKeys.includes(line)) return true;
          presented = line;
          return false;
        },
      });
    } catch (e) {
      done({ ok: false, code: 'upstream_unreachable', reason: `cannot connect to the upstream ${u.host}:${u.port}: ${(e as Error).message}` });
    }
  });
}

export function execUpstream(conn: ClientT, command: string, opts: { pty?: PtyInfo; env?: Record<string, string> }): Promise<ClientChannel> {
  return new Promise((resolve, reject) => {
    conn.exec(command, { ...(opts.pty ? { pty: opts.pty } : {}), ...(opts.env ? { env: opts.env } : {}) }, (err, ch) => (err ? reject(err) : resolve(ch)));
  });
}

export function shellUpstream(conn: ClientT, pty: PtyInfo | undefined, env?: Record<string, string>): Promise<ClientChannel> {
  return new Promise((resolve, reject) => {
    const cb = (err: Error | undefined, ch: ClientChannel) => (err ? reject(err) : resolve(ch));
    if (pty) conn.shell(pty, env ? { env } : {}, cb);
    else conn.shell(false, env ? { env } : {}, cb);
  });
}

export function sftpUpstream(conn: ClientT): Promise<SFTPWrapper> {
  return new Promise((resolve, reject) => conn.sftp((err, s) => (err ? reject(err) : resolve(s))));
}

export function forwardUpstream(conn: ClientT, srcIP: string, srcPort: number, host: string, port: number): Promise<ClientChannel> {
  return new Promise((resolve, reject) => conn.forwardOut(srcIP, srcPort, host, port, (err, ch) => (err ? reject(err) : resolve(ch))));
}

export interface PtyInfo {
  rows: number;
  cols: number;
  height: number;
  width: number;
  term: string;
  modes?: Record<string, number>;
}

interface ChannelInternals {
  type?: string;
  outgoing?: { id: number; state: string };
  _client?: { _protocol?: { signal(id: number, name: string): void } };
}

/**
 * Sends a `signal` channel request upstream. ssh2's `ClientChannel.signal` sends nothing once
 * stdin was ended (`writable` false), yet SSH allows requests after EOF and most commands run
 * with stdin closed (`ssh host cmd < /dev/null`, every agent): the request is sent on the
 * channel's protocol directly while the channel is open for requests. Returns whether it was sent.
 */
export function signalUpstream(ch: ClientChannel, name: string): boolean {
  const c = ch as unknown as ChannelInternals;
  const state = c.outgoing?.state;
  if (c.type !== 'session' || (state !== 'open' && state !== 'eof') || !c._client?._protocol) return false;
  try {
    c._client._protocol.signal(c.outgoing!.id, name);
    return true;
  } catch {
    return false;
  }
}
