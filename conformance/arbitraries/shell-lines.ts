// A grammar of shell lines that try to run a program a read-only policy does not allow, in
// disguise, mixed with lines a read-only policy allows (conformance/ssh-differential). Built from
// the families of stdlib/shell/corpus.ts: names spelled with quotes, escapes, ANSI-C strings,
// expansions and command substitutions; wrappers (sudo, env, timeout, xargs, command, exec, ...);
// shells and command strings; every compound form bash has (lists, pipelines, subshells, groups,
// if/for/while/case, functions, substitutions in words, assignments, here-documents, process
// substitution); and output redirections.
//
// Every argument is a relative name in the upstream's scratch directory, and the upstream runs
// each line with an empty PATH: a line the gateway wrongly forwards can only touch that directory.

import fc from 'fast-check';

/** The programs the read-only policy allows (and the only ones a forwarded line may run). */
export const ALLOWED_PROGRAMS = ['ls', 'cat', 'grep', 'tail', 'df'] as const;

/** The file every write payload aims at, and a name they create. */
export const CANARY = 'canary';

const READS = ['ls', 'ls -l', `cat ${CANARY}`, `grep -c a ${CANARY}`, `tail -n 1 ${CANARY}`, 'df -h .', 'ls -a', `cat < ${CANARY}`, `grep a <<< abc`];

/** [program, its arguments]: each changes the scratch directory when it runs. */
const WRITES: readonly (readonly [string, string])[] = [
  ['rm', `-f ${CANARY}`],
  ['touch', 'made'],
  ['tee', 'made'],
  ['cp', `${CANARY} made`],
  ['mv', `${CANARY} moved`],
  ['chmod', `000 ${CANARY}`],
  ['dd', `if=${CANARY} of=made`],
  ['sed', `-i s/a/b/ ${CANARY}`],
  ['truncate', `-s 0 ${CANARY}`],
  ['ln', `-s ${CANARY} made`],
  ['mkdir', 'made'],
  ['find', '. -name made -delete'],
  ['perl', `-e 'unlink "${CANARY}"'`],
  ['python3', `-c 'open("made", "w")'`],
  ['awk', `'BEGIN { print 1 > "made" }'`],
  ['install', `${CANARY} made`],
  ['shred', `-u ${CANARY}`],
  ['echo', 'x'],
  ['printf', 'x'],
  ['kill', '-0 1'],
];

const hex = (s: string): string => [...s].map((c) => `\\x${c.charCodeAt(0).toString(16)}`).join('');
const oct = (s: string): string => [...s].map((c) => `\\${c.charCodeAt(0).toString(8)}`).join('');

/** Ways to spell a command name that bash reads as that name. */
function spelled(name: string): fc.Arbitrary<string> {
  const cut = fc.integer({ min: 1, max: Math.max(1, name.length - 1) });
  return fc.oneof(
    fc.constant(name),
    cut.map((i) => `${name.slice(0, i)}""${name.slice(i)}`),
    cut.map((i) => `${name.slice(0, i)}''${name.slice(i)}`),
    fc.constant(`\\${name}`),
    cut.map((i) => `${name.slice(0, i)}\\${name.slice(i)}`),
    fc.constant(`'${name}'`),
    fc.constant(`"${name}"`),
    fc.constant(`$'${hex(name)}'`),
    fc.constant(`$'${oct(name)}'`),
    fc.constant(`$(printf ${name})`),
    fc.constant(`\`echo ${name}\``),
    fc.constant(`\${HOOP_UNSET:-${name}}`),
    fc.constant(`"\${HOOP_UNSET-${name}}"`),
    cut.map((i) => `${name.slice(0, i)}$(:)${name.slice(i)}`),
    cut.map((i) => `"${name.slice(0, i)}"'${name.slice(i)}'`),
    fc.constant(`\${HOOP_UNSET:=${name}}`),
    // Brace expansion and $IFS build the name at run time.
    fc.constant(`{${name},}`),
    fc.constant(`${name}\${HOOP_UNSET}`),
    cut.map((i) => `${name.slice(0, i)}\${HOOP_UNSET:+x}${name.slice(i)}`),
    cut.map((i) => `${name.slice(0, i)}$''${name.slice(i)}`),
    cut.map((i) => `${name.slice(0, i)}$""${name.slice(i)}`),
  );
}

const WRAPPERS = [
  'sudo', 'sudo -u root', 'env', 'env -i', 'env A=1', 'timeout 5', 'nice -n 5', 'nohup', 'exec', 'command', 'builtin', 'time',
  'stdbuf -o0', 'setsid', 'ionice -c 3', 'xargs', 'A=1', 'doas', 'chroot .', 'flock lockfile', 'busybox', 'strace -o trace', 'watch -n 1 -e -g',
];

/** A simple command: a spelled name, maybe wrapped, with its arguments. */
function simple(name: string, args: string): fc.Arbitrary<string> {
  return fc.tuple(fc.option(fc.constantFrom(...WRAPPERS), { nil: undefined, freq: 3 }), spelled(name)).map(([w, n]) => `${w ? `${w} ` : ''}${n}${args ? ` ${args}` : ''}`);
}

/** A shell that runs `inner` as its command string, quoted either way. */
function commandString(inner: fc.Arbitrary<string>): fc.Arbitrary<string> {
  const sq = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
  const dq = (s: string): string => `"${s.replace(/(["\\$`])/g, '\\$1')}"`;
  return fc.tuple(fc.constantFrom('sh -c', 'bash -c', 'dash -c', 'bash -lc', 'eval', 'su root -c', 'busybox sh -c', 'env -S'), inner, fc.boolean()).map(([sh, s, single]) => `${sh} ${single ? sq(s) : dq(s)}`);
}

