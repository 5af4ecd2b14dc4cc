// The generative shell differential through the SSH front door: fast-check builds command lines
// (conformance/arbitraries/shell-lines.ts) that hide a program the read-only policy does not allow,
// mixed with lines it allows, and sends each as an exec request over one SSH connection to the
// gateway in front of a real OpenSSH sshd. The upstream runs what it is sent for real, under bash,
// but with an empty PATH: every program bash tries to run (builtins that run or change things
// disabled with `enable -n`, so they are looked up as programs too) reaches
// `command_not_found_handle`, which notes its name and runs nothing. The oracle, for every line:
// - refused by the gateway (exit 126, `hoop: blocked`): nothing reached the upstream;
// - forwarded: every program bash tried is one the policy allows, and the scratch directory (a
//   canary file, everything else in it) is unchanged: an output redirection the gateway missed
//   shows there.
// What it cannot see: a line that names a program by absolute path runs that program (the
// grammar never generates one; stdlib/shell/corpus.ts covers them against the classifier).
//
// It found `ls<newline>\rm x`: tree-sitter-bash read the second line as an argument of `ls`, so a
// read-only policy let bash run rm (stdlib/shell/classify.ts now gives up on such a parse).
//
// HOOP_PROPERTY_RUNS raises the number of cases, as everywhere.

import fc from 'fast-check';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client as ClientT } from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectThrough, execOn, startSshTestGateway, type SshTestGateway } from '../proxy/ssh/test-support.ts';
import { startSshd, type Sshd } from '../testing/sshd.ts';
import { ALLOWED_PROGRAMS, CANARY, shellLineGrammar } from './arbitraries/shell-lines.ts';
import { propertyRuns, propertyTimeout } from './runs.ts';

const READ_ONLY = `package t
default block "this host is read-only"

rule read_only {
  on ssh("bastion-*")
  match shell [${ALLOWED_PROGRAMS.map((p) => JSON.stringify(p)).join(', ')}]
  if \`size(shell.redirects) == 0\`
  allow
}
`;
// An exec costs sshd a session (a few hundred ms here, most of it sshd's own set-up): fewer cases
// than the SQL differentials, HOOP_PROPERTY_RUNS for a soak.
const RUNS = Math.ceil(propertyRuns() / 20);
const CANARY_TEXT = 'a line of the canary\nanother, with an a\n';
// Builtins that run something, read input, change the shell or write: disabled, so bash looks
// them up as programs (and the handler notes them). `export` goes last: the prefix uses it.
const DISABLED = ['echo', 'printf', 'kill', 'exec', 'command', 'builtin', 'eval', 'source', '.', 'test', '[', 'read', 'trap', 'ulimit', 'umask', 'pwd', 'type', 'hash', 'times', 'mapfile', 'readarray', 'let', 'declare', 'typeset', 'local', 'readonly', 'unset', 'shopt', 'alias', 'cd', 'pushd', 'popd', 'wait', 'export', 'enable'];

let sshd: Sshd;
let gw: SshTestGateway;
let conn: ClientT;
let root: string;
/** The upstream's working directory for every line. */
let scratch: string;
/** One empty file per program name bash tried to run. */
let ran: string;
/** Every line sshd was asked to run, as it arrived. */
let forwardedLog: string;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'hoop-ssh-diff-'));
  scratch = join(root, 'scratch');
  ran = join(root, 'ran');
  forwardedLog = join(root, 'forwarded.log');
  mkdirSync(scratch);
  mkdirSync(ran);
  writeFileSync(join(scratch, CANARY), CANARY_TEXT);
  const prefix = `command_not_found_handle() { : >> "$HOOP_RAN/\${1//\\//%}"; return 127; }; export -f command_not_found_handle; enable -n ${DISABLED.join(' ')}`;
  writeFileSync(join(root, 'prefix.sh'), prefix);
  writeFileSync(
    join(root, 'run.sh'),
    `#!/bin/sh
printf '%s\\n\\036\\n' "$SSH_ORIGINAL_COMMAND" >> '${forwardedLog}'
cd '${scratch}' || exit 99
exec /usr/bin/env -i PATH=/nonexistent HOOP_RAN='${ran}' /bin/bash -c "$(cat '${join(root, 'prefix.sh')}')
$SSH_ORIGINAL_COMMAND"
`,
    { mode: 0o755 },
  );
  sshd = await startSshd({ config: [`ForceCommand ${join(root, 'run.sh')}`] });
  gw = await startSshTestGateway(sshd, READ_ONLY);
  const token = await gw.token({ ttlMs: 3_000_000 });
  conn = await connectThrough(gw, token);
}, 120_000);

afterAll(async () => {
  conn?.end();
  await gw?.close();
  await sshd?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});


