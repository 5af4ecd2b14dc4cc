// The shell walker: a tree-sitter-bash tree → every program that would run.
//
// Commands are found anywhere in the tree (pipelines, lists, subshells, `$(...)`, backticks,
// process substitution, heredoc bodies, loop headers). Each command's argv is then unwrapped:
// `sudo -u root timeout 5 nice rm x` runs sudo, timeout, nice and rm; `bash -c 'STRING'` and
// friends re-parse STRING. Whatever cannot be known statically makes the line `unknown`.

import type { Node, Parser } from 'web-tree-sitter';
import type { ShellAction } from '../facts.ts';
import {
  COMMAND_VALUE_OPTIONS, COMMAND_VARIABLES, gitConfigRunsProgram, HARMLESS_REDIRECT_TARGETS,
  isInterpreter, PROGRAM_RESOLUTION_VARIABLES, SHELL_VALUE_OPTIONS, SHELLS, STDIN_SCHEDULERS, WRAPPERS, type WrapperSpec,
} from './programs.ts';
import { programName, wordValue } from './words.ts';

/** One word of an argv: its literal value (null when dynamic) and its source text. */
interface Arg {
  value: string | null;
  expands: boolean;
  text: string;
}

const MAX_DEPTH = 8; // nested `bash -c` strings before giving up

export class ShellWalker {
  readonly programs: string[] = [];
  readonly invocations: { program: string; args: string[] }[] = [];
  readonly redirects: string[] = [];
  readonly interpreters: string[] = [];
  readonly reasons: string[] = [];
  dynamic = false;
  unknown = false;
  /** The here-document or here-string given to the command being classified (its standard input). */
  stdin: string | null = null;
  readonly #parser: Parser;

  constructor(parser: Parser) {
    this.#parser = parser;
  }

  // ------------------------------------------------------------------------------------------

  /** Parse and walk a command line (the input, or a string given to `bash -c`). */
  line(text: string, depth: number): void {
    if (depth > MAX_DEPTH) return this.fail(`command strings nested more than ${MAX_DEPTH} deep`);
    // bash joins `r\<newline>m` into `rm`; tree-sitter-bash splits it into two words. A
    // continuation between two non-blank characters could hide a name: give up on it.
    if (/[^\s\\]\\\r?\n[^\s]/.test(text)) this.fail('a line continuation inside a word');
    if (text.includes('\u0000')) this.fail('the command line contains a NUL character');
    const tree = this.#parser.parse(text);
    if (tree === null) return this.fail('the command line could not be parsed');
    try {
      if (tree.rootNode.hasError) this.fail(depth === 0 ? 'the command line does not parse' : 'a nested command string does not parse');
      // An unquoted newline always ends a word in bash, but tree-sitter-bash glues `ls<newline>\\rm x`
      // into one command `ls` with the argument `<newline>rm`, and bash runs rm. A word holding a
      // newline that is not a backslash-newline is such a misreading: give up on the line.
      for (const w of tree.rootNode.descendantsOfType('word')) {
        if (w !== null && /(^|[^\\])\r?\n/.test(w.text)) {
          this.fail('the parser read a newline as part of a word');
          break;
        }
      }
      this.walk(tree.rootNode, depth);
    } finally {
      tree.delete();
    }
  }

  fail(reason: string, dynamic = false): void {
    this.unknown = true;
    if (dynamic) this.dynamic = true;
    if (!this.reasons.includes(reason)) this.reasons.push(reason);
  }

