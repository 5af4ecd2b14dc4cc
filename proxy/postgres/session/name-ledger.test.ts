import { describe, expect, it } from 'vitest';
import type { SqlAction } from '../../../stdlib/facts.ts';
import { CursorNames } from './cursor-names.ts';
import { NameLedger, settle } from './name-ledger.ts';
import { PreparedNames } from './prepared-names.ts';

const action = (text: string): SqlAction => ({ text }) as unknown as SqlAction;

describe('NameLedger', () => {
  it('takes a name only when the server confirms it', () => {
    const l = new NameLedger<string>();
    const t = l.set('s', 'first');
    // Within the batch being sent, later messages run only if this one succeeded.
    expect(l.lookup('s')).toEqual({ t: 'known', entry: 'first' });
    l.endBatch();
    // Sent, not answered: it may have failed (the name may hold what the gateway cannot see).
    expect(l.lookup('s')).toEqual({ t: 'ambiguous' });
    t.discard();
    expect(l.lookup('s')).toEqual({ t: 'absent' });
    l.set('s', 'second').confirm();
    expect(l.lookup('s')).toEqual({ t: 'known', entry: 'second' });
  });

  it('keeps the first entry when a second one is refused, and waits while either may hold', async () => {
    const l = new NameLedger<string>();
    l.set('s', 'first').confirm();
    const again = l.set('s', 'second');
    l.endBatch();
    expect(l.lookup('s')).toEqual({ t: 'ambiguous' });
    expect(l.anyAmbiguous()).toBe(true);
    let settled = false;
    const waiting = l.settled().then(() => (settled = true));
    await Promise.resolve();
    expect(settled).toBe(false);
    again.discard();
    await waiting;
    expect(l.lookup('s')).toEqual({ t: 'known', entry: 'first' });
    expect(l.anyAmbiguous()).toBe(false);
  });

  it('drops by predicate and skips a drop of a name that holds nothing', () => {
    const l = new NameLedger<string>();
    l.set('a', 'x').confirm();
    l.set('b', 'y').confirm();
    l.dropWhere((n) => n === 'a').confirm();
    expect(l.lookup('a')).toEqual({ t: 'absent' });
    expect(l.lookup('b')).toEqual({ t: 'known', entry: 'y' });
    l.drop('nothing');
    l.endBatch();
    expect(l.anyAmbiguous()).toBe(false);
  });

  it('settles a list of tickets once', () => {
    const l = new NameLedger<string>();
    const ts = [l.set('a', 'x'), l.drop('a')];
    settle(ts, true);
    settle(ts, false);
    expect(l.lookup('a')).toEqual({ t: 'absent' });
  });
});

describe('PreparedNames and CursorNames', () => {
  it('one namespace for Parse and PREPARE; DEALLOCATE ALL and DISCARD ALL drop the named ones', () => {
    const p = new PreparedNames<{ action: SqlAction | undefined }>();
    settle(p.parse('s', { action: action('SELECT 1') }), true);
    settle(p.sql({ prepare: 'q' }, action('PREPARE q AS SELECT 2'), 'PREPARE q AS SELECT 2'), true);
    settle(p.parse('', { action: action('SELECT 3') }), true);
    expect(p.view.get('s')?.text).toBe('SELECT 1');
    expect(p.view.get('q')?.text).toBe('PREPARE q AS SELECT 2');
    expect([...p.view.keys()].sort()).toEqual(['', 'q', 's']);
    settle(p.sql({ deallocate: null }, action('DEALLOCATE ALL'), 'DEALLOCATE ALL'), true);
    expect([...p.view.keys()]).toEqual(['']);
    settle(p.query(), true);
    expect(p.view.size).toBe(0);
  });

  it('cursors end with their transaction; WITH HOLD survives a commit, not a rollback of its own transaction', () => {
    const c = new CursorNames<{ action: SqlAction | undefined }>();
    settle(c.sql({ declare: { name: 'plain', hold: false } }, action('DECLARE plain'), 'DECLARE plain'), true);
    settle(c.sql({ declare: { name: 'held', hold: true } }, action('DECLARE held'), 'DECLARE held'), true);
    settle(c.sql({ transaction: 'commit' }, action('COMMIT'), 'COMMIT'), true, 'COMMIT');
    expect([...c.view.keys()]).toEqual(['held']);
    settle(c.sql({ declare: { name: 'fresh', hold: true } }, action('DECLARE fresh'), 'DECLARE fresh'), true);
    // COMMIT of a failed transaction answers ROLLBACK.
    settle(c.sql({ transaction: 'commit' }, action('COMMIT'), 'COMMIT'), true, 'ROLLBACK');
    expect([...c.view.keys()]).toEqual(['held']);
    settle(c.sql({ discardAll: true }, action('DISCARD ALL'), 'DISCARD ALL'), true);
    expect(c.view.size).toBe(0);
  });
});