/** The scratch directory: every entry's name, kind, mode and size, and the canary's text. */
function scratchState(): string {
  const entries = readdirSync(scratch).sort().map((n) => {
    const s = statSync(join(scratch, n), { throwIfNoEntry: false });
    return s ? `${n} ${s.isDirectory() ? 'dir' : 'file'} ${(s.mode & 0o7777).toString(8)} ${s.size}` : `${n} gone`;
  });
  let canary = '';
  try {
    canary = readFileSync(join(scratch, CANARY), 'utf8');
  } catch (e) {
    canary = String((e as Error).message);
  }
  return `${entries.join('\n')}\n--\n${canary}`;
}

function programsRan(): string[] {
  const names = readdirSync(ran).map((n) => n.replace(/%/g, '/')).sort();
  for (const n of readdirSync(ran)) rmSync(join(ran, n));
  return names;
}

function forwardedLines(): string[] {
  let text = '';
  try {
    text = readFileSync(forwardedLog, 'utf8');
  } catch {
    return [];
  }
  rmSync(forwardedLog);
  return text.split('\n\u001e\n').filter((l) => l !== '');
}

type Verdict = { forwarded: boolean; problems: string[] };

let clean = '';

async function check(line: string): Promise<Verdict> {
  const r = await execOn(conn, line, { endStdin: true });
  const forwarded = forwardedLines();
  const programs = programsRan();
  const state = scratchState();
  const problems: string[] = [];
  const refused = r.code === 126 && r.stderr.startsWith('hoop: blocked');
  if (refused) {
    if (forwarded.length) problems.push(`refused (${r.stderr.trim()}), yet the upstream was asked to run ${JSON.stringify(forwarded)}`);
    if (programs.length) problems.push(`refused, yet bash ran ${programs.join(', ')}`);
  } else {
    if (forwarded.length !== 1 || forwarded[0] !== line) problems.push(`forwarded ${JSON.stringify(forwarded)} for one line (exit ${r.code}, stderr ${JSON.stringify(r.stderr.slice(0, 200))})`);
    const bad = programs.filter((p) => !(ALLOWED_PROGRAMS as readonly string[]).includes(p));
    if (bad.length) problems.push(`forwarded, and bash ran ${bad.join(', ')}, which the policy does not allow`);
  }
  if (state !== clean) {
    problems.push(`the scratch directory changed:\n${state}`);
    // Back to the clean state for the next case.
    for (const n of readdirSync(scratch)) rmSync(join(scratch, n), { recursive: true, force: true });
    writeFileSync(join(scratch, CANARY), CANARY_TEXT);
  }
  return { forwarded: !refused, problems };
}

describe('the shell oracle', () => {
  it('sees what bash tries to run, and a write, through a direct connection to sshd', () => {
    clean = scratchState();
    const direct = (line: string): void => {
      try {
        sshd.ssh(line);
      } catch {
        /* the line's own exit status (a program not found is 127) */
      }
    };
    direct('ls -l; r""m -f canary; $(printf touch) made; echo hi; sh -c "mv canary x"');
    // `$(printf touch) made`: printf is disabled, so the substitution is empty and bash runs `made`.
    expect(programsRan()).toEqual(['echo', 'ls', 'made', 'printf', 'rm', 'sh']);
    direct('cat canary > made');
    expect(scratchState()).not.toBe(clean);
    expect(programsRan()).toEqual(['cat']);
    for (const n of readdirSync(scratch)) rmSync(join(scratch, n), { recursive: true, force: true });
    writeFileSync(join(scratch, CANARY), CANARY_TEXT);
    expect(scratchState()).toBe(clean);
    forwardedLines();
  });

  it('through the gateway: an allowed line runs its programs, a hidden write is refused and nothing reaches the upstream', async () => {
    expect(await check('ls -l | grep a')).toEqual({ forwarded: true, problems: [] });
    expect(await check('ls; r""m -f canary')).toEqual({ forwarded: false, problems: [] });
    expect(await check('cat canary > made')).toEqual({ forwarded: false, problems: [] });
  });
});

describe('generated shell lines under a read-only policy', () => {
  it(
    'run nothing the policy does not allow and change nothing upstream',
    async () => {
      const grammar = shellLineGrammar();
      const stats = { cases: 0, forwarded: 0, refused: 0 };
      const found: string[] = [];
      await fc.assert(
        fc.asyncProperty(grammar.line, async (line) => {
          stats.cases++;
          const v = await check(line);
          if (v.forwarded) stats.forwarded++;
          else stats.refused++;
          if (v.problems.length) {
            found.push(`${JSON.stringify(line)}\n${v.problems.join('\n')}`);
            throw new Error(found.at(-1));
          }
        }),
        { numRuns: RUNS },
      );
      console.log(`SSH shell differential: ${stats.cases} lines, forwarded ${stats.forwarded}, refused ${stats.refused}`);
      expect(found).toEqual([]);
      // Both sides must be exercised: lines that go through and lines that are refused.
      expect(stats.forwarded).toBeGreaterThan(stats.cases * 0.2);
      expect(stats.refused).toBeGreaterThan(stats.cases * 0.2);
    },
    propertyTimeout(200),
  );
});
