import { describe, expect, it } from 'vitest';
import { celActivation, celEnvironment, celFacts } from './cel.ts';
import type { Request } from './facts.ts';
import { defaultRegistry, NO_LIMIT } from './registry.ts';

const env = celEnvironment(defaultRegistry());

function sqlRequest(over: Partial<Request['action']> = {}, context: Partial<Request['context']> = {}): Request {
  return {
    identity: { sub: 'ci-7', groups: ['ops'], claims: { team: 'data', level: 3 } },
    resource: { kind: 'postgres', name: 'prod-main', labels: { env: 'prod' } },
    action: { type: 'sql', kind: 'select', effects: ['select'], reads: ['public.t'], writes: [], columns: [], functions: [], has_where: true, limit: null, text: 'select 1', normalized: '', fingerprint: '', ...over } as Request['action'],
    context: { time: '2026-01-01T10:00:00Z', client_addr: '10.0.0.1', session_id: 's', ...context },
  };
}

const run = (source: string, req: Request = sqlRequest()) => {
  const compiled = env.compile(source);
  if (!compiled.program) throw new Error(JSON.stringify(compiled.problems));
  return compiled.program(celActivation(req));
};

describe('CEL environment: load-time problems', () => {
  it('rejects .matches() with a hint to use re2_matches, wherever it appears', () => {
    const { problems } = env.compile('true || identity.sub.matches("^a")');
    expect(problems.map((p) => p.code)).toEqual(['HOOP3004']);
    expect(problems[0].help).toBe('use re2_matches(text, pattern): RE2 semantics, linear time');
    expect(problems[0].start).toBe(8);
  });
  it('reports type errors with the offset of the offending part', () => {
    const { problems } = env.compile('sql.kind == "select" && sql.nope');
    expect(problems).toMatchObject([{ code: 'HOOP3002', start: 28, end: 32 }]);
    expect(env.compile('identity.sub + 1').problems[0].code).toBe('HOOP3002');
  });
  it('reports syntax errors', () => {
    expect(env.compile('sql.limit >').problems[0].code).toBe('HOOP3001');
  });
  it('rejects conditions that are not boolean, accepts dyn', () => {
    expect(env.compile('size(sql.reads)').problems).toMatchObject([{ code: 'HOOP3003', message: 'condition has type `int`, expected `bool`' }]);
    expect(env.compile('identity.claims.admin').problems).toEqual([]);
  });
});

describe('CEL environment: evaluation', () => {
  it('exposes every fact variable', () => {
    expect(run('identity.sub == "ci-7" && "ops" in identity.groups && identity.claims.team == "data"')).toBe(true);
    expect(run('resource.kind == "postgres" && resource.labels.env == "prod"')).toBe(true);
    expect(run('context.client_addr == "10.0.0.1" && context.session_id == "s"')).toBe(true);
  });
  it('reads context.time as a timestamp', () => {
    expect(run('context.time.getHours() == 10 && context.time > timestamp("2025-12-31T00:00:00Z")')).toBe(true);
  });
  it('an unparseable time fails the condition that reads it, not the others', () => {
    const req = sqlRequest({}, { time: 'yesterday' });
    expect(run('context.time.getHours() == 10', req)).toMatchObject({ error: expect.stringContaining('not a valid timestamp') });
    expect(run('sql.kind == "select"', req)).toBe(true);
  });
  it('sql.limit is unbounded (the largest int) without a constant LIMIT', () => {
    expect(run('sql.limit > 1000 && !sql.has_limit')).toBe(true);
    expect(run('sql.limit == 25 && sql.has_limit', sqlRequest({ limit: 25 }))).toBe(true);
    expect(celActivation(sqlRequest()).sql.limit).toBe(NO_LIMIT);
  });
  it('gives shell commands zero SQL values and SQL statements zero shell values', () => {
    const shell: Request = {
      ...sqlRequest(),
      resource: { kind: 'ssh', name: 'box', labels: {} },
      action: { type: 'shell', kind: 'command', programs: ['ls'], invocations: [{ program: 'ls', args: ['-l'] }], args: ['-l'], redirects: [], dynamic: false, interpreters: [], text: 'ls -l' },
    };
    expect(run('sql.kind == "" && size(sql.reads) == 0 && sql.has_where && !sql.has_limit', shell)).toBe(true);
    expect(run('shell.invocations.exists(i, i.program == "ls") && shell.args == ["-l"]', shell)).toBe(true);
    expect(run('shell.kind == "" && size(shell.programs) == 0 && !shell.dynamic')).toBe(true);
  });
  it('re2_matches searches unanchored with RE2 syntax', () => {
    expect(run('re2_matches(identity.sub, "[0-9]+")')).toBe(true);
    expect(run('re2_matches(identity.sub, "^[0-9]+$")')).toBe(false);
    expect(run('re2_matches(identity.sub, "(")')).toMatchObject({ error: expect.stringContaining('missing closing )') });
  });
  it('glob matches the whole text', () => {
    expect(run('glob(resource.name, "prod-*") && !glob(resource.name, "prod") && glob(resource.name, "pro?-main")')).toBe(true);
  });
  it('a missing map key or a non-bool dyn result is an error value, never an exception', () => {
    expect(run('identity.claims.missing == "x"')).toMatchObject({ error: 'No such key: missing' });
    expect(run('identity.claims.level')).toMatchObject({ error: expect.stringContaining('not a bool') });
  });
  it('renders facts as JSON', () => {
    const facts = celFacts(celActivation(sqlRequest()));
    expect(facts.sql.limit).toBe('9223372036854775807');
    expect(facts.context.time).toBe('2026-01-01T10:00:00.000Z');
    expect(JSON.parse(JSON.stringify(facts))).toEqual(facts);
  });
});

