// `hoop audit verify FILE [--json] [--anchor SEQ:HASH]`: checks the audit log's hash chain.
// Exit codes: 0 intact, 1 broken chain, 2 unreadable file.
import type { Command } from 'commander';
import { parseAnchor, renderAuditResult, verifyAuditFile, type AuditAnchor } from '../../proxy/audit/verify.ts';

export function register(program: Command): void {
  const audit = program.command('audit').description('audit log tools');
  audit
    .command('verify')
    .description('verify the hash chain of an audit log and report the first broken record')
    .argument('<file>', 'audit log (JSON Lines)')
    .option('--json', 'print the result as JSON')
    .option('--anchor <seq:hash>', 'a last_seq:last_hash saved from an earlier verify; fails if the log no longer holds it (repeatable)', collect, [])
    .action(async (file: string, o: { json?: boolean; anchor: string[] }) => {
      const anchors: AuditAnchor[] = [];
      for (const a of o.anchor) {
        const parsed = parseAnchor(a);
        if (!parsed) {
          process.stderr.write(`hoop audit verify: --anchor: expected SEQ:HASH (64 hex digits), got ${JSON.stringify(a)}\n`);
          process.exitCode = 2;
          return;
        }
        anchors.push(parsed);
      }
      const r = await verifyAuditFile(file, { anchors });
      if (o.json) process.stdout.write(JSON.stringify(r) + '\n');
      else (r.ok ? process.stdout : process.stderr).write(renderAuditResult(r) + '\n');
      process.exitCode = r.ok ? 0 : r.problem === 'unreadable' ? 2 : 1;
    });
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}
