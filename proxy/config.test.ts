import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfigFile, parseConfig, renderConfigErrors } from './config.ts';

const minimal = `
identity:
  issuer: https://idp.example.com/
  audience: hoop-gateway
  jwks_file: ./jwks.json
resources:
  - name: prod-main
    kind: postgres
    upstream: postgres://127.0.0.1:5432/app
    user_env: PROD_USER
    password_env: PROD_PASSWORD
policy: ./policies
`;

function write(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'hoop-config-'));
  const file = join(dir, 'hoop.yaml');
  writeFileSync(file, text);
  return file;
}

const env = { PROD_USER: 'app', PROD_PASSWORD: 's3cret' };

describe('config', () => {
  it('resolves defaults, relative paths and credentials from the environment', () => {
    const file = write(minimal);
    const r = loadConfigFile(file, { env });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const dir = join(file, '..');
    expect(r.config.listen.postgres).toEqual({ host: '127.0.0.1', port: 6432 });
    expect(r.config.listen.admin).toBeUndefined();
    expect(r.config.policy).toBe(join(dir, 'policies'));
    expect(r.config.state).toBe(join(dir, '.hoop'));
    expect(r.config.recording).toEqual({ dir: join(dir, '.hoop', 'sessions'), results: false });
    expect(r.config.audit.file).toBe(join(dir, '.hoop', 'audit.jsonl'));
    expect(r.config.identity).toHaveLength(1);
    expect(r.config.identity[0].jwksFile).toBe(join(dir, 'jwks.json'));
    expect(r.config.identity[0].audience).toEqual(['hoop-gateway']);
    expect(r.config.identity[0].maxTokenTtlMs).toBe(3_600_000);
    expect(r.config.approvals).toEqual({ mode: 'hold', timeoutMs: 900_000 });
    expect(r.config.resources[0]).toMatchObject({ name: 'prod-main', user: 'app', password: 's3cret', tls: { mode: 'disable' } });
  });

  it('reads the normative keys', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hoop-config-'));
    writeFileSync(join(dir, 'pw'), 'from-file\n');
    const file = join(dir, 'hoop.yaml');
    writeFileSync(
      file,
      `listen: { postgres: "0.0.0.0:7432", admin: "127.0.0.1:7480" }
tls: { cert: ./tls/cert.pem, key: ./tls/key.pem }
identity:
  issuer: https://idp.example.com/
  audience: [hoop-gateway, other]
  jwks_uri: https://idp.example.com/.well-known/jwks.json
  groups_claim: roles
  algorithms: [ES256, RS256, EdDSA]
  max_token_ttl: 30m
resources:
  - name: prod-main
    upstream: postgres://db.internal:5432/app
    user_file: ./pw
    password_file: ./pw
    tls: { mode: verify-full, ca: ./ca.pem }
policy: ./p.hoop
state: /var/lib/hoop
approvals: { mode: return, timeout: 5m }
recording: { dir: ./rec, results: true }
audit: { file: /var/log/hoop/audit.jsonl }
`,
    );
    const r = loadConfigFile(file, { env: {} });
    if (!r.ok) throw new Error(renderConfigErrors(file, r.errors));
    expect(r.config.listen).toEqual({ postgres: { host: '0.0.0.0', port: 7432 }, admin: { host: '127.0.0.1', port: 7480 } });
    expect(r.config.tls).toEqual({ cert: join(dir, 'tls/cert.pem'), key: join(dir, 'tls/key.pem') });
    expect(r.config.identity[0]).toMatchObject({ groupsClaim: 'roles', maxTokenTtlMs: 1_800_000, audience: ['hoop-gateway', 'other'] });
    expect(r.config.resources[0]).toMatchObject({ kind: 'postgres', user: 'from-file', password: 'from-file', tls: { mode: 'verify-full', ca: join(dir, 'ca.pem') } });
    expect(r.config.state).toBe('/var/lib/hoop');
    expect(r.config.approvals).toEqual({ mode: 'return', timeoutMs: 300_000 });
    expect(r.config.recording).toEqual({ dir: join(dir, 'rec'), results: true });
    expect(r.config.audit.file).toBe('/var/log/hoop/audit.jsonl');
  });

  it('names the key path of every error', () => {
    const r = parseConfig(
      {
        listen: { postgres: 'nonsense' },
        identity: { issuer: 'x', audience: 'a', jwks_file: 'j', algorithms: ['HS256', 'none', 'ES256'], max_token_ttl: 'forever' },
        resources: [
          { name: 'a', upstream: 'mysql://x' },
          { name: 'b', upstream: 'postgres://h/db', password_env: 'MISSING' },
          { name: 'b', upstream: 'postgres://u:pw@h/db', kind: 'oracle' },
        ],
        policy: './p',
        approvals: { mode: 'later' },
        bogus: 1,
      },
      { env: {} },
    );
    expect(r.ok).toBe(false);
    if (r.ok) return;
    const paths = r.errors.map((e) => `${e.path}: ${e.message}`);
    expect(paths).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^bogus: unknown key/),
        expect.stringMatching(/^listen\.postgres: expected host:port/),
        expect.stringMatching(/^identity\.algorithms\[0\]: HS256 is not allowed/),
        expect.stringMatching(/^identity\.algorithms\[1\]: none is not allowed/),
        expect.stringMatching(/^identity\.max_token_ttl: expected a duration/),
        expect.stringMatching(/^resources\[0\]\.upstream: expected a postgres:\/\/ URL/),
        expect.stringMatching(/^resources\[1\]\.password_env: environment variable MISSING is not set/),
        expect.stringMatching(/^resources\[2\]\.name: duplicate resource name "b"/),
        expect.stringMatching(/^resources\[2\]\.kind: expected "postgres" or "ssh"/),
        expect.stringMatching(/^resources\[2\]\.upstream: do not put a password in the URL/),
        expect.stringMatching(/^approvals\.mode: expected "hold" or "return"/),
      ]),
    );
    expect(r.errors.some((e) => e.path.startsWith('identity.algorithms[2]'))).toBe(false);
  });

  it('accepts a postgres:// state store for replicas (password from the environment)', () => {
    const base = { identity: { issuer: 'x', audience: 'a', jwks_file: 'j' }, resources: [{ name: 'r', upstream: 'postgres://h/db' }], policy: 'p' };
    const r = parseConfig({ ...base, state: 'postgres://hoop@state-db:5432/hoop', state_password_env: 'STATE_PW' }, { env: { STATE_PW: 'pw' }, file: '/etc/hoop/hoop.yaml' });
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    expect(r.config.stateStore).toEqual({ url: 'postgres://hoop@state-db:5432/hoop', password: 'pw' });
    expect(r.config.state).toBe('/etc/hoop/.hoop');
    expect(r.config.audit.file).toBe('/etc/hoop/.hoop/audit.jsonl');
    const bad = parseConfig({ ...base, state: 'postgres://hoop:secret@state-db/hoop' }, { env: {} });
    expect(!bad.ok && bad.errors).toEqual([{ path: 'state', message: expect.stringMatching(/do not put a password in the URL/) }]);
    const stray = parseConfig({ ...base, state: './s', state_password_env: 'X' }, { env: { X: 'y' } });
    expect(!stray.ok && stray.errors[0].path).toBe('state_password_env');
  });

  it('reads policy_shadow as a path beside the config, and refuses the active path itself', () => {
    const base = { identity: { issuer: 'x', audience: 'a', jwks_file: 'j' }, resources: [{ name: 'r', upstream: 'postgres://h/db' }], policy: './p' };
    const r = parseConfig({ ...base, policy_shadow: './candidate' }, { env: {}, file: '/etc/hoop/hoop.yaml' });
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    expect(r.config.policyShadow).toBe('/etc/hoop/candidate');
    const none = parseConfig(base, { env: {} });
    expect(none.ok && none.config.policyShadow).toBeUndefined();
    const same = parseConfig({ ...base, policy_shadow: 'p' }, { env: {}, file: '/etc/hoop/hoop.yaml' });
    expect(!same.ok && same.errors).toEqual([{ path: 'policy_shadow', message: expect.stringMatching(/same path as `policy`/) }]);
    const empty = parseConfig({ ...base, policy_shadow: '' }, { env: {} });
    expect(!empty.ok && empty.errors[0].path).toBe('policy_shadow');
  });

  it('reads limits (sizes and durations) with defaults, and names a bad key', () => {
    const base = { identity: { issuer: 'x', audience: 'a', jwks_file: 'j' }, resources: [{ name: 'r', upstream: 'postgres://h/db' }], policy: 'p' };
    const r = parseConfig({ ...base, limits: { authentication_timeout: '5s', max_password_message: '8KiB', max_unauthenticated_per_client: 4 } }, { env: {} });
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    expect(r.config.limits).toMatchObject({ authenticationTimeoutMs: 5000, maxPasswordMessage: 8192, maxUnauthenticatedPerClient: 4, maxUnauthenticatedBytes: 256 * 1024 });
    expect(r.config.limits?.maxStatementSize).toBe(1024 * 1024);
    const big = parseConfig({ ...base, limits: { max_statement_size: '16MiB' } }, { env: {} });
    expect(big.ok && big.config.limits?.maxStatementSize).toBe(16 * 1024 * 1024);
    const pool = parseConfig({ ...base, limits: { classifier_workers: 2, classification_timeout: '30s' } }, { env: {} });
    expect(pool.ok && pool.config.limits).toMatchObject({ classifierWorkers: 2, classificationTimeoutMs: 30_000 });
    const tooBig = parseConfig({ ...base, limits: { max_statement_size: '128MiB' } }, { env: {} });
    expect(!tooBig.ok && tooBig.errors.map((e) => e.path)).toEqual(['limits.max_statement_size']);
    const bad = parseConfig({ ...base, limits: { max_password_message: 'lots', max_tokens: 1 } }, { env: {} });
    expect(!bad.ok && bad.errors.map((e) => e.path)).toEqual(['limits.max_password_message', 'limits.max_tokens']);
  });

  it('reads audit durability and max_delay (defaults commit and 20ms) and explains bad values', () => {
    const base = { identity: { issuer: 'x', audience: 'a', jwks_file: 'j' }, resources: [{ name: 'r', upstream: 'postgres://h/db' }], policy: 'p' };
    const def = parseConfig(base, { env: {} });
    expect(def.ok && def.config.audit).toMatchObject({ durability: 'commit', maxDelayMs: 20 });
    const set = parseConfig({ ...base, audit: { durability: 'strict', max_delay: '5ms' } }, { env: {} });
    expect(set.ok && set.config.audit).toMatchObject({ durability: 'strict', maxDelayMs: 5 });
    const bad = parseConfig({ ...base, audit: { durability: 'fast', max_delay: 'soon' } }, { env: {} });
    expect(!bad.ok && bad.errors).toEqual([
      { path: 'audit.durability', message: 'expected "commit", "strict" or "async", got "fast"' },
      { path: 'audit.max_delay', message: 'expected a duration like 20ms, got "soon"' },
    ]);
    const range = parseConfig({ ...base, audit: { max_delay: '1m', fsync: true, sync: 'sometimes' } }, { env: {} });
    expect(!range.ok && range.errors).toEqual([
      { path: 'audit.fsync', message: 'unknown key (known: file, durability, max_delay, sync)' },
      { path: 'audit.max_delay', message: 'must be between 1ms and 10s, got "1m"' },
      { path: 'audit.sync', message: 'expected "auto", "inline" or "thread_pool", got "sometimes"' },
    ]);
    const pool = parseConfig({ ...base, audit: { sync: 'thread_pool' } }, { env: {} });
    expect(pool.ok && pool.config.audit.sync).toBe('thread_pool');
  });

  it('requires TLS for an admin API off loopback', () => {
    const r = parseConfig(
      { listen: { admin: '0.0.0.0:6480' }, identity: { issuer: 'x', audience: 'a', jwks_file: 'j' }, resources: [{ name: 'r', upstream: 'postgres://h/db' }], policy: 'p' },
      { env: {} },
    );
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.errors).toEqual([{ path: 'listen.admin', message: expect.stringMatching(/not a loopback address: configure `tls`/) }]);
  });

  it('requires identity, resources, policy and TLS off loopback', () => {
    const r = parseConfig({ listen: { postgres: '0.0.0.0:6432' } }, { env: {} });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors.map((e) => e.path)).toEqual(expect.arrayContaining(['identity', 'resources', 'policy', 'tls']));
  });

  it('reports YAML syntax errors and unreadable files', () => {
    const bad = loadConfigFile(write('identity: [unclosed\n'));
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(bad.errors[0].message).toMatch(/^YAML: /);
    const missing = loadConfigFile('/nonexistent/hoop.yaml');
    expect(missing.ok).toBe(false);
    if (!missing.ok) expect(missing.errors[0].message).toMatch(/ENOENT/);
  });
});

