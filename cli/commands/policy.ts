// `hoop policy ...`: one module per subcommand under cli/commands/policy/.
import type { Command } from 'commander';
import { registerCheck } from './policy/check.ts';
import { registerFmt } from './policy/fmt.ts';
import { registerTest } from './policy/test.ts';
import { registerEval } from './policy/eval.ts';
import { registerDryRun } from './policy/dry-run.ts';
import { registerSnapshot } from './policy/snapshot.ts';

export function register(program: Command): void {
  const policy = program.command('policy').description('check, format, test, evaluate and dry-run .hoop policies');
  registerCheck(policy);
  registerFmt(policy);
  registerTest(policy);
  registerEval(policy);
  registerDryRun(policy);
  registerSnapshot(policy);
}
