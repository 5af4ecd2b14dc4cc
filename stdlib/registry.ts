// The standard library's declarations, as data (OPA's `ast/builtins.go` style): every masker,
// detector and CEL function a policy may name, with its signature and a description, plus the
// schema of the facts CEL conditions see. The engine's check stage, the CEL environment and the
// docs all read these declarations; implementations live elsewhere (`stdlib/maskers/`,
// `stdlib/detectors/`, the CEL handlers in `stdlib/cel.ts`) and are looked up by name.
//
// Nothing registers itself at import time: callers build a registry with `defaultRegistry()` (or
// their own) and pass it in explicitly, as Cedar passes its extensions.

import { RE2JS } from '@bufbuild/re2';

/** Argument types of masker and detector parameters. `re2` is a string that must compile as RE2. */
export type ParamType = 'int' | 'string' | 're2';

export interface ParamDecl {
  name: string;
  type: ParamType;
  description: string;
  /** For `int`: the smallest accepted value. */
  min?: number;
}

export interface MaskerDecl {
  category: 'masker';
  name: string;
  description: string;
  params: readonly ParamDecl[];
  /** The same input always gives the same output (joins on masked values still work). */
  deterministic: boolean;
}

export interface DetectorDecl {
  category: 'detector';
  name: string;
  description: string;
  params: readonly ParamDecl[];
}

export interface CelFunctionDecl {
  category: 'cel';
  name: string;
  /** cel-js overload signature, e.g. `re2_matches(string, string): bool`. */
  signature: string;
  description: string;
  params: readonly { name: string; description: string }[];
  deterministic: boolean;
}

/** A field of a CEL fact variable; `type` is a cel-js type string. */
export interface FactField {
  name: string;
  type: string;
  description: string;
}

/** A top-level CEL variable (`identity`, `sql`, ...) and its fields. */
export interface FactVariable {
  name: string;
  /** The CEL message type name the variable is declared with. */
  typeName: string;
  description: string;
  fields: readonly FactField[];
}

export interface Registry {
  maskers: ReadonlyMap<string, MaskerDecl>;
  detectors: ReadonlyMap<string, DetectorDecl>;
  celFunctions: ReadonlyMap<string, CelFunctionDecl>;
  facts: readonly FactVariable[];
  /** CEL functions rejected at load time, with the advice shown instead (e.g. `matches`). */
  forbiddenCelFunctions: ReadonlyMap<string, string>;
}

/**
 * The value `sql.limit` holds when a statement has no constant LIMIT: the largest CEL int.
 * "No limit" means "unbounded", so `sql.limit <= 1000` is false and `sql.limit > 1000` is true
 * for an unbounded query, which is the safe reading; `sql.has_limit` tells the two apart.
 */
export const NO_LIMIT = 9223372036854775807n;

const MASKERS: MaskerDecl[] = [
  { category: 'masker', name: 'redact', description: 'Replace the whole value with a fixed placeholder.', params: [], deterministic: true },
  { category: 'masker', name: 'null', description: 'Replace the value with SQL NULL.', params: [], deterministic: true },
  { category: 'masker', name: 'email', description: 'Keep the domain of an e-mail address and hide the local part.', params: [], deterministic: true },
  { category: 'masker', name: 'last4', description: 'Keep only the last four characters (card and account numbers).', params: [], deterministic: true },
  { category: 'masker', name: 'hash', description: 'Keyed HMAC of the value: stable, so joins and grouping still work.', params: [], deterministic: true },
  {
    category: 'masker',
    name: 'partial',
    description: 'Keep the first n characters and hide the rest.',
    params: [{ name: 'n', type: 'int', min: 0, description: 'How many leading characters stay visible.' }],
    deterministic: true,
  },
];

const DETECTORS: DetectorDecl[] = [
  { category: 'detector', name: 'email', description: 'E-mail addresses.', params: [] },
  { category: 'detector', name: 'credit_card', description: 'Payment card numbers that pass the Luhn check.', params: [] },
  { category: 'detector', name: 'us_ssn', description: 'US social security numbers.', params: [] },
  { category: 'detector', name: 'phone', description: 'Telephone numbers.', params: [] },
  { category: 'detector', name: 'iban', description: 'International bank account numbers (checksum verified).', params: [] },
  { category: 'detector', name: 'jwt', description: 'JSON Web Tokens.', params: [] },
  { category: 'detector', name: 'api_key', description: 'Well-known API key and secret formats.', params: [] },
  {
    category: 'detector',
    name: 'regex',
    description: 'Any value containing a match of the pattern (RE2 semantics, linear time).',
    params: [{ name: 'pattern', type: 're2', description: 'An RE2 regular expression, searched unanchored.' }],
  },
];

