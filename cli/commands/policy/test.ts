// `hoop policy test [paths] [--format ...] [--coverage] [--threshold PCT] [-v] [--run PATTERN]
//   [--snapshot FILE --sessions DIR... [--update-snapshot]]`
// Exit: 0 all passed (and coverage at or above the threshold, and every recorded verdict as in the
// snapshot), 1 a test failed, coverage is below the threshold or a verdict is not acknowledged in
// the snapshot, 2 the policy does not compile, a flag is wrong or a recording cannot be read.
import { existsSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { RE2JS } from '@bufbuild/re2';
import { coverageReport } from '../../../engine/tester/coverage.ts';
import { runTests } from '../../../engine/tester/runner.ts';
import { loadClassifiers, loadPolicy, reportDiagnostics } from '../../load.ts';
import { renderTests, TEST_FORMATS, type TestFormat } from '../../report/tests.ts';
import { renderSnapshotDiff } from '../../report/snapshot.ts';
import { loadReplayClassifiers } from '../../../replay/classifiers.ts';
import { recordingFiles } from '../../../replay/files.ts';
import { buildSnapshot, diffSnapshot, readSnapshot, serializeSnapshot } from '../../../replay/snapshot.ts';
import type { PreparedPolicy } from '../../../engine/index.ts';
import { usageError } from '../../usage.ts';

interface Options {
  format: string;
  coverage?: boolean;
  threshold?: string;
  verbose?: boolean;
  run?: string;
  snapshot?: string;
  sessions?: string[];
  updateSnapshot?: boolean;
  skipBad?: boolean;
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
    .option('--snapshot <file>', 'also check the verdict of every recorded statement against this snapshot')
    .option('--sessions <path...>', 'with --snapshot: the recordings (folders and/or .jsonl files)')
    .option('--update-snapshot', 'with --snapshot: rewrite the snapshot with the current verdicts')
    .option('--skip-bad', 'with --snapshot: report corrupt recording lines and go on')
    .action(async (paths: string[], o: Options) => {
      const usage = usageError('policy test');
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
      if ((o.sessions || o.updateSnapshot) && !o.snapshot) return usage('--sessions and --update-snapshot go with --snapshot FILE');
      if (o.snapshot && !o.sessions?.length) return usage('--snapshot needs the recordings: --sessions DIR|FILE...');
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
      let snapshotFailed = false;
      if (o.snapshot) {
        const r = await checkSnapshot(loaded.policy, o.snapshot, o.sessions!, !!o.updateSnapshot, !!o.skipBad);
        const stream = o.format === 'pretty' || o.format === 'github' ? process.stdout : process.stderr;
        if (r.text) stream.write(r.text);
        if (r.code === 2) {
          process.exitCode = 2;
          return;
        }
        snapshotFailed = r.code === 1;
      }
      process.exitCode = failed || below || snapshotFailed ? 1 : 0;
    });
}

/** 0 all verdicts acknowledged (or the snapshot rewritten), 1 some are not, 2 cannot tell. */
async function checkSnapshot(policy: PreparedPolicy, file: string, sessions: string[], update: boolean, skipBad: boolean): Promise<{ code: 0 | 1 | 2; text: string }> {
  const files = recordingFiles(sessions);
  if (!files.ok) return { code: 2, text: `hoop policy test: ${files.message}\n` };
  const current = await buildSnapshot(policy, await loadReplayClassifiers(), files.files, { skipBad });
  if (!current.ok) return { code: 2, text: `hoop policy test: ${current.error.message}\n` };
  const skipped = current.bad_lines > 0 ? `(${current.bad_lines} corrupt recording line(s) skipped)\n` : '';
  if (update) {
    writeFileSync(file, serializeSnapshot(current.entries));
    return { code: 0, text: `${skipped}snapshot ${file}: ${current.entries.length} verdict(s) from ${current.statements} recorded statement(s) written\n` };
  }
  if (!existsSync(file)) return { code: 2, text: `hoop policy test: no snapshot at ${file}; create it with --update-snapshot (or hoop policy snapshot)\n` };
  const expected = await readSnapshot(file);
  if (!expected.ok) return { code: 2, text: `hoop policy test: ${expected.message}\n` };
  const diff = diffSnapshot(expected.entries, current.entries);
  return { code: diff.changes.length > 0 ? 1 : 0, text: skipped + renderSnapshotDiff(file, diff) };
}
