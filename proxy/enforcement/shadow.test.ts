import { describe, expect, it } from 'vitest';
import { compilePolicy, type Decision } from '../../engine/index.ts';
import { buildRequest, type CaseRequest } from '../../engine/test-request.ts';
import { shadowDisagreement } from './shadow.ts';

function decide(text: string, r: CaseRequest): Decision {
  const { policy, diagnostics } = compilePolicy([{ file: 'p.hoop', text }]);
  if (!policy) throw new Error(JSON.stringify(diagnostics));
  return policy.evaluate(buildRequest(r));
}

const active = `
rule readers { match sql select allow }
rule pii { match sql select on tables ["customers"] mask column "customers.email" with email }
rule writers { match sql update approve by group "dba" }
rule no_ddl { match sql ddl block "no ddl" }
`;

describe('shadow disagreements', () => {
  const select = { sql: { kind: 'select' as const, reads: ['public.orders'] } };
  it('a candidate that decides the same way is no disagreement, whatever its rule names', () => {
    const renamed = active.replace('readers', 'read_all');
    expect(shadowDisagreement(decide(active, select), decide(renamed, select))).toBeUndefined();
  });

  it('a candidate that blocks what the active set allows: its verdict, rules and message', () => {
    const stricter = `${active}\nrule no_orders { match sql select on tables ["orders"] block "orders are off limits" }`;
    expect(shadowDisagreement(decide(active, select), decide(stricter, select), 'abcdef0123456789')).toEqual({
      verdict: 'block', reasons: ['no_orders'], differs: ['verdict'], message: 'orders are off limits', policy: 'abcdef012345',
    });
  });

  it('other masks, approvers, limits and block messages are disagreements too', () => {
    const customers = { sql: { kind: 'select' as const, reads: ['public.customers'] } };
    const otherMasker = active.replace('with email', 'with redact');
    expect(shadowDisagreement(decide(active, customers), decide(otherMasker, customers))).toMatchObject({ verdict: 'mask', differs: ['masks'], masks: ['public.customers.email=redact'] });
    const update = { sql: { kind: 'update' as const } };
    expect(shadowDisagreement(decide(active, update), decide(active.replace('"dba"', '"sre"'), update))).toMatchObject({ differs: ['approvers'], approvers: ['sre'] });
    const capped = `${active}\nrule cap { match sql select limit rows 10 }`;
    expect(shadowDisagreement(decide(active, select), decide(capped, select))).toMatchObject({ verdict: 'allow', differs: ['limits'], limits: { rows: { rows: 10, rule: 'cap' } } });
    const ddl = { sql: { kind: 'ddl' as const } };
    expect(shadowDisagreement(decide(active, ddl), decide(active.replace('"no ddl"', '"use migrations"'), ddl))).toMatchObject({ differs: ['message'], message: 'use migrations' });
  });

  it('a looser candidate is reported as well (allow where the active set blocks)', () => {
    const ddl = { sql: { kind: 'ddl' as const } };
    const looser = active.replace('rule no_ddl { match sql ddl block "no ddl" }', 'rule ddl_ok { match sql ddl allow }');
    expect(shadowDisagreement(decide(active, ddl), decide(looser, ddl))).toEqual({ verdict: 'allow', reasons: ['ddl_ok'], differs: ['verdict'] });
  });
});
