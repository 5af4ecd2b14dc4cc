import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openPolicySource } from './policy-source.ts';

const allowReaders = `package t
rule readers { when group "reader" allow }
`;
const blockAll = `package t
rule readers { when group "reader" block "closed for maintenance" }
`;
const broken = `package t
rule readers { when grop "reader" allow }
`;

const request = (groups: string[]) => ({
  identity: { sub: 'a', groups, claims: {} },
  resource: { kind: 'postgres' as const, name: 'prod-main', labels: {} },
  action: {
    type: 'sql' as const, kind: 'select' as const, effects: ['select' as const], reads: ['public.t'], writes: [], columns: [], functions: [],
    has_where: true, limit: null, text: 'SELECT 1 FROM t', normalized: 'SELECT $1 FROM t', fingerprint: 'f',
  },
  context: { time: new Date().toISOString(), client_addr: '127.0.0.1', session_id: 's' },
});

describe('policy source', () => {
  it('loads, keeps the old set on an invalid reload (logging rendered diagnostics), swaps on a valid one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hoop-policy-src-'));
    const file = join(dir, 'p.hoop');
    writeFileSync(file, allowReaders);
    const logs: string[] = [];
    const { source, first } = await openPolicySource({ path: dir, watch: false, log: (l) => logs.push(l) });
    expect(first.ok).toBe(true);
    const v1 = source.current()!;
    expect(v1.evaluate(request(['reader'])).verdict).toBe('allow');

    const changes: string[] = [];
    source.onChange((p, prev) => changes.push(`${prev?.hash.slice(0, 6)}->${p.hash.slice(0, 6)}`));

    writeFileSync(file, broken);
    const bad = await source.reload();
    expect(bad.ok).toBe(false);
    expect(bad.diagnostics.join('\n')).toMatch(/p\.hoop:2:\d+: error\[HOOP\d+\]/);
    expect(logs.at(-1)).toMatch(/policy reload rejected, keeping the policy in force/);
    expect(source.current()).toBe(v1);
    expect(source.current()!.evaluate(request(['reader'])).verdict).toBe('allow');
    expect(changes).toEqual([]);

    writeFileSync(file, blockAll);
    const good = await source.reload();
    expect(good.ok).toBe(true);
    expect(source.current()).not.toBe(v1);
    expect(source.current()!.evaluate(request(['reader'])).verdict).toBe('block');
    expect(changes).toHaveLength(1);
    source.close();
  });

  it('reloads on file change and on SIGHUP', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hoop-policy-src-'));
    const file = join(dir, 'p.hoop');
    writeFileSync(file, allowReaders);
    const { source } = await openPolicySource({ path: dir, debounceMs: 30, log: () => undefined });
    const changed = new Promise<void>((resolve) => source.onChange(() => resolve()));
    writeFileSync(file, blockAll);
    await changed;
    expect(source.current()!.evaluate(request(['reader'])).verdict).toBe('block');

    source.close();
    // SIGHUP alone (no watcher, so only the signal can cause this reload).
    const again = await openPolicySource({ path: dir, watch: false, sighup: true, log: () => undefined });
    const viaHup = new Promise<void>((resolve) => again.source.onChange(() => resolve()));
    writeFileSync(file, allowReaders);
    await new Promise((r) => setTimeout(r, 100));
    expect(again.source.current()!.evaluate(request(['reader'])).verdict).toBe('block');
    process.kill(process.pid, 'SIGHUP');
    await viaHup;
    expect(again.source.current()!.evaluate(request(['reader'])).verdict).toBe('allow');
    again.source.close();
  });

  it('reports a first load that does not compile', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hoop-policy-src-'));
    writeFileSync(join(dir, 'p.hoop'), broken);
    const { source, first } = await openPolicySource({ path: dir, watch: false, log: () => undefined });
    expect(first.ok).toBe(false);
    expect(source.current()).toBeUndefined();
    source.close();
  });

  it('a reload during an in-place write (truncate, then write) waits for the file to settle instead of loading a cut policy', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hoop-ps-'));
    const file = join(dir, 'main.hoop');
    const TWO_RULES = `package t\ndefault block "nope"\nrule reads {\n  match sql read\n  allow\n}\nrule writes {\n  match sql write\n  allow\n}\n`;
    writeFileSync(file, TWO_RULES);
    const { source } = await openPolicySource({ path: dir, watch: false, sighup: false, settleMs: 30, log: () => undefined });
    const seen: number[] = [];
    source.onChange((p) => seen.push(p.ruleCount));
    try {
      for (const cut of ['', 'package t\ndefault block "nope"\nrule reads {\n  match sql read\n  allow\n}\n']) {
        // An editor saving in place: the file is empty (or cut after the first rule) for a moment.
        writeFileSync(file, cut);
        const reloading = source.reload();
        await new Promise((r) => setTimeout(r, 5));
        writeFileSync(file, TWO_RULES.replace('"nope"', `"nope ${cut.length}"`));
        expect(await reloading).toMatchObject({ ok: true });
        expect(source.current()!.ruleCount).toBe(2);
      }
      // Only whole policies were ever put in force.
      expect(seen).toEqual([2, 2]);
    } finally {
      source.close();
    }
  });
});