describe('CEL environment: the ssh request facts (ssh, sftp, forward)', () => {
  const base = sqlRequest();
  const on = (action: Request['action']): Request => ({ ...base, resource: { kind: 'ssh', name: 'bastion-1', labels: {} }, action });
  const sftp = on({ type: 'sftp', kind: 'rename', path: '/srv/a.txt', target: '/srv/old/a.txt', via: 'sftp', text: 'sftp rename /srv/a.txt /srv/old/a.txt' });
  const shell = on({ type: 'ssh', kind: 'interactive', pty: true, term: 'xterm-256color', text: 'shell (pty xterm-256color)' });
  const fwd = on({ type: 'ssh', kind: 'forward', pty: false, forward: { host: 'db.internal', port: 5432 }, text: 'forward db.internal:5432' });
  const agent = on({ type: 'ssh', kind: 'unknown', pty: false, request: 'agent', text: 'agent' });

  it('type-checks their fields at load time and rejects unknown ones', () => {
    for (const src of ['sftp.op == "read" && sftp.path.startsWith("/var/log/")', 'sftp.target != "" && sftp.via == "scp"', 'ssh.pty && ssh.term == "xterm"', 'ssh.kind == "unknown" && ssh.request == "x11"', 'forward.port == 5432 && forward.host.endsWith(".internal")']) {
      expect(env.compile(src).problems, src).toEqual([]);
    }
    expect(env.compile('forward.port == "5432"').problems.map((p) => p.code)).toEqual(['HOOP3002']);
    expect(env.compile('sftp.size > 0').problems.map((p) => p.code)).toEqual(['HOOP3002']);
  });

  it('hold the request\'s values, and zero values for every other kind of action', () => {
    expect(run('sftp.op == "rename" && sftp.path == "/srv/a.txt" && sftp.target == "/srv/old/a.txt" && sftp.via == "sftp"', sftp)).toBe(true);
    expect(run('ssh.kind == "" && forward.host == "" && forward.port == 0 && shell.kind == ""', sftp)).toBe(true);
    expect(run('ssh.kind == "interactive" && ssh.pty && ssh.term == "xterm-256color" && ssh.request == ""', shell)).toBe(true);
    expect(run('sftp.op == "" && forward.port == 0', shell)).toBe(true);
    expect(run('ssh.kind == "forward" && forward.host == "db.internal" && forward.port == 5432', fwd)).toBe(true);
    expect(run('ssh.kind == "unknown" && ssh.request == "agent" && !ssh.pty', agent)).toBe(true);
    expect(run('ssh.kind == "" && sftp.op == "" && forward.port == 0')).toBe(true);
    const facts = celFacts(celActivation(fwd));
    expect(facts.forward).toEqual({ host: 'db.internal', port: 5432 });
    expect(facts.sftp).toEqual({ op: '', path: '', target: '', via: '' });
  });
});
