import { describe, expect, it } from 'vitest';
import { Lru } from './lru.ts';
import { loadSqlClassifier } from './index.ts';

describe('Lru', () => {
  it('evicts the least recently used entry when full', () => {
    const lru = new Lru<string, number>(2);
    lru.set('a', 1);
    lru.set('b', 2);
    expect(lru.get('a')).toBe(1); // a is now the most recent
    lru.set('c', 3);
    expect(lru.get('b')).toBeUndefined();
    expect(lru.get('a')).toBe(1);
    expect(lru.get('c')).toBe(3);
    expect(lru.size).toBe(2);
  });

  it('holds nothing with size 0', () => {
    const lru = new Lru<string, number>(0);
    lru.set('a', 1);
    expect(lru.get('a')).toBeUndefined();
  });

  it('refuses a size that is not a non-negative integer', () => {
    expect(() => new Lru(-1)).toThrow(/internal error/);
  });
});

describe('the classification cache', () => {
  it('keeps at most cacheSize texts and re-parses an evicted one to the same facts', async () => {
    const sql = await loadSqlClassifier({ cacheSize: 2 });
    const a1 = sql.analyze('SELECT 1 FROM a')[0]!;
    sql.analyze('SELECT 1 FROM b');
    expect(sql.analyze('SELECT 1 FROM a')[0]).toBe(a1); // still cached (and refreshed)
    sql.analyze('SELECT 1 FROM c'); // evicts b
    const again = sql.analyze('SELECT 1 FROM b')[0]!;
    expect(JSON.stringify(again.action)).toBe(JSON.stringify(sql.analyze('SELECT 1 FROM b')[0]!.action));
    expect(again.action.reads).toEqual(['public.b']);
    expect(sql.analyze('SELECT 1 FROM a')[0]).not.toBe(a1); // a was evicted by b's return
  });
});
