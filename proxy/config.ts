// hoop.yaml: load, validate, resolve. The keys are DESIGN.md's normative ones ("The gateway");
// every error names its key path (`resources[0].upstream: ...`) so the operator can find it.
// Relative paths resolve against the config file's folder, credentials come from the environment
// or from files (never from the policy), and everything that has a default gets it here, so the
// rest of the gateway reads one fully-resolved `GatewayConfig`.

import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import type { ApprovalMode } from './ports.ts';
import { formatDuration, parseDuration } from './duration.ts';
import { AUDIT_DURABILITIES, AUDIT_MAX_DELAY_RANGE_MS, DEFAULT_AUDIT_DURABILITY, DEFAULT_AUDIT_MAX_DELAY_MS, type AuditDurability, AUDIT_SYNC_MODES, type AuditSyncMode } from './audit/durability.ts';
import { parseLimits, type GatewayLimits } from './limits.ts';
import { WEBHOOK_EVENTS, type WebhookConfig, type WebhookEvent } from './approvals/webhooks.ts';
import { parseSshResource, parseSshSection, type SshGatewayConfig, type SshUpstream } from './ssh/config.ts';
import { parseMcpSettings, type McpSettings } from './mcp/settings.ts';

export interface HostPort {
  host: string;
  port: number;
}

export interface IdentityConfig {
  issuer: string;
  audience: string[];
  jwksUri?: string;
  jwksFile?: string;
  /** Claim holding the groups: a top-level claim name, or a dotted path (`realm_access.roles`). */
  groupsClaim: string;
  algorithms: string[];
  maxTokenTtlMs: number;
  clockToleranceS: number;
  /**
   * `groups_from`: globs over `sub` → groups, for tokens that carry no groups claim (SPIFFE
   * JWT-SVIDs, Kubernetes service-account tokens); added to the claim's groups when it is present.
   */
  groupsFrom?: { sub: string; groups: string[] }[];
}

export interface UpstreamTls {
  /** `disable`: plain TCP; `require`: TLS without verifying the certificate; `verify-full`: verified. */
  mode: 'disable' | 'require' | 'verify-full';
  /** PEM file of the CA that signed the upstream's certificate (verify-full). */
  ca?: string;
  servername?: string;
}

export interface ResourceConfig {
  name: string;
  kind: 'postgres' | 'ssh';
  upstream: string;
  labels: Record<string, string>;
  /** Gateway-held credentials resolved at load time (from `*_env` or `*_file`). */
  user?: string;
  password?: string;
  tls: UpstreamTls;
  /** `kind: ssh`: the upstream, the gateway-held key and the pinned host keys (proxy/ssh/config.ts). */
  ssh?: SshUpstream;
}

export interface GatewayConfig {
  /** Absolute path of the loaded file (undefined when built from an object). */
  file?: string;
  baseDir: string;
  listen: { postgres: HostPort; admin?: HostPort; /** The SSH front door; absent: not started. */ ssh?: HostPort };
  /** The SSH front door's own settings (`ssh:`): its host key file, the env names passed upstream. */
  ssh?: SshGatewayConfig;
  tls?: { cert: string; key: string };
  /** The issuers the gateway trusts (one or more; a token is checked against the one its `iss` names). */
  identity: IdentityConfig[];
  resources: ResourceConfig[];
  policy: string;
  /**
   * `policy_shadow:` a candidate set decided next to the active one for every request and never
   * enforced: disagreements go to the audit record (`shadow`) and /metrics (`hoop shadow report`).
   */
  policyShadow?: string;
  /** Local state directory (approvals unless `stateStore`, dev issuer, default recording and audit paths). */
  state: string;
  /** `state: postgres://...`: approvals shared by several gateway replicas in this database. */
  stateStore?: { url: string; password?: string };
  approvals: {
    mode: ApprovalMode;
    timeoutMs: number;
    /** `approvals.webhooks`: where approval and block events are POSTed (proxy/approvals/webhooks.ts). */
    webhooks?: WebhookConfig[];
    /** `approvals.slack`: Slack's signing secret for `/slack/actions`, and which Slack user is which approver. */
    slack?: SlackConfig;
  };
  recording: { dir: string; results: boolean };
  /** `durability` and `maxDelayMs` default to `commit` and 20 ms (proxy/audit/durability.ts). */
  audit: { file: string; durability?: AuditDurability; maxDelayMs?: number; sync?: AuditSyncMode };
  masking: { hashKey?: string };
  /** Per-connection limits (`limits`); omitted: DEFAULT_LIMITS. */
  limits?: GatewayLimits;
  /** The MCP front door's bounds (`mcp`); omitted: DEFAULT_MCP_SETTINGS. */
  mcp?: McpSettings;
}

