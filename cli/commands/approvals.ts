// `hoop approvals`: being built (see the issues). Registered so `hoop --help` lists the whole surface.
import type { Command } from 'commander';

export function register(program: Command): void {
  program
    .command('approvals')
    .description('(not yet available)')
    .allowUnknownOption()
    .action(() => {
      process.stderr.write('hoop approvals: not available in this build yet\n');
      process.exitCode = 2;
    });
}
