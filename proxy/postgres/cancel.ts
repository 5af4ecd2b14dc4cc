// CancelRequest routing. Clients get a gateway-made (pid, secret) pair; a cancel for it is sent to
// the upstream backend that serves that session, with the upstream's own key, over TLS when the
// session's upstream connection uses TLS (the key is a credential: it can cancel that backend's
// queries). Unknown keys are dropped silently, as PostgreSQL does.

import { randomInt } from 'node:crypto';
import { openUpstreamSocket, type UpstreamTarget } from './session/upstream.ts';
import { encodeStartup } from './wire/startup.ts';

export interface CancelTarget {
  host: string;
  port: number;
  /** As for the session's own connection; plain TCP when absent. */
  tls?: UpstreamTarget['tls'];
  pid: number;
  secret: number;
}

interface Entry {
  target: CancelTarget;
  /** The session's own reaction (e.g. stop waiting for an approval). */
  onCancel?: () => void;
}

export class CancelRegistry {
  private readonly keys = new Map<string, Entry>();

  /** A fresh gateway key for a session; `target` is looked up when a cancel arrives. */
  register(target: CancelTarget, onCancel?: () => void): { pid: number; secret: number; release(): void } {
    let pid: number;
    let secret: number;
    let k: string;
    do {
      pid = randomInt(1, 0x7fffffff);
      secret = randomInt(-0x80000000, 0x7fffffff);
      k = `${pid}:${secret}`;
    } while (this.keys.has(k));
    this.keys.set(k, { target, ...(onCancel ? { onCancel } : {}) });
    return { pid, secret, release: () => void this.keys.delete(k) };
  }

  /** Forwards the cancel; resolves true when the key was known. */
  cancel(pid: number, secret: number): Promise<boolean> {
    const e = this.keys.get(`${pid}:${secret}`);
    if (!e) return Promise.resolve(false);
    e.onCancel?.();
    return sendCancel(e.target).then(() => true);
  }

  get size(): number {
    return this.keys.size;
  }
}

/** Sends the cancel and waits for the server to close (it answers nothing); never rejects. */
export async function sendCancel(t: CancelTarget): Promise<void> {
  let s: Awaited<ReturnType<typeof openUpstreamSocket>>;
  try {
    s = await openUpstreamSocket({ host: t.host, port: t.port, tls: t.tls ?? { mode: 'disable' } });
  } catch {
    return; // upstream unreachable: nothing to cancel there
  }
  await new Promise<void>((resolve) => {
    const done = (): void => {
      s.destroy();
      resolve();
    };
    s.setTimeout(5000, done);
    s.once('error', done);
    s.once('close', done);
    s.end(encodeStartup({ name: 'cancelRequest', pid: t.pid, secret: t.secret }));
  });
}
