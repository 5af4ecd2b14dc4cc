// The typed CEL environment policies' `if` conditions run in (@marcbachmann/cel-js).
//
// Variables and their fields come from the registry's fact schema (`identity`, `resource`, `sql`,
// `shell`, `ssh`, `sftp`, `forward`, `context`); functions from the registry's CEL declarations, with their handlers here.
// Every variable is always present: when the action is a shell command `sql` (and `sftp`, ...)
// holds zero values and so on, so every expression type-checks once and evaluates on every request.
//
// Load time (`compile`): syntax errors (HOOP3001), type errors (HOOP3002), non-boolean results
// (HOOP3003) and forbidden functions such as `.matches()` (HOOP3004: its regex engine backtracks)
// are reported as problems with offsets into the expression, for the engine to map onto the file.
// Run time: a program returns a boolean, or a `CelRuntimeError` value; it never throws.
//
// Integers are BigInt in cel-js. `sql.limit` is NO_LIMIT (the largest int) when the statement has
// no constant LIMIT; see NO_LIMIT in registry.ts for why that is the safe reading.

import { Environment, type ASTNode } from '@marcbachmann/cel-js';
import { RE2JS } from '@bufbuild/re2';
import type { Request, SftpAction, ShellAction, SqlAction, SqlEstimate, SshAction } from './facts.ts';
import { compileGlob, type GlobMatcher } from './glob.ts';
import { NO_LIMIT, type Registry } from './registry.ts';

export type CelProblemCode = 'HOOP3001' | 'HOOP3002' | 'HOOP3003' | 'HOOP3004';

/** A load-time problem; `start`/`end` are offsets into the expression source. */
export interface CelProblem {
  code: CelProblemCode;
  message: string;
  help?: string;
  start: number;
  end: number;
}

/** A condition failed to evaluate (a missing map key, a bad timestamp, a division by zero...). */
export interface CelRuntimeError {
  error: string;
}

/** A compiled condition: true/false, or an error value. Never throws. */
export type CelProgram = (activation: CelActivation) => boolean | CelRuntimeError;

export type CelCompileResult = { program: CelProgram; problems: [] } | { program?: undefined; problems: CelProblem[] };

// ---------------------------------------------------------------------------------------------
// The activation: one object per fact variable, of classes cel-js knows by constructor.

class CelIdentity {
  readonly sub: string;
  readonly groups: string[];
  readonly actor: string;
  readonly actors: string[];
  readonly client_id: string;
  readonly claims: Record<string, unknown>;
  readonly token_id: string;
  readonly issuer: string;
  constructor(req: Request) {
    const id = req.identity;
    this.sub = id.sub;
    this.groups = id.groups;
    this.actor = id.actor ?? '';
    this.actors = id.actors ?? (id.actor ? [id.actor] : NONE);
    this.client_id = id.client_id ?? '';
    this.claims = id.claims ?? {};
    this.token_id = id.token_id ?? '';
    this.issuer = id.issuer ?? '';
  }
}

class CelResource {
  readonly kind: string;
  readonly name: string;
  readonly labels: Record<string, string>;
  constructor(req: Request) {
    this.kind = req.resource.kind;
    this.name = req.resource.name;
    this.labels = req.resource.labels ?? {};
  }
}

const NONE: string[] = [];

/** `sql.estimate`: the planner's row count (int) and total cost (double). */
class CelEstimate {
  readonly rows: bigint;
  readonly cost: number;
  constructor(e: SqlEstimate) {
    this.rows = BigInt(Math.max(0, Math.round(e.rows)));
    this.cost = e.cost;
  }
}