  walk(node: Node, depth: number): void {
    switch (node.type) {
      case 'command':
        this.command(node, depth);
        return;
      case 'compound_statement':
        if (node.child(0)?.type === '((') {
          // bash evaluates `((rm -rf x))` as arithmetic; dash (often /bin/sh) runs it as nested subshells.
          this.fail('`((...))` is arithmetic in bash but runs commands in dash and other shells');
        }
        break;
      case 'function_definition':
        this.fail('the line defines a shell function, which can shadow any program name');
        break;
      case 'file_redirect':
        this.redirect(node);
        break;
      case 'variable_assignment':
        this.assignment(node, depth);
        break;
      case 'redirected_statement': {
        // `sh <<EOF ... EOF`: the here-document is the body command's standard input.
        const body = node.childForFieldName('body');
        const heredoc = node.namedChildren.find((c) => c?.type === 'heredoc_redirect');
        const text = heredoc?.namedChildren.find((c) => c?.type === 'heredoc_body')?.text;
        if (body?.type === 'command' && text !== undefined) {
          this.stdin = text;
          try {
            for (const c of node.children) if (c !== null) this.walk(c, depth);
          } finally {
            this.stdin = null;
          }
          return;
        }
        break;
      }
      case 'declaration_command':
      case 'unset_command': {
        const keyword = node.child(0)?.text ?? node.type;
        this.invoke(keyword, node.namedChildren.filter((c): c is Node => c !== null).map((c) => c.text));
        break;
      }
    }
    for (const c of node.children) if (c !== null) this.walk(c, depth);
  }

  // ------------------------------------------------------------------------------------------
  // commands

  command(node: Node, depth: number): void {
    const argv: Arg[] = [];
    for (let i = 0; i < node.childCount; i++) {
      const c = node.child(i);
      if (c === null) continue;
      const field = node.fieldNameForChild(i);
      if (field === 'name' || field === 'argument') {
        const target = c.type === 'command_name' ? (c.namedChild(0) ?? c) : c;
        const w = wordValue(target);
        argv.push({ value: w.value, expands: w.expands, text: target.text });
      }
    }
    // Substitutions inside the name or arguments run first; assignments and redirects are visited too.
    for (const c of node.children) if (c !== null) this.walk(c, depth);
    // A prefix assignment that changes program resolution (`PATH=. ls`) was flagged by `walk`.
    const herestring = node.children.find((c) => c?.type === 'herestring_redirect');
    const saved = this.stdin;
    if (herestring) {
      const value = herestring.namedChild(0);
      this.stdin = value ? (wordValue(value).value ?? null) : null;
      if (value && this.stdin === null) this.stdin = value.text; // re-parsed: a dynamic word stays dynamic
    }
    // The standard input belongs to this command only, not to commands inside its substitutions.
    const stdin = this.stdin;
    this.stdin = null;
    try {
      if (argv.length > 0) this.argv(argv, depth, stdin);
    } finally {
      this.stdin = saved;
    }
  }

  /** Record one program run with `argv[0]` as its name, then unwrap what it runs in turn. */
  argv(argv: Arg[], depth: number, stdin: string | null = null): void {
    const head = argv[0]!;
    if (head.value === null || head.expands) {
      this.fail(`the program name ${head.text} is not a literal`, true);
      return;
    }
    if (RESERVED_WORDS.has(head.value.split(/\s/)[0]!)) {
      // bash would reject this line (a reserved word where a command name must be); the grammar did not.
      this.fail(`the reserved word ${JSON.stringify(head.value)} stands where a program name must be`);
      return;
    }
    const program = programName(head.value);
    if (program === '') {
      this.fail(`the program name ${JSON.stringify(head.value)} names no program`, true);
      return;
    }
    const args = argv.slice(1);
    this.invoke(program, args.map((a) => a.value ?? a.text));
    this.unwrap(program, args, depth, stdin);
  }

  invoke(program: string, args: string[]): void {
    if (!this.programs.includes(program)) this.programs.push(program);
    this.invocations.push({ program, args });
    if (isInterpreter(program)) this.interpreter(program);
  }

  interpreter(program: string): void {
    if (!this.interpreters.includes(program)) this.interpreters.push(program);
  }

