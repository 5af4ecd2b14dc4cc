// proxy/enforcement: the protocol-neutral enforcement core (DESIGN.md "Data flows one way"). A front
// door (proxy/postgres, proxy/ssh, proxy/mcp) decodes one request from its protocol, hands over its
// facts (stdlib classifies: SqlAction, ShellAction, ...), and applies the outcome it gets back in
// its own protocol. Enforcement decides (the engine), resolves approvals, checks that masks can be
// guaranteed, writes every audit record and recording event, and never sees a socket or a message.
//
// How a front door uses it:
//
//   const enforcer = new Enforcer({ policy, audit, recorder, approvals, approvalTimeoutMs, masker, metrics });
//
//   // Before a session exists (bad token, TLS required...): audited, then tell the client.
//   await enforcer.refuseConnection({ protocol: 'ssh', sessionId, clientAddr, code: 'expired', message });
//
//   // Identity verified, resource chosen:
//   const opened = await enforcer.openSession({ protocol: 'ssh', identity, expiresAt, resource, clientAddr, approvalMode });
//   if (!opened.ok) → end the connection with opened.message (nothing was forwarded)
//   const session = opened.session;
//
//   // Per request (a statement, a message of statements, an exec command, an SFTP operation):
//   if (session.expired()) → session.close({ outcome: 'refused', reason: 'expired: ...' }), end the connection
//   let out = await session.decide({ items: [{ action }], text, started: performance.now(), protocol });
//   if (out.kind === 'hold') { tell the client out.message; out = await out.outcome; }   // out.cancel() on a client's cancel
//   if (out.kind === 'refuse') → say out.message (out.rules, out.reason, out.sqlstate); if out.endSession, end the connection
//   else for each permit of out.permits: run it, applying permit.masks / permit.limits
//        (session.planMasks(permit, columns) for rows, session.textPolicy(masks, text) for output text);
//        before its answer (exit status, CommandComplete, error) goes out: await session.beforeAnswer(permit)
//        when it returns a promise (audit durability; a rejection: end the connection); a front
//        door that knows transaction blocks also awaits session.beforeReady(blockOpen) before it
//        tells the client whether one is open (PostgreSQL ReadyForQuery); then
//        session.complete(permit, { outcome: 'executed' | 'failed' | 'blocked', rows, durationMs, error, ssh })
//
//   // A request refused before it could be classified (a handle the session never saw decided):
//   await session.refuse('hoop: blocked: ...');
//
//   session.close();   // the connection ended: session_end, recording closed (idempotent)
//
// Requests with several items run all or none (any refusal refuses them all). `approval:
// 'per_execution'` defers an approval to each execution (`session.approve(permit, { params })`).
// The per-session `hooks` carry what only the front door knows (PostgreSQL: the search_path
// resolution the masker needs, the parser's own error text) and `auditLost`, called when an fsync
// failed while this session's records were in doubt (end the connection). `session.sessionMasks()`
// is every mask the policy could apply to the session, for what reaches a client outside any
// request (PostgreSQL's notifications).

export { Enforcer, type EnforcerServices } from './enforcer.ts';
export { EnforcementSession, type Execution } from './session.ts';
export { decidingIndex, gatewayBlock, hasMasks, unknownSql, MAX_MASKED_STATEMENT, NO_LIMITS, type DecideContext } from './decide.ts';
export type {
  Completion,
  ConnectionRefusal,
  EnforcementRequest,
  Forward,
  FrontDoor,
  Hold,
  Limits,
  OpenFailure,
  Outcome,
  Permit,
  PolicyEvaluator,
  RefusalText,
  Refuse,
  RefuseReason,
  RequestItem,
  SessionHooks,
  SessionOpen,
} from './types.ts';
