import { beforeAll, describe, expect, it } from 'vitest';
import { compilePolicy } from '../../../engine/index.ts';
import { loadSqlClassifier } from '../../../stdlib/sql/index.ts';
import { decideStatements, type SessionClassifier } from './decider.ts';

let classifier: SessionClassifier;
beforeAll(async () => {
  classifier = await loadSqlClassifier();
});

const ctx = {
  identity: { sub: 'agent-7', groups: ['data-reader'], claims: {} },
  resource: { kind: 'postgres' as const, name: 'prod-main', labels: {} },
  clientAddr: '127.0.0.1:5555',
  sessionId: 's-1',
};

function policy(condition: string) {
  const compiled = compilePolicy([{ file: 't.hoop', text: `package t\ndefault block "no"\nrule timed {\n  match sql select\n  if \`${condition}\`\n  allow\n}\n` }]);
  if (!compiled.policy) throw new Error(compiled.diagnostics.map((d) => d.message).join('; '));
  return compiled.policy;
}

describe('decideStatements', () => {
  it('gives conditions the time of the statement (formatted only when a condition reads it)', () => {
    const before = Date.now();
    expect(decideStatements(classifier, policy('context.time > timestamp("2000-01-01T00:00:00Z")'), ctx, 'SELECT 1', undefined)[0]!.decision.verdict).toBe('allow');
    expect(decideStatements(classifier, policy('context.time < timestamp("2000-01-01T00:00:00Z")'), ctx, 'SELECT 1', undefined)[0]!.decision.verdict).toBe('block');
    // Not a stale or zero time: within this test's own run.
    const now = new Date(before).toISOString();
    expect(decideStatements(classifier, policy(`context.time >= timestamp("${now}")`), ctx, 'SELECT 1', undefined)[0]!.decision.verdict).toBe('allow');
    expect(decideStatements(classifier, policy('context.client_addr == "127.0.0.1:5555" && context.session_id == "s-1"'), ctx, 'SELECT 1', undefined)[0]!.decision.verdict).toBe('allow');
  });
});
