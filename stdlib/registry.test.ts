import { describe, expect, it } from 'vitest';
import { celActivation, celFacts } from './cel.ts';
import { checkArgs, defaultRegistry } from './registry.ts';

const registry = defaultRegistry();

describe('stdlib registry', () => {
  it('declares the maskers and detectors of DESIGN.md', () => {
    expect([...registry.maskers.keys()]).toEqual(['redact', 'null', 'email', 'last4', 'hash', 'partial']);
    expect([...registry.detectors.keys()]).toEqual(['email', 'credit_card', 'us_ssn', 'phone', 'iban', 'jwt', 'api_key', 'regex']);
    for (const decl of [...registry.maskers.values(), ...registry.detectors.values(), ...registry.celFunctions.values()]) {
      expect(decl.description.length).toBeGreaterThan(10);
    }
  });

  it('checks argument counts and types', () => {
    expect(checkArgs(registry.maskers.get('partial')!, [4])).toEqual([]);
    expect(checkArgs(registry.maskers.get('partial')!, [])).toMatchObject([{ index: -1, message: 'masker `partial` takes 1 argument, got 0', help: 'write `partial(n)`' }]);
    expect(checkArgs(registry.maskers.get('partial')!, [1.5])[0].message).toContain('must be an integer');
    expect(checkArgs(registry.maskers.get('partial')!, [-1])[0].message).toContain('at least 0');
    expect(checkArgs(registry.maskers.get('email')!, [3])[0].message).toBe('masker `email` takes no arguments, got 1');
  });

  it('compiles regex detector patterns as RE2', () => {
    const regex = registry.detectors.get('regex')!;
    expect(checkArgs(regex, ['[A-Z]{3}-[0-9]+'])).toEqual([]);
    expect(checkArgs(regex, ['(a'])[0].message).toContain('missing closing )');
    // Backreferences and lookaround are not RE2: they are what makes other engines backtrack.
    expect(checkArgs(regex, ['(a)\\1'])).toHaveLength(1);
    expect(checkArgs(regex, ['(?=a)'])).toHaveLength(1);
  });

  it('the CEL fact schema and the activation have exactly the same fields', () => {
    const facts = celFacts(celActivation({
      identity: { sub: 's', groups: [], claims: {} },
      resource: { kind: 'postgres', name: 'r', labels: {} },
      action: { type: 'shell', kind: 'command', programs: [], invocations: [], args: [], redirects: [], dynamic: false, interpreters: [], text: '' },
      context: { time: '2026-01-01T00:00:00Z', client_addr: '', session_id: '' },
    }));
    expect(Object.keys(facts).sort()).toEqual(registry.facts.map((v) => v.name).sort());
    for (const variable of registry.facts) {
      expect(Object.keys(facts[variable.name]).sort()).toEqual(variable.fields.map((f) => f.name).sort());
    }
  });
});