export interface ShellLineGrammar {
  /** A line that only reads (what the read-only policy allows). */
  read: fc.Arbitrary<string>;
  /** A line that hides a write somewhere. */
  write: fc.Arbitrary<string>;
  /** Either, about half and half. */
  line: fc.Arbitrary<string>;
}

export function shellLineGrammar(): ShellLineGrammar {
  const read = fc.constantFrom(...READS);
  const write = fc.constantFrom(...WRITES).chain(([name, args]) => simple(name, args));
  const hidden: fc.Arbitrary<string> = fc.oneof({ weight: 4, arbitrary: write }, { weight: 1, arbitrary: commandString(write) });
  const redirected = fc.tuple(read, fc.constantFrom('> made', `>> ${CANARY}`, '2> made', '&> made', '>| made', `1<>${CANARY}`, '> >(cat > made)', '3> made', '>made', '2>>made', '&>>made', '>\\\nmade', '> "made"', "> 'made'", '> $\'made\'', '>&2 2>made')).map(([r, o]) => `${r} ${o}`);
  // What ends a command: bash's list operators and newlines, with the blanks around them.
  const separator = fc.constantFrom(';', '\n', '\n\n', '\r\n', ' ;\t', '\t\n', ' &&\n', ' ||\n', ' |\n', ' |& ', ';\n', '\n#c\n', ' & ');
  const pair = fc.tuple(read, hidden);
  const composed: fc.Arbitrary<string> = fc.oneof(
    pair.map(([r, h]) => `${r}; ${h}`),
    pair.map(([r, h]) => `${r} && ${h}`),
    pair.map(([r, h]) => `${r} || ${h}`),
    pair.map(([r, h]) => `${r} | ${h}`),
    pair.map(([r, h]) => `${r}\n${h}`),
    pair.map(([r, h]) => `${r} & ${h}`),
    hidden.map((h) => `(${h})`),
    hidden.map((h) => `{ ${h}; }`),
    hidden.map((h) => `! ${h}`),
    pair.map(([r, h]) => `${r.split(' ')[0]} $(${h})`),
    pair.map(([r, h]) => `${r.split(' ')[0]} "\`${h.replace(/`/g, '\\`')}\`"`),
    pair.map(([r, h]) => `cat <(${h}) <(${r})`),
    pair.map(([r, h]) => `if ${h}; then ${r}; fi`),
    pair.map(([r, h]) => `if ${r}; then ${h}; fi`),
    pair.map(([r, h]) => `for f in 1; do ${h}; done; ${r}`),
    pair.map(([r, h]) => `while ${h}; do break; done; ${r}`),
    pair.map(([r, h]) => `case x in x) ${h};; esac; ${r}`),
    pair.map(([r, h]) => `[[ -n $(${h}) ]] && ${r}`),
    pair.map(([r, h]) => `A=$(${h}) ${r}`),
    pair.map(([r, h]) => `export A="$(${h})"; ${r}`),
    pair.map(([r, h]) => `cat <<EOF\n$(${h})\nEOF\n${r}`),
    pair.map(([r, h]) => `echo $(( $(${h}) + 1 )); ${r}`),
    pair.map(([r, h]) => `ls() { ${h}; }; ${r}`),
    pair.map(([r, h]) => `function f { ${h}; }; f; ${r}`),
    pair.map(([r, h]) => `${r} # \n${h}`),
    pair.map(([r, h]) => `${r} \\\n; ${h}`),
    fc.tuple(read, separator, hidden).map(([r, sep, h]) => `${r}${sep}${h}`),
    fc.tuple(read, separator, hidden).map(([r, sep, h]) => `${h}${sep}${r}`),
    pair.map(([r, h]) => `until ${h}; do break; done; ${r}`),
    pair.map(([r, h]) => `time -p ${h}; ${r}`),
    pair.map(([r, h]) => `((1)) && ${h}; ${r}`),
    pair.map(([r, h]) => `${h} <<< x; ${r}`),
    pair.map(([r, h]) => `cat <<'EOF'\n$(${h})\nEOF\n${h}`),
    pair.map(([r, h]) => `${r} $(\n${h}\n)`),
    pair.map(([r, h]) => `${r} "$(${h})"`),
    pair.map(([r, h]) => `${r} \${HOOP_UNSET:-$(${h})}`),
    pair.map(([r, h]) => `${r} <(${h})`),
    pair.map(([r, h]) => `coproc NAME { ${h}; }; ${r}`),
    pair.map(([r, h]) => `{ ${r}; } && { ${h}; }`),
    pair.map(([r, h]) => `${r} & wait; ${h}`),
    fc.tuple(read, write).map(([r, w]) => `${r} | xargs ${w}`),
    fc.tuple(read, write).map(([r, w]) => `coproc ${w}; ${r}`),
    redirected,
  );
  // Reads composed with reads: they must run (the oracle needs lines that go through).
  const reads = fc.oneof(read, fc.tuple(read, read).map(([a, b]) => `${a} | ${b.split(' ')[0]} ${b.split(' ').slice(1).filter((x) => x !== CANARY).join(' ')}`.trim()), fc.tuple(read, read).map(([a, b]) => `${a}; ${b}`), fc.tuple(read, read).map(([a, b]) => `${a} && ${b}`));
  return { read: reads, write: composed, line: fc.oneof(reads, composed) };
}