export interface SlackConfig {
  signingSecret: string;
  /** Slack user id (`U012AB3CD`) → the approver identity it decides as. */
  users: Record<string, { sub: string; groups: string[] }>;
}

export interface ConfigError {
  /** Key path, e.g. `resources[0].upstream`; empty for the document itself. */
  path: string;
  message: string;
}

export type ConfigResult = { ok: true; config: GatewayConfig } | { ok: false; errors: ConfigError[] };

export interface LoadOptions {
  /** Environment to resolve `*_env` credentials from (defaults to process.env). */
  env?: Record<string, string | undefined>;
}

export function renderConfigErrors(file: string, errors: ConfigError[]): string {
  return errors.map((e) => `${file}: ${e.path ? `${e.path}: ` : ''}${e.message}`).join('\n');
}

export function loadConfigFile(file: string, opts: LoadOptions = {}): ConfigResult {
  const abs = resolve(file);
  let text: string;
  try {
    text = readFileSync(abs, 'utf8');
  } catch (err) {
    return { ok: false, errors: [{ path: '', message: `cannot read config: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` }] };
  }
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    return { ok: false, errors: doc.errors.map((e) => ({ path: '', message: `YAML: ${e.message.split('\n')[0]}` })) };
  }
  return parseConfig(doc.toJS(), { ...opts, file: abs });
}

/** Where a config file's admin API listens: all `hoop approvals --config` needs. */
export type AdminEndpointResult = { ok: true; url: string } | { ok: false; errors: ConfigError[] };

/**
 * Reads only `listen.admin` and whether `tls` is configured, so an approver can point
 * `hoop approvals` at the gateway's config without holding the gateway's upstream credentials,
 * its state-store password or anything else the full `loadConfigFile` resolves and insists on.
 */
export function loadAdminEndpoint(file: string): AdminEndpointResult {
  let text: string;
  try {
    text = readFileSync(resolve(file), 'utf8');
  } catch (err) {
    return { ok: false, errors: [{ path: '', message: `cannot read config: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` }] };
  }
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) return { ok: false, errors: doc.errors.map((e) => ({ path: '', message: `YAML: ${e.message.split('\n')[0]}` })) };
  const raw: unknown = doc.toJS();
  const listen = isObject(raw) ? raw.listen : undefined;
  if (!isObject(listen) || listen.admin === undefined) return { ok: false, errors: [{ path: 'listen.admin', message: 'not set: the gateway has no admin API address in this file' }] };
  const hp = parseHostPort(listen.admin);
  if (typeof hp === 'string') return { ok: false, errors: [{ path: 'listen.admin', message: hp }] };
  const host = hp.host === '0.0.0.0' ? '127.0.0.1' : hp.host === '::' ? '::1' : hp.host;
  // With `tls` configured the admin API serves HTTPS (trust its CA with NODE_EXTRA_CA_CERTS).
  const scheme = isObject(raw) && raw.tls !== undefined && raw.tls !== null ? 'https' : 'http';
  return { ok: true, url: `${scheme}://${host.includes(':') ? `[${host}]` : host}:${hp.port}` };
}

const KNOWN_TOP = ['listen', 'ssh', 'tls', 'identity', 'resources', 'policy', 'policy_shadow', 'state', 'state_password_env', 'approvals', 'recording', 'audit', 'masking', 'limits', 'mcp'];
const HMAC_OR_NONE = /^(HS\d+|none)$/i;
const ASYMMETRIC_ALGS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];

