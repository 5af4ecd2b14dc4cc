// `match ssh interactive`, `match sftp ... on paths [...]` and `match forward to [...]` against an
// action: one predicate shared by the evaluator (as a residual) and the reference interpreter.

import type { Action } from '../stdlib/facts.ts';
import { globMatch } from '../stdlib/glob.ts';
import type { ForwardMatchIR, SftpMatchIR, SshMatchIR } from './tree.ts';

export type SshLikeMatch = SshMatchIR | SftpMatchIR | ForwardMatchIR;

/**
 * Path globs: `*` and `?` as everywhere (a `*` also crosses `/`), and a glob ending in `/**` also
 * matches the folder itself (`/var/log/**` matches `/var/log`, so listing it is covered).
 */
export function pathMatches(glob: string, path: string): boolean {
  if (globMatch(glob, path)) return true;
  return glob.endsWith('/**') && path === (glob.slice(0, -3) || '/');
}

/** Why the action does not match, or null when it does. */
export function sshMismatch(match: SshLikeMatch, action: Action): string | null {
  switch (match.type) {
    case 'ssh':
      if (action.type !== 'ssh' || action.kind !== 'interactive') return 'the rule matches interactive ssh sessions and the action is not one';
      return null;
    case 'forward': {
      if (action.type !== 'ssh' || action.kind !== 'forward' || !action.forward) return 'the rule matches port forwards and the action is not one';
      const host = action.forward.host.includes(':') ? `[${action.forward.host}]` : action.forward.host;
      const target = `${host}:${action.forward.port}`;
      return match.targets.some((g) => globMatch(g, target)) ? null : `forward target ${target} matches none of ${JSON.stringify(match.targets)}`;
    }
    case 'sftp': {
      if (action.type !== 'sftp') return 'the rule matches file operations and the action is not one';
      if (match.ops !== null && !match.ops.includes(action.kind)) return `sftp operation ${action.kind} is not in [${match.ops.join(', ')}]`;
      if (match.paths !== null) {
        const paths = match.paths;
        if (!paths.some((g) => pathMatches(g, action.path))) return `path ${action.path} matches none of ${JSON.stringify(paths)}`;
        // A rename moves the file to its target: both ends must be covered.
        if (action.kind === 'rename' && action.target !== undefined && !paths.some((g) => pathMatches(g, action.target!))) {
          return `rename target ${action.target} matches none of ${JSON.stringify(paths)}`;
        }
      }
      return null;
    }
  }
}
