// A development token issuer for `hoop demo`, `hoop token mint` and tests. It is NOT an identity
// provider: it signs whatever it is asked to. Its ES256 key pair lives in `<state>/dev-issuer/`
// (private key 0600), and the public half is published as a JWKS file that the gateway's
// `identity.jwks_file` points at. Production deployments use a real OIDC issuer (docs/gateway.md).

import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SignJWT, calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type JWK } from 'jose';

export const DEV_ISSUER = 'urn:hoop:dev-issuer';
export const DEV_AUDIENCE = 'hoop-gateway';

export interface MintOptions {
  sub: string;
  groups: string[];
  /** Lifetime in ms (default 15 minutes). */
  ttlMs?: number;
  /** RFC 8693 `act.sub`: the human on whose behalf the agent acts. */
  actor?: string;
  audience?: string;
  /** Extra claims (tests). */
  claims?: Record<string, unknown>;
  /** Issued-at override, epoch ms (tests). */
  now?: number;
}

export interface DevIssuer {
  issuer: string;
  audience: string;
  /** Path of the public JWKS file (for `identity.jwks_file`). */
  jwksFile: string;
  kid: string;
  mint(opts: MintOptions): Promise<string>;
}

/** Loads the dev issuer's key from `<stateDir>/dev-issuer/`, creating it on first use. */
export async function openDevIssuer(stateDir: string): Promise<DevIssuer> {
  const dir = join(stateDir, 'dev-issuer');
  const privFile = join(dir, 'private.jwk.json');
  const jwksFile = join(dir, 'jwks.json');
  mkdirSync(dir, { recursive: true });
  let privJwk: JWK;
  if (existsSync(privFile)) {
    privJwk = JSON.parse(readFileSync(privFile, 'utf8')) as JWK;
  } else {
    const { privateKey } = await generateKeyPair('ES256', { extractable: true });
    privJwk = await exportJWK(privateKey);
    privJwk.kid = await calculateJwkThumbprint(privJwk);
    privJwk.alg = 'ES256';
    atomicWrite(privFile, JSON.stringify(privJwk, null, 2) + '\n', 0o600);
  }
  const { d: _d, ...pubJwk } = privJwk;
  const jwks = JSON.stringify({ keys: [{ ...pubJwk, use: 'sig', alg: 'ES256' }] }, null, 2) + '\n';
  if (!existsSync(jwksFile) || readFileSync(jwksFile, 'utf8') !== jwks) atomicWrite(jwksFile, jwks, 0o644);
  const key = await importJWK(privJwk, 'ES256');
  const kid = privJwk.kid as string;
  return {
    issuer: DEV_ISSUER,
    audience: DEV_AUDIENCE,
    jwksFile,
    kid,
    async mint(o: MintOptions): Promise<string> {
      const iat = Math.floor((o.now ?? Date.now()) / 1000);
      const ttlS = Math.max(1, Math.round((o.ttlMs ?? 15 * 60_000) / 1000));
      const claims: Record<string, unknown> = { ...o.claims, groups: o.groups };
      if (o.actor) claims.act = { sub: o.actor };
      return new SignJWT(claims)
        .setProtectedHeader({ alg: 'ES256', kid, typ: 'JWT' })
        .setIssuer(DEV_ISSUER)
        .setAudience(o.audience ?? DEV_AUDIENCE)
        .setSubject(o.sub)
        .setIssuedAt(iat)
        .setExpirationTime(iat + ttlS)
        .setJti(randomBytes(16).toString('base64url'))
        .sign(key);
    },
  };
}

function atomicWrite(file: string, text: string, mode: number): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, text, { mode });
  chmodSync(tmp, mode);
  renameSync(tmp, file);
}