/** Validates an already-parsed document. `file` anchors relative paths (else the cwd). */
export function parseConfig(raw: unknown, opts: LoadOptions & { file?: string } = {}): ConfigResult {
  const env = opts.env ?? process.env;
  const baseDir = opts.file ? dirname(opts.file) : process.cwd();
  const errors: ConfigError[] = [];
  const err = (path: string, message: string) => errors.push({ path, message });
  const path = (p: string) => (isAbsolute(p) ? p : resolve(baseDir, p));

  if (!isObject(raw)) {
    return { ok: false, errors: [{ path: '', message: 'expected a mapping of configuration keys' }] };
  }
  for (const k of Object.keys(raw)) if (!KNOWN_TOP.includes(k)) err(k, `unknown key (known: ${KNOWN_TOP.join(', ')})`);

  // listen
  const listenRaw = raw.listen ?? {};
  let listen: GatewayConfig['listen'] = { postgres: { host: '127.0.0.1', port: 6432 } };
  if (!isObject(listenRaw)) err('listen', 'expected a mapping');
  else {
    checkKeys(listenRaw, 'listen', ['postgres', 'admin', 'ssh'], err);
    if (listenRaw.postgres !== undefined) {
      const hp = parseHostPort(listenRaw.postgres);
      if (typeof hp === 'string') err('listen.postgres', hp);
      else listen.postgres = hp;
    }
    if (listenRaw.admin !== undefined) {
      const hp = parseHostPort(listenRaw.admin);
      if (typeof hp === 'string') err('listen.admin', hp);
      else listen = { ...listen, admin: hp };
    }
    if (listenRaw.ssh !== undefined) {
      // SSH encrypts the transport itself, so the token may travel as the password off loopback.
      const hp = parseHostPort(listenRaw.ssh);
      if (typeof hp === 'string') err('listen.ssh', hp);
      else listen = { ...listen, ssh: hp };
    }
  }

  // tls
  let tls: GatewayConfig['tls'];
  if (raw.tls !== undefined) {
    if (!isObject(raw.tls)) err('tls', 'expected a mapping with `cert` and `key`');
    else {
      checkKeys(raw.tls, 'tls', ['cert', 'key'], err);
      const cert = str(raw.tls.cert, 'tls.cert', err, true);
      const key = str(raw.tls.key, 'tls.key', err, true);
      if (cert && key) tls = { cert: path(cert), key: path(key) };
    }
  }

  // Tokens travel as the password: off loopback they must be protected by TLS.
  if (!tls && !isLoopback(listen.postgres.host) && !errors.some((e) => e.path.startsWith('tls'))) {
    err('tls', `required when listen.postgres (${listen.postgres.host}) is not a loopback address: tokens are sent as the password`);
  }

  // Approvers send their tokens to the admin API as Bearer tokens: same rule.
  if (listen.admin && !tls && !isLoopback(listen.admin.host) && !errors.some((e) => e.path.startsWith('tls'))) {
    err('listen.admin', `${listen.admin.host} is not a loopback address: configure \`tls\` (the admin API then serves HTTPS) or bind it to 127.0.0.1`);
  }

  // identity
  let identity: IdentityConfig[] | undefined;
  if (raw.identity === undefined) err('identity', 'required: the token issuer the gateway trusts');
  else if (Array.isArray(raw.identity)) {
    if (raw.identity.length === 0) err('identity', 'expected at least one issuer');
    const issuers: IdentityConfig[] = [];
    const seen = new Map<string, number>();
    raw.identity.forEach((one: unknown, i: number) => {
      const p = `identity[${i}]`;
      if (!isObject(one)) return err(p, 'expected a mapping (issuer, audience, jwks_uri or jwks_file, ...)');
      const parsed = parseIdentity(one, err, path, p);
      if (!parsed) return;
      const first = seen.get(parsed.issuer);
      // The token's `iss` picks the issuer: two entries for one `iss` would make that ambiguous.
      if (first !== undefined) return err(`${p}.issuer`, `${JSON.stringify(parsed.issuer)} is already configured at identity[${first}]`);
      seen.set(parsed.issuer, i);
      issuers.push(parsed);
    });
    if (issuers.length === raw.identity.length && issuers.length > 0) identity = issuers;
  } else if (!isObject(raw.identity)) err('identity', 'expected a mapping, or a list of them (one per issuer)');
  else {
    const one = parseIdentity(raw.identity, err, path, 'identity');
    if (one) identity = [one];
  }

  // resources
  const resources: ResourceConfig[] = [];
  if (raw.resources === undefined) err('resources', 'required: at least one resource');
  else if (!Array.isArray(raw.resources) || raw.resources.length === 0) err('resources', 'expected a non-empty list');
  else {
    const seen = new Set<string>();
    raw.resources.forEach((r, i) => {
      const p = `resources[${i}]`;
      const name = isObject(r) && typeof r.name === 'string' ? r.name : undefined;
      if (name !== undefined && seen.has(name)) err(`${p}.name`, `duplicate resource name "${name}"`);
      if (name !== undefined) seen.add(name);
      const res = parseResource(r, p, err, env, path);
      if (res) resources.push(res);
    });
  }

  const policyRaw = str(raw.policy, 'policy', err, false);
  if (raw.policy === undefined) err('policy', 'required: a .hoop file or a folder of them');
  const shadowRaw = raw.policy_shadow === undefined ? undefined : str(raw.policy_shadow, 'policy_shadow', err, false);
  if (shadowRaw !== undefined && policyRaw !== undefined && path(shadowRaw) === path(policyRaw)) {
    err('policy_shadow', 'is the same path as `policy`: a shadow set is a candidate to compare with the active one');
  }
  const stateRaw = str(raw.state, 'state', err, false);
  let stateStore: GatewayConfig['stateStore'];
  let state = path('./.hoop');
  if (stateRaw && /^postgres(ql)?:\/\//.test(stateRaw)) {
    // A store URL: approvals live in the database; local files keep the default directory.
    try {
      const u = new URL(stateRaw);
      if (u.password) err('state', 'do not put a password in the URL; use state_password_env');
      else stateStore = { url: stateRaw };
    } catch {
      err('state', `not a URL: ${JSON.stringify(stateRaw)}`);
    }
  } else if (stateRaw) {
    state = path(stateRaw);
  }
  const statePwEnv = str(raw.state_password_env, 'state_password_env', err, false);
  if (statePwEnv) {
    if (!stateStore && !errors.some((e) => e.path === 'state')) err('state_password_env', 'only used when `state` is a postgres:// URL');
    const v = env[statePwEnv];
    if (!v) err('state_password_env', `environment variable ${statePwEnv} is not set`);
    else if (stateStore) stateStore.password = v;
  }

  // approvals
  const approvals: GatewayConfig['approvals'] = { mode: 'hold', timeoutMs: 15 * 60_000 };
  if (raw.approvals !== undefined) {
    if (!isObject(raw.approvals)) err('approvals', 'expected a mapping');
    else {
      checkKeys(raw.approvals, 'approvals', ['mode', 'timeout', 'webhooks', 'slack'], err);
      if (raw.approvals.webhooks !== undefined) {
        const hooks = parseWebhooks(raw.approvals.webhooks, err, env, path);
        if (hooks) approvals.webhooks = hooks;
      }
      if (raw.approvals.slack !== undefined) {
        const slack = parseSlack(raw.approvals.slack, err, env, path);
        if (slack) approvals.slack = slack;
      }
      if (raw.approvals.mode !== undefined) {
        if (raw.approvals.mode === 'hold' || raw.approvals.mode === 'return') approvals.mode = raw.approvals.mode;
        else err('approvals.mode', `expected "hold" or "return", got ${JSON.stringify(raw.approvals.mode)}`);
      }
      if (raw.approvals.timeout !== undefined) {
        const ms = durationOf(raw.approvals.timeout);
        if (ms === undefined || ms <= 0) err('approvals.timeout', `expected a duration like 15m, got ${JSON.stringify(raw.approvals.timeout)}`);
        else approvals.timeoutMs = ms;
      }
    }
  }

  // recording
  const recording = { dir: resolve(state, 'sessions'), results: false };
  if (raw.recording !== undefined) {
    if (!isObject(raw.recording)) err('recording', 'expected a mapping');
    else {
      checkKeys(raw.recording, 'recording', ['dir', 'results'], err);
      const dir = str(raw.recording.dir, 'recording.dir', err, false);
      if (dir) recording.dir = path(dir);
      if (raw.recording.results !== undefined) {
        if (typeof raw.recording.results !== 'boolean') err('recording.results', 'expected true or false');
        else recording.results = raw.recording.results;
      }
    }
  }

  // audit
  const audit: GatewayConfig['audit'] = { file: resolve(state, 'audit.jsonl'), durability: DEFAULT_AUDIT_DURABILITY, maxDelayMs: DEFAULT_AUDIT_MAX_DELAY_MS };
  if (raw.audit !== undefined) {
    if (!isObject(raw.audit)) err('audit', 'expected a mapping');
    else {
      checkKeys(raw.audit, 'audit', ['file', 'durability', 'max_delay', 'sync'], err);
      const f = str(raw.audit.file, 'audit.file', err, false);
      if (f) audit.file = path(f);
      const d = raw.audit.durability;
      if (d !== undefined) {
        if (typeof d === 'string' && (AUDIT_DURABILITIES as readonly string[]).includes(d)) audit.durability = d as AuditDurability;
        else err('audit.durability', `expected ${AUDIT_DURABILITIES.map((x) => JSON.stringify(x)).join(', ').replace(/, ([^,]*)$/, ' or $1')}, got ${JSON.stringify(d)}`);
      }
      if (raw.audit.max_delay !== undefined) {
        const ms = durationOf(raw.audit.max_delay);
        const { min, max } = AUDIT_MAX_DELAY_RANGE_MS;
        if (ms === undefined) err('audit.max_delay', `expected a duration like 20ms, got ${JSON.stringify(raw.audit.max_delay)}`);
        else if (ms < min || ms > max) err('audit.max_delay', `must be between ${formatDuration(min)} and ${formatDuration(max)}, got ${JSON.stringify(raw.audit.max_delay)}`);
        else audit.maxDelayMs = ms;
      }
      const y = raw.audit.sync;
      if (y !== undefined) {
        if (typeof y === 'string' && (AUDIT_SYNC_MODES as readonly string[]).includes(y)) audit.sync = y as AuditSyncMode;
        else err('audit.sync', `expected ${AUDIT_SYNC_MODES.map((x) => JSON.stringify(x)).join(', ').replace(/, ([^,]*)$/, ' or $1')}, got ${JSON.stringify(y)}`);
      }
    }
  }

  // masking
  const masking: GatewayConfig['masking'] = {};
  if (raw.masking !== undefined) {
    if (!isObject(raw.masking)) err('masking', 'expected a mapping');
    else {
      checkKeys(raw.masking, 'masking', ['hash_key_env'], err);
      const name = str(raw.masking.hash_key_env, 'masking.hash_key_env', err, false);
      if (name) {
        const v = env[name];
        if (!v) err('masking.hash_key_env', `environment variable ${name} is not set`);
        else masking.hashKey = v;
      }
    }
  }

  const limits = parseLimits(raw.limits, err);
  const ssh = parseSshSection(raw.ssh, state, err, path);
  if (listen.ssh && !errors.some((e) => e.path === 'resources') && !resources.some((r) => r.kind === 'ssh') && raw.resources !== undefined) {
    err('listen.ssh', 'no resource has `kind: ssh`: the SSH listener would have nothing to reach');
  }
  const mcp = parseMcpSettings(raw.mcp, err);

  if (errors.length > 0 || !identity || !policyRaw) return { ok: false, errors };
  return {
    ok: true,
    config: { file: opts.file, baseDir, listen, tls, ssh, identity, resources, policy: path(policyRaw), ...(shadowRaw ? { policyShadow: path(shadowRaw) } : {}), state, ...(stateStore ? { stateStore } : {}), approvals, recording, audit, masking, limits, mcp },
  };
}

