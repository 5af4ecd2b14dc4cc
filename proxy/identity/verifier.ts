// Token verification: turns the JWT an agent sends as its password into an `Identity`, or into a
// coded refusal (`TokenResult`) that the session reports to the client and the audit log.
//
// Several issuers may be trusted (`identity` as a list, DESIGN.md): the token's unverified `iss`
// picks the one issuer whose keys, audience and rules it is checked against, so a token signed by
// issuer A's key that claims issuer B is checked with B's keys and refused. A token whose `iss`
// names no configured issuer is refused (`unknown_issuer`) before any key is looked at.
//
// What is checked, in order: the token's shape; its issuer; the header's `alg` against the
// issuer's allowlist (never `none`, never HMAC: keys come from a JWKS of public keys, so an HMAC
// "signature" could be made with the public key itself); the signature against the issuer's JWKS
// (remote: cached, refetched on an unknown `kid` after a cooldown; file: re-read when it changes);
// audience; `exp`/`nbf` with a small clock tolerance; the lifetime (`exp - iat`) against
// `max_token_ttl`; `sub`; the groups (the groups claim, and the issuer's `groups_from` globs over
// `sub` for tokens that carry none, such as SPIFFE JWT-SVIDs); the RFC 8693 `act` chain.

import { readFileSync, statSync } from 'node:fs';
import { createLocalJWKSet, createRemoteJWKSet, decodeJwt, decodeProtectedHeader, errors, jwtVerify, type JSONWebKeySet, type JWTPayload } from 'jose';
import type { IdentityConfig } from '../config.ts';
import type { Identity } from '../../stdlib/facts.ts';
import { compileGlob } from '../../stdlib/glob.ts';
import type { TokenResult, TokenVerifier } from '../ports.ts';

export interface VerifierOptions {
  /** Clock, epoch ms (tests). */
  now?: () => number;
  /** Remote JWKS: minimum time between refetches triggered by unknown `kid`s (default 30s). */
  jwksCooldownMs?: number;
  /** Remote JWKS: how long fetched keys are trusted before a refetch (default 10m). */
  jwksCacheMaxAgeMs?: number;
}

type KeyResolver = Parameters<typeof jwtVerify>[1];

const FORBIDDEN_ALG = /^(none|HS\d+)$/i;

/** How deep an RFC 8693 `act` chain may nest (an agent acting for an agent ... for a person). */
export const MAX_ACTOR_DEPTH = 16;

export type VerifierConfig = Pick<IdentityConfig, 'issuer' | 'audience' | 'groupsClaim' | 'algorithms' | 'maxTokenTtlMs' | 'clockToleranceS'> & {
  jwksUri?: string;
  jwksFile?: string;
  /** Globs over `sub` → groups, for tokens without the groups claim (and added to those with it). */
  groupsFrom?: IdentityConfig['groupsFrom'];
};

type Refuse = (code: string, reason: string, claims?: Record<string, unknown>) => TokenResult;

/**
 * One verifier for the issuers the gateway trusts: the token's `iss` selects the issuer it is
 * checked against. One issuer or several, the same checks.
 */
export function createTokenVerifier(cfg: VerifierConfig | readonly VerifierConfig[], opts: VerifierOptions = {}): TokenVerifier {
  const list: readonly VerifierConfig[] = Array.isArray(cfg) ? cfg : [cfg as VerifierConfig];
  const byIssuer = new Map<string, IssuerVerifier>();
  for (const c of list) {
    if (byIssuer.has(c.issuer)) throw new Error(`internal error: issuer ${c.issuer} configured twice`);
    byIssuer.set(c.issuer, issuerVerifier(c, opts));
  }
  return {
    async verify(token: string): Promise<TokenResult> {
      const refuse: Refuse = (code, reason, claims) => ({ ok: false, code, reason, claims });
      const trimmed = token.trim();
      if (!/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*$/.test(trimmed)) return refuse('malformed', 'the password is not a JWT (expected three base64url parts)');
      let claims: Record<string, unknown> | undefined;
      let alg: unknown;
      try {
        alg = decodeProtectedHeader(trimmed).alg;
        claims = decodeJwt(trimmed) as Record<string, unknown>;
      } catch {
        return refuse('malformed', 'the token header or payload is not valid base64url JSON');
      }
      const iss = claims.iss;
      if (iss === undefined) return refuse('missing_iss', 'the token has no `iss` claim: the gateway cannot tell which issuer to check it against', claims);
      if (typeof iss !== 'string') return refuse('unknown_issuer', 'the token\'s `iss` claim is not a string', claims);
      const issuer = byIssuer.get(iss);
      if (!issuer) return refuse('unknown_issuer', `the token's issuer ${JSON.stringify(iss)} is not one this gateway trusts`, claims);
      return issuer.verify(trimmed, alg, claims, refuse);
    },
  };
}

