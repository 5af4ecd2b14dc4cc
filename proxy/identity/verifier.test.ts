import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT, exportJWK, exportSPKI, generateKeyPair, importJWK, type JWK } from 'jose';
import { createTokenVerifier, type VerifierConfig } from './verifier.ts';
import { DEV_AUDIENCE, DEV_ISSUER, openDevIssuer, type DevIssuer } from './dev-issuer.ts';

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

let issuer: DevIssuer;
let state: string;
let cfg: VerifierConfig;

beforeAll(async () => {
  state = mkdtempSync(join(tmpdir(), 'hoop-identity-'));
  issuer = await openDevIssuer(state);
  cfg = {
    issuer: DEV_ISSUER,
    audience: [DEV_AUDIENCE],
    jwksFile: issuer.jwksFile,
    groupsClaim: 'groups',
    algorithms: ['ES256', 'RS256', 'EdDSA'],
    maxTokenTtlMs: 3_600_000,
    clockToleranceS: 5,
  };
});

describe('token verifier', () => {
  it('accepts a valid token and resolves the identity', async () => {
    const token = await issuer.mint({ sub: 'agent-7', groups: ['data-reader', 'x'], actor: 'alice', ttlMs: 600_000 });
    const r = await createTokenVerifier(cfg).verify(token);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.identity).toMatchObject({ sub: 'agent-7', groups: ['data-reader', 'x'], actor: 'alice', issuer: DEV_ISSUER });
    expect(r.identity.token_id).toMatch(/^[A-Za-z0-9_-]{20,}$/);
    expect(r.identity.claims.sub).toBe('agent-7');
    expect(Math.abs(r.expiresAt - (Date.now() + 600_000))).toBeLessThan(5_000);
  });

  it('the dev issuer keeps its key across re-opens', async () => {
    const again = await openDevIssuer(state);
    expect(again.kid).toBe(issuer.kid);
    const token = await again.mint({ sub: 'a', groups: [] });
    expect((await createTokenVerifier(cfg).verify(token)).ok).toBe(true);
    const priv = JSON.parse(readFileSync(join(state, 'dev-issuer', 'private.jwk.json'), 'utf8')) as JWK;
    const pub = JSON.parse(readFileSync(issuer.jwksFile, 'utf8')) as { keys: JWK[] };
    expect(priv.d).toBeTruthy();
    expect(pub.keys[0].d).toBeUndefined();
  });

  it('reads groups from a string claim and a dotted path', async () => {
    const v = createTokenVerifier({ ...cfg, groupsClaim: 'realm_access.roles' });
    const t = await issuer.mint({ sub: 'a', groups: [], claims: { realm_access: { roles: ['dba'] } } });
    const r = await v.verify(t);
    expect(r.ok && r.identity.groups).toEqual(['dba']);
    const s = await createTokenVerifier({ ...cfg, groupsClaim: 'scope' }).verify(await issuer.mint({ sub: 'a', groups: [], claims: { scope: 'a b' } }));
    expect(s.ok && s.identity.groups).toEqual(['a', 'b']);
  });

  describe('refuses forgeries and misuse with a code', () => {
    const expectRefused = async (token: string, code: string, c: VerifierConfig = cfg) => {
      const r = await createTokenVerifier(c).verify(token);
      expect(r.ok).toBe(false);
      if (!r.ok) {
        expect(r.code).toBe(code);
        expect(r.reason.length).toBeGreaterThan(5);
      }
      return r;
    };

    it('signed by another key with the same kid', async () => {
      const { privateKey } = await generateKeyPair('ES256');
      const t = await new SignJWT({ groups: ['dba'] })
        .setProtectedHeader({ alg: 'ES256', kid: issuer.kid })
        .setIssuer(DEV_ISSUER).setAudience(DEV_AUDIENCE).setSubject('evil').setIssuedAt().setExpirationTime('5m')
        .sign(privateKey);
      const r = await expectRefused(t, 'bad_signature');
      // The audit record still learns who the token claimed to be.
      expect(!r.ok && r.claims?.sub).toBe('evil');
    });

    it('alg: none', async () => {
      const now = Math.floor(Date.now() / 1000);
      const t = `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: 'evil', groups: ['dba'], iss: DEV_ISSUER, aud: DEV_AUDIENCE, iat: now, exp: now + 60 })}.`;
      await expectRefused(t, 'alg_not_allowed');
    });

    it('HS256 signed with the public key (key confusion)', async () => {
      const pubJwk = (JSON.parse(readFileSync(issuer.jwksFile, 'utf8')) as { keys: JWK[] }).keys[0];
      const pem = await exportSPKI((await importJWK(pubJwk, 'ES256', { extractable: true })) as CryptoKey);
      const now = Math.floor(Date.now() / 1000);
      for (const secret of [pem, JSON.stringify(pubJwk)]) {
        const input = `${b64({ alg: 'HS256', kid: issuer.kid })}.${b64({ sub: 'evil', groups: ['dba'], iss: DEV_ISSUER, aud: DEV_AUDIENCE, iat: now, exp: now + 60 })}`;
        const sig = createHmac('sha256', secret).update(input).digest('base64url');
        await expectRefused(`${input}.${sig}`, 'alg_not_allowed');
        // Even if an operator lists HS256, it is filtered out: the gateway only has public keys.
        await expectRefused(`${input}.${sig}`, 'alg_not_allowed', { ...cfg, algorithms: ['HS256', 'ES256'] });
      }
    });

    it('wrong audience', async () => {
      await expectRefused(await issuer.mint({ sub: 'a', groups: [], audience: 'some-other-service' }), 'bad_audience');
    });

    it('wrong issuer', async () => {
      await expectRefused(await issuer.mint({ sub: 'a', groups: [] }), 'unknown_issuer', { ...cfg, issuer: 'https://idp.example.com/' });
    });

    it('expired (beyond the clock tolerance)', async () => {
      const t = await issuer.mint({ sub: 'a', groups: [], ttlMs: 60_000, now: Date.now() - 120_000 });
      await expectRefused(t, 'expired');
      // Within the tolerance it is still accepted.
      const t2 = await issuer.mint({ sub: 'a', groups: [], ttlMs: 60_000, now: Date.now() - 62_000 });
      expect((await createTokenVerifier(cfg).verify(t2)).ok).toBe(true);
    });

    it('not yet valid', async () => {
      const t = await issuer.mint({ sub: 'a', groups: [], claims: { nbf: Math.floor(Date.now() / 1000) + 600 } });
      await expectRefused(t, 'not_yet_valid');
    });

    it('too long-lived, and without exp', async () => {
      await expectRefused(await issuer.mint({ sub: 'a', groups: [], ttlMs: 2 * 3_600_000 }), 'ttl_too_long');
      const { privateKey, publicKey } = await generateKeyPair('ES256');
      const jwk = { ...(await exportJWK(publicKey)), kid: 'k2', alg: 'ES256' };
      const dir = mkdtempSync(join(tmpdir(), 'hoop-jwks-'));
      const file = join(dir, 'jwks.json');
      (await import('node:fs')).writeFileSync(file, JSON.stringify({ keys: [jwk] }));
      const noExp = await new SignJWT({ groups: [] }).setProtectedHeader({ alg: 'ES256', kid: 'k2' }).setIssuer(DEV_ISSUER).setAudience(DEV_AUDIENCE).setSubject('a').setIssuedAt().sign(privateKey);
      await expectRefused(noExp, 'missing_exp', { ...cfg, jwksFile: file });
    });

    it('missing or malformed groups claim', async () => {
      await expectRefused(await issuer.mint({ sub: 'a', groups: [] }), 'missing_groups', { ...cfg, groupsClaim: 'roles' });
      await expectRefused(await issuer.mint({ sub: 'a', groups: [], claims: { roles: [1, 2] } }), 'bad_groups', { ...cfg, groupsClaim: 'roles' });
    });

    it('garbage', async () => {
      await expectRefused('hunter2', 'malformed');
      await expectRefused('a.b.c', 'malformed');
      await expectRefused('', 'malformed');
    });
  });

  describe('remote JWKS', () => {
    let server: Server;
    let served: { keys: JWK[] };
    let fetches = 0;
    let url: string;
    beforeAll(async () => {
      server = createServer((_req, res) => {
        fetches++;
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify(served));
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`;
    });
    afterAll(() => new Promise<void>((r) => server.close(() => r())));

    const keyPair = async (kid: string) => {
      const { privateKey, publicKey } = await generateKeyPair('ES256');
      return { privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'ES256' } };
    };
    const sign = (k: CryptoKey, kid: string) =>
      new SignJWT({ groups: ['g'] }).setProtectedHeader({ alg: 'ES256', kid }).setIssuer(DEV_ISSUER).setAudience(DEV_AUDIENCE).setSubject('s').setIssuedAt().setExpirationTime('5m').setJti(randomBytes(8).toString('hex')).sign(k);

    it('caches keys, refetches on an unknown kid, and rate-limits refetches', async () => {
      const a = await keyPair('a');
      const b = await keyPair('b');
      served = { keys: [a.jwk] };
      fetches = 0;
      const v = createTokenVerifier({ ...cfg, jwksFile: undefined, jwksUri: url }, { jwksCooldownMs: 1500 });
      expect((await v.verify(await sign(a.privateKey, 'a'))).ok).toBe(true);
      expect((await v.verify(await sign(a.privateKey, 'a'))).ok).toBe(true);
      expect(fetches).toBe(1);
      // Key rotation: b appears at the issuer; a token with kid b arrives within the cooldown → refused without refetch.
      served = { keys: [a.jwk, b.jwk] };
      const rb = await v.verify(await sign(b.privateKey, 'b'));
      expect(rb.ok).toBe(false);
      expect(!rb.ok && rb.code).toBe('unknown_key');
      expect(fetches).toBe(1);
      await new Promise((r) => setTimeout(r, 1600));
      expect((await v.verify(await sign(b.privateKey, 'b'))).ok).toBe(true);
      expect(fetches).toBe(2);
    });

    it('an unreachable issuer refuses with jwks_unavailable', async () => {
      const a = await keyPair('a');
      const v = createTokenVerifier({ ...cfg, jwksFile: undefined, jwksUri: 'http://127.0.0.1:1/jwks.json' });
      const r = await v.verify(await sign(a.privateKey, 'a'));
      expect(!r.ok && r.code).toBe('jwks_unavailable');
    });
  });
});
