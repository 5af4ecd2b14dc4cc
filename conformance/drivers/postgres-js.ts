// postgres.js (`postgres`) everyday paths; one JSON line per step (see README.md).
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import postgres from 'postgres';
import { BIG, BYTES, DATE, JSON_DOC, NUMERIC, ROWS, TS, UNICODE, UUID, sqlstateOf, step, target, until } from './common.ts';

const t = target();
const opts = { host: t.host, port: t.port, user: t.user, pass: t.password, database: t.database, ssl: false as const, onnotice: () => undefined };
// One connection, so temporary tables and session state carry from step to step.
const sql = postgres({ ...opts, max: 1 });
const other = postgres({ ...opts, max: 1 });

await step('connect', async () => sql`SELECT current_user AS u, current_database() AS d`);
await step('types', async () =>
  sql`SELECT ${2147483647}::int4 AS i4, ${BIG}::int8 AS i8, ${NUMERIC}::numeric AS num, ${UNICODE} AS txt, ${BYTES}::bytea AS by,
             ${true} AS b, ${DATE}::date AS d, ${new Date(TS)} AS ts, ${UUID}::uuid AS u, ${sql.json(JSON_DOC)}::json AS j,
             ${sql.json(JSON_DOC)} AS jb, ${sql.array([1, 2, 3])}::int4[] AS ai, ${sql.array(['x', 'y z', '"q"', UNICODE])}::text[] AS at,
             ${null}::text AS nul, ${1.5e-300}::float8 AS f8`,
);
await step('server_types', async () =>
  sql`SELECT 1::int2 AS i2, 2^40::int8 AS i8, 'NaN'::numeric AS nan, interval '1 day 02:03:04' AS iv, '{{1,2},{3,4}}'::int[] AS a2, '\\x00ff'::bytea AS by, B'101' AS bits, NULL::int AS n, '{"k": [true]}'::jsonb AS jb`,
);
await step('prepared', async () => {
  const out: unknown[] = [];
  for (const v of [1, 2, 3]) out.push((await sql.unsafe('SELECT $1::int * $1::int AS sq, $2::text AS t', [v, `v${v}`], { prepare: true }))[0]);
  return out;
});
await step('prepared_error', async () => {
  const out: unknown[] = [];
  for (const v of [0, 1, 0, 2]) {
    try {
      out.push((await sql`SELECT 10 / ${v}::int AS q`)[0]);
    } catch (e) {
      out.push(sqlstateOf(e));
    }
  }
  return out;
});
await step('savepoint', async () => {
  await sql`CREATE TEMP TABLE sp (i int)`;
  await sql.begin(async (tx) => {
    await tx`INSERT INTO sp VALUES (1)`;
    await tx.savepoint(async (s) => s`INSERT INTO sp VALUES (2)`);
    try {
      await tx.savepoint(async (s) => {
        await s`INSERT INTO sp VALUES (3)`;
        await s`SELECT 1/0`;
      });
    } catch (e) {
      await tx`INSERT INTO sp VALUES (${sqlstateOf(e) === '22012' ? 4 : 5})`;
    }
  });
  return sql`SELECT array_agg(i ORDER BY i) AS a FROM sp`;
});
await step('tx_error', async () => {
  const out: unknown[] = [];
  try {
    await sql.begin(async (tx) => {
      await tx`INSERT INTO sp VALUES (100)`;
      await tx`SELECT 1/0`;
    });
  } catch (e) {
    out.push(sqlstateOf(e));
  }
  out.push(await sql`SELECT count(*)::int AS n FROM sp WHERE i = 100`);
  return out;
});
await step('copy_in_out', async () => {
  await sql`CREATE TEMP TABLE cp (i int, t text, b bytea)`;
  const rows = Array.from({ length: 5000 }, (_, i) => `${i}\t${UNICODE} ${i}\t\\\\x${(i % 256).toString(16).padStart(2, '0')}\n`);
  await pipeline(Readable.from(rows), await sql`COPY cp FROM STDIN`.writable());
  let bytes = 0;
  let text = '';
  await pipeline(
    await sql`COPY (SELECT * FROM cp ORDER BY i) TO STDOUT`.readable(),
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        bytes += chunk.length;
        text += chunk.toString('utf8');
        cb();
      },
    }),
  );
  return { copied: (await sql`SELECT count(*)::int AS n, sum(i)::int AS s FROM cp`)[0], bytes, same: text === rows.join(''), tail: text.slice(-40) };
});
await step('cursor', async () => {
  const sizes: number[] = [];
  let sum = 0;
  for await (const rows of sql`SELECT g FROM generate_series(1, 2500) g`.cursor(1000)) {
    sizes.push(rows.length);
    for (const r of rows) sum += r.g as number;
  }
  return { sizes, sum };
});
await step('listen_notify', async () => {
  let resolve: (v: string) => void = () => undefined;
  const got = new Promise<string>((r) => (resolve = r));
  const l = await sql.listen('drv_chan', (payload) => resolve(payload));
  await other`SELECT pg_notify('drv_chan', ${UNICODE})`;
  const payload = await got;
  await l.unlisten();
  return { payload };
});
await step('big_fetch', async () => {
  const r = await sql`SELECT g, 'row ' || g AS t FROM generate_series(1, ${ROWS}::int) g`;
  let sum = 0;
  for (const row of r) sum += row.g as number;
  return { rows: r.length, sum, last: r[r.length - 1] };
});
await step('cancel', async () => {
  const [{ p }] = await sql`SELECT pg_backend_pid() AS p`;
  const q = sql`SELECT pg_sleep(60)`;
  const done = q.then(
    () => 'not cancelled',
    (e: unknown) => sqlstateOf(e),
  );
  await until(async () => (await other`SELECT 1 FROM pg_stat_activity WHERE pid = ${p} AND wait_event = 'PgSleep'`).length === 1, 'pg_sleep to start');
  await q.cancel();
  return { code: await done, after: await sql`SELECT 3 AS after` };
});
await sql.end();
await other.end();
