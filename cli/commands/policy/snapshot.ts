// `hoop policy snapshot --policy PATH --sessions DIR|FILE... --out FILE [--skip-bad]`: write the
// verdict of every distinct recorded statement under the policy (replay/snapshot.ts), for
// `hoop policy test --snapshot FILE` to hold later policy changes against.
// Exit: 0 written; 2 usage, policy or recording errors.
import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { loadReplayClassifiers } from '../../../replay/classifiers.ts';
import { recordingFiles } from '../../../replay/files.ts';
import { buildSnapshot, serializeSnapshot } from '../../../replay/snapshot.ts';
import { loadPolicy, reportDiagnostics } from '../../load.ts';
import { usageError } from '../../usage.ts';

interface Options {
  policy: string[];
  sessions?: string[];
  out?: string;
  skipBad?: boolean;
}

const collect = (v: string, prev: string[]): string[] => [...prev, v];

export function registerSnapshot(policy: Command): void {
  policy
    .command('snapshot')
    .description('write the verdict of every recorded statement under a policy (a reviewable snapshot)')
    .argument('[paths...]', 'policy .hoop files or folders (or use --policy)')
    .option('--policy <path>', 'policy file or folder (repeatable)', collect, [])
    .option('--sessions <path...>', 'recordings: folders and/or .jsonl files')
    .option('--out <file>', 'where to write the snapshot (JSON Lines)')
    .option('--skip-bad', 'report corrupt recording lines and go on')
    .action(async (paths: string[], o: Options) => {
      const usage = usageError('policy snapshot');
      const policyPaths = [...paths, ...o.policy];
      if (policyPaths.length === 0) return usage('give the policy with --policy PATH');
      if (!o.sessions?.length) return usage('give the recordings with --sessions DIR|FILE...');
      if (!o.out) return usage('give the output file with --out FILE');
      const result = await writeSnapshot(policyPaths, o.sessions, o.out, !!o.skipBad);
      if (!result.ok) {
        if (result.message) usage(result.message);
        else process.exitCode = 2;
        return;
      }
      const skipped = result.badLines > 0 ? ` (${result.badLines} corrupt recording line(s) skipped)` : '';
      process.stderr.write(`hoop policy snapshot: ${result.entries} verdict(s) from ${result.statements} recorded statement(s) written to ${o.out}${skipped}\n`);
    });
}

export type WriteSnapshotResult = { ok: true; entries: number; statements: number; badLines: number } | { ok: false; message?: string };

/** Compile, decide, write. Diagnostics are printed here; `message` is for the caller to print. */
export async function writeSnapshot(policyPaths: string[], sessions: string[], out: string, skipBad: boolean): Promise<WriteSnapshotResult> {
  const files = recordingFiles(sessions);
  if (!files.ok) return { ok: false, message: files.message };
  const loaded = await loadPolicy(policyPaths);
  if (reportDiagnostics(loaded, 'human') || !loaded.policy) return { ok: false };
  const snap = await buildSnapshot(loaded.policy, await loadReplayClassifiers(), files.files, { skipBad });
  if (!snap.ok) return { ok: false, message: snap.error.message };
  writeFileSync(out, serializeSnapshot(snap.entries));
  return { ok: true, entries: snap.entries.length, statements: snap.statements, badLines: snap.bad_lines };
}
