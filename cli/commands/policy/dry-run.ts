// `hoop policy dry-run --policy PATH --sessions DIR|FILE... [--format pretty|json|junit]
//   [--fail-on-change] [--only block,approve] [--skip-bad] [--examples N]`
// Re-decides every recorded statement under the candidate policy (replay/dryrun.ts) and reports
// what would change. Exit: 0 done; 1 with --fail-on-change when a decision changed; 2 usage,
// policy or recording errors.
import type { Command } from 'commander';
import { dryRun } from '../../../replay/dryrun.ts';
import { loadReplayClassifiers } from '../../../replay/classifiers.ts';
import { recordingFiles } from '../../../replay/files.ts';
import { loadPolicy, reportDiagnostics } from '../../load.ts';
import { createProgress } from '../../progress.ts';
import { DRY_RUN_FORMATS, parseOnly, renderDryRun, type DryRunFormat } from '../../report/dryrun.ts';
import { usageError } from '../../usage.ts';

interface Options {
  policy: string[];
  sessions: string[];
  format: string;
  failOnChange?: boolean;
  only?: string;
  skipBad?: boolean;
  examples: string;
}

const collect = (v: string, prev: string[]): string[] => [...prev, v];

export function registerDryRun(policy: Command): void {
  policy
    .command('dry-run')
    .description('re-decide recorded sessions under a candidate policy and report what would change')
    .argument('[paths...]', 'policy .hoop files or folders (or use --policy)')
    .option('--policy <path>', 'candidate policy file or folder (repeatable)', collect, [])
    .option('--sessions <path...>', 'recordings: folders and/or .jsonl files')
    .option('--format <fmt>', `output: ${DRY_RUN_FORMATS.join(', ')}`, 'pretty')
    .option('--fail-on-change', 'exit 1 when any decision changed')
    .option('--only <verdicts>', 'only changes into or out of these verdicts, e.g. block,approve')
    .option('--skip-bad', 'report corrupt recording lines and go on')
    .option('--examples <n>', 'examples shown per group', '3')
    .action(async (paths: string[], o: Options) => {
      const usage = usageError('policy dry-run');
      if (!DRY_RUN_FORMATS.includes(o.format as DryRunFormat)) return usage(`--format must be one of ${DRY_RUN_FORMATS.join(', ')}`);
      const only = parseOnly(o.only);
      if (typeof only === 'string') return usage(only);
      const examples = Number(o.examples);
      if (!Number.isInteger(examples) || examples < 0) return usage('--examples takes a whole number');
      const policyPaths = [...paths, ...o.policy];
      if (policyPaths.length === 0) return usage('give the candidate policy with --policy PATH');
      if (!o.sessions || o.sessions.length === 0) return usage('give the recordings with --sessions DIR|FILE...');
      const files = recordingFiles(o.sessions);
      if (!files.ok) return usage(files.message);
      if (files.files.length === 0) return usage(`no recordings (.jsonl) in ${o.sessions.join(', ')}`);

      const loaded = await loadPolicy(policyPaths);
      if (reportDiagnostics(loaded, o.format === 'json' ? 'json' : 'human') || !loaded.policy) {
        process.exitCode = 2;
        return;
      }
      const progress = createProgress('dry-run');
      const result = await dryRun(loaded.policy, await loadReplayClassifiers(), {
        files: files.files,
        skipBad: o.skipBad,
        only,
        examplesPerGroup: examples,
        onProgress: (p) => progress.update({ done: p.filesDone, total: p.filesTotal, detail: `${p.statements} statements` }),
      });
      if (!result.ok) {
        progress.finish('stopped');
        process.stderr.write(`hoop policy dry-run: ${result.error.message}\n`);
        if (result.error.code === 'malformed' || result.error.code === 'missing_header') process.stderr.write('  (use --skip-bad to report corrupt lines and go on)\n');
        process.exitCode = 2;
        return;
      }
      const r = result.report;
      progress.finish(`${r.statements} statements in ${r.sessions} sessions, ${r.changed} changed${r.bad_lines ? `, ${r.bad_lines} corrupt line(s) skipped` : ''}`);
      process.stdout.write(renderDryRun(o.format as DryRunFormat, r));
      process.exitCode = o.failOnChange && r.changed > 0 ? 1 : 0;
    });
}
