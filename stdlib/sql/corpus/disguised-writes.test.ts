import { beforeAll, describe, expect, it } from 'vitest';
import { worseKind } from '../../facts.ts';
import { loadSqlClassifier } from '../index.ts';
import { DISGUISED, GENUINE_READS } from './disguised.ts';

let sql: Awaited<ReturnType<typeof loadSqlClassifier>>;
beforeAll(async () => {
  sql = await loadSqlClassifier();
});

describe('statements that disguise a write, DDL, privilege change, file access or side effect', () => {
  it('has a corpus of at least 80 statements', () => {
    expect(DISGUISED.length).toBeGreaterThanOrEqual(80);
  });

  it.each(DISGUISED.map(([text, kind]) => ({ text, kind })))('$text → $kind', ({ text, kind }) => {
    const actions = sql.classify(text);
    expect(actions.length).toBeGreaterThan(0);
    for (const a of actions) expect(a.kind).not.toBe('select');
    expect(actions.map((a) => a.kind).reduce(worseKind)).toBe(kind);
  });
});

describe('genuine reads', () => {
  it.each(GENUINE_READS)('%s stays select', (text) => {
    const actions = sql.classify(text);
    expect(actions).toHaveLength(1);
    expect(actions[0]!.kind).toBe('select');
    expect(actions[0]!.effects).toEqual(['select']);
    expect(actions[0]!.writes).toEqual([]);
  });
});