class CelSql {
  readonly kind: string;
  readonly effects: string[];
  readonly reads: string[];
  readonly writes: string[];
  readonly columns: string[];
  readonly functions: string[];
  readonly has_where: boolean;
  readonly limit: bigint;
  readonly has_limit: boolean;
  readonly text: string;
  readonly normalized: string;
  readonly fingerprint: string;
  readonly reason: string;
  readonly #estimate: SqlEstimate | undefined;
  readonly #estimateError: string | undefined;
  readonly #isSql: boolean;
  constructor(action: SqlAction | undefined) {
    this.#isSql = action !== undefined;
    this.#estimate = action?.estimate;
    this.#estimateError = action?.estimateError;
    this.kind = action?.kind ?? '';
    this.effects = action?.effects ?? NONE;
    this.reads = action?.reads ?? NONE;
    this.writes = action?.writes ?? NONE;
    this.columns = action?.columns ?? NONE;
    this.functions = action?.functions ?? NONE;
    // Shell actions get `true`, like every SQL kind other than UPDATE/DELETE.
    this.has_where = action?.has_where ?? true;
    const limit = action?.limit;
    this.has_limit = typeof limit === 'number' && Number.isSafeInteger(limit);
    this.limit = this.has_limit ? BigInt(limit as number) : NO_LIMIT;
    this.text = action?.text ?? '';
    this.normalized = action?.normalized ?? '';
    this.fingerprint = action?.fingerprint ?? '';
    this.reason = action?.reason ?? '';
  }

