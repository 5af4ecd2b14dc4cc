// The SSH parts of hoop.yaml (DESIGN.md "The SSH gateway"):
//
//   listen: { ssh: 127.0.0.1:2222 }
//   ssh: { host_key: ./.hoop/ssh_host_ed25519_key, env: [LANG, "LC_*"] }
//   resources:
//     - name: bastion-1
//       kind: ssh
//       upstream: ssh://10.0.0.5:22
//       user_env: BASTION_USER            # the remote login (or user_file, or ssh://user@host)
//       key_file: ./keys/bastion_ed25519  # the gateway-held private key (or key_env)
//       host_key: "ssh-ed25519 AAAA..."   # the upstream's host key, pinned (or known_hosts: FILE)
//
// Everything is checked at load time: the private key parses (and is not passphrase-protected),
// the pinned host key is a public key, a known_hosts file has an entry for the upstream's host and
// port. Agents never see the key; the upstream's host key is always verified against the pin.

import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import ssh2 from 'ssh2';

const { utils } = ssh2;

export interface SshUpstream {
  host: string;
  port: number;
  /** The remote login. */
  user: string;
  /** The gateway-held private key (OpenSSH or PEM text). */
  privateKey: string;
  /** Pinned host keys as `type base64` (any one of them is accepted). */
  hostKeys: string[];
  /** Where the pin came from, for messages: `host_key` or the known_hosts file. */
  hostKeySource: string;
}

export interface SshGatewayConfig {
  /** The gateway's own host key; generated on first start when the file does not exist. */
  hostKeyFile: string;
  /** Environment variable names (globs) an `env` request may set upstream; others are refused. */
  env: string[];
}

type Err = (path: string, message: string) => void;

export const DEFAULT_SSH_ENV = ['LANG', 'LC_*'];

export function parseSshSection(raw: unknown, state: string, err: Err, path: (p: string) => string): SshGatewayConfig {
  const out: SshGatewayConfig = { hostKeyFile: resolve(state, 'ssh_host_ed25519_key'), env: [...DEFAULT_SSH_ENV] };
  if (raw === undefined || raw === null) return out;
  if (!isObject(raw)) {
    err('ssh', 'expected a mapping with `host_key` and/or `env`');
    return out;
  }
  for (const k of Object.keys(raw)) if (k !== 'host_key' && k !== 'env') err(`ssh.${k}`, 'unknown key (known: host_key, env)');
  if (raw.host_key !== undefined) {
    if (typeof raw.host_key !== 'string' || raw.host_key === '') err('ssh.host_key', 'expected a file path (generated there on first start when missing)');
    else out.hostKeyFile = path(raw.host_key);
  }
  if (raw.env !== undefined) {
    if (!Array.isArray(raw.env) || !raw.env.every((e) => typeof e === 'string' && /^[A-Za-z_][A-Za-z0-9_]*\*?$/.test(e))) {
      err('ssh.env', 'expected a list of environment variable names (a trailing `*` matches a prefix), e.g. [LANG, "LC_*"]');
    } else out.env = raw.env as string[];
  }
  return out;
}

