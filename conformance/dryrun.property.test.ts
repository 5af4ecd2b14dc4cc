// Dry-run soundness (issue 5): replaying recordings under the policy that recorded them never
// reports a change.
//
// Each case generates a policy set (conformance/arbitraries/policy.ts, plus rules whose conditions
// read the context: client address, session id and decision time), a few sessions (identity,
// resource, statements), and records them with the real recorder as the gateway does: classify
// with the session's prepared statements, decide at the decision time, track prepared statements
// (proxy/postgres/session/prepared-names.ts) for what ran, `time` written after a random duration
// with `duration_ms` (the gateway writes `time` when the statement finished). Then dryRun()
// under the same policy must find every decision unchanged. Each case writes and reads real files,
// so it runs a quarter of propertyRuns() cases (500 by default; HOOP_PROPERTY_RUNS scales it).

import fc from 'fast-check';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileFiles, withReadView, type PreparedPolicy } from '../engine/index.ts';
import type { PolicyFile } from '../language/ast.ts';
import { PreparedNames } from '../proxy/postgres/session/prepared-names.ts';
import { sessionChangesOf, type SqlAnalyzer } from '../stdlib/sql/index.ts';
import { readViewWith } from '../stdlib/sql/read-view.ts';
import { createSessionRecorder, decisionMasksField } from '../proxy/recording/index.ts';
import { loadReplayClassifiers } from '../replay/classifiers.ts';
import { dryRun } from '../replay/dryrun.ts';
import type { Classifiers } from '../replay/redecide.ts';
import { recordingFiles } from '../replay/files.ts';
import type { Identity, Resource, SqlAction } from '../stdlib/facts.ts';
import { conditionOf, GROUPS, policySetArb, REQUEST_SUBJECTS, RESOURCE_NAMES, ruleShapeArb, toRule } from './arbitraries/policy.ts';
import { propertyRuns } from './runs.ts';

const SQL = [
  'SELECT 1',
  'SELECT id, email FROM customers',
  'SELECT * FROM public.orders WHERE id = 3',
  'SELECT * FROM hr.people LIMIT 500',
  'UPDATE customers SET email = NULL',
  'UPDATE public.orders SET total = 0 WHERE id = 1',
  'DELETE FROM hr.people',
  'INSERT INTO customers (id) VALUES (1)',
  'CREATE TABLE t (id int)',
  'COPY customers TO STDOUT',
  'BEGIN',
  'SET ROLE admin',
  'this is not sql',
  'PREPARE p AS DELETE FROM customers',
  'PREPARE q AS SELECT * FROM customers WHERE id = $1',
  'EXECUTE p',
  'EXECUTE q(1)',
  'DEALLOCATE p',
];
const SHELL = ['ls -la', 'cat /etc/hosts | grep x', 'rm -rf /tmp/x', 'echo hi > /tmp/f', '$CMD', 'sudo ls'];

// Conditions over the context, so replaying must rebuild it exactly as the gateway had it.
const CONTEXT_CONDITIONS = [
  'context.client_addr == "10.0.0.1"',
  'context.session_id == "s-1"',
  'context.time > timestamp("2026-01-01T10:00:00.500Z")',
];

const contextRuleArb = fc.tuple(ruleShapeArb, fc.constantFrom(...CONTEXT_CONDITIONS)).map(([shape, cond]) => {
  const rule = toRule(shape, 'ctx_rule');
  return { ...rule, conditions: [...rule.conditions, conditionOf(cond)] };
});

const policyArb = fc.tuple(policySetArb, fc.option(contextRuleArb, { nil: undefined })).map(([files, extra]): PolicyFile[] =>
  extra ? files.map((f, i) => (i === 0 ? { ...f, rules: [...f.rules, extra] } : f)) : files,
);

const sessionArb = fc.record({
  sub: fc.constantFrom(...REQUEST_SUBJECTS),
  groups: fc.subarray(GROUPS),
  actor: fc.option(fc.constantFrom('alice@example.com', 'bob'), { nil: undefined }),
  team: fc.boolean(),
  name: fc.constantFrom(...RESOURCE_NAMES),
  ssh: fc.boolean(),
  client: fc.constantFrom('10.0.0.1', '127.0.0.1'),
  steps: fc.array(fc.record({ pick: fc.nat(), delayMs: fc.integer({ min: 0, max: 400 }), durationMs: fc.integer({ min: 0, max: 900 }) }), { minLength: 1, maxLength: 8 }),
});

