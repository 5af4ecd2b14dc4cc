// `hoop policy ...`: one module per subcommand under cli/commands/policy/.
import type { Command } from 'commander';
import { registerCheck } from './policy/check.ts';
import { registerFmt } from './policy/fmt.ts';
import { registerTest } from './policy/test.ts';
import { registerEval } from './policy/eval.ts';

export function register(program: Command): void {
  const policy = program.command('policy').description('check, format, test and evaluate .hoop policies');
  registerCheck(policy);
  registerFmt(policy);
  registerTest(policy);
  registerEval(policy);
}