type Err = (path: string, message: string) => void;

function parseIdentity(raw: Record<string, unknown>, err: Err, path: (p: string) => string, at: string): IdentityConfig | undefined {
  checkKeys(raw, at, ['issuer', 'audience', 'jwks_uri', 'jwks_file', 'groups_claim', 'groups_from', 'algorithms', 'max_token_ttl', 'clock_tolerance'], err);
  const issuer = str(raw.issuer, `${at}.issuer`, err, true);
  let audience: string[] = [];
  if (typeof raw.audience === 'string' && raw.audience) audience = [raw.audience];
  else if (Array.isArray(raw.audience) && raw.audience.length > 0 && raw.audience.every((a) => typeof a === 'string' && a)) audience = raw.audience as string[];
  else err(`${at}.audience`, 'required: the audience (`aud`) tokens must be issued for, a string or a list');
  const jwksUri = str(raw.jwks_uri, `${at}.jwks_uri`, err, false);
  const jwksFile = str(raw.jwks_file, `${at}.jwks_file`, err, false);
  if (!jwksUri && !jwksFile) err(at, 'one of `jwks_uri` or `jwks_file` is required');
  if (jwksUri && jwksFile) err(at, 'give either `jwks_uri` or `jwks_file`, not both');
  if (jwksUri) {
    try {
      const u = new URL(jwksUri);
      const loopback = ['localhost', '127.0.0.1', '[::1]'].includes(u.hostname);
      if (u.protocol !== 'https:' && !(u.protocol === 'http:' && loopback)) err(`${at}.jwks_uri`, 'must be an https:// URL (http:// only on loopback)');
    } catch {
      err(`${at}.jwks_uri`, `not a URL: ${JSON.stringify(jwksUri)}`);
    }
  }
  const groupsClaim = str(raw.groups_claim, `${at}.groups_claim`, err, false) ?? 'groups';
  let algorithms = ['ES256', 'RS256', 'EdDSA'];
  if (raw.algorithms !== undefined) {
    if (!Array.isArray(raw.algorithms) || raw.algorithms.length === 0 || !raw.algorithms.every((a) => typeof a === 'string')) {
      err(`${at}.algorithms`, 'expected a non-empty list of JWS algorithm names');
    } else {
      algorithms = raw.algorithms as string[];
      raw.algorithms.forEach((a: string, i: number) => {
        // Keys come from a JWKS of public keys, so a symmetric (or absent) signature could only be
        // "verified" with public material: exactly the HS256-with-the-public-key forgery.
        if (HMAC_OR_NONE.test(a)) err(`${at}.algorithms[${i}]`, `${a} is not allowed: the gateway verifies with public keys only`);
        else if (!ASYMMETRIC_ALGS.includes(a)) err(`${at}.algorithms[${i}]`, `unknown algorithm ${JSON.stringify(a)} (known: ${ASYMMETRIC_ALGS.join(', ')})`);
      });
    }
  }
  let maxTokenTtlMs = 3_600_000;
  if (raw.max_token_ttl !== undefined) {
    const ms = durationOf(raw.max_token_ttl);
    if (ms === undefined || ms <= 0) err(`${at}.max_token_ttl`, `expected a duration like 1h, got ${JSON.stringify(raw.max_token_ttl)}`);
    else maxTokenTtlMs = ms;
  }
  let clockToleranceS = 30;
  if (raw.clock_tolerance !== undefined) {
    const ms = durationOf(raw.clock_tolerance);
    if (ms === undefined || ms > 300_000) err(`${at}.clock_tolerance`, 'expected a duration of at most 5m');
    else clockToleranceS = ms / 1000;
  }
  let groupsFrom: IdentityConfig['groupsFrom'];
  if (raw.groups_from !== undefined) {
    if (!isObject(raw.groups_from)) err(`${at}.groups_from`, 'expected a mapping of `sub` globs to lists of groups, e.g. { "spiffe://example.org/ci/*": [deployer] }');
    else {
      groupsFrom = [];
      for (const [glob, groups] of Object.entries(raw.groups_from)) {
        const p = `${at}.groups_from.${JSON.stringify(glob)}`;
        if (glob === '') err(p, 'the glob over `sub` is empty');
        const list = typeof groups === 'string' ? [groups] : groups;
        if (!Array.isArray(list) || !list.every((g) => typeof g === 'string' && g !== '')) err(p, 'expected a group name or a list of group names');
        else groupsFrom.push({ sub: glob, groups: [...new Set(list as string[])] });
      }
    }
  }
  if (!issuer) return undefined;
  return { issuer, audience, jwksUri, jwksFile: jwksFile ? path(jwksFile) : undefined, groupsClaim, algorithms, maxTokenTtlMs, clockToleranceS, ...(groupsFrom ? { groupsFrom } : {}) };
}