  /** Read only by conditions that ask for it; no estimate is a run-time error (the rule blocks). */
  get estimate(): CelEstimate {
    if (this.#estimate) return new CelEstimate(this.#estimate);
    if (!this.#isSql) throw new Error('sql.estimate: the action is not SQL');
    throw new Error(`sql.estimate: no cost estimate for this statement${this.#estimateError ? `: ${this.#estimateError}` : ''}`);
  }

  /** For explanations: the estimate, or null. */
  estimateFacts(): SqlEstimate | null {
    return this.#estimate ?? null;
  }
}

class CelShell {
  readonly kind: string;
  readonly programs: string[];
  readonly invocations: { program: string; args: string[] }[];
  readonly args: string[];
  readonly redirects: string[];
  readonly dynamic: boolean;
  readonly interpreters: string[];
  readonly text: string;
  readonly reason: string;
  constructor(action: ShellAction | undefined) {
    this.kind = action?.kind ?? '';
    this.programs = action?.programs ?? NONE;
    this.invocations = action?.invocations ?? [];
    this.args = action?.args ?? NONE;
    this.redirects = action?.redirects ?? NONE;
    this.dynamic = action?.dynamic ?? false;
    this.interpreters = action?.interpreters ?? NONE;
    this.text = action?.text ?? '';
    this.reason = action?.reason ?? '';
  }
}

/** `ssh`: a shell, forward or other channel request (zero values for commands, files and SQL). */
class CelSsh {
  readonly kind: string;
  readonly pty: boolean;
  readonly term: string;
  readonly request: string;
  constructor(action: SshAction | undefined) {
    this.kind = action?.kind ?? '';
    this.pty = action?.pty ?? false;
    this.term = action?.term ?? '';
    this.request = action?.request ?? '';
  }
}

/** `sftp`: a file operation (SFTP, legacy scp, rsync). */
class CelSftp {
  readonly op: string;
  readonly path: string;
  readonly target: string;
  readonly via: string;
  constructor(action: SftpAction | undefined) {
    this.op = action?.kind ?? '';
    this.path = action?.path ?? '';
    this.target = action?.target ?? '';
    this.via = action?.via ?? '';
  }
}

/** `forward`: a direct-tcpip forward's destination. */
class CelForward {
  readonly host: string;
  readonly port: bigint;
  constructor(action: SshAction | undefined) {
    this.host = action?.forward?.host ?? '';
    this.port = BigInt(action?.forward?.port ?? 0);
  }
}

class CelContext {
  readonly client_addr: string;
  readonly session_id: string;
  readonly #time: string;
  constructor(req: Request) {
    this.client_addr = req.context?.client_addr ?? '';
    this.session_id = req.context?.session_id ?? '';
    this.#time = req.context?.time ?? '';
  }
  /** Parsed on first use; an unparseable time makes the condition that reads it fail (a block). */
  get time(): Date {
    const date = new Date(this.#time);
    if (Number.isNaN(date.getTime())) throw new Error(`context.time is not a valid timestamp: ${JSON.stringify(this.#time)}`);
    return date;
  }
}

export interface CelActivation {
  identity: CelIdentity;
  resource: CelResource;
  sql: CelSql;
  shell: CelShell;
  ssh: CelSsh;
  sftp: CelSftp;
  forward: CelForward;
  context: CelContext;
}

/** The CEL view of a request (build it once per request, only when a condition runs). */
export function celActivation(req: Request): CelActivation {
  const action = req.action;
  return {
    identity: new CelIdentity(req),
    resource: new CelResource(req),
    sql: new CelSql(action.type === 'sql' ? action : undefined),
    shell: new CelShell(action.type === 'shell' ? action : undefined),
    ssh: new CelSsh(action.type === 'ssh' ? action : undefined),
    sftp: new CelSftp(action.type === 'sftp' ? action : undefined),
    forward: new CelForward(action.type === 'ssh' && action.kind === 'forward' ? action : undefined),
    context: new CelContext(req),
  };
}

/** The activation as plain JSON (BigInt as a number when safe, else a string), for explanations. */
export function celFacts(activation: CelActivation): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = {};
  for (const [name, value] of Object.entries(activation)) {
    const fields: Record<string, unknown> = {};
    for (const key of Object.keys(value)) {
      const v = (value as unknown as Record<string, unknown>)[key];
      fields[key] = typeof v === 'bigint' ? (v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString()) : v;
    }
    if (value instanceof CelSql) fields.estimate = value.estimateFacts();
    if (value instanceof CelContext) {
      try {
        fields.time = value.time.toISOString();
      } catch {
        fields.time = null;
      }
    }
    out[name] = fields;
  }
  return out;
}

const CTORS: Record<string, new (...args: never[]) => object> = {
  'hoop.Identity': CelIdentity,
  'hoop.Resource': CelResource,
  'hoop.Sql': CelSql,
  'hoop.Shell': CelShell,
  'hoop.Ssh': CelSsh,
  'hoop.Sftp': CelSftp,
  'hoop.Forward': CelForward,
  'hoop.Context': CelContext,
};

/** Message types of fields (not variables): name → constructor and field types. */
const NESTED_TYPES: Record<string, { ctor: new (...args: never[]) => object; fields: Record<string, string> }> = {
  'hoop.SqlEstimate': { ctor: CelEstimate, fields: { rows: 'int', cost: 'double' } },
};

// ---------------------------------------------------------------------------------------------
// Function handlers, by declared name.

/** Compiled RE2 patterns, bounded so request-supplied patterns cannot grow memory without limit. */
const re2Cache = new Map<string, RE2JS>();
const globCache = new Map<string, GlobMatcher>();
const CACHE_LIMIT = 1024;
const PROGRAM_CACHE_LIMIT = 65_536;

function cached<T>(cache: Map<string, T>, key: string, make: (key: string) => T): T {
  let value = cache.get(key);
  if (value === undefined) {
    value = make(key);
    if (cache.size >= CACHE_LIMIT) cache.clear();
    cache.set(key, value);
  }
  return value;
}

const HANDLERS: Record<string, (...args: never[]) => unknown> = {
  // RE2JS `test` is an unanchored search; a bad pattern throws, which fails the condition closed.
  re2_matches: (text: string, pattern: string) => cached(re2Cache, pattern, (p) => RE2JS.compile(p)).test(text),
  glob: (text: string, pattern: string) => cached(globCache, pattern, compileGlob)(text),
};

// ---------------------------------------------------------------------------------------------
// The environment.

export class CelEnvironment {
  readonly #env: Environment;
  readonly #forbidden: ReadonlyMap<string, string>;
  readonly #programs = new Map<string, CelCompileResult>();

  constructor(registry: Registry) {
    let env = new Environment();
    for (const [name, type] of Object.entries(NESTED_TYPES)) env = env.registerType(name, type);
    for (const variable of registry.facts) {
      const ctor = CTORS[variable.typeName];
      if (!ctor) throw new Error(`internal error: no activation class for CEL type ${variable.typeName}`);
      const fields = Object.fromEntries(variable.fields.map((f) => [f.name, f.type]));
      env = env.registerType(variable.typeName, { ctor, fields });
      env = env.registerVariable(variable.name, variable.typeName, { description: variable.description });
    }
    for (const fn of registry.celFunctions.values()) {
      const handler = HANDLERS[fn.name];
      if (!handler) throw new Error(`internal error: no handler for CEL function ${fn.name}`);
      env = env.registerFunction(fn.signature, handler as (...args: unknown[]) => unknown, { description: fn.description });
    }
    this.#env = env;
    this.#forbidden = registry.forbiddenCelFunctions;
  }

  /** Type-check and compile a condition; results are cached by source text. */
  compile(source: string): CelCompileResult {
    let result = this.#programs.get(source);
    if (!result) {
      result = this.#compile(source);
      // Bounded: a long-running gateway reloads policies; old conditions must not pile up.
      if (this.#programs.size >= PROGRAM_CACHE_LIMIT) this.#programs.clear();
      this.#programs.set(source, result);
    }
    return result;
  }

  #compile(source: string): CelCompileResult {
    let parsed: ReturnType<Environment['parse']>;
    try {
      parsed = this.#env.parse(source);
    } catch (error) {
      return { problems: [problemFrom('HOOP3001', error, source)] };
    }
    const forbidden = this.#findForbidden(parsed.ast);
    if (forbidden.length > 0) return { problems: forbidden };
    const checked = parsed.check();
    if (!checked.valid) {
      const code = checked.error?.name === 'ParseError' ? 'HOOP3001' : 'HOOP3002';
      return { problems: [problemFrom(code, checked.error, source)] };
    }
    // `dyn` (e.g. a claim) may be a bool at run time; a non-bool value then fails the rule closed.
    if (checked.type !== 'bool' && checked.type !== 'dyn') {
      return {
        problems: [{
          code: 'HOOP3003',
          message: `condition has type \`${checked.type}\`, expected \`bool\``,
          help: 'a condition must be true or false; compare the value, e.g. `size(x) > 0`',
          start: 0,
          end: source.length,
        }],
      };
    }
    const run = parsed;
    const program: CelProgram = (activation) => {
      try {
        const value = run(activation);
        return typeof value === 'boolean' ? value : { error: `condition evaluated to ${describe(value)}, not a bool` };
      } catch (error) {
        return { error: firstLine(error) };
      }
    };
    return { program, problems: [] };
  }

  #findForbidden(root: ASTNode): CelProblem[] {
    const problems: CelProblem[] = [];
    const visit = (node: unknown): void => {
      if (Array.isArray(node)) {
        for (const item of node) visit(item);
        return;
      }
      if (!isAstNode(node)) return;
      const name = node.op === 'call' || node.op === 'rcall' ? (node.args as unknown[])[0] : undefined;
      if (typeof name === 'string' && this.#forbidden.has(name)) {
        problems.push({
          code: 'HOOP3004',
          message: `\`${name}\` is not allowed in conditions`,
          help: this.#forbidden.get(name),
          start: node.range.start,
          end: node.range.end,
        });
      }
      visit(node.args);
    };
    visit(root);
    return problems;
  }
}

function isAstNode(value: unknown): value is ASTNode {
  return typeof value === 'object' && value !== null && 'op' in value && 'range' in value;
}

function problemFrom(code: CelProblemCode, error: unknown, source: string): CelProblem {
  const e = error as { summary?: string; message?: string; range?: { start: number; end: number } } | undefined;
  const start = Math.max(0, Math.min(e?.range?.start ?? 0, source.length));
  const end = Math.max(start, Math.min(e?.range?.end ?? source.length, source.length));
  return { code, message: e?.summary ?? firstLine(error), start, end };
}

function firstLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.split('\n')[0] ?? text;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'bigint') return `${value} (int)`;
  if (typeof value === 'string') return JSON.stringify(value);
  return typeof value;
}

/** One environment per registry (building one is expensive). */
const environments = new WeakMap<Registry, CelEnvironment>();

export function celEnvironment(registry: Registry): CelEnvironment {
  let env = environments.get(registry);
  if (!env) {
    env = new CelEnvironment(registry);
    environments.set(registry, env);
  }
  return env;
}
