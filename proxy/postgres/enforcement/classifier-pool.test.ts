// The classifier pool (issue 14 item 11): long statements are classified in worker threads by the
// same classifier as the event loop, with the same facts; a crash or timeout is a refusal and the
// pool carries on.

import { afterAll, describe, expect, it } from 'vitest';
import { loadSqlClassifier, sessionChange } from '../../../stdlib/sql/index.ts';
import { sessionEffects } from '../../../stdlib/sql/search-path.ts';
import { ClassifierPool } from './classifier-pool.ts';

const pools: ClassifierPool[] = [];
const pool = (o: ConstructorParameters<typeof ClassifierPool>[0] = {}): ClassifierPool => {
  const p = new ClassifierPool({ timeoutMs: 60_000, ...o });
  pools.push(p);
  return p;
};

afterAll(async () => {
  await Promise.all(pools.map((p) => p.close()));
});

const inList = (n: number): string => `SELECT * FROM t WHERE id IN (${Array.from({ length: n }, (_, i) => i).join(',')})`;

describe('classifier pool', () => {
  it('gives the same facts as the inline classifier (EXECUTE and FETCH of the session names included), and what the session reads from the AST', async () => {
    const inline = await loadSqlClassifier({ cacheSize: 0 });
    const p = pool();
    const names = { prepared: new Map([['wipe', inline.classify('DELETE FROM orders')[0]!]]), cursors: new Map([['c', inline.classify('SELECT * FROM t FOR UPDATE')[0]!]]) };
    const texts = [
      'SELECT email FROM customers WHERE id = 1; UPDATE t SET x = 1',
      "SELECT ('counter_seq'::regclass).nextval",
      'PREPARE q AS INSERT INTO t VALUES (1); EXECUTE q; EXECUTE wipe; DEALLOCATE q; FETCH ALL FROM c',
      "SET search_path = app, public; CREATE TEMP TABLE tt (x int); DROP TABLE tt; DECLARE d CURSOR WITH HOLD FOR SELECT 1",
      'SELEC 1',
      inList(5000),
    ];
    for (const text of texts) {
      const r = await p.analyze(text, names);
      if (!r.ok) throw new Error(r.reason);
      const expected = inline.analyze(text, names);
      expect(r.statements.map((s) => JSON.parse(JSON.stringify(s.action)))).toEqual(expected.map((s) => JSON.parse(JSON.stringify(s.action))));
      expect(r.statements.map((s) => s.text)).toEqual(expected.map((s) => s.text));
      expect(r.statements.map((s) => s.parseError)).toEqual(expected.map((s) => s.parseError));
      expect(r.statements.map((s) => s.change)).toEqual(expected.map((s) => sessionChange(s)));
      expect(r.statements.map((s) => s.effects)).toEqual(expected.map((s) => sessionEffects(s.ast)));
    }
    const changes = await p.analyze('PREPARE q AS SELECT 1; DEALLOCATE ALL');
    expect(changes.ok && changes.statements.map((s) => s.change)).toEqual([{ prepare: 'q' }, { deallocate: null }]);
  });

  it('a classification over the timeout is refused, and the pool recovers', async () => {
    const p = pool({ timeoutMs: 200 });
    const big = await p.analyze(inList(2_000_000));
    expect(big).toEqual({ ok: false, reason: 'classification took longer than 0.2s' });
    expect(p.replaced).toBe(1);
    const after = await p.analyze('SELECT 1');
    expect(after.ok && after.statements[0]!.action.kind).toBe('select');
  });

  it('a worker that dies (out of memory) refuses its statement, and the pool recovers', async () => {
    const p = pool({ maxHeapMb: 16 });
    const big = await p.analyze(inList(300_000));
    expect(big.ok).toBe(false);
    expect(!big.ok && big.reason).toMatch(/classifier worker (failed|exited)/);
    const after = await p.analyze('DELETE FROM t');
    expect(after.ok && after.statements[0]!.action.kind).toBe('delete');
  });

  it('a closed pool refuses', async () => {
    const p = pool();
    await p.close();
    expect(await p.analyze('SELECT 1')).toEqual({ ok: false, reason: 'the gateway is shutting down' });
  });
});
