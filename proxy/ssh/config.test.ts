import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHmac, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { loadConfigFile } from '../config.ts';
import { generateKey } from '../../testing/sshd.ts';
import { knownHostKeys } from './config.ts';

function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'hoop-ssh-config-'));
  const hostPub = generateKey(join(dir, 'host'));
  generateKey(join(dir, 'gw_key'));
  return { dir, hostPub: hostPub.split(' ').slice(0, 2).join(' ') };
}

function load(dir: string, resource: string, extra = '', env: Record<string, string> = { BASTION_USER: 'ops' }) {
  const file = join(dir, 'hoop.yaml');
  writeFileSync(
    file,
    `listen: { ssh: "0.0.0.0:2222" }
${extra}
identity: { issuer: https://idp.example.com/, audience: hoop-gateway, jwks_file: ./jwks.json }
resources:
${resource}
policy: ./policies
`,
  );
  return loadConfigFile(file, { env });
}

const messages = (r: ReturnType<typeof load>) => (r.ok ? [] : r.errors.map((e) => `${e.path}: ${e.message}`));

describe('ssh config', () => {
  it('reads listen.ssh, the host key path, and a kind: ssh resource with its key and pinned host key', () => {
    const { dir, hostPub } = setup();
    const r = load(dir, `  - { name: bastion-1, kind: ssh, upstream: "ssh://10.0.0.5:2200", user_env: BASTION_USER, key_file: ./gw_key, host_key: "${hostPub} comment" }`);
    expect(messages(r)).toEqual([]);
    if (!r.ok) return;
    // Off loopback is fine for SSH: the transport is encrypted, unlike the PostgreSQL listener without tls.
    expect(r.config.listen.ssh).toEqual({ host: '0.0.0.0', port: 2222 });
    expect(r.config.ssh).toEqual({ hostKeyFile: join(dir, '.hoop', 'ssh_host_ed25519_key'), env: ['LANG', 'LC_*'] });
    const res = r.config.resources[0]!;
    expect(res.kind).toBe('ssh');
    expect(res.ssh).toMatchObject({ host: '10.0.0.5', port: 2200, user: 'ops', hostKeys: [hostPub], hostKeySource: 'host_key' });
    expect(res.ssh!.privateKey).toBe(readFileSync(join(dir, 'gw_key'), 'utf8'));
  });

  it('takes the pin from a known_hosts file, plain or hashed, for the upstream host and port', () => {
    const { dir, hostPub } = setup();
    const salt = randomBytes(20);
    const hashed = `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update('[db.internal]:2200').digest('base64')}`;
    writeFileSync(join(dir, 'known_hosts'), `# comment\nother.host ${hostPub}\n${hashed} ${hostPub}\n`);
    const r = load(dir, `  - { name: b, kind: ssh, upstream: "ssh://ops@db.internal:2200", key_file: ./gw_key, known_hosts: ./known_hosts }`, '', {});
    expect(messages(r)).toEqual([]);
    if (r.ok) expect(r.config.resources[0]!.ssh).toMatchObject({ user: 'ops', hostKeys: [hostPub], hostKeySource: join(dir, 'known_hosts') });
    expect(knownHostKeys(`db.internal ${hostPub}\n`, 'db.internal', 2200)).toEqual([]);
    expect(knownHostKeys(`[db.internal]:2200 ${hostPub}\n`, 'db.internal', 2200)).toEqual([hostPub]);
    expect(knownHostKeys(`*.internal,!db.internal ${hostPub}\n`, 'db.internal', 22)).toEqual([]);
    expect(knownHostKeys(`*.internal ${hostPub}\n`, 'db.internal', 22)).toEqual([hostPub]);
  });

  it('names every mistake with its key path', () => {
    const { dir, hostPub } = setup();
    writeFileSync(join(dir, 'kh'), `elsewhere ${hostPub}\n`);
    const r = load(
      dir,
      [
        `  - { name: a, kind: ssh, upstream: "postgres://h/db", user_env: BASTION_USER, key_file: ./gw_key, host_key: "${hostPub}" }`,
        `  - { name: b, kind: ssh, upstream: "ssh://h", user_env: BASTION_USER, key_file: ./gw_key.pub, host_key: "ssh-ed25519 notbase64!" }`,
        `  - { name: c, kind: ssh, upstream: "ssh://h", key_file: ./missing, password_env: BASTION_USER }`,
        `  - { name: d, kind: ssh, upstream: "ssh://h", user_env: BASTION_USER, key_env: NOPE, known_hosts: ./kh }`,
        `  - { name: e, kind: postgres, upstream: "postgres://h/db", key_file: ./gw_key }`,
      ].join('\n'),
      'ssh: { hostkey: x, env: ["BAD-NAME"] }',
    );
    expect(messages(r)).toEqual(
      expect.arrayContaining([
        'ssh.hostkey: unknown key (known: host_key, env)',
        expect.stringMatching(/^ssh\.env: expected a list of environment variable names/),
        'resources[0].upstream: expected an ssh:// URL (ssh://host:22)',
        'resources[1].key_file: this is a public key; the gateway needs the private key',
        expect.stringMatching(/^resources\[1\]\.host_key: not a public key/),
        'resources[2]: an ssh resource authenticates with the gateway-held key (`key_file` or `key_env`), not a password',
        'resources[2]: an ssh resource needs the remote login: user_env, user_file or ssh://user@host',
        expect.stringMatching(/^resources\[2\]\.key_file: cannot read \.\/missing: ENOENT/),
        expect.stringMatching(/^resources\[2\]: an ssh resource needs the upstream's host key pinned/),
        'resources[3].key_env: environment variable NOPE is not set',
        'resources[3].known_hosts: ./kh has no key for h',
        'resources[4].key_file: only for `kind: ssh` resources',
      ]),
    );
  });

  it('refuses a passphrase-protected key and a listener with no ssh resource', () => {
    const { dir, hostPub } = setup();
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'secret-passphrase', '-f', join(dir, 'locked')]);
    const r = load(dir, `  - { name: a, kind: ssh, upstream: "ssh://h", user_env: BASTION_USER, key_file: ./locked, host_key: "${hostPub}" }`);
    expect(messages(r)).toContain('resources[0].key_file: the private key is passphrase-protected; the gateway needs it unencrypted (protect the file instead)');
    const pg = load(dir, `  - { name: p, kind: postgres, upstream: "postgres://h/db" }`);
    expect(messages(pg)).toContain('listen.ssh: no resource has `kind: ssh`: the SSH listener would have nothing to reach');
  });
});
