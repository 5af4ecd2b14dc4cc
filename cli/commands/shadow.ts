// `hoop shadow report --audit FILE [--format pretty|json]`: what a shadow policy (`policy_shadow:`)
// would have changed, from the audit log: disagreements grouped by the candidate's deciding rules
// and the statement's fingerprint. Exit codes: 0 (also when there are disagreements), 2 unreadable.
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import { renderShadowReport, ShadowSummary } from '../report/shadow.ts';
import { jsonForTerminal } from '../../stdlib/terminal-text.ts';
import { usageError } from '../usage.ts';

export function register(program: Command): void {
  const shadow = program.command('shadow').description('shadow policy tools');
  shadow
    .command('report')
    .description('summarise the decisions a shadow policy disagreed with, by rule and fingerprint')
    .requiredOption('--audit <file>', 'the gateway\'s audit log (JSON Lines)')
    .option('--format <format>', 'pretty or json', 'pretty')
    .action(async (o: { audit: string; format: string }) => {
      if (o.format !== 'pretty' && o.format !== 'json') return usageError('shadow report')(`--format must be pretty or json, not ${JSON.stringify(o.format)}`);
      const summary = new ShadowSummary();
      try {
        const lines = createInterface({ input: createReadStream(o.audit, { encoding: 'utf8' }), crlfDelay: Infinity });
        for await (const line of lines) summary.line(line);
      } catch (e) {
        process.stderr.write(`hoop shadow report: cannot read ${o.audit}: ${(e as Error).message}\n`);
        process.exitCode = 2;
        return;
      }
      const report = summary.report();
      process.stdout.write(o.format === 'json' ? `${jsonForTerminal(report, 2)}\n` : renderShadowReport(report, o.audit));
    });
}