  unwrap(program: string, args: Arg[], depth: number, stdin: string | null): void {
    switch (program) {
      case 'eval':
        this.fail('eval runs a string built at run time', true);
        return;
      case 'source':
      case '.':
        if (args.length === 0 || args[0]!.value === null) this.fail(`${program} of a non-literal file`, true);
        else this.interpreter(program);
        return;
      case 'alias':
        if (args.length > 0) this.fail('the line defines an alias, which can shadow any program name');
        return;
      case 'enable':
        if (args.some((a) => a.value === null || a.value.startsWith('-f'))) this.fail('enable -f loads a builtin from a shared library');
        return;
      case 'hash':
        if (args.some((a) => a.value === null || a.value.startsWith('-p'))) this.fail('hash -p rebinds a program name to a path');
        return;
      case 'trap':
        if (args.length > 0) this.commandString(args[0]!, depth, 'trap');
        return;
      case 'find':
        this.find(args, depth);
        return;
      case 'git':
        this.git(args, depth);
        break;
      case 'sed':
        if (args.some((a) => a.value === null || sedRunsCommands(a.value))) this.interpreter('sed');
        break;
      case 'watch':
        this.watch(args, depth);
        return;
      case 'ssh':
        this.ssh(args, depth);
        return;
      case 'kubectl':
      case 'oc':
        this.kubectlExec(args, depth);
        break;
      case 'docker':
      case 'podman':
        this.dockerExec(program, args, depth);
        break;
    }
    if (SHELLS.has(program)) return this.shell(program, args, depth, stdin);
    if (STDIN_SCHEDULERS.has(program)) {
      // Jobs come from standard input (or a file): visible only as a here-document or here-string.
      const fromFile = args.some((a) => a.value === null || a.value.startsWith('-f') || (program === 'crontab' && !a.value.startsWith('-')));
      if (stdin !== null && !fromFile) this.line(stdin, depth + 1);
      else if (!(program === 'crontab' && args.some((a) => a.value === '-l' || a.value === '-r'))) this.interpreter(program);
      return;
    }
    const valueOptions = COMMAND_VALUE_OPTIONS.get(program);
    if (valueOptions) this.commandValueOptions(valueOptions, args, depth);
    const spec = WRAPPERS.get(program);
    if (spec) this.wrapper(program, spec, args, depth, program === 'xargs' ? null : stdin);
  }

  /** A word holding a command line (`bash -c WORD`): re-parse it, or fail when it is not literal. */
  commandString(arg: Arg, depth: number, what: string): void {
    if (arg.value === null) {
      this.fail(`${what} runs a command string that is not a literal`, true);
      return;
    }
    this.line(arg.value, depth + 1);
  }

  shell(program: string, args: Arg[], depth: number, stdin: string | null): void {
    let script = false;
    for (let i = 0; i < args.length; i++) {
      const a = args[i]!;
      if (a.value === null) {
        this.fail(`${program} gets an argument that is not a literal`, true);
        return;
      }
      if (SHELL_VALUE_OPTIONS.has(a.value)) {
        i++;
        continue;
      }
      if (a.value === '--' || a.value === '-') {
        script = i + 1 < args.length;
        break;
      }
      if (/^[-+][a-zA-Z]+$/.test(a.value)) {
        if (a.value.startsWith('-') && a.value.includes('c')) {
          // `-c STRING`: the first operand after the options is the command string.
          const rest = args.slice(i + 1).filter((x) => !(x.value !== null && /^[-+][a-zA-Z]+$/.test(x.value)));
          if (rest.length === 0) return this.fail(`${program} -c without a command string`);
          this.commandString(rest[0]!, depth, `${program} -c`);
          return;
        }
        continue;
      }
      if (a.value.startsWith('--')) continue;
      script = true; // a script file: the shell interprets it
      break;
    }
    // No script: the shell runs its standard input. A here-document or here-string is visible.
    if (!script && stdin !== null) this.line(stdin, depth + 1);
    else this.interpreter(program);
  }

  /** `kubectl exec POD [-c C] -- CMD ARGS`: CMD runs in the container. */
  kubectlExec(args: Arg[], depth: number): void {
    if (!args.some((a) => a.value === 'exec')) return;
    const dash = args.findIndex((a) => a.value === '--');
    if (dash >= 0 && dash + 1 < args.length) this.argv(args.slice(dash + 1), depth);
  }

