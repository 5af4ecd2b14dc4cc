// What the shell classifier knows about programs, as data.
//
// WRAPPERS run another program given in their arguments (`sudo rm`, `timeout 5 rm`). For each,
// the options that take a value must be listed exactly: an unlisted value option would make its
// value look like the wrapped program. SHELLS take a command string with `-c`; INTERPRETERS run
// code (their own language, or a script) that the classifier cannot see into.

export interface WrapperSpec {
  /** Short options (single letters) that take a value, attached (`-uroot`) or next (`-u root`). */
  short?: string;
  /** Long options that take a value as the next word when not written `--opt=value`. */
  long?: readonly string[];
  /** Positional words between the options and the wrapped program (`timeout DURATION`). */
  positionals?: number;
  /** Options after which no program runs (`command -v rm` only prints a path). */
  noRun?: string;
  /** Options whose value is a shell command line (`su -c 'rm x'`, `flock -c`). */
  commandOptions?: readonly string[];
  /** Accept `NAME=value` words before the program (`env A=1 rm`). */
  assignments?: boolean;
  /** The program that runs when none is given (`xargs` runs `echo`; `sudo -s` a shell). */
  defaultProgram?: string;
  /** Options that make a value a new program search path, so names cannot be trusted. */
  pathOptions?: readonly string[];
}

export const WRAPPERS: ReadonlyMap<string, WrapperSpec> = new Map<string, WrapperSpec>([
  ['sudo', { noRun: 'lvKV', short: 'ughpCDrtUTR', long: ['--user', '--group', '--host', '--prompt', '--close-from', '--chdir', '--role', '--type', '--other-user', '--command-timeout', '--chroot'], defaultProgram: 'sh' }],
  ['doas', { short: 'uC', defaultProgram: 'sh' }],
  ['env', { short: 'uCS', long: ['--unset', '--chdir', '--split-string'], assignments: true, commandOptions: ['-S', '--split-string'], pathOptions: ['-P'] }],
  ['timeout', { short: 'sk', long: ['--signal', '--kill-after'], positionals: 1 }],
  ['nice', { short: 'n', long: ['--adjustment'] }],
  ['nohup', {}],
  ['exec', { short: 'a' }],
  ['command', { noRun: 'vV' }],
  ['builtin', {}],
  ['time', { short: 'fo', long: ['--format', '--output'] }],
  ['stdbuf', { short: 'ioe', long: ['--input', '--output', '--error'] }],
  ['ionice', { short: 'cnpPu', long: ['--class', '--classdata', '--pid', '--pgid', '--uid'], noRun: 'pPu' }],
  ['chroot', { long: ['--userspec', '--groups'], positionals: 1, defaultProgram: 'sh' }],
  ['setsid', {}],
  ['taskset', { noRun: 'p', positionals: 1 }],
  ['chrt', { short: 'TPD', long: ['--sched-runtime', '--sched-period', '--sched-deadline'], noRun: 'pm', positionals: 1 }],
  ['unbuffer', {}],
  ['coproc', {}],
  ['xargs', { short: 'adEILlnPse', long: ['--arg-file', '--delimiter', '--eof', '--replace', '--max-lines', '--max-args', '--max-procs', '--max-chars', '--process-slot-var'], defaultProgram: 'echo' }],
  ['strace', { short: 'oepsuEabIOPSX', long: ['--output', '--expr', '--attach', '--string-limit', '--user', '--env'] }],
  ['ltrace', { short: 'oepsuEaAlLnw', long: ['--output'] }],
  ['su', { short: 'cgGsw', long: ['--command', '--group', '--supp-group', '--shell', '--whitelist-environment', '--session-command'], commandOptions: ['-c', '--command', '--session-command'], positionals: 1, defaultProgram: 'sh' }],
  ['runuser', { short: 'cgGsuw', long: ['--command', '--group', '--supp-group', '--shell', '--user', '--whitelist-environment', '--session-command'], commandOptions: ['-c', '--command', '--session-command'] }],
  ['flock', { short: 'wEc', long: ['--timeout', '--conflict-exit-code', '--command'], commandOptions: ['-c', '--command'], positionals: 1 }],
  ['watch', { short: 'nd', long: ['--interval'] }],
  ['busybox', {}],
  ['nsenter', { short: 'tmuinpUCrwSGT', long: ['--target', '--setuid', '--setgid', '--root', '--wd'] }],
  ['caffeinate', { short: 'tw' }],
  ['catchsegv', {}],
  ['fakeroot', { short: 'sil' }],
  ['proxychains', { short: 'f' }],
  ['proxychains4', { short: 'f' }],
  ['torsocks', { short: 'uapP' }],
  ['firejail', {}],
  ['pkexec', { long: ['--user'] }],
  ['sg', { commandOptions: ['-c'], short: 'c', positionals: 1, defaultProgram: 'sh' }],
  ['script', { short: 'cEIOBTm', long: ['--command', '--echo', '--log-in', '--log-out', '--log-io', '--log-timing', '--logging-format', '--output-limit'], commandOptions: ['-c', '--command'], defaultProgram: 'sh' }],
  ['systemd-run', { short: 'pEMu', long: ['--unit', '--property', '--description', '--slice', '--uid', '--gid', '--working-directory', '--setenv', '--machine'] }],
]);

/** Programs that run the command lines on their standard input later (`at now <<< 'cmd'`). */
export const STDIN_SCHEDULERS: ReadonlySet<string> = new Set(['at', 'batch', 'crontab']);

