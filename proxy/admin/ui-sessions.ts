// Sign-in for the approvals page (`/ui/`). An approver signs in with their token (pasted), or with
// a one-time link that `hoop approvals open` asks for with theirs; either way the page gets an
// opaque session token it sends as `Authorization: Bearer hoopui_...` (never a cookie: nothing is
// sent on the approver's behalf by a page they did not open, so there is nothing to forge across
// sites). A session carries the identity the token was verified as and ends when the token
// expires; a link's code is single use and short-lived. Both live in the gateway process's memory:
// a restart signs everyone out.

import { randomBytes } from 'node:crypto';
import type { Identity } from '../../stdlib/facts.ts';

export const SESSION_PREFIX = 'hoopui_';
export const LINK_TTL_MS = 2 * 60_000;
const MAX_SESSIONS = 10_000;
const MAX_LINKS = 1_000;

export interface UiSession {
  identity: Identity;
  /** epoch ms: the token's expiry. */
  expiresAt: number;
}

export class UiSessions {
  private readonly sessions = new Map<string, UiSession>();
  private readonly links = new Map<string, UiSession & { codeExpiresAt: number }>();

  constructor(private readonly now: () => number = Date.now) {}

  /** A new session for a verified identity; its token (`hoopui_...`) is shown once. */
  open(identity: Identity, expiresAt: number): string {
    this.sweep();
    if (this.sessions.size >= MAX_SESSIONS) this.sessions.delete(this.sessions.keys().next().value!);
    const token = `${SESSION_PREFIX}${randomBytes(24).toString('base64url')}`;
    this.sessions.set(token, { identity, expiresAt });
    return token;
  }

  /** The session's identity, while it lasts. */
  get(token: string): UiSession | undefined {
    const s = this.sessions.get(token);
    if (!s) return undefined;
    if (this.now() >= s.expiresAt) {
      this.sessions.delete(token);
      return undefined;
    }
    return s;
  }

  close(token: string): boolean {
    return this.sessions.delete(token);
  }

  /** A one-time code for `/ui/#code=...`, good for LINK_TTL_MS (and never past the token's expiry). */
  link(identity: Identity, expiresAt: number): { code: string; expiresAt: number } {
    this.sweep();
    if (this.links.size >= MAX_LINKS) this.links.delete(this.links.keys().next().value!);
    const code = randomBytes(24).toString('base64url');
    const codeExpiresAt = Math.min(expiresAt, this.now() + LINK_TTL_MS);
    this.links.set(code, { identity, expiresAt, codeExpiresAt });
    return { code, expiresAt: codeExpiresAt };
  }

  /** Redeems a code (once): the session it opens, or undefined for an unknown, used or expired code. */
  redeem(code: string): { token: string; session: UiSession } | undefined {
    const l = this.links.get(code);
    if (!l) return undefined;
    this.links.delete(code);
    if (this.now() >= l.codeExpiresAt || this.now() >= l.expiresAt) return undefined;
    return { token: this.open(l.identity, l.expiresAt), session: { identity: l.identity, expiresAt: l.expiresAt } };
  }

  private sweep(): void {
    const t = this.now();
    for (const [k, s] of this.sessions) if (t >= s.expiresAt) this.sessions.delete(k);
    for (const [k, l] of this.links) if (t >= l.codeExpiresAt) this.links.delete(k);
  }
}
