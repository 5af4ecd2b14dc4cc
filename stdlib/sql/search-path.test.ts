import { describe, expect, it } from 'vitest';
import { loadSqlClassifier, resolveNames, unqualifiedNames } from './index.ts';
import { parseSearchPath, searchPathRisk, sessionEffects } from './search-path.ts';

describe('search_path values, read as the server reads them', () => {
  it('splits, lower-cases unquoted names, keeps quoted ones exact', () => {
    expect(parseSearchPath('"$user", public')).toEqual(['$user', 'public']);
    expect(parseSearchPath('  Hr ,"My ""S""",x')).toEqual(['hr', 'My "S"', 'x']);
    expect(parseSearchPath('')).toEqual([]);
    expect(parseSearchPath('a'.repeat(70))).toEqual(['a'.repeat(63)]);
  });

  it('refuses what the server refuses (invalid list syntax)', () => {
    for (const bad of ['a,,b', 'a,', '"unterminated', '""', 'a b', ',a']) expect(parseSearchPath(bad), bad).toBeNull();
  });

  it('a schema ahead of an explicit pg_catalog is a risk; pg_temp ahead is not', () => {
    expect(searchPathRisk(['evil', 'pg_catalog'])).toMatch(/before pg_catalog/);
    expect(searchPathRisk(['pg_temp', 'pg_catalog', 'evil'])).toBeUndefined();
    expect(searchPathRisk(['evil', 'public'])).toBeUndefined();
  });
});

describe('statements that change name resolution', () => {
  it('reads SET/RESET/SET LOCAL, transaction control, temp creation and drops', async () => {
    const c = await loadSqlClassifier();
    const fx = (sql: string) => c.analyze(sql).flatMap((s) => sessionEffects(s.ast));
    expect(fx("SET LOCAL search_path = 'My S', public")).toEqual([{ k: 'set', value: ['My S', 'public'], local: true }]);
    expect(fx('RESET search_path; RESET ALL')).toEqual([{ k: 'set', value: 'default', local: false }, { k: 'set', value: 'default', local: false }]);
    expect(fx("SELECT set_config('search_path', 'a, B', true)")).toEqual([{ k: 'set', value: ['a', 'b'], local: true }]);
    expect(fx("SELECT set_config('search_path', 'a', false) FROM t")[0]).toMatchObject({ k: 'untracked' });
    expect(fx('BEGIN; SAVEPOINT s; ROLLBACK TO s; RELEASE s; COMMIT AND CHAIN; ROLLBACK')).toEqual([
      { k: 'begin' }, { k: 'savepoint', name: 's' }, { k: 'rollback_to', name: 's' }, { k: 'release', name: 's' }, { k: 'commit', chain: true }, { k: 'rollback', chain: false },
    ]);
    expect(fx('CREATE TEMP TABLE t (a int) ON COMMIT DROP')).toEqual([{ k: 'create', name: 't', schema: 'pg_temp', onCommitDrop: true, view: false }]);
    expect(fx('DROP TABLE a.b, c')).toEqual([{ k: 'drop', name: 'b', schema: 'a' }, { k: 'drop', name: 'c' }]);
    expect(fx('DISCARD ALL')).toEqual([{ k: 'set', value: 'default', local: false }, { k: 'discard_temp' }]);
  });

  it('leaves unqualified names to the caller: public by default, the resolver otherwise', async () => {
    const c = await loadSqlClassifier();
    const [s] = c.analyze('SELECT c.email FROM customers c JOIN public.orders o ON o.id = c.id');
    expect(s!.action.reads).toEqual(['public.customers', 'public.orders']);
    expect(unqualifiedNames(s!.action)).toEqual({ lookups: ['customers'], creates: [] });
    const r = resolveNames(s!.action, () => 'other');
    expect(r.reads).toEqual(['other.customers', 'public.orders']);
    expect(r.columns).toContain('other.customers.email');
    expect(resolveNames(s!.action, () => ['pg_temp', 'public']).reads).toEqual(['pg_temp.customers', 'public.customers', 'public.orders']);
    const [create] = c.analyze('CREATE TABLE t AS SELECT 1');
    expect(resolveNames(create!.action, (_, creating) => (creating ? 'scratch' : 'x')).writes).toEqual(['scratch.t']);
    expect(c.classify('SET search_path = evil, pg_catalog')[0]!.kind).toBe('grant');
    expect(c.classify('SET search_path = evil, public')[0]!.kind).toBe('set');
  });
});