interface IssuerVerifier {
  verify(token: string, alg: unknown, claims: Record<string, unknown>, refuse: Refuse): Promise<TokenResult>;
}

function issuerVerifier(cfg: VerifierConfig, opts: VerifierOptions): IssuerVerifier {
  const now = opts.now ?? Date.now;
  const algorithms = cfg.algorithms.filter((a) => !FORBIDDEN_ALG.test(a));
  const keys = cfg.jwksUri
    ? createRemoteJWKSet(new URL(cfg.jwksUri), {
        cooldownDuration: opts.jwksCooldownMs ?? 30_000,
        cacheMaxAge: opts.jwksCacheMaxAgeMs ?? 600_000,
        timeoutDuration: 5_000,
      })
    : fileKeySet(cfg.jwksFile ?? '', opts.jwksCooldownMs ?? 1_000, now);
  const mapping = (cfg.groupsFrom ?? []).map((m) => ({ match: compileGlob(m.sub), groups: m.groups }));

  return {
    async verify(token, alg, claims, refuse): Promise<TokenResult> {
      if (typeof alg !== 'string' || FORBIDDEN_ALG.test(alg) || !algorithms.includes(alg)) {
        return refuse('alg_not_allowed', `signature algorithm ${JSON.stringify(alg)} is not allowed (allowed: ${algorithms.join(', ')})`, claims);
      }
      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(token, keys, {
          issuer: cfg.issuer,
          audience: cfg.audience,
          algorithms,
          clockTolerance: cfg.clockToleranceS,
          requiredClaims: ['exp', 'sub'],
          currentDate: new Date(now()),
        }));
      } catch (err) {
        const [code, reason] = classify(err);
        return refuse(code, reason, claims);
      }
      const nowS = now() / 1000;
      const exp = payload.exp as number;
      const issuedAt = typeof payload.iat === 'number' ? payload.iat : nowS;
      const ttlS = exp - Math.min(issuedAt, nowS + cfg.clockToleranceS);
      if (ttlS * 1000 > cfg.maxTokenTtlMs) {
        return refuse('ttl_too_long', `token lifetime ${Math.round(ttlS)}s exceeds the maximum of ${Math.round(cfg.maxTokenTtlMs / 1000)}s`, claims);
      }
      const sub = payload.sub;
      if (typeof sub !== 'string' || sub === '') return refuse('missing_sub', 'the token has no subject (`sub`)', claims);
      const fromClaim = readGroups(payload, cfg.groupsClaim);
      if (fromClaim === null) return refuse('bad_groups', `the \`${cfg.groupsClaim}\` claim must be a string or a list of strings`, claims);
      if (fromClaim === undefined && mapping.length === 0) {
        return refuse('missing_groups', `the token has no \`${cfg.groupsClaim}\` claim (the configured groups claim) and the issuer has no \`groups_from\` mapping`, claims);
      }
      const groups = new Set(fromClaim ?? []);
      for (const m of mapping) if (m.match(sub)) for (const g of m.groups) groups.add(g);
      const actors = readActors(payload.act);
      if (typeof actors === 'string') return refuse('bad_act', actors, claims);
      const identity: Identity = {
        sub,
        groups: [...groups],
        claims: payload as Record<string, unknown>,
      };
      if (actors.length > 0) {
        identity.actor = actors[0];
        identity.actors = actors;
      }
      const clientId = typeof payload.azp === 'string' && payload.azp ? payload.azp : typeof payload.client_id === 'string' && payload.client_id ? payload.client_id : undefined;
      if (clientId !== undefined) identity.client_id = clientId;
      if (typeof payload.jti === 'string') identity.token_id = payload.jti;
      if (typeof payload.iss === 'string') identity.issuer = payload.iss;
      return { ok: true, identity, expiresAt: exp * 1000 };
    },
  };
}

/**
 * The RFC 8693 `act` chain, outermost first: `{act: {sub: "agent-2", act: {sub: "alice"}}}` →
 * ["agent-2", "alice"]. A string says why the claim is unusable (the token is then refused: an
 * actor the gateway cannot read is one it cannot keep from approving its own request).
 */