function parseWebhooks(raw: unknown, err: Err, env: Record<string, string | undefined>, path: (p: string) => string): WebhookConfig[] | undefined {
  if (!Array.isArray(raw)) {
    err('approvals.webhooks', 'expected a list of { url, secret_env, events }');
    return undefined;
  }
  const out: WebhookConfig[] = [];
  raw.forEach((h: unknown, i: number) => {
    const p = `approvals.webhooks[${i}]`;
    if (!isObject(h)) return err(p, 'expected a mapping { url, secret_env, events }');
    checkKeys(h, p, ['name', 'url', 'secret', 'secret_env', 'secret_file', 'events', 'format'], err);
    const url = str(h.url, `${p}.url`, err, true);
    if (url) {
      try {
        const u = new URL(url);
        const loopback = ['localhost', '127.0.0.1', '[::1]'].includes(u.hostname);
        if (u.protocol !== 'https:' && !(u.protocol === 'http:' && loopback)) err(`${p}.url`, 'must be an https:// URL (http:// only on loopback): events name identities and statements');
      } catch {
        err(`${p}.url`, `not a URL: ${JSON.stringify(url)}`);
      }
    }
    const format = h.format ?? 'hoop';
    if (format !== 'hoop' && format !== 'slack') err(`${p}.format`, `expected "hoop" or "slack", got ${JSON.stringify(format)}`);
    const given = ['secret', 'secret_env', 'secret_file'].filter((k) => h[k] !== undefined);
    if (given.length > 1) err(p, `give one of ${given.join(', ')}`);
    let secret: string | undefined;
    if (h.secret !== undefined) secret = str(h.secret, `${p}.secret`, err, false);
    else if (h.secret_env !== undefined || h.secret_file !== undefined) secret = secret2(h, 'secret', p, err, env, path);
    if (format === 'hoop' && given.length === 0) err(p, 'a `secret_env` (or `secret_file`, `secret`) is required: receivers verify the signature');
    let events: WebhookEvent[] = [...WEBHOOK_EVENTS];
    if (h.events !== undefined) {
      if (!Array.isArray(h.events) || h.events.length === 0) err(`${p}.events`, `expected a non-empty list of ${WEBHOOK_EVENTS.join(', ')}`);
      else {
        events = [];
        h.events.forEach((e: unknown, j: number) => {
          if (typeof e === 'string' && (WEBHOOK_EVENTS as readonly string[]).includes(e)) events.push(e as WebhookEvent);
          else err(`${p}.events[${j}]`, `unknown event ${JSON.stringify(e)} (known: ${WEBHOOK_EVENTS.join(', ')})`);
        });
      }
    }
    const name = h.name === undefined ? `webhooks[${i}]` : str(h.name, `${p}.name`, err, false);
    if (url && name && (format === 'hoop' || format === 'slack')) out.push({ name, url, ...(secret ? { secret } : {}), events, format });
  });
  return out;
}

