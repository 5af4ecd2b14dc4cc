export { openApprovalService, type FileApprovalService, type ApprovalOptions } from './file-service.ts';
