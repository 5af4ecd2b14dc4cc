// `hoop policy test [paths] [--format ...] [--coverage] [--threshold PCT] [-v] [--run PATTERN]`
// Exit: 0 all passed (and coverage at or above the threshold), 1 a test failed or coverage is
// below the threshold, 2 the policy does not compile or a flag is wrong.
import type { Command } from 'commander';
import { RE2JS } from '@bufbuild/re2';
import { coverageReport } from '../../../engine/tester/coverage.ts';
import { runTests } from '../../../engine/tester/runner.ts';
import { loadClassifiers, loadPolicy, reportDiagnostics } from '../../load.ts';
import { renderTests, TEST_FORMATS, type TestFormat } from '../../report/tests.ts';

interface Options {
  format: string;
  coverage?: boolean;
  threshold?: string;
  verbose?: boolean;
  run?: string;
}

export function registerTest(policy: Command): void {
  policy
    .command('test')
    .description('run the test blocks of a policy set')
    .argument('[paths...]', '.hoop files or folders', ['.'])
    .option('--format <fmt>', `output: ${TEST_FORMATS.join(', ')}`, 'pretty')
    .option('--coverage', 'report rules that no test exercised')
    .option('--threshold <pct>', 'with --coverage: fail when coverage is below PCT')
    .option('-v, --verbose', 'show passing tests and their explanations')
    .option('--run <pattern>', 'only tests whose name matches this RE2 pattern')
    .action(async (paths: string[], o: Options) => {
      const usage = (msg: string): void => {
        process.stderr.write(`hoop policy test: ${msg}\n`);
        process.exitCode = 2;
      };
      if (!TEST_FORMATS.includes(o.format as TestFormat)) return usage(`--format must be one of ${TEST_FORMATS.join(', ')}`);
      const threshold = o.threshold === undefined ? undefined : Number(o.threshold);
      if (threshold !== undefined && !(threshold >= 0 && threshold <= 100)) return usage('--threshold takes a percentage from 0 to 100');
      let filter: ((name: string) => boolean) | undefined;
      if (o.run !== undefined) {
        try {
          const re = new RE2JS(o.run);
          filter = (name) => re.test(name);
        } catch (e) {
          return usage(`--run: invalid pattern: ${(e as Error).message}`);
        }
      }
      const loaded = await loadPolicy(paths);
      if (reportDiagnostics(loaded, o.format === 'json' ? 'json' : 'human') || !loaded.policy) {
        process.exitCode = 2;
        return;
      }
      const { results, coverage } = runTests(loaded.policy, await loadClassifiers(), { filter });
      const cov = o.coverage || threshold !== undefined ? coverageReport(loaded.policy.rules, coverage) : undefined;
      process.stdout.write(renderTests(o.format as TestFormat, { results, coverage: cov, threshold, verbose: !!o.verbose }));
      const failed = results.some((r) => r.outcome !== 'pass');
      const below = cov !== undefined && threshold !== undefined && cov.percent < threshold;
      if (results.length === 0 && !failed) process.stderr.write('hoop policy test: no tests found\n');
      process.exitCode = failed || below ? 1 : 0;
    });
}