const CEL_FUNCTIONS: CelFunctionDecl[] = [
  {
    category: 'cel',
    name: 're2_matches',
    signature: 're2_matches(string, string): bool',
    description: 'Whether the text contains a match of the RE2 pattern (unanchored; use ^...$ to anchor). Linear time.',
    params: [
      { name: 'text', description: 'The text searched.' },
      { name: 'pattern', description: 'An RE2 regular expression.' },
    ],
    deterministic: true,
  },
  {
    category: 'cel',
    name: 'glob',
    signature: 'glob(string, string): bool',
    description: 'Whether the whole text matches the glob (`*` any run, `?` one character), case-sensitively.',
    params: [
      { name: 'text', description: 'The text matched.' },
      { name: 'pattern', description: 'The glob.' },
    ],
    deterministic: true,
  },
];

const list = 'list<string>';

/** The fact schema CEL conditions are type-checked against (mirrors stdlib/facts.ts). */
const FACTS: FactVariable[] = [
  {
    name: 'identity',
    typeName: 'hoop.Identity',
    description: 'Who is asking: the verified token of the agent.',
    fields: [
      { name: 'sub', type: 'string', description: 'The token subject (the agent).' },
      { name: 'groups', type: list, description: 'Groups from the configured groups claim.' },
      { name: 'actor', type: 'string', description: 'RFC 8693 act.sub: on whose behalf; "" when absent.' },
      { name: 'actors', type: list, description: 'The whole RFC 8693 act chain, outermost first (actor is the first); [] when absent.' },
      { name: 'client_id', type: 'string', description: 'The OAuth client the token was issued to (azp, else client_id); "" when absent.' },
      { name: 'claims', type: 'map<string, dyn>', description: 'Every claim of the token, verbatim.' },
      { name: 'token_id', type: 'string', description: 'The token id (jti); "" when absent.' },
      { name: 'issuer', type: 'string', description: 'The token issuer (iss); "" when absent.' },
    ],
  },
  {
    name: 'resource',
    typeName: 'hoop.Resource',
    description: 'The resource the request is for, as configured in the gateway.',
    fields: [
      { name: 'kind', type: 'string', description: '`postgres` or `ssh`.' },
      { name: 'name', type: 'string', description: 'The configured resource name.' },
      { name: 'labels', type: 'map<string, string>', description: 'Configured labels.' },
    ],
  },
  {
    name: 'sql',
    typeName: 'hoop.Sql',
    description: 'Facts about the SQL statement; zero values when the action is a shell command.',
    fields: [
      { name: 'kind', type: 'string', description: 'The worst effect of the statement; "" for shell actions.' },
      { name: 'effects', type: list, description: 'Every effect found in the statement, worst first.' },
      { name: 'reads', type: list, description: 'Tables read, schema-qualified.' },
      { name: 'writes', type: list, description: 'Tables written, schema-qualified.' },
      { name: 'columns', type: list, description: 'Columns referenced.' },
      { name: 'functions', type: list, description: 'Functions called.' },
      { name: 'has_where', type: 'bool', description: 'UPDATE/DELETE: a WHERE clause is present; true for every other kind (and for shell actions).' },
      { name: 'limit', type: 'int', description: 'The constant LIMIT; 9223372036854775807 (unbounded) when there is none.' },
      { name: 'has_limit', type: 'bool', description: 'Whether the statement has a constant LIMIT.' },
      { name: 'text', type: 'string', description: 'The statement text as sent.' },
      { name: 'normalized', type: 'string', description: 'The text with constants replaced by $n.' },
      { name: 'fingerprint', type: 'string', description: 'Stable fingerprint of the normalised statement.' },
      { name: 'reason', type: 'string', description: 'Why the kind is unknown/do, or "".' },
      { name: 'estimate', type: 'hoop.SqlEstimate', description: 'The planner\'s estimate from the upstream\'s EXPLAIN (FORMAT JSON): `rows` (int; for UPDATE/DELETE/MERGE the rows it expects to touch) and `cost` (double). Asked only when a condition reads it; when there is none (a statement kind EXPLAIN is not run for, an EXPLAIN error) reading it is a run-time error, so the rule blocks.' },
    ],
  },
  {
    name: 'shell',
    typeName: 'hoop.Shell',
    description: 'Facts about the shell command line; zero values when the action is SQL.',
    fields: [
      { name: 'kind', type: 'string', description: '`command` or `unknown`; "" for SQL actions.' },
      { name: 'programs', type: list, description: 'Every program that would run, normalised.' },
      { name: 'invocations', type: 'list<map<string, dyn>>', description: 'One {program, args} map per invocation.' },
      { name: 'args', type: list, description: 'The literal arguments of all invocations.' },
      { name: 'redirects', type: list, description: 'Write redirection targets.' },
      { name: 'dynamic', type: 'bool', description: 'Some program name is not a literal.' },
      { name: 'interpreters', type: list, description: 'Programs that interpret code from their arguments.' },
      { name: 'text', type: 'string', description: 'The command line as sent.' },
      { name: 'reason', type: 'string', description: 'Why the kind is unknown, or "".' },
    ],
  },
  {
    name: 'ssh',
    typeName: 'hoop.Ssh',
    description: 'An ssh channel request that is neither a command nor a file operation (a shell, a port forward, agent/X11 forwarding, a subsystem); zero values for every other action.',
    fields: [
      { name: 'kind', type: 'string', description: '`interactive` (a shell), `forward` (direct-tcpip) or `unknown` (agent, x11, a subsystem, a global request); "" for other actions.' },
      { name: 'pty', type: 'bool', description: 'A shell: the client asked for a PTY.' },
      { name: 'term', type: 'string', description: 'A shell with a PTY: the client\'s TERM; "" otherwise.' },
      { name: 'request', type: 'string', description: 'kind unknown: what was asked (`agent`, `x11`, `subsystem:NAME`, `global:NAME`); "" otherwise.' },
    ],
  },
  {
    name: 'sftp',
    typeName: 'hoop.Sftp',
    description: 'A file operation on an ssh resource (an SFTP request, a legacy scp or an rsync transfer); zero values for every other action.',
    fields: [
      { name: 'op', type: 'string', description: '`read`, `write`, `list`, `stat`, `remove`, `rename`, `mkdir`, `rmdir`, `symlink` or `setstat`; "" for other actions.' },
      { name: 'path', type: 'string', description: 'The normalised absolute path (links resolved for SFTP).' },
      { name: 'target', type: 'string', description: 'rename/symlink: the second path, normalised the same way; "" otherwise.' },
      { name: 'via', type: 'string', description: 'How it arrived: `sftp`, `scp` (legacy `scp -t/-f`) or `rsync`; "" for other actions.' },
    ],
  },
  {
    name: 'forward',
    typeName: 'hoop.Forward',
    description: 'A direct-tcpip port forward (`ssh -L`, `-W`, ProxyJump); zero values for every other action.',
    fields: [
      { name: 'host', type: 'string', description: 'The destination host as the client asked for it; "" for other actions.' },
      { name: 'port', type: 'int', description: 'The destination port; 0 for other actions.' },
    ],
  },
  {
    name: 'context',
    typeName: 'hoop.Context',
    description: 'Where and when the request happens.',
    fields: [
      { name: 'time', type: 'google.protobuf.Timestamp', description: 'The request time (a CEL timestamp).' },
      { name: 'client_addr', type: 'string', description: 'The client address.' },
      { name: 'session_id', type: 'string', description: 'The gateway session id.' },
    ],
  },
];

