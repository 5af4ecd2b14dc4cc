// Several issuers (identity as a list), groups_from for tokens without groups (SPIFFE JWT-SVIDs,
// Kubernetes service-account tokens), the RFC 8693 act chain and client_id: real tokens signed with
// real keys (jose), checked by the verifier the gateway runs.

import { beforeAll, describe, expect, it } from 'vitest';
import { SignJWT } from 'jose';
import { createTokenVerifier, type VerifierConfig } from './verifier.ts';
import { makeTestIssuer as makeIssuer, type TestIssuer } from './test-issuer.ts';
import { parseConfig } from '../config.ts';

let idp: TestIssuer;
let spire: TestIssuer;
let github: TestIssuer;
let issuers: VerifierConfig[];

const base = { audience: ['hoop-gateway'], groupsClaim: 'groups', algorithms: ['ES256', 'RS256'], maxTokenTtlMs: 3_600_000, clockToleranceS: 5 };

beforeAll(async () => {
  idp = await makeIssuer('https://idp.example.com/', 'idp-1', 'ES256');
  spire = await makeIssuer('https://spire.example.org', 'spire-1', 'ES256');
  github = await makeIssuer('https://token.actions.githubusercontent.com', 'gh-1', 'RS256');
  issuers = [
    { ...base, issuer: idp.iss, jwksFile: idp.jwksFile },
    {
      ...base,
      issuer: spire.iss,
      jwksFile: spire.jwksFile,
      groupsFrom: [
        { sub: 'spiffe://example.org/ci/*', groups: ['deployer'] },
        { sub: 'spiffe://example.org/ci/db-*', groups: ['dba'] },
      ],
    },
    { ...base, issuer: github.iss, jwksFile: github.jwksFile, groupsFrom: [{ sub: 'repo:acme/app:ref:refs/heads/main', groups: ['release'] }] },
  ];
});

const verify = (token: string) => createTokenVerifier(issuers).verify(token);

describe('several issuers', () => {
  it('checks each token against the issuer its iss names, with that issuer\'s keys', async () => {
    const a = await verify(await idp.sign({ sub: 'agent-7', groups: ['data-reader'] }));
    expect(a).toMatchObject({ ok: true, identity: { sub: 'agent-7', groups: ['data-reader'], issuer: idp.iss } });
    const g = await verify(await github.sign({ sub: 'repo:acme/app:ref:refs/heads/main', repository: 'acme/app', workflow: 'deploy', ref: 'refs/heads/main' }));
    expect(g).toMatchObject({ ok: true, identity: { sub: 'repo:acme/app:ref:refs/heads/main', groups: ['release'], issuer: github.iss } });
    // GitHub's claims are there for CEL (identity.claims.repository, ...).
    expect(g.ok && g.identity.claims).toMatchObject({ repository: 'acme/app', workflow: 'deploy', ref: 'refs/heads/main' });
  });

  it('refuses a token signed by issuer A\'s key that claims issuer B', async () => {
    // Same kid as B's key: the verifier still only has B's public key for B's tokens.
    const forged = await new SignJWT({ sub: 'spiffe://example.org/ci/db-migrate' })
      .setProtectedHeader({ alg: 'ES256', kid: spire.kid })
      .setIssuer(spire.iss).setAudience('hoop-gateway').setIssuedAt().setExpirationTime('5m')
      .sign(idp.key);
    expect(await verify(forged)).toMatchObject({ ok: false, code: 'bad_signature' });
    // With A's own kid, B's key set has no such key.
    const otherKid = await idp.sign({ sub: 'spiffe://example.org/ci/db-migrate' }, { iss: spire.iss });
    expect(await verify(otherKid)).toMatchObject({ ok: false, code: 'unknown_key' });
  });

  it('refuses a token whose iss names no configured issuer, with its own reason', async () => {
    const r = await verify(await idp.sign({ sub: 'a', groups: [] }, { iss: 'https://evil.example.net/' }));
    expect(r).toMatchObject({ ok: false, code: 'unknown_issuer' });
    expect(!r.ok && r.reason).toBe('the token\'s issuer "https://evil.example.net/" is not one this gateway trusts');
    // The audit record still learns what the token claimed.
    expect(!r.ok && r.claims?.iss).toBe('https://evil.example.net/');
    const noIss = await new SignJWT({ sub: 'a', groups: [] }).setProtectedHeader({ alg: 'ES256', kid: idp.kid }).setAudience('hoop-gateway').setIssuedAt().setExpirationTime('5m').sign(idp.key);
    expect(await verify(noIss)).toMatchObject({ ok: false, code: 'missing_iss' });
  });

  it('applies each issuer\'s own audience', async () => {
    const v = createTokenVerifier([issuers[0]!, { ...issuers[1]!, audience: ['spiffe://example.org/hoop'] }]);
    expect((await v.verify(await spire.sign({ sub: 'spiffe://example.org/ci/x' }, { aud: 'spiffe://example.org/hoop' }))).ok).toBe(true);
    expect(await v.verify(await spire.sign({ sub: 'spiffe://example.org/ci/x' }))).toMatchObject({ ok: false, code: 'bad_audience' });
    expect(await v.verify(await idp.sign({ sub: 'a', groups: [] }, { aud: 'spiffe://example.org/hoop' }))).toMatchObject({ ok: false, code: 'bad_audience' });
  });
});