function readActors(act: unknown): string[] | string {
  const out: string[] = [];
  let cur = act;
  while (cur !== undefined) {
    if (typeof cur !== 'object' || cur === null || Array.isArray(cur)) return 'the `act` claim (RFC 8693) must be an object with a `sub`';
    const a = cur as Record<string, unknown>;
    if (typeof a.sub !== 'string' || a.sub === '') return 'an `act` claim (RFC 8693) has no `sub` naming the actor';
    if (out.length >= MAX_ACTOR_DEPTH) return `the \`act\` chain (RFC 8693) nests deeper than ${MAX_ACTOR_DEPTH} actors`;
    out.push(a.sub);
    cur = a.act;
  }
  return out;
}

/** undefined: claim absent; null: present but not a string or list of strings. */
function readGroups(payload: JWTPayload, claim: string): string[] | undefined | null {
  let v: unknown = (payload as Record<string, unknown>)[claim];
  if (v === undefined && claim.includes('.')) {
    v = claim.split('.').reduce<unknown>((o, k) => (o && typeof o === 'object' ? (o as Record<string, unknown>)[k] : undefined), payload);
  }
  if (v === undefined) return undefined;
  if (typeof v === 'string') return v.split(/[\s,]+/).filter(Boolean);
  if (Array.isArray(v) && v.every((g) => typeof g === 'string')) return [...new Set(v as string[])];
  return null;
}

function classify(err: unknown): [string, string] {
  if (err instanceof errors.JWTExpired) return ['expired', 'the token has expired'];
  if (err instanceof errors.JWTClaimValidationFailed) {
    const what = err.claim;
    if (err.reason === 'missing') return [`missing_${what}`, `the token has no \`${what}\` claim`];
    if (what === 'iss') return ['bad_issuer', 'the token was issued by an issuer this gateway does not trust'];
    if (what === 'aud') return ['bad_audience', 'the token was not issued for this gateway (audience mismatch)'];
    if (what === 'nbf') return ['not_yet_valid', 'the token is not valid yet (`nbf` is in the future)'];
    if (what === 'iat') return ['bad_iat', 'the token\'s issued-at time is invalid'];
    return [`bad_${what}`, `the \`${what}\` claim is invalid: ${err.message}`];
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) return ['bad_signature', 'the token signature does not verify'];
  if (err instanceof errors.JOSEAlgNotAllowed) return ['alg_not_allowed', 'the token\'s signature algorithm is not allowed'];
  if (err instanceof errors.JWKSNoMatchingKey) return ['unknown_key', 'no key of the issuer matches the token (`kid`/`alg`)'];
  if (err instanceof errors.JWKSMultipleMatchingKeys) return ['ambiguous_key', 'several keys match the token and none verifies it'];
  if (err instanceof errors.JWKSTimeout) return ['jwks_unavailable', 'the issuer\'s keys could not be fetched in time'];
  if (err instanceof errors.JWSInvalid || err instanceof errors.JWTInvalid) return ['malformed', `the token is malformed: ${err.message}`];
  if (err instanceof errors.JOSENotSupported) return ['alg_not_allowed', `unsupported token: ${err.message}`];
  if (err instanceof errors.JWKSInvalid || err instanceof errors.JOSEError) return ['jwks_unavailable', `the issuer's keys are unusable: ${(err as Error).message}`];
  // Network errors fetching a remote JWKS land here: the issuer is unreachable.
  return ['jwks_unavailable', `cannot verify the token: ${(err as Error)?.message ?? String(err)}`];
}

/**
 * A JWKS read from a file, re-read when the file changes (checked at most once per `checkMs`), so
 * rotating the file rotates the keys without a restart. An unreadable file verifies nothing.
 */
function fileKeySet(file: string, checkMs: number, now: () => number): KeyResolver {
  let mtime = -1;
  let lastCheck = -Infinity;
  let resolver: ReturnType<typeof createLocalJWKSet> | undefined;
  let loadError: Error | undefined;
  const refresh = () => {
    const t = now();
    if (t - lastCheck < checkMs && (resolver || loadError)) return;
    lastCheck = t;
    try {
      const st = statSync(file);
      if (st.mtimeMs === mtime && resolver) return;
      const jwks = JSON.parse(readFileSync(file, 'utf8')) as JSONWebKeySet;
      resolver = createLocalJWKSet(jwks);
      mtime = st.mtimeMs;
      loadError = undefined;
    } catch (err) {
      resolver = undefined;
      loadError = new errors.JWKSInvalid(`cannot load ${file}: ${(err as Error).message}`);
    }
  };
  return (async (header: Parameters<ReturnType<typeof createLocalJWKSet>>[0], input: Parameters<ReturnType<typeof createLocalJWKSet>>[1]) => {
    refresh();
    if (!resolver) throw loadError;
    return resolver(header, input);
  }) as KeyResolver;
}