  /** `docker exec [OPTIONS] CONTAINER CMD ARGS`: CMD runs in the container. */
  dockerExec(program: string, args: Arg[], depth: number): void {
    if (args[0]?.value !== 'exec') return;
    let i = 1;
    for (; i < args.length; i++) {
      const v = args[i]!.value;
      if (v === null) return this.fail(`${program} exec gets an argument that is not a literal`, true);
      if (!v.startsWith('-')) break;
      if (/^(-[euw]|--env|--env-file|--user|--workdir|--detach-keys)$/.test(v)) i++;
    }
    const rest = args.slice(i + 1); // skip the container
    if (rest.length > 0) this.argv(rest, depth);
  }

  /** `ssh [options] HOST [COMMAND...]`: the remote command is a shell line (run on HOST). */
  ssh(args: Arg[], depth: number): void {
    this.commandValueOptions(COMMAND_VALUE_OPTIONS.get('ssh') ?? [], args, depth);
    let i = 0;
    for (; i < args.length; i++) {
      const v = args[i]!.value;
      if (v === null) return this.fail('ssh gets an argument that is not a literal', true);
      if (v === '--') {
        i++;
        break;
      }
      if (!v.startsWith('-')) break;
      // Options with a value: the value is attached (`-p22`) or the next word.
      if (/^-[BbcDEeFIiJLlmOoPpQRSWw]$/.test(v.slice(0, 2)) && v.length === 2) i++;
    }
    const rest = args.slice(i + 1); // skip the destination
    if (rest.length === 0) return;
    if (rest.some((a) => a.value === null)) return this.fail('ssh runs a remote command that is not a literal', true);
    this.line(rest.map((a) => a.value).join(' '), depth + 1);
  }

  wrapper(program: string, spec: WrapperSpec, args: Arg[], depth: number, stdin: string | null): void {
    let i = 0;
    let positionals = spec.positionals ?? 0;
    /** xargs -I R: words holding R are filled from the input at run time. */
    let replace: string | null = null;
    const valueOf = (attached: string): Arg | undefined => {
      if (attached !== '') return { value: attached, expands: false, text: attached };
      i++;
      return args[i];
    };
    for (; i < args.length; i++) {
      const a = args[i]!;
      if (a.value === null) {
        // The option parser would see a run-time value: which word is the program is unknowable.
        this.fail(`${program} gets an argument that is not a literal`, true);
        return;
      }
      const v = a.value;
      if (v === '--') {
        i++;
        i += positionals;
        positionals = 0;
        break;
      }
      if (v.startsWith('--')) {
        const eq = v.indexOf('=');
        const name = eq >= 0 ? v.slice(0, eq) : v;
        let value: Arg | undefined;
        if (eq >= 0) value = { value: v.slice(eq + 1), expands: false, text: v.slice(eq + 1) };
        else if (spec.long?.includes(name)) value = valueOf('');
        if (program === 'xargs' && name === '--replace') replace = value?.value || '{}';
        if (spec.commandOptions?.includes(name)) {
          if (value) this.commandString(value, depth, `${program} ${name}`);
          return;
        }
        continue;
      }
      if (v.startsWith('-') && v.length > 1) {
        if (program === 'nice' && /^-[0-9]+$/.test(v)) continue; // `nice -10 cmd`
        for (let j = 1; j < v.length; j++) {
          const ch = v[j]!;
          if (spec.noRun?.includes(ch)) return;
          if (spec.pathOptions?.includes(`-${ch}`)) {
            this.fail(`${program} -${ch} changes where programs are found`, true);
            return;
          }
          if (program === 'xargs' && ch === 'i') {
            replace = v.slice(j + 1) || '{}'; // `-i[R]`: the old spelling of `-I R`
            break;
          }
          if (spec.short?.includes(ch)) {
            const value = valueOf(v.slice(j + 1));
            if (program === 'xargs' && ch === 'I' && value?.value) replace = value.value;
            if (spec.commandOptions?.includes(`-${ch}`)) {
              if (value) this.commandString(value, depth, `${program} -${ch}`);
              return;
            }
            break;
          }
        }
        continue;
      }
      // GNU env takes any word with `=` as an assignment, names bash could not declare included
      // (`BASH_FUNC_ls%%=() { ...; }` exports a function that replaces `ls`).
      if (spec.assignments && v.indexOf('=') > 0) {
        this.environment(v.slice(0, v.indexOf('=')), { value: v.slice(v.indexOf('=') + 1), expands: false, text: v }, depth);
        continue;
      }
      // Options may follow positional words (`su root -c CMD`, `flock FILE -c CMD`).
      if (positionals > 0) {
        positionals--;
        continue;
      }
      break;
    }
    const rest = filledAtRunTime(args.slice(i), replace);
    if (rest.length === 0) {
      if (spec.defaultProgram) this.argv([{ value: spec.defaultProgram, expands: false, text: spec.defaultProgram }], depth, stdin);
      return;
    }
    // The wrapped program inherits the wrapper's standard input (`sudo sh <<EOF`).
    this.argv(rest, depth, stdin);
  }