describe('groups_from', () => {
  it('gives a JWT-SVID (sub, aud, exp only) the groups its sub globs map to', async () => {
    const svid = await new SignJWT({})
      .setProtectedHeader({ alg: 'ES256', kid: spire.kid })
      .setIssuer(spire.iss).setSubject('spiffe://example.org/ci/db-migrate').setAudience('hoop-gateway').setExpirationTime('5m')
      .sign(spire.key);
    const r = await verify(svid);
    expect(r.ok).toBe(true);
    expect(r.ok && [...r.identity.groups].sort()).toEqual(['dba', 'deployer']);
    const other = await verify(await spire.sign({ sub: 'spiffe://example.org/web/frontend' }));
    expect(other.ok && other.identity.groups).toEqual([]);
  });

  it('adds to the groups a token carries', async () => {
    const r = await verify(await spire.sign({ sub: 'spiffe://example.org/ci/build', groups: ['reader'] }));
    expect(r.ok && r.identity.groups).toEqual(['reader', 'deployer']);
  });

  it('an issuer without groups_from still refuses a token without the groups claim', async () => {
    expect(await verify(await idp.sign({ sub: 'a' }))).toMatchObject({ ok: false, code: 'missing_groups' });
  });
});

describe('actors and client_id', () => {
  it('reads the nested act chain outermost first, and client_id from azp or client_id', async () => {
    const r = await verify(await idp.sign({ sub: 'agent-7', groups: [], azp: 'agents-app', act: { sub: 'planner-agent', act: { sub: 'alice@example.com' } } }));
    expect(r).toMatchObject({ ok: true, identity: { actor: 'planner-agent', actors: ['planner-agent', 'alice@example.com'], client_id: 'agents-app' } });
    const c = await verify(await idp.sign({ sub: 'agent-7', groups: [], client_id: 'svc-42' }));
    expect(c.ok && c.identity.client_id).toBe('svc-42');
    expect(c.ok && c.identity.actors).toBeUndefined();
  });

  it('refuses an act claim it cannot read', async () => {
    for (const act of ['alice', { name: 'alice' }, { sub: 'a', act: [] }]) {
      expect(await verify(await idp.sign({ sub: 'agent-7', groups: [], act }))).toMatchObject({ ok: false, code: 'bad_act' });
    }
    let deep: Record<string, unknown> = { sub: 'last' };
    for (let i = 0; i < 20; i++) deep = { sub: `a${i}`, act: deep };
    expect(await verify(await idp.sign({ sub: 'agent-7', groups: [], act: deep }))).toMatchObject({ ok: false, code: 'bad_act' });
  });
});

describe('configuration', () => {
  const resources = [{ name: 'prod-main', kind: 'postgres', upstream: 'postgres://127.0.0.1:5432/app' }];

  it('reads identity as a list, each issuer with its own keys and groups_from', () => {
    const r = parseConfig({
      identity: [
        { issuer: 'https://idp.example.com/', audience: 'hoop-gateway', jwks_uri: 'https://idp.example.com/jwks.json' },
        { issuer: 'https://spire.example.org', audience: 'spiffe://example.org/hoop', jwks_file: './spire.json', groups_from: { 'spiffe://example.org/ci/*': ['deployer'], 'spiffe://example.org/ops/*': 'ops' } },
      ],
      resources,
      policy: './p',
    });
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    expect(r.config.identity).toHaveLength(2);
    expect(r.config.identity[1]).toMatchObject({
      issuer: 'https://spire.example.org',
      audience: ['spiffe://example.org/hoop'],
      groupsFrom: [
        { sub: 'spiffe://example.org/ci/*', groups: ['deployer'] },
        { sub: 'spiffe://example.org/ops/*', groups: ['ops'] },
      ],
    });
  });

  it('names the key path of every mistake', () => {
    const r = parseConfig({
      identity: [
        { issuer: 'https://a/', audience: 'x', jwks_file: './a.json', groups_from: { 'spiffe://*': [1] } },
        { issuer: 'https://a/', audience: 'x', jwks_file: './b.json' },
        { audience: 'x' },
        'https://c/',
      ],
      resources,
      policy: './p',
    });
    expect(r.ok).toBe(false);
    const paths = !r.ok ? r.errors.map((e) => `${e.path}: ${e.message}`) : [];
    expect(paths).toEqual(
      expect.arrayContaining([
        'identity[0].groups_from."spiffe://*": expected a group name or a list of group names',
        'identity[1].issuer: "https://a/" is already configured at identity[0]',
        'identity[2].issuer: required',
        'identity[2]: one of `jwks_uri` or `jwks_file` is required',
        'identity[3]: expected a mapping (issuer, audience, jwks_uri or jwks_file, ...)',
      ]),
    );
    const empty = parseConfig({ identity: [], resources, policy: './p' });
    expect(!empty.ok && empty.errors.map((e) => e.path)).toEqual(['identity']);
  });
});
