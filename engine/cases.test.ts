// Data-driven engine cases (engine/cases/*.yaml, after OPA's v1/test/cases and cedar-testing):
// each document holds policies, requests and the expected decision; every request is decided by
// BOTH the compiled evaluator and the reference interpreter, which must each meet the
// expectation and agree with each other exactly. Documents with `want_diagnostics` expect the
// set to be refused with those codes at those positions.

import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import type { Request, ShellAction, SqlAction, SqlKind } from '../stdlib/facts.ts';
import { compilePolicy, type Decision } from './index.ts';

const dir = join(dirname(fileURLToPath(import.meta.url)), 'cases');

interface CaseRequest {
  sub?: string;
  groups?: string[];
  actor?: string;
  claims?: Record<string, unknown>;
  resource?: string;
  time?: string;
  sql?: { kind: SqlKind; reads?: string[]; writes?: string[]; has_where?: boolean; limit?: number | null };
  shell?: { kind?: 'command' | 'unknown'; programs: string[]; redirects?: string[] };
}

interface Want {
  verdict: Decision['verdict'];
  reasons?: string[];
  defaulted?: boolean;
  message?: string;
  message_contains?: string;
  approvers?: string[];
  within?: number;
  columns?: string[];
  detectors?: string[];
  errors?: string[];
}

interface CaseDoc {
  note: string;
  policies: { file: string; text: string }[];
  cases?: { note: string; request: CaseRequest; want: Want }[];
  want_diagnostics?: { code: string; at: string; help_contains?: string }[];
}

export function buildRequest(r: CaseRequest): Request {
  const [kind, name] = (r.resource ?? 'postgres:prod-main').split(':') as ['postgres' | 'ssh', string];
  let action: SqlAction | ShellAction;
  if (r.shell) {
    action = {
      type: 'shell', kind: r.shell.kind ?? 'command', programs: r.shell.programs,
      invocations: r.shell.programs.map((program) => ({ program, args: [] })), args: [],
      redirects: r.shell.redirects ?? [], dynamic: false, interpreters: [], text: r.shell.programs.join(' | '),
    };
  } else {
    const s = r.sql ?? { kind: 'select' };
    action = {
      type: 'sql', kind: s.kind, effects: [s.kind], reads: s.reads ?? [], writes: s.writes ?? [], columns: [], functions: [],
      has_where: s.has_where ?? true, limit: s.limit ?? null, text: '', normalized: '', fingerprint: '',
    };
  }
  return {
    identity: { sub: r.sub ?? 'agent-1', groups: r.groups ?? [], actor: r.actor, claims: r.claims ?? {} },
    resource: { kind, name, labels: {} },
    action,
    context: { time: r.time ?? '2026-01-01T10:00:00Z', client_addr: '127.0.0.1', session_id: 's1' },
  };
}

function checkWant(d: Decision, want: Want): void {
  expect(d.verdict).toBe(want.verdict);
  if (want.reasons) expect(d.reasons.map((r) => r.id)).toEqual(want.reasons);
  if (want.defaulted !== undefined) expect(d.defaulted).toBe(want.defaulted);
  if (want.message !== undefined) expect(d.message).toBe(want.message);
  if (want.message_contains !== undefined) expect(d.message).toContain(want.message_contains);
  expect(d.approvers).toEqual(want.approvers ?? []);
  if (want.within !== undefined) expect(d.approvalWithinMs).toBe(want.within);
  const masker = (m: { name: string; args: number[] }): string => (m.args.length ? `${m.name}(${m.args.join(',')})` : m.name);
  expect(d.masks.columns.map((c) => `${c.column}=${masker(c.masker)}`)).toEqual(want.columns ?? []);
  expect(d.masks.detectors.map((m) => `${m.detectors.map((x) => x.name).join(',')}=${masker(m.masker)}`)).toEqual(want.detectors ?? []);
  expect(d.errors.map((e) => e.rule)).toEqual(want.errors ?? []);
}

const files = readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort();

describe.each(files)('engine cases %s', (file) => {
  const docs = parseAllDocuments(readFileSync(join(dir, file), 'utf8')).map((d) => d.toJS() as CaseDoc);
  describe.each(docs.map((d) => [d.note, d] as const))('%s', (_note, doc) => {
    const compiled = compilePolicy(doc.policies);
    if (doc.want_diagnostics) {
      it('is refused with the expected diagnostics', () => {
        expect(compiled.policy).toBeUndefined();
        const got = compiled.diagnostics.map((d) => `${d.code}@${d.span.startLine}:${d.span.startColumn}`);
        expect(got).toEqual(doc.want_diagnostics!.map((w) => `${w.code}@${w.at}`));
        doc.want_diagnostics!.forEach((w, i) => {
          if (w.help_contains) expect(compiled.diagnostics[i].help).toContain(w.help_contains);
        });
      });
      return;
    }
    it('compiles without diagnostics', () => {
      expect(compiled.diagnostics).toEqual([]);
    });
    it.each((doc.cases ?? []).map((c) => [c.note, c] as const))('%s', (_n, c) => {
      const policy = compiled.policy!;
      const req = buildRequest(c.request);
      const fast = policy.evaluate(req);
      const reference = policy.evaluateReference(req);
      checkWant(fast, c.want);
      checkWant(reference, c.want);
      expect(fast).toEqual(reference);
    });
  });
});