  /** `find ... -exec CMD ARGS ;` runs CMD; `-delete` deletes like `rm`; `-fprint FILE` writes FILE. */
  find(args: Arg[], depth: number): void {
    for (let i = 0; i < args.length; i++) {
      const v = args[i]!.value;
      if (v === '-exec' || v === '-execdir' || v === '-ok' || v === '-okdir') {
        let end = i + 1;
        while (end < args.length && args[end]!.value !== ';' && args[end]!.value !== '+') end++;
        // Without its terminator find refuses to run; the words may belong to another command.
        if (end >= args.length) return this.fail(`find ${v} without a terminating ; or +`);
        // `{}` is replaced by each file name found: a word holding it is not a literal.
        const cmd = filledAtRunTime(args.slice(i + 1, end), '{}');
        if (cmd.length === 0) return this.fail(`find ${v} without a command`);
        this.argv(cmd, depth);
        i = end;
      } else if (v === '-delete') {
        this.invoke('rm', []);
      } else if (v === '-fprint' || v === '-fprint0' || v === '-fprintf' || v === '-fls') {
        const target = args[i + 1];
        if (target) this.redirectTarget(target.value ?? target.text);
      }
    }
  }

  /** `git -c alias.x='!cmd'`, `git -c core.pager=cmd` and friends run programs. */
  git(args: Arg[], depth: number): void {
    for (let i = 0; i < args.length; i++) {
      const a = args[i]!;
      let setting: string | null = null;
      if (a.value === '-c') {
        setting = args[i + 1]?.value ?? null;
        i++;
      } else if (a.value?.startsWith('-c') && a.value.length > 2) setting = a.value.slice(2);
      else if (a.value?.startsWith('--config-env')) {
        this.fail('git --config-env takes configuration from the environment', true);
        return;
      } else if (a.value === null) continue;
      else if (!a.value.startsWith('-')) break; // the subcommand
      else continue;
      if (setting === null) {
        this.fail('git -c with a value that is not a literal', true);
        return;
      }
      const eq = setting.indexOf('=');
      const key = eq >= 0 ? setting.slice(0, eq) : setting;
      const value = eq >= 0 ? setting.slice(eq + 1) : '';
      const runs = gitConfigRunsProgram(key);
      if (runs === 'path') this.fail(`git -c ${key} makes git run programs from a path`, true);
      else if (runs === 'alias') {
        if (value.startsWith('!')) this.line(value.slice(1), depth + 1);
      } else if (runs === 'command') this.line(value, depth + 1);
    }
  }

  /** `watch CMD ARGS` joins its arguments and runs them with `sh -c` (unless `-x`). */
  watch(args: Arg[], depth: number): void {
    let i = 0;
    let exec = false;
    for (; i < args.length; i++) {
      const v = args[i]!.value;
      if (v === null) return this.fail('watch gets an argument that is not a literal', true);
      if (v === '-n' || v === '--interval') i++;
      else if (v === '-x' || v === '--exec') exec = true;
      else if (!v.startsWith('-')) break;
    }
    const rest = args.slice(i);
    if (rest.length === 0) return;
    if (exec) this.argv(rest, depth);
    else this.line(rest.map((a) => a.value ?? a.text).join(' '), depth + 1);
  }

