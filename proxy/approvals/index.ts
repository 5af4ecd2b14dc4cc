export { openApprovalService, type FileApprovalService, type ApprovalOptions } from './file-service.ts';
export { openPgApprovalService, type PgApprovalOptions } from './pg-service.ts';
export { approvalKey, checkDecision, type ApprovalStore } from './rules.ts';
