// `hoop policy`: being built (see the issues). Registered so `hoop --help` lists the whole surface.
import type { Command } from 'commander';

export function register(program: Command): void {
  program
    .command('policy')
    .description('(not yet available)')
    .allowUnknownOption()
    .action(() => {
      process.stderr.write('hoop policy: not available in this build yet\n');
      process.exitCode = 2;
    });
}