export function parseSshResource(
  raw: Record<string, unknown>,
  p: string,
  upstream: string | undefined,
  user: string | undefined,
  err: Err,
  env: Record<string, string | undefined>,
  path: (p: string) => string,
): SshUpstream | undefined {
  let host: string | undefined;
  let port = 22;
  let urlUser: string | undefined;
  if (upstream) {
    try {
      const u = new URL(upstream);
      if (u.protocol !== 'ssh:') err(`${p}.upstream`, 'expected an ssh:// URL (ssh://host:22)');
      else if (!u.hostname) err(`${p}.upstream`, 'the URL names no host');
      else if (u.password) err(`${p}.upstream`, 'do not put a password in the URL; the gateway logs in with key_file or key_env');
      else if (u.pathname && u.pathname !== '/' && u.pathname !== '') err(`${p}.upstream`, 'an ssh:// URL has no path (ssh://host:22)');
      else {
        host = u.hostname.replace(/^\[(.*)\]$/, '$1');
        if (u.port) port = Number(u.port);
        if (u.username) urlUser = decodeURIComponent(u.username);
      }
    } catch {
      err(`${p}.upstream`, `not a URL: ${JSON.stringify(upstream)} (expected ssh://host:22)`);
    }
  }
  if (user && urlUser && user !== urlUser) err(p, `the login is given twice (ssh://${urlUser}@... and user_env/user_file say ${JSON.stringify(user)})`);
  const login = user ?? urlUser;
  if (!login) err(p, 'an ssh resource needs the remote login: user_env, user_file or ssh://user@host');

  // The private key.
  const keyFile = strOpt(raw.key_file, `${p}.key_file`, err);
  const keyEnv = strOpt(raw.key_env, `${p}.key_env`, err);
  let privateKey: string | undefined;
  if (keyFile && keyEnv) err(p, 'give either key_file or key_env, not both');
  else if (!keyFile && !keyEnv) err(p, 'an ssh resource needs the gateway-held private key: key_file or key_env');
  else if (keyFile) {
    try {
      privateKey = readFileSync(path(keyFile), 'utf8');
    } catch (e) {
      err(`${p}.key_file`, `cannot read ${keyFile}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  } else if (keyEnv) {
    privateKey = env[keyEnv] || undefined;
    if (!privateKey) err(`${p}.key_env`, `environment variable ${keyEnv} is not set`);
  }
  if (privateKey !== undefined) {
    const where = keyFile ? `${p}.key_file` : `${p}.key_env`;
    const parsed = utils.parseKey(privateKey);
    if (parsed instanceof Error) {
      err(where, /encrypted|passphrase/i.test(parsed.message) ? 'the private key is passphrase-protected; the gateway needs it unencrypted (protect the file instead)' : `not a private key the gateway can use: ${parsed.message}`);
      privateKey = undefined;
    } else if (!(Array.isArray(parsed) ? parsed[0] : parsed)?.isPrivateKey()) {
      err(where, 'this is a public key; the gateway needs the private key');
      privateKey = undefined;
    }
  }

  // The pinned host key.
  const hostKey = strOpt(raw.host_key, `${p}.host_key`, err);
  const knownHosts = strOpt(raw.known_hosts, `${p}.known_hosts`, err);
  let hostKeys: string[] = [];
  let hostKeySource = '';
  if (hostKey && knownHosts) err(p, 'give either host_key or known_hosts, not both');
  else if (!hostKey && !knownHosts) err(p, "an ssh resource needs the upstream's host key pinned: host_key (\"ssh-ed25519 AAAA...\") or known_hosts: FILE");
  else if (hostKey) {
    const k = publicKeyLine(hostKey);
    if (typeof k !== 'string') err(`${p}.host_key`, k.error);
    else {
      hostKeys = [k];
      hostKeySource = 'host_key';
    }
  } else if (knownHosts && host) {
    let text: string | undefined;
    try {
      text = readFileSync(path(knownHosts), 'utf8');
    } catch (e) {
      err(`${p}.known_hosts`, `cannot read ${knownHosts}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    if (text !== undefined) {
      hostKeys = knownHostKeys(text, host, port);
      hostKeySource = path(knownHosts);
      if (hostKeys.length === 0) err(`${p}.known_hosts`, `${knownHosts} has no key for ${port === 22 ? host : `[${host}]:${port}`}`);
    }
  }
  if (!host || !login || !privateKey || hostKeys.length === 0) return undefined;
  return { host, port, user: login, privateKey, hostKeys, hostKeySource };
}

/** `ssh-ed25519 AAAA... comment` → `ssh-ed25519 AAAA...`, or why not. */
export function publicKeyLine(text: string): string | { error: string } {
  const parts = text.trim().split(/\s+/);
  if (parts.length < 2) return { error: 'expected a public key line, e.g. "ssh-ed25519 AAAA..." (from ssh-keyscan or the host\'s /etc/ssh/ssh_host_*_key.pub)' };
  const parsed = utils.parseKey(`${parts[0]} ${parts[1]}`);
  if (parsed instanceof Error) return { error: `not a public key: ${parsed.message}` };
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!key || key.isPrivateKey()) return { error: 'expected the public host key, not a private key' };
  return `${key.type} ${key.getPublicSSH().toString('base64')}`;
}

/** The keys a known_hosts text lists for host:port (hashed names, patterns and negations honoured; @revoked and @cert-authority lines skipped). */
export function knownHostKeys(text: string, host: string, port: number): string[] {
  const name = port === 22 ? host : `[${host}]:${port}`;
  const out: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith('@')) continue;
    const [patterns, type, b64] = line.split(/\s+/);
    if (!patterns || !type || !b64) continue;
    if (!hostMatches(patterns, name)) continue;
    const k = publicKeyLine(`${type} ${b64}`);
    if (typeof k === 'string' && !out.includes(k)) out.push(k);
  }
  return out;
}

function hostMatches(patterns: string, name: string): boolean {
  if (patterns.startsWith('|1|')) {
    const [, , salt, hash] = patterns.split('|');
    if (!salt || !hash) return false;
    return createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64') === hash;
  }
  let matched = false;
  for (const pat of patterns.split(',')) {
    const negated = pat.startsWith('!');
    const glob = negated ? pat.slice(1) : pat;
    const re = new RegExp(`^${glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 'i');
    if (re.test(name)) {
      if (negated) return false;
      matched = true;
    }
  }
  return matched;
}

function strOpt(v: unknown, path: string, err: Err): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || v === '') {
    err(path, `expected a non-empty string, got ${JSON.stringify(v)}`);
    return undefined;
  }
  return v;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
