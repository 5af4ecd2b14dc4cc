// `hoop policy fmt [--check|--write] [paths]`: canonical formatting. Without a flag the formatted
// text goes to stdout; --check lists files that would change (exit 1); --write rewrites them.
import type { Command } from 'commander';
import { writeFile } from 'node:fs/promises';
import { loadPolicySources } from '../../../engine/index.ts';
import { format, renderDiagnostics, type Diagnostic } from '../../../language/index.ts';

export function registerFmt(policy: Command): void {
  policy
    .command('fmt')
    .description('format .hoop files canonically (comments kept)')
    .argument('[paths...]', '.hoop files or folders', ['.'])
    .option('--check', 'exit 1 and list the files that are not formatted')
    .option('--write', 'rewrite files in place')
    .action(async (paths: string[], o: { check?: boolean; write?: boolean }) => {
      if (o.check && o.write) {
        process.stderr.write('hoop policy fmt: --check and --write are exclusive\n');
        process.exitCode = 2;
        return;
      }
      const diagnostics: Diagnostic[] = [];
      const texts = new Map<string, string>();
      const unformatted: string[] = [];
      for (const p of paths) {
        const r = await loadPolicySources(p);
        diagnostics.push(...r.diagnostics);
        for (const s of r.sources) {
          texts.set(s.file, s.text);
          const f = format(s.text, s.file);
          if (f.text === undefined) {
            diagnostics.push(...f.diagnostics);
            continue;
          }
          if (f.text !== s.text) unformatted.push(s.file);
          if (o.write) {
            if (f.text !== s.text) await writeFile(s.file, f.text);
          } else if (!o.check) {
            process.stdout.write(f.text);
          }
        }
      }
      if (diagnostics.length > 0) {
        process.stderr.write(renderDiagnostics(diagnostics, texts));
        process.exitCode = 2;
        return;
      }
      if (o.check && unformatted.length > 0) {
        for (const f of unformatted) process.stdout.write(`${f}\n`);
        process.stderr.write(`${unformatted.length} file(s) need formatting (run hoop policy fmt --write)\n`);
        process.exitCode = 1;
      } else if (o.write) {
        for (const f of unformatted) process.stdout.write(`formatted ${f}\n`);
      }
    });
}