/** Shells: `-c STRING` is re-parsed; without it they run a script or stdin (an interpreter). */
export const SHELLS: ReadonlySet<string> = new Set(['sh', 'bash', 'zsh', 'dash', 'ksh', 'mksh', 'ash', 'yash', 'fish', 'rbash', 'csh', 'tcsh', 'pdksh', 'posh']);

/** Shell options that take a value (so the value is not mistaken for the script). */
export const SHELL_VALUE_OPTIONS: ReadonlySet<string> = new Set(['-o', '+o', '-O', '+O', '--rcfile', '--init-file']);

/** Programs that run code written in their own language (or a script file) given to them. */
const INTERPRETER_NAMES = new Set([
  'awk', 'gawk', 'mawk', 'nawk', 'busybox-awk', 'perl', 'ruby', 'irb', 'node', 'nodejs', 'deno', 'bun',
  'php', 'lua', 'luajit', 'tclsh', 'wish', 'expect', 'Rscript', 'R', 'osascript', 'pwsh', 'powershell',
  'groovy', 'jshell', 'julia', 'guile', 'racket', 'sbcl', 'clisp', 'ghci', 'runghc', 'scala', 'kotlin',
  'elixir', 'erl', 'escript', 'swift', 'dotnet', 'java', 'jrunscript', 'gdb', 'sqlite3', 'psql', 'mysql',
  'ed', 'ex', 'vim', 'vi', 'nvim', 'emacs',
]);

export function isInterpreter(program: string): boolean {
  return INTERPRETER_NAMES.has(program) || /^(python|pypy|perl|ruby|php|lua|node)[0-9.]*$/.test(program);
}

/**
 * Environment variables that decide which program a name runs or inject code into every program
 * (`PATH=. ls`, `LD_PRELOAD=x.so ls`): setting one makes every name on the line untrustworthy.
 */
export const PROGRAM_RESOLUTION_VARIABLES: ReadonlySet<string> = new Set([
  'PATH', 'LD_PRELOAD', 'LD_LIBRARY_PATH', 'LD_AUDIT', 'DYLD_INSERT_LIBRARIES', 'DYLD_LIBRARY_PATH',
  'BASH_ENV', 'ENV', 'IFS', 'SHELLOPTS', 'BASHOPTS', 'PS4', 'PROMPT_COMMAND', 'CDPATH', 'GLOBIGNORE',
  'PYTHONSTARTUP', 'PYTHONPATH', 'PERL5OPT', 'PERL5LIB', 'RUBYOPT', 'NODE_OPTIONS', 'GIT_EXEC_PATH',
  'GIT_CONFIG_GLOBAL', 'GIT_CONFIG_SYSTEM', 'GIT_CONFIG_PARAMETERS', 'GIT_CONFIG_COUNT',
]);

/** Environment variables whose value is a command line some program will run. */
export const COMMAND_VARIABLES: ReadonlySet<string> = new Set([
  'PAGER', 'MANPAGER', 'GIT_PAGER', 'EDITOR', 'VISUAL', 'GIT_EDITOR', 'GIT_SEQUENCE_EDITOR', 'GIT_SSH',
  'GIT_SSH_COMMAND', 'GIT_EXTERNAL_DIFF', 'GIT_ASKPASS', 'SSH_ASKPASS', 'SUDO_ASKPASS', 'RSYNC_RSH',
  'LESSOPEN', 'LESSCLOSE', 'BROWSER', 'TAR_OPTIONS',
]);

/** `git -c key=value` keys whose value is a command git runs (`alias.*` values starting with `!`). */
export function gitConfigRunsProgram(key: string): 'command' | 'alias' | 'path' | null {
  const k = key.toLowerCase();
  if (k.startsWith('alias.')) return 'alias';
  if (k === 'core.hookspath' || k === 'core.worktree' || k === 'include.path' || k.startsWith('includeif.')) return 'path';
  if (/^(core\.(pager|editor|sshcommand|fsmonitor|askpass|gitproxy)|sequence\.editor|diff\.external|gpg(\.[a-z0-9]+)?\.program|credential(\..*)?\.helper|pager\..*|.*\.textconv|filter\..*\.(clean|smudge|process)|merge\..*\.driver|diff\..*\.command|uploadpack\.packobjectshook|protocol\..*|remote\..*\.(uploadpack|receivepack|vcs|proxy)|http\.proxy|web\.browser|browser\..*\.cmd|man\..*\.cmd|difftool\..*\.cmd|mergetool\..*\.cmd|sendemail\.(sendmailcmd|tocmd|cccmd|smtpserver)|core\.sshcommand)$/.test(k)) {
    return 'command';
  }
  return null;
}

/** Files whose contents are not a place data can be written to. */
export const HARMLESS_REDIRECT_TARGETS: ReadonlySet<string> = new Set(['/dev/null', '/dev/stdout', '/dev/stderr', '/dev/tty']);

/** tar / rsync / ssh options whose value is a command line the program runs. */
export const COMMAND_VALUE_OPTIONS: ReadonlyMap<string, readonly string[]> = new Map([
  ['tar', ['--to-command', '--use-compress-program', '-I', '--info-script', '-F', '--new-volume-script', '--rsh-command']],
  ['rsync', ['-e', '--rsh', '--rsync-path']],
  ['ssh', ['-oProxyCommand', '-oLocalCommand']],
  ['scp', ['-S', '-oProxyCommand']],
  ['zip', ['-TT', '--unzip-command']],
  ['git', ['--upload-pack', '--receive-pack', '--exec']],
]);
