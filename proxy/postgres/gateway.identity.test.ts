// Identities as agents really carry them, through the real gateway (issue 12, Identity): several
// issuers with their own keys, a SPIFFE JWT-SVID that gets its groups from `groups_from`, a
// GitHub Actions OIDC token whose claims a policy reads in CEL, an RFC 8693 chain (agent for agent
// for person) in CEL and in the audit log, and the refusals: an unknown issuer, a key mix-up.

import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SignJWT, importJWK, type JWK } from 'jose';
import { startCluster, type Cluster } from '../../testing/pg-cluster.ts';
import { makeTestIssuer, type TestIssuer } from '../identity/test-issuer.ts';
import { startTestGateway, type TestGateway } from './test-support.ts';

const GITHUB = 'https://token.actions.githubusercontent.com';

const POLICY = `package t
default block "not allowed"

rule reads {
  match sql read, set, transaction, utility
  allow
}

rule deployers_insert {
  when group "deployer"
  match sql insert
  allow
}

rule release_from_main {
  match sql update
  if \`identity.issuer == "${GITHUB}" && identity.claims.repository == "acme/app" && identity.claims.ref == "refs/heads/main"\`
  allow
}

rule on_behalf_of_alice {
  match sql delete
  if \`"alice@example.com" in identity.actors && identity.client_id == "agents-app"\`
  allow
}
`;

let cluster: Cluster;
let gw: TestGateway;
let spire: TestIssuer;
let github: TestIssuer;

beforeAll(async () => {
  cluster = await startCluster();
  cluster.psql('CREATE TABLE jobs (id int PRIMARY KEY, note text); INSERT INTO jobs SELECT g, \'n\' FROM generate_series(1, 9) g; ALTER TABLE jobs OWNER TO app;', 'app');
  spire = await makeTestIssuer('https://spire.example.org', 'spire-1', 'ES256');
  github = await makeTestIssuer(GITHUB, 'gh-1', 'RS256');
  gw = await startTestGateway(cluster, POLICY, {}, 'prod-main', (config) => {
    config.identity.push(
      spire.config({ audience: ['spiffe://example.org/hoop'], groupsFrom: [{ sub: 'spiffe://example.org/ci/*', groups: ['deployer'] }] }),
      github.config(),
    );
  });
});

afterAll(async () => {
  await gw?.close();
  await cluster?.stop();
});

/** Runs `sql` through the gateway with `token`: the rows, or the error message. */
async function run(token: string, sql: string): Promise<{ ok: true; rows: unknown[] } | { ok: false; message: string }> {
  const c = new pg.Client(gw.pgConfig(token));
  try {
    await c.connect();
  } catch (e) {
    return { ok: false, message: (e as Error).message };
  }
  try {
    const r = await c.query(sql);
    return { ok: true, rows: r.rows };
  } catch (e) {
    return { ok: false, message: (e as Error).message };
  } finally {
    await c.end().catch(() => undefined);
  }
}

const svid = (sub: string) =>
  // A JWT-SVID: sub, aud, exp and nothing else a policy could use.
  new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid: spire.kid }).setIssuer(spire.iss).setSubject(sub).setAudience('spiffe://example.org/hoop').setExpirationTime('5m').sign(spire.key);

