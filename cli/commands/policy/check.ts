// `hoop policy check [paths]`: parse, type-check and compile; every diagnostic at once; exit 2 on error.
import type { Command } from 'commander';
import { loadPolicy, parseErrorFormat, reportDiagnostics } from '../../load.ts';

export function registerCheck(policy: Command): void {
  policy
    .command('check')
    .description('check policies for errors (syntax, names, CEL types) without running them')
    .argument('[paths...]', '.hoop files or folders', ['.'])
    .option('--error-format <fmt>', 'human or json', 'human')
    .action(async (paths: string[], o: { errorFormat: string }) => {
      const format = parseErrorFormat(o.errorFormat);
      const loaded = await loadPolicy(paths);
      const failed = reportDiagnostics(loaded, format);
      if (failed || !loaded.policy) {
        process.exitCode = 2;
        return;
      }
      const p = loaded.policy;
      if (format === 'json') {
        if (loaded.diagnostics.length === 0) process.stdout.write(`${JSON.stringify({ ok: true, files: loaded.sources.length, rules: p.ruleCount, tests: p.tests.length, hash: p.hash })}\n`);
      } else {
        process.stdout.write(`ok: ${loaded.sources.length} file(s), ${p.ruleCount} rule(s), ${p.tests.length} test(s)\n`);
      }
    });
}
