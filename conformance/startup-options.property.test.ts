// The gateway reads the `options` startup parameter itself (proxy/postgres/session/startup-settings.ts)
// to refuse settings that would bypass the classifier, so its reading must be the server's. This
// differential generates options strings from the server's switch grammar (clustered switches,
// switches that set settings themselves, escaped spaces, arguments taken from the next word, and
// malformed strings) and connects directly to a real PostgreSQL 15 with each:
// - when the parser refuses the string, the server must refuse it too;
// - when the parser accepts it, connecting with what the gateway would send upstream instead
//   (upstreamOptions) must end the same way, with the same settings (source = client), and the
//   names the parser reported must be exactly the settings the server changed.

import fc from 'fast-check';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readOptions, upstreamOptions } from '../proxy/postgres/session/startup-settings.ts';
import { startCluster, type Cluster } from '../testing/pg-cluster.ts';
import { propertyRuns } from './runs.ts';

let cluster: Cluster;

beforeAll(async () => {
  cluster = await startCluster();
}, 60_000);

afterAll(async () => {
  await cluster?.stop();
});

type Outcome = { ok: true; settings: Record<string, string> } | { ok: false };

/** Connects with these options and reads what the client's startup packet changed. */
async function connectWith(options: string | undefined): Promise<Outcome> {
  const c = new pg.Client({ connectionString: cluster.url, ...(options !== undefined ? { options } : {}) });
  c.on('error', () => undefined);
  try {
    await c.connect();
  } catch {
    return { ok: false };
  }
  try {
    const r = await c.query<{ name: string; setting: string }>("SELECT lower(name) AS name, setting FROM pg_settings WHERE source = 'client' AND name NOT IN ('application_name', 'client_encoding') ORDER BY 1");
    return { ok: true, settings: Object.fromEntries(r.rows.map((x) => [x.name, x.setting])) };
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** A setting word pair: name (sometimes with dashes for underscores, or mixed case) and value. */
const settingArb = fc.oneof(
  fc.tuple(fc.constantFrom('statement_timeout', 'statement-timeout', 'Statement_Timeout', 'lock_timeout'), fc.constantFrom('0', '5000', '5s', 'abc')),
  fc.tuple(fc.constantFrom('DateStyle', 'datestyle'), fc.constantFrom('ISO,\\ MDY', 'German', 'SQL,\\ DMY', 'nope')),
  fc.tuple(fc.constantFrom('work_mem', 'work-mem'), fc.constantFrom('4MB', '64kB', '1024')),
  fc.tuple(fc.constantFrom('extra_float_digits', 'enable_seqscan', 'standard_conforming_strings', 'no_such_setting', ''), fc.constantFrom('0', 'off', 'on', '3')),
).map(([n, v]) => `${n}=${v}`);

/** One switch word (or two, when the argument is the next word). */
const switchArb = fc.oneof(
  settingArb.chain((s) => fc.constantFrom(`-c ${s}`, `-c${s}`, `--${s}`, `-nc ${s}`, `-nc${s}`, `-n-${s}`, `-Tc ${s}`, `-c\t${s}`)),
  fc.constantFrom('-e', '-s', '-n', '-T', '-b', '-E', '-j', '-P', '-O', '-ne', '-eP', '-sn'),
  fc.constantFrom('-S 1024', '-S2048', '-fs', '-f i', '-f h', '-t pa', '-tpl', '-t e', '-d 0', '-d1', '-d 2', '-d 3', '-W 0', '-W0'),
  fc.constantFrom('-C shared_buffers', '-r x', '-v 3', '-D x', '-Cc', '-nC foo'),
  // switches the server refuses for a client connection, or that are malformed
  fc.constantFrom('-B 10', '-F', '-l', '-i', '-h x', '-k /tmp', '-N 5', '-p 5', '-x', '-c', '-c name', '--name', '-fz', '-t x', 'word', '-', '--', '-d 9'),
);

const optionsArb = fc
  .tuple(fc.array(switchArb, { minLength: 0, maxLength: 4 }), fc.constantFrom(' ', '  ', '\t', ' \n '))
  .map(([words, sep]) => words.join(sep));

describe('startup options: the gateway reads them as PostgreSQL 15 does', () => {
  it('agrees with the server on every generated options string', async () => {
    // Each case opens two connections; a fifth of the usual run count keeps this file near 10 s.
    const runs = Math.ceil(propertyRuns() / 5);
    await fc.assert(
      fc.asyncProperty(optionsArb, async (options) => {
        const direct = await connectWith(options);
        const read = readOptions(options);
        if (!read.ok) {
          expect(direct, `the parser refused ${JSON.stringify(options)} (${read.reason}) but the server accepted it`).toEqual({ ok: false });
          return;
        }
        const viaGateway = await connectWith(upstreamOptions(read.settings));
        expect(viaGateway, `the server read ${JSON.stringify(options)} differently from the gateway`).toEqual(direct);
        if (direct.ok) {
          const names = [...new Set(read.settings.map((s) => s.name.toLowerCase()))].sort();
          expect(names, JSON.stringify(options)).toEqual(Object.keys(direct.settings).sort());
        }
      }),
      { numRuns: runs },
    );
  }, 300_000);
});
