// Usage errors look the same in every command: `hoop <command>: <what is wrong>` on stderr, and
// exit code 2 (docs/cli.md).

/** The usage-error reporter of `command` (e.g. `policy test`). */
export function usageError(command: string): (msg: string) => void {
  return (msg) => {
    process.stderr.write(`hoop ${command}: ${msg}\n`);
    process.exitCode = 2;
  };
}