const byName = <T extends { name: string }>(items: T[]): ReadonlyMap<string, T> =>
  new Map(items.map((item) => [item.name, item]));

/** The standard registry. Returns a fresh value; callers may extend a copy of it. */
export function defaultRegistry(): Registry {
  return {
    maskers: byName(MASKERS),
    detectors: byName(DETECTORS),
    celFunctions: byName(CEL_FUNCTIONS),
    facts: FACTS,
    forbiddenCelFunctions: new Map([
      ['matches', 'use re2_matches(text, pattern): RE2 semantics, linear time'],
    ]),
  };
}

/** A problem with one argument (or with the argument count, then `index` is -1). */
export interface ArgProblem {
  index: number;
  message: string;
  help?: string;
}

/**
 * Check the arguments a policy gives a masker or detector against its declaration: the count, the
 * types, the minimum of ints, and that `re2` patterns compile (RE2 rejects backreferences and
 * lookaround, which is what keeps matching linear).
 */
export function checkArgs(
  decl: MaskerDecl | DetectorDecl,
  args: readonly (number | string)[],
): ArgProblem[] {
  const params = decl.params;
  if (args.length !== params.length) {
    const want = params.length === 0 ? 'no arguments' : `${params.length} argument${params.length > 1 ? 's' : ''}`;
    const usage = params.length === 0 ? decl.name : `${decl.name}(${params.map((p) => p.name).join(', ')})`;
    return [{ index: -1, message: `${decl.category} \`${decl.name}\` takes ${want}, got ${args.length}`, help: `write \`${usage}\`` }];
  }
  const problems: ArgProblem[] = [];
  params.forEach((param, index) => {
    const arg = args[index];
    if (param.type === 'int') {
      if (typeof arg !== 'number' || !Number.isInteger(arg)) {
        problems.push({ index, message: `\`${param.name}\` of \`${decl.name}\` must be an integer` });
      } else if (param.min !== undefined && arg < param.min) {
        problems.push({ index, message: `\`${param.name}\` of \`${decl.name}\` must be at least ${param.min}, got ${arg}` });
      }
    } else if (typeof arg !== 'string') {
      problems.push({ index, message: `\`${param.name}\` of \`${decl.name}\` must be a string` });
    } else if (param.type === 're2') {
      const error = re2Error(arg);
      if (error !== undefined) {
        problems.push({
          index,
          message: `invalid regular expression: ${error}`,
          help: 'patterns use RE2 syntax: no backreferences or lookaround',
        });
      }
    }
  });
  return problems;
}

/** The RE2 compile error for a pattern, or undefined when it compiles. */
export function re2Error(pattern: string): string | undefined {
  try {
    RE2JS.compile(pattern);
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}
