// The `hoop` command. Thin: each command family lives in cli/commands/<family>.ts and exports
// `register(program)`. Exit codes: 0 ok, 1 failures (tests failed, verdicts changed, broken audit
// chain), 2 usage or policy errors.

import { Command, CommanderError } from 'commander';
import { register as registerPolicy } from './commands/policy.ts';
import { register as registerGateway } from './commands/gateway.ts';
import { register as registerDemo } from './commands/demo.ts';
import { register as registerToken } from './commands/token.ts';
import { register as registerApprovals } from './commands/approvals.ts';
import { register as registerSessions } from './commands/sessions.ts';
import { register as registerAudit } from './commands/audit.ts';
import { register as registerMcp } from './commands/mcp.ts';
import { register as registerShadow } from './commands/shadow.ts';

export function buildProgram(): Command {
  const program = new Command('hoop')
    .description('Policy-as-code gateway for automated agents')
    .version('0.1.0')
    .showHelpAfterError()
    .exitOverride();
  registerPolicy(program);
  registerGateway(program);
  registerDemo(program);
  registerToken(program);
  registerApprovals(program);
  registerSessions(program);
  registerAudit(program);
  registerMcp(program);
  registerShadow(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version exit 0; everything else commander rejects is a usage error.
      return err.exitCode === 0 ? 0 : 2;
    }
    process.stderr.write(`hoop: internal error, please report: ${(err as Error).stack ?? err}\n`);
    return 2;
  }
}

const isEntry = process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/\\/g, '/'));
if (isEntry || process.argv[1]?.endsWith('cli/main.ts')) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
