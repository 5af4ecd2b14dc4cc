// A token issuer for tests other than the development issuer: its own key pair (jose), a JWKS file
// the gateway's `identity[].jwks_file` points at, and tokens signed with that key. Used to prove
// what several issuers, SPIFFE JWT-SVIDs, GitHub Actions OIDC tokens and RFC 8693 chains do.

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT, exportJWK, generateKeyPair, type JWTPayload } from 'jose';
import type { IdentityConfig } from '../config.ts';

export interface TestIssuer {
  iss: string;
  kid: string;
  alg: 'ES256' | 'RS256';
  key: CryptoKey;
  jwksFile: string;
  /** Signs `claims` (give `sub`) as this issuer, for audience `hoop-gateway` unless told. */
  sign(claims: JWTPayload & Record<string, unknown>, opts?: { iss?: string; aud?: string; ttlS?: number }): Promise<string>;
  /** The `identity[]` entry that trusts this issuer. */
  config(extra?: Partial<IdentityConfig>): IdentityConfig;
}

export async function makeTestIssuer(iss: string, kid: string, alg: 'ES256' | 'RS256' = 'ES256'): Promise<TestIssuer> {
  const { privateKey, publicKey } = await generateKeyPair(alg);
  const jwksFile = join(mkdtempSync(join(tmpdir(), 'hoop-test-issuer-')), `${kid}.jwks.json`);
  writeFileSync(jwksFile, JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid, alg, use: 'sig' }] }));
  return {
    iss,
    kid,
    alg,
    key: privateKey,
    jwksFile,
    sign: (claims, o = {}) =>
      new SignJWT(claims)
        .setProtectedHeader({ alg, kid, typ: 'JWT' })
        .setIssuer(o.iss ?? iss)
        .setAudience(o.aud ?? 'hoop-gateway')
        .setIssuedAt()
        .setExpirationTime(Math.floor(Date.now() / 1000) + (o.ttlS ?? 300))
        .sign(privateKey),
    config: (extra = {}) => ({
      issuer: iss,
      audience: ['hoop-gateway'],
      jwksFile,
      groupsClaim: 'groups',
      algorithms: [alg],
      maxTokenTtlMs: 3_600_000,
      clockToleranceS: 5,
      ...extra,
    }),
  };
}
