// Replaying a recording follows the session's cursors and prepared statements as the gateway does
// (issue 14 items 3 and 8): a FETCH is re-decided with its cursor's facts, and a failed PREPARE
// takes no name.

import { beforeAll, describe, expect, it } from 'vitest';
import { compilePolicy } from '../engine/index.ts';
import type { RecordingHeader, RecordingStatement } from '../proxy/recording/index.ts';
import { loadReplayClassifiers } from './classifiers.ts';
import { createRedecider, type Redecider } from './redecide.ts';

const POLICY = `package t
default block "read-only"

rule reads {
  match sql select, set, transaction, utility
  allow
}

rule mask_customer_pii {
  match sql select on tables ["public.customers"]
  mask column "customers.email" with email
}
`;

let redecider: Redecider;

beforeAll(async () => {
  const compiled = compilePolicy([{ file: 't.hoop', text: POLICY }]);
  redecider = createRedecider(compiled.policy!, await loadReplayClassifiers());
});

const header = {
  type: 'header',
  version: 1,
  session_id: 's-1',
  identity: { sub: 'agent-7', groups: [], claims: {} },
  resource: { kind: 'postgres', name: 'prod-main', labels: {} },
  client_addr: '127.0.0.1',
  started_at: '2026-12-03T10:00:00.000Z',
} as unknown as RecordingHeader;

function event(text: string, outcome: 'executed' | 'failed' = 'executed'): RecordingStatement {
  return { type: 'statement', time: '2026-12-03T10:00:01.000Z', text, protocol: 'simple', verdict: 'allow', reasons: [], masks: [], outcome } as unknown as RecordingStatement;
}

describe('re-deciding a session', () => {
  it("decides a FETCH with its cursor's facts, until the cursor is closed", () => {
    const s = redecider.session(header);
    s.decide(event('BEGIN'));
    s.decide(event('DECLARE c CURSOR FOR SELECT email FROM customers'));
    const fetch = s.decide(event('FETCH ALL FROM c'));
    expect(fetch.decision.verdict).toBe('mask');
    expect(fetch.actions[0]).toMatchObject({ kind: 'select', reads: ['public.customers'] });
    s.decide(event('CLOSE c'));
    expect(s.decide(event('FETCH ALL FROM c')).actions[0]).toMatchObject({ kind: 'unknown' });
  });

  it('gives a failed PREPARE no name: EXECUTE runs the PREPARE that succeeded', () => {
    const s = redecider.session(header);
    s.decide(event("PREPARE p AS SELECT 'x'::no_such_type", 'failed'));
    s.decide(event('PREPARE p AS SELECT email FROM customers'));
    const exec = s.decide(event('EXECUTE p'));
    expect(exec.decision.verdict).toBe('mask');
  });
});
