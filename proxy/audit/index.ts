export { openAuditLog, AuditError, type AuditLog } from './sink.ts';
export { verifyAuditFile, renderAuditResult, type AuditVerifyResult, type AuditProblem } from './verify.ts';
export { canonicalJson, GENESIS } from './chain.ts';
export { auditIdentity } from './identity.ts';