describe('examples/gateway/hoop.yaml', () => {
  it('is a valid configuration', async () => {
    const { mkdtempSync: mk, writeFileSync: wf, mkdirSync, copyFileSync } = await import('node:fs');
    // The example reads credential files relative to itself; give it a scratch copy with those files.
    const dir = mk(join(tmpdir(), 'hoop-example-'));
    copyFileSync(join(__dirname, '..', 'examples', 'gateway', 'hoop.yaml'), join(dir, 'hoop.yaml'));
    mkdirSync(join(dir, 'secrets'));
    wf(join(dir, 'secrets', 'staging-user'), 'app\n');
    wf(join(dir, 'secrets', 'staging-password'), 'pw\n');
    const r = loadConfigFile(join(dir, 'hoop.yaml'), { env: { PROD_MAIN_USER: 'app', PROD_MAIN_PASSWORD: 'pw', HOOP_HASH_KEY: 'k' } });
    if (!r.ok) throw new Error(renderConfigErrors('hoop.yaml', r.errors));
    expect(r.config.resources.map((x) => [x.name, x.user, x.password])).toEqual([
      ['prod-main', 'app', 'pw'],
      ['staging-main', 'app', 'pw'],
    ]);
    expect(r.config.masking.hashKey).toBe('k');
  });

  it('reads approvals.webhooks and approvals.slack, naming every mistake by its key', () => {
    const base = { identity: { issuer: 'x', audience: 'y', jwks_file: './j' }, resources: [{ name: 'r', upstream: 'postgres://127.0.0.1/x' }], policy: './p' };
    const ok = parseConfig(
      {
        ...base,
        approvals: {
          webhooks: [
            { url: 'https://hooks.example.com/hoop', secret_env: 'HOOK_SECRET', events: ['approval.requested', 'request.blocked'] },
            { name: 'team-slack', url: 'https://hooks.slack.com/services/T/B/x', format: 'slack', events: ['approval.requested'] },
          ],
          slack: { signing_secret_env: 'SLACK_SECRET', users: { U012AB3CD: { sub: 'alice@example.com', groups: ['dba'] } } },
        },
      },
      { env: { HOOK_SECRET: 's1', SLACK_SECRET: 's2' } },
    );
    if (!ok.ok) throw new Error(JSON.stringify(ok.errors));
    expect(ok.config.approvals.webhooks).toEqual([
      { name: 'webhooks[0]', url: 'https://hooks.example.com/hoop', secret: 's1', events: ['approval.requested', 'request.blocked'], format: 'hoop' },
      { name: 'team-slack', url: 'https://hooks.slack.com/services/T/B/x', events: ['approval.requested'], format: 'slack' },
    ]);
    expect(ok.config.approvals.slack).toEqual({ signingSecret: 's2', users: { U012AB3CD: { sub: 'alice@example.com', groups: ['dba'] } } });

    const bad = parseConfig(
      {
        ...base,
        approvals: {
          webhooks: [{ url: 'http://hooks.example.com/x', events: ['approval.maybe'] }, { url: 'https://h/', secret_env: 'UNSET', format: 'teams' }],
          slack: { users: { alice: { sub: 'a', groups: 'dba' } } },
        },
      },
      { env: {} },
    );
    expect(bad.ok).toBe(false);
    expect(!bad.ok && bad.errors.map((e) => `${e.path}: ${e.message}`)).toEqual(
      expect.arrayContaining([
        'approvals.webhooks[0].url: must be an https:// URL (http:// only on loopback): events name identities and statements',
        'approvals.webhooks[0]: a `secret_env` (or `secret_file`, `secret`) is required: receivers verify the signature',
        'approvals.webhooks[0].events[0]: unknown event "approval.maybe" (known: approval.requested, approval.decided, request.blocked)',
        'approvals.webhooks[1].format: expected "hoop" or "slack", got "teams"',
        'approvals.webhooks[1].secret_env: environment variable UNSET is not set',
        'approvals.slack: a `signing_secret_env` (or `signing_secret_file`) is required: /slack/actions verifies every request with it',
        'approvals.slack.users.alice: not a Slack user id (U... or W...)',
        'approvals.slack.users.alice.groups: expected a list of group names',
      ]),
    );
  });
});
