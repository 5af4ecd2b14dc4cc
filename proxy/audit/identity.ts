// The identity as audit records carry it (DESIGN.md "Audit": sub, actor, groups; the token is
// named separately by jti and issuer, and its claims are not copied into the log).

import type { Identity } from '../../stdlib/facts.ts';
import type { AuditIdentity } from '../ports.ts';

/** The audit view of an identity (no claims: the record names the token by `jti` and issuer). */
export function auditIdentity(id: Identity): AuditIdentity {
  return {
    sub: id.sub,
    ...(id.actor ? { actor: id.actor } : {}),
    ...(id.actors && id.actors.length > 1 ? { actors: id.actors } : {}),
    ...(id.client_id ? { client_id: id.client_id } : {}),
    groups: id.groups,
  };
}
