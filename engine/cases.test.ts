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
import { formatDurationMs } from '../language/ast.ts';
import { compilePolicy, type Decision } from './index.ts';
import { buildRequest, type CaseRequest } from './test-request.ts';

const dir = join(dirname(fileURLToPath(import.meta.url)), 'cases');

interface Want {
  verdict: Decision['verdict'];
  reasons?: string[];
  defaulted?: boolean;
  message?: string;
  message_contains?: string;
  approvers?: string[];
  within?: number;
  /** `approve by N of`: absent means 1 (the decision carries no quorum). */
  quorum?: number;
  /** `lasting`: absent means the decision is not lasting. */
  lasting?: number;
  columns?: string[];
  detectors?: string[];
  errors?: string[];
  /** `rows: 500 by p.r`, `time: 30s by p.r`, `rate: [10 per 1m by p.r]`; absent = no limits. */
  limits?: { rows?: string; time?: string; rate?: string[] };
}

interface CaseDoc {
  note: string;
  policies: { file: string; text: string }[];
  cases?: { note: string; request: CaseRequest; want: Want }[];
  want_diagnostics?: { code: string; at: string; help_contains?: string }[];
  /** Warning codes the set compiles with (none when absent). */
  want_warnings?: string[];
}

function checkWant(d: Decision, want: Want): void {
  expect(d.verdict).toBe(want.verdict);
  if (want.reasons) expect(d.reasons.map((r) => r.id)).toEqual(want.reasons);
  if (want.defaulted !== undefined) expect(d.defaulted).toBe(want.defaulted);
  if (want.message !== undefined) expect(d.message).toBe(want.message);
  if (want.message_contains !== undefined) expect(d.message).toContain(want.message_contains);
  expect(d.approvers).toEqual(want.approvers ?? []);
  if (want.within !== undefined) expect(d.approvalWithinMs).toBe(want.within);
  expect(d.approvalQuorum).toBe(want.quorum);
  expect(d.approvalLastingMs).toBe(want.lasting);
  const masker = (m: { name: string; args: number[] }): string => (m.args.length ? `${m.name}(${m.args.join(',')})` : m.name);
  expect(d.masks.columns.map((c) => `${c.column}=${masker(c.masker)}`)).toEqual(want.columns ?? []);
  expect(d.masks.detectors.map((m) => `${m.detectors.map((x) => x.name).join(',')}=${masker(m.masker)}`)).toEqual(want.detectors ?? []);
  expect(d.errors.map((e) => e.rule)).toEqual(want.errors ?? []);
  const l = d.limits;
  const got = l === undefined ? undefined : {
    ...(l.rows ? { rows: `${l.rows.rows} by ${l.rows.rule}` } : {}),
    ...(l.time ? { time: `${formatDurationMs(l.time.ms)} by ${l.time.rule}` } : {}),
    ...(l.rate.length ? { rate: l.rate.map((r) => `${r.count} per ${formatDurationMs(r.windowMs)} by ${r.rule}`) } : {}),
  };
  expect(got).toEqual(want.limits);
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
    it('compiles with exactly the expected warnings', () => {
      expect(compiled.policy).toBeDefined();
      expect(compiled.diagnostics.map((d) => `${d.severity} ${d.code}`)).toEqual((doc.want_warnings ?? []).map((c) => `warning ${c}`));
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