  commandValueOptions(options: readonly string[], args: Arg[], depth: number): void {
    for (let i = 0; i < args.length; i++) {
      const v = args[i]!.value;
      if (v === null) continue;
      for (const opt of options) {
        let value: Arg | undefined;
        const normalized = v.startsWith('-o') ? v.replace(/^-o\s*/, '-o') : v;
        if (normalized === opt) value = args[i + 1];
        else if (normalized.startsWith(`${opt}=`)) {
          const s = normalized.slice(opt.length + 1);
          value = { value: s, expands: false, text: s };
        } else if (opt.startsWith('-o') && normalized.toLowerCase().startsWith(`${opt.toLowerCase()} `)) {
          const s = normalized.slice(opt.length + 1);
          value = { value: s, expands: false, text: s };
        }
        if (value) this.commandString(value, depth, opt);
      }
      if (v === '-o' && args[i + 1]?.value) {
        const m = /^(ProxyCommand|LocalCommand)[= ](.*)$/i.exec(args[i + 1]!.value!);
        if (m) this.line(m[2]!, depth + 1);
      }
    }
  }

  // ------------------------------------------------------------------------------------------
  // assignments and redirects

  assignment(node: Node, depth: number): void {
    const name = node.childForFieldName('name')?.text ?? '';
    const valueNode = node.childForFieldName('value');
    const value: Arg = valueNode ? { ...wordValue(valueNode), text: valueNode.text } : { value: '', expands: false, text: '' };
    this.environment(name, value, depth);
  }

  environment(name: string, value: Arg, depth: number): void {
    if (PROGRAM_RESOLUTION_VARIABLES.has(name) || name.startsWith('BASH_FUNC_')) {
      this.fail(`setting ${name} changes which programs run`, true);
    } else if (COMMAND_VARIABLES.has(name)) {
      if (value.value === null) this.fail(`${name} is set to a command that is not a literal`, true);
      else if (value.value !== '') this.line(value.value, depth + 1);
    }
  }

  redirect(node: Node): void {
    let op = '';
    for (const c of node.children) if (c !== null && !c.isNamed) op += c.text;
    if (!/^(>|>>|&>|&>>|>\||<>|>&)$/.test(op)) return;
    const dest = node.childForFieldName('destination');
    if (dest === null) return;
    if (op === '>&' && /^[0-9]+-?$|^-$/.test(dest.text)) return; // duplicating a descriptor
    const w = wordValue(dest);
    this.redirectTarget(w.value ?? dest.text);
  }

  redirectTarget(target: string): void {
    if (HARMLESS_REDIRECT_TARGETS.has(target)) return;
    if (!this.redirects.includes(target)) this.redirects.push(target);
  }

  // ------------------------------------------------------------------------------------------

  result(text: string): ShellAction {
    const action: ShellAction = {
      type: 'shell',
      kind: this.unknown ? 'unknown' : 'command',
      programs: this.programs,
      invocations: this.invocations,
      args: this.invocations.flatMap((i) => i.args),
      redirects: this.redirects,
      dynamic: this.dynamic,
      interpreters: this.interpreters,
      text,
    };
    if (this.reasons.length > 0) action.reason = this.reasons.join('; ');
    return action;
  }
}

/** Words that a program fills in at run time (`{}` of find -exec, xargs -I R) are not literals. */
function filledAtRunTime(args: Arg[], marker: string | null): Arg[] {
  if (marker === null || marker === '') return args;
  return args.map((a) => (a.value !== null && a.value.includes(marker) ? { ...a, value: null } : a));
}

/** Words bash reserves at command position; tree-sitter-bash sometimes accepts them as names. */
const RESERVED_WORDS: ReadonlySet<string> = new Set(['{', '}', '!', 'then', 'else', 'elif', 'fi', 'do', 'done', 'esac', 'in', '[[', ']]', 'function', 'select', 'until', 'while', 'for', 'if', 'case']);

/** GNU sed runs shell commands with the `e` command and the `e` flag of `s///`. */
function sedRunsCommands(script: string): boolean {
  return /(^|[;\n{}])\s*([0-9$,/~!]\S*\s*)?e(\s|$)/.test(script) || /(^|[;\n{}])\s*s(.).*\2.*\2[a-zA-Z0-9]*e/.test(script);
}
