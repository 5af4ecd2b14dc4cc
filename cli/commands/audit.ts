// `hoop audit verify FILE [--json]`: checks the audit log's hash chain.
// Exit codes: 0 intact, 1 broken chain, 2 unreadable file.
import type { Command } from 'commander';
import { renderAuditResult, verifyAuditFile } from '../../proxy/audit/verify.ts';

export function register(program: Command): void {
  const audit = program.command('audit').description('audit log tools');
  audit
    .command('verify')
    .description('verify the hash chain of an audit log and report the first broken record')
    .argument('<file>', 'audit log (JSON Lines)')
    .option('--json', 'print the result as JSON')
    .action(async (file: string, o: { json?: boolean }) => {
      const r = await verifyAuditFile(file);
      if (o.json) process.stdout.write(JSON.stringify(r) + '\n');
      else (r.ok ? process.stdout : process.stderr).write(renderAuditResult(r) + '\n');
      process.exitCode = r.ok ? 0 : r.problem === 'unreadable' ? 2 : 1;
    });
}
