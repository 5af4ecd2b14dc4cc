import { describe, expect, it } from 'vitest';
import { compilePolicy } from '../../engine/index.ts';
import { encodeBackend } from '../postgres/wire/backend.ts';
import { NotificationMasking } from '../postgres/session/notifications.ts';
import type { DecideContext as DecisionContext } from './decide.ts';
import { sessionMasks } from './session-masks.ts';
import type { PolicyEvaluator } from './types.ts';

const ctx = (groups: string[]): DecisionContext => ({
  identity: { sub: 'agent-7', groups, claims: {} } as unknown as DecisionContext['identity'],
  resource: { kind: 'postgres', name: 'prod-main', labels: {} },
  clientAddr: '127.0.0.1',
  sessionId: 's1',
});

const policy = compilePolicy([{ file: 't.hoop', text: `package t
default block
rule cards {
  on postgres("prod-*")
  when group "g"
  match sql select on tables ["public.people"]
  if \`context.session_id == "never"\`
  mask detect credit_card with redact
}
rule other {
  on postgres("staging")
  mask column "people.email" with email
}
` }]).policy!;

describe('sessionMasks', () => {
  it('takes every rule whose resource and identity selectors hold, whatever match and if say', () => {
    expect(sessionMasks(policy, ctx(['g']))).toEqual({ columns: [], detectors: [{ detectors: [{ name: 'credit_card', args: [] }], masker: { name: 'redact', args: [] }, rule: 't.cards' }] });
    expect(sessionMasks(policy, ctx(['h']))).toEqual({ columns: [], detectors: [] });
  });

  it('cannot be told without explanations: the notification is dropped', async () => {
    const plain: PolicyEvaluator = { evaluate: (r) => policy.evaluate(r), tableScopes: [] };
    expect(sessionMasks(plain, ctx(['h']))).toBeUndefined();
    const broken = { evaluate: (r: never) => policy.evaluate(r), explain: () => ({ rules: [] }), ir: policy.ir } as unknown as PolicyEvaluator;
    expect(sessionMasks(broken, ctx(['h']))).toBeUndefined();
    // A session whose masks cannot be told drops every notification.
    const n = new NotificationMasking({ sessionMasks: () => sessionMasks(plain, ctx(['h'])), textPolicy: () => Promise.resolve({ mode: 'relay' }) });
    expect(await n.relay(encodeBackend({ name: 'notification', pid: 1, channel: 'c', payload: 'p' }))).toBeUndefined();
  });
});