function parseSlack(raw: unknown, err: Err, env: Record<string, string | undefined>, path: (p: string) => string): SlackConfig | undefined {
  if (!isObject(raw)) {
    err('approvals.slack', 'expected a mapping { signing_secret_env, users }');
    return undefined;
  }
  checkKeys(raw, 'approvals.slack', ['signing_secret_env', 'signing_secret_file', 'users'], err);
  if (raw.signing_secret_env === undefined && raw.signing_secret_file === undefined) err('approvals.slack', 'a `signing_secret_env` (or `signing_secret_file`) is required: /slack/actions verifies every request with it');
  const signingSecret = secret2(raw, 'signing_secret', 'approvals.slack', err, env, path);
  const users: SlackConfig['users'] = {};
  if (!isObject(raw.users) || Object.keys(raw.users).length === 0) err('approvals.slack.users', 'expected a mapping of Slack user ids to approver identities, e.g. { U012AB3CD: { sub: alice@example.com, groups: [dba] } }');
  else {
    for (const [id, u] of Object.entries(raw.users)) {
      const p = `approvals.slack.users.${id}`;
      if (!/^[UW][A-Z0-9]+$/.test(id)) err(p, 'not a Slack user id (U... or W...)');
      if (!isObject(u)) {
        err(p, 'expected { sub, groups }');
        continue;
      }
      checkKeys(u, p, ['sub', 'groups'], err);
      const sub = str(u.sub, `${p}.sub`, err, true);
      const groups = Array.isArray(u.groups) && u.groups.every((g) => typeof g === 'string' && g) ? (u.groups as string[]) : undefined;
      if (!groups) err(`${p}.groups`, 'expected a list of group names');
      if (sub && groups) users[id] = { sub, groups };
    }
  }
  return signingSecret ? { signingSecret, users } : undefined;
}