let classifiers: Classifiers;
let root: string;

beforeAll(async () => {
  classifiers = await loadReplayClassifiers();
  root = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'hoop-dryrun-prop-'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

async function record(dir: string, policy: PreparedPolicy, sessions: SessionInput[]): Promise<void> {
  const recorder = createSessionRecorder({ dir });
  let n = 0;
  for (const s of sessions) {
    const sessionId = `s-${n++}`;
    const identity: Identity = { sub: s.sub, groups: s.groups, ...(s.actor ? { actor: s.actor } : {}), claims: s.team ? { team: 'data' } : {} };
    const resource: Resource = { kind: s.ssh ? 'ssh' : 'postgres', name: s.name, labels: {} };
    let clock = Date.parse('2026-01-01T10:00:00.000Z');
    const rec = await recorder.open({ session_id: sessionId, identity, resource, client_addr: s.client, started_at: new Date(clock).toISOString() });
    const names = new PreparedNames<{ action: SqlAction }>();
    const prepared = names.view;
    for (const step of s.steps) {
      clock += step.delayMs;
      const decidedAt = new Date(clock).toISOString();
      let verdicts: { text: string; decision: ReturnType<PreparedPolicy['evaluate']>; action?: SqlAction }[];
      if (s.ssh) {
        const text = SHELL[step.pick % SHELL.length]!;
        const action = classifiers.shell.classify(text);
        verdicts = [{ text, decision: policy.evaluate({ identity, resource, action, context: { time: decidedAt, client_addr: s.client, session_id: sessionId } }) }];
      } else {
        const text = SQL[step.pick % SQL.length]!;
        // As the gateway decides (decideStatements): classify with the session's prepared
        // statements, one request per statement, all at the decision time.
        const context = { time: decidedAt, client_addr: s.client, session_id: sessionId };
        // A statement that reads also gets the masks of the read it contains (stdlib/sql/read-view.ts).
        const readViewOf = readViewWith(classifiers.sql as typeof classifiers.sql & SqlAnalyzer);
        verdicts = classifiers.sql.classify(text, prepared.size > 0 ? { prepared } : undefined).map((action) => ({
          text: action.text,
          action,
          decision: withReadView(policy.evaluate({ identity, resource, action, context }), readViewOf(action), (read) => policy.evaluate({ identity, resource, action: read, context }), policy.tableScopes),
        }));
      }
      for (const v of verdicts) {
        const outcome = v.decision.verdict === 'block' ? 'blocked' : v.decision.verdict === 'approve' ? 'pending_approval' : 'executed';
        if (v.action && outcome === 'executed') for (const t of names.sql(sessionChangesOf(v.action.text)[0], v.action, v.action.text)) t.confirm();
        rec.statement({
          time: new Date(clock + step.durationMs).toISOString(),
          text: v.text,
          protocol: 'simple',
          verdict: v.decision.verdict,
          reasons: v.decision.reasons.map((r) => r.id),
          masks: [],
          ...decisionMasksField(v.decision),
          ...(v.decision.approvers.length ? { approvers: v.decision.approvers } : {}),
          outcome,
          duration_ms: step.durationMs,
        });
      }
      clock += step.durationMs;
    }
    await rec.close(new Date(clock).toISOString());
  }
}

type SessionInput = typeof sessionArb extends fc.Arbitrary<infer T> ? T : never;

describe('dry-run (property-based)', () => {
  it('replaying recordings under the policy that made them reports no change', async () => {
    let cases = 0;
    await fc.assert(
      fc.asyncProperty(policyArb, fc.array(sessionArb, { minLength: 1, maxLength: 3 }), async (files, sessions) => {
        const compiled = compileFiles(files);
        if (!compiled.policy) throw new Error(`generated set did not compile: ${JSON.stringify(compiled.diagnostics)}`);
        const dir = join(root, `case-${cases++}`);
        await record(dir, compiled.policy, sessions as SessionInput[]);
        const list = recordingFiles([dir]);
        if (!list.ok) throw new Error(list.message);
        const result = await dryRun(compiled.policy, classifiers, { files: list.files });
        rmSync(dir, { recursive: true, force: true });
        if (!result.ok) throw result.error;
        const r = result.report;
        expect(r.statements).toBeGreaterThan(0);
        expect(r.bad_lines).toBe(0);
        expect(r.groups).toEqual([]);
        expect(r.changed).toBe(0);
      }),
      { numRuns: Math.round(propertyRuns() / 4) },
    );
  }, 300_000);
});