describe('identities from several issuers through the gateway', () => {
  it('the development issuer and a SPIFFE issuer side by side; groups_from gives the SVID its group', async () => {
    expect(await run(await gw.token(), 'SELECT count(*)::int AS n FROM jobs')).toEqual({ ok: true, rows: [{ n: 9 }] });
    expect(await run(await svid('spiffe://example.org/ci/deploy'), "INSERT INTO jobs VALUES (100, 'ci')")).toMatchObject({ ok: true });
    const web = await run(await svid('spiffe://example.org/web/frontend'), "INSERT INTO jobs VALUES (101, 'web')");
    expect(web).toMatchObject({ ok: false });
    expect(!web.ok && web.message).toContain('not allowed');
    const rec = gw.audit.records.find((r) => r.type === 'decision' && r.identity?.sub === 'spiffe://example.org/ci/deploy' && r.statement?.kind === 'insert');
    expect(rec).toMatchObject({ identity: { groups: ['deployer'] }, token: { iss: spire.iss }, rules: ['t.deployers_insert'] });
  });

  it('a GitHub Actions token: the policy reads repository and ref from identity.claims', async () => {
    const main = await github.sign({ sub: 'repo:acme/app:ref:refs/heads/main', groups: [], repository: 'acme/app', ref: 'refs/heads/main', workflow: 'release' });
    expect(await run(main, "UPDATE jobs SET note = 'released' WHERE id = 1")).toMatchObject({ ok: true });
    const branch = await github.sign({ sub: 'repo:acme/app:ref:refs/heads/wip', groups: [], repository: 'acme/app', ref: 'refs/heads/wip', workflow: 'release' });
    expect(await run(branch, "UPDATE jobs SET note = 'wip' WHERE id = 2")).toMatchObject({ ok: false });
    expect(cluster.psql('SELECT note FROM jobs WHERE id IN (1, 2) ORDER BY id', 'app').trim().split('\n')).toEqual(['released', 'n']);
  });

  it('an agent acting for an agent acting for a person: the chain in CEL and in the audit record', async () => {
    const chained = await gw.issuer.mint({ sub: 'agent-7', groups: [], claims: { azp: 'agents-app', act: { sub: 'planner', act: { sub: 'alice@example.com' } } } });
    expect(await run(chained, 'DELETE FROM jobs WHERE id = 3')).toMatchObject({ ok: true });
    const rec = gw.audit.records.find((r) => r.type === 'decision' && r.statement?.kind === 'delete' && r.identity?.sub === 'agent-7');
    expect(rec?.identity).toEqual({ sub: 'agent-7', actor: 'planner', actors: ['planner', 'alice@example.com'], client_id: 'agents-app', groups: [] });
    // Someone else's chain does not satisfy the rule.
    const bob = await gw.issuer.mint({ sub: 'agent-7', groups: [], claims: { azp: 'agents-app', act: { sub: 'planner', act: { sub: 'bob@example.com' } } } });
    expect(await run(bob, 'DELETE FROM jobs WHERE id = 4')).toMatchObject({ ok: false });
  });

  it('refuses a token from an issuer that is not configured, saying so', async () => {
    const stranger = await makeTestIssuer('https://evil.example.net/', 'evil-1');
    const r = await run(await stranger.sign({ sub: 'agent-7', groups: ['deployer'] }), 'SELECT 1');
    expect(r).toEqual({ ok: false, message: 'hoop: token rejected: the token\'s issuer "https://evil.example.net/" is not one this gateway trusts' });
    const rec = gw.audit.records.find((x) => x.type === 'connection_refused' && x.token?.iss === 'https://evil.example.net/');
    expect(rec?.reason).toMatch(/^unknown_issuer: /);
  });

  it('refuses a token signed with one trusted issuer\'s key that claims another trusted issuer', async () => {
    // The development issuer's real private key, claiming to be the SPIFFE issuer.
    const devKey = await importJWK(JSON.parse(readFileSync(join(gw.stateDir, 'dev-issuer', 'private.jwk.json'), 'utf8')) as JWK, 'ES256');
    const claiming = (kid: string) =>
      new SignJWT({ groups: ['deployer'] })
        .setProtectedHeader({ alg: 'ES256', kid })
        .setIssuer(spire.iss).setSubject('spiffe://example.org/ci/deploy').setAudience('spiffe://example.org/hoop').setIssuedAt().setExpirationTime('5m')
        .sign(devKey);
    // With the SPIFFE issuer's kid: checked with the SPIFFE key, which did not sign it.
    expect(await run(await claiming(spire.kid), 'SELECT 1')).toEqual({ ok: false, message: 'hoop: token rejected: the token signature does not verify' });
    // With its own kid: the SPIFFE issuer has no such key (the dev issuer's keys are never tried).
    expect(await run(await claiming(gw.issuer.kid), 'SELECT 1')).toEqual({ ok: false, message: 'hoop: token rejected: no key of the issuer matches the token (`kid`/`alg`)' });
  });
});