/** `<what>_env` or `<what>_file` (at most one), like the resources' credentials. */
function secret2(raw: Record<string, unknown>, what: string, p: string, err: Err, env: Record<string, string | undefined>, path: (p: string) => string): string | undefined {
  const envName = str(raw[`${what}_env`], `${p}.${what}_env`, err, false);
  const file = str(raw[`${what}_file`], `${p}.${what}_file`, err, false);
  if (envName && file) {
    err(p, `give either ${what}_env or ${what}_file, not both`);
    return undefined;
  }
  if (envName) {
    const v = env[envName];
    if (!v) err(`${p}.${what}_env`, `environment variable ${envName} is not set`);
    return v || undefined;
  }
  if (file) {
    try {
      const v = readFileSync(path(file), 'utf8').replace(/\r?\n$/, '');
      if (!v) err(`${p}.${what}_file`, `${file} is empty`);
      return v || undefined;
    } catch (e) {
      err(`${p}.${what}_file`, `cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  }
  return undefined;
}

function parseResource(
  raw: unknown,
  p: string,
  err: Err,
  env: Record<string, string | undefined>,
  path: (p: string) => string,
): ResourceConfig | undefined {
  if (!isObject(raw)) {
    err(p, 'expected a mapping with name, kind, upstream');
    return undefined;
  }
  const sshKeys = ['key_file', 'key_env', 'host_key', 'known_hosts'];
  checkKeys(raw, p, ['name', 'kind', 'upstream', 'labels', 'user_env', 'password_env', 'user_file', 'password_file', 'tls', ...sshKeys], err);
  const name = str(raw.name, `${p}.name`, err, true);
  if (name && !/^[A-Za-z0-9_.-]+$/.test(name)) err(`${p}.name`, 'use letters, digits, `-`, `_` and `.` only (clients select it as dbname)');
  const kind = raw.kind ?? 'postgres';
  if (kind !== 'postgres' && kind !== 'ssh') err(`${p}.kind`, `expected "postgres" or "ssh", got ${JSON.stringify(kind)}`);
  const upstream = str(raw.upstream, `${p}.upstream`, err, true);
  if (kind !== 'ssh') for (const k of sshKeys) if (raw[k] !== undefined) err(`${p}.${k}`, 'only for `kind: ssh` resources');
  if (upstream && kind !== 'ssh') {
    try {
      const u = new URL(upstream);
      if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') err(`${p}.upstream`, 'expected a postgres:// URL');
      else if (!u.hostname) err(`${p}.upstream`, 'the URL names no host');
      else if (u.password) err(`${p}.upstream`, 'do not put a password in the URL; use password_env or password_file');
    } catch {
      err(`${p}.upstream`, `not a URL: ${JSON.stringify(upstream)} (expected postgres://host:port/dbname)`);
    }
  }
  const labels: Record<string, string> = {};
  if (raw.labels !== undefined) {
    if (!isObject(raw.labels)) err(`${p}.labels`, 'expected a mapping of strings');
    else for (const [k, v] of Object.entries(raw.labels)) {
      if (typeof v !== 'string') err(`${p}.labels.${k}`, 'expected a string');
      else labels[k] = v;
    }
  }
  const user = secret(raw, 'user', p, err, env, path);
  const password = secret(raw, 'password', p, err, env, path);

  let tls: UpstreamTls = { mode: 'disable' };
  if (raw.tls !== undefined) {
    if (raw.tls === true) tls = { mode: 'verify-full' };
    else if (raw.tls === false) tls = { mode: 'disable' };
    else if (!isObject(raw.tls)) err(`${p}.tls`, 'expected true, false or a mapping {mode, ca, servername}');
    else {
      checkKeys(raw.tls, `${p}.tls`, ['mode', 'ca', 'servername'], err);
      const mode = raw.tls.mode ?? 'verify-full';
      if (mode !== 'disable' && mode !== 'require' && mode !== 'verify-full') err(`${p}.tls.mode`, 'expected disable, require or verify-full');
      else tls = { mode };
      const ca = str(raw.tls.ca, `${p}.tls.ca`, err, false);
      if (ca) tls.ca = path(ca);
      const sn = str(raw.tls.servername, `${p}.tls.servername`, err, false);
      if (sn) tls.servername = sn;
    }
  }
  let ssh: SshUpstream | undefined;
  if (kind === 'ssh') {
    if (password !== undefined) err(p, 'an ssh resource authenticates with the gateway-held key (`key_file` or `key_env`), not a password');
    if (raw.tls !== undefined) err(`${p}.tls`, 'not used by ssh resources (SSH encrypts the connection; the host key is pinned with `host_key` or `known_hosts`)');
    ssh = parseSshResource(raw, p, upstream, user, err, env, path);
  }
  if (!name || !upstream || (kind !== 'postgres' && kind !== 'ssh')) return undefined;
  if (kind === 'ssh' && !ssh) return undefined;
  return { name, kind, upstream, labels, user, password, tls, ...(ssh ? { ssh } : {}) };
}

/** `<what>_env` or `<what>_file`, at most one. A named source that is empty or missing is an error. */
function secret(
  raw: Record<string, unknown>,
  what: 'user' | 'password',
  p: string,
  err: Err,
  env: Record<string, string | undefined>,
  path: (p: string) => string,
): string | undefined {
  const envName = str(raw[`${what}_env`], `${p}.${what}_env`, err, false);
  const file = str(raw[`${what}_file`], `${p}.${what}_file`, err, false);
  if (envName && file) {
    err(p, `give either ${what}_env or ${what}_file, not both`);
    return undefined;
  }
  if (envName) {
    const v = env[envName];
    if (v === undefined || v === '') err(`${p}.${what}_env`, `environment variable ${envName} is not set`);
    return v || undefined;
  }
  if (file) {
    try {
      // Secret files conventionally end with a newline (`echo pw > file`); it is never part of the secret.
      const v = readFileSync(path(file), 'utf8').replace(/\r?\n$/, '');
      if (!v) err(`${p}.${what}_file`, `${file} is empty`);
      return v || undefined;
    } catch (e) {
      err(`${p}.${what}_file`, `cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  }
  return undefined;
}

export function parseHostPort(v: unknown): HostPort | string {
  if (typeof v === 'number') return validPort(v) ? { host: '127.0.0.1', port: v } : `invalid port ${v}`;
  if (typeof v !== 'string' || !v) return 'expected host:port';
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(v.trim());
  if (!m) return `expected host:port, got ${JSON.stringify(v)}`;
  const port = Number(m[3]);
  if (!validPort(port)) return `invalid port ${m[3]}`;
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port };
}

function validPort(n: number): boolean {
  return Number.isInteger(n) && n >= 0 && n <= 65535;
}

function durationOf(v: unknown): number | undefined {
  return typeof v === 'string' || typeof v === 'number' ? parseDuration(v) : undefined;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(v: unknown, path: string, err: Err, required: boolean): string | undefined {
  if (v === undefined || v === null) {
    if (required) err(path, 'required');
    return undefined;
  }
  if (typeof v !== 'string' || v === '') {
    err(path, `expected a non-empty string, got ${JSON.stringify(v)}`);
    return undefined;
  }
  return v;
}

function checkKeys(obj: Record<string, unknown>, path: string, known: string[], err: Err): void {
  for (const k of Object.keys(obj)) if (!known.includes(k)) err(`${path}.${k}`, `unknown key (known: ${known.join(', ')})`);
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}
