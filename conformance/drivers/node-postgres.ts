// node-postgres (`pg`) everyday paths; one JSON line per step (see README.md).
import pg from 'pg';
import { BIG, BYTES, DATE, JSON_DOC, NUMERIC, ROWS, TS, UNICODE, UUID, sqlstateOf, step, target, until } from './common.ts';

/**
 * COPY through node-postgres' Submittable interface (what pg-copy-streams does, without the
 * dependency): the client hands this object CopyInResponse, CopyData, CommandComplete, an error or
 * ReadyForQuery.
 */
class Copy implements pg.Submittable {
  readonly received: Buffer[] = [];
  command = '';
  private settle: { resolve(): void; reject(e: unknown): void } = { resolve: () => undefined, reject: () => undefined };
  readonly done = new Promise<void>((resolve, reject) => (this.settle = { resolve, reject }));
  constructor(
    readonly text: string,
    private readonly input: Buffer[] = [],
    private readonly failWith?: string,
  ) {}
  submit(connection: unknown): void {
    (connection as { query(text: string): void }).query(this.text);
  }
  handleCopyInResponse(connection: { sendCopyFromChunk(b: Buffer): void; endCopyFrom(): void; sendCopyFail(m: string): void }): void {
    if (this.failWith !== undefined) return connection.sendCopyFail(this.failWith);
    for (const chunk of this.input) connection.sendCopyFromChunk(chunk);
    connection.endCopyFrom();
  }
  handleCopyData(msg: { chunk: Buffer }): void {
    this.received.push(Buffer.from(msg.chunk));
  }
  handleCommandComplete(msg: { text: string }): void {
    this.command = msg.text;
  }
  // node-postgres forgets the active query at an ErrorResponse (its ReadyForQuery then goes nowhere).
  handleError(e: unknown): void {
    this.settle.reject(e);
  }
  handleReadyForQuery(): void {
    this.settle.resolve();
  }
  handleRowDescription(): void {}
  handleDataRow(): void {}
  handlePortalSuspended(): void {}
  handleEmptyQuery(): void {}
}

async function copy(client: pg.Client, text: string, input?: Buffer[], failWith?: string): Promise<Copy> {
  const q = new Copy(text, input, failWith);
  client.query(q);
  await q.done;
  return q;
}

const cfg = target();
const connect = async (): Promise<pg.Client> => {
  const c = new pg.Client(cfg);
  await c.connect();
  return c;
};
const c = await connect();
const other = await connect();

// Binary results as the bytes on the wire (pg's own binary decoders are partial).
const RAW = { getTypeParser: () => (v: string | Buffer) => v } as unknown as pg.CustomTypesConfig;

const TYPES_SQL =
  'SELECT $1::int4 AS i4, $2::int8 AS i8, $3::numeric AS num, $4::text AS txt, $5::bytea AS by, $6::bool AS b, $7::date AS d, ' +
  '$8::timestamptz AS ts, $9::uuid AS u, $10::json AS j, $11::jsonb AS jb, $12::int4[] AS ai, $13::text[] AS at, $14::text AS nul, $15::float8 AS f8';
const TYPES = [2147483647, BIG, NUMERIC, UNICODE, BYTES, true, DATE, TS, UUID, JSON.stringify(JSON_DOC), JSON_DOC, [1, 2, null, 4], ['x', 'y z', '"q"', null, UNICODE], null, 1.5e-300];

await step('connect', async () => (await c.query('SELECT current_user AS u, current_database() AS d')).rows);
await step('types_text', async () => (await c.query(TYPES_SQL, TYPES)).rows);
await step('types_binary', async () => {
  // `binary` is a node-postgres query option its type declarations lack.
  const q = { text: 'SELECT $1::int4 AS i4, $2::int8 AS i8, $3::text AS txt, $4::bool AS b, $5::bytea AS by, $6::float8 AS f, $7::timestamptz AS ts, $8::uuid AS u', values: [7, BIG, UNICODE, false, BYTES, -0.25, TS, UUID], binary: true, types: RAW };
  return (await c.query(q as pg.QueryConfig)).rows;
});
await step('server_types', async () =>
  (await c.query("SELECT 1::int2 AS i2, 2^40::int8 AS i8, 'NaN'::numeric AS nan, interval '1 day 02:03:04' AS iv, '{{1,2},{3,4}}'::int[] AS a2, '\\x00ff'::bytea AS by, 'infinity'::timestamptz AS inf, B'101' AS bits, '(1,2)'::point AS pt, NULL::int AS n")).rows,
);
await step('prepared', async () => {
  const out: unknown[] = [];
  for (const v of [1, 2, 3]) out.push((await c.query({ name: 'sq', text: 'SELECT $1::int * $1::int AS sq, $2::text AS t', values: [v, `v${v}`] })).rows[0]);
  return out;
});
await step('prepared_error', async () => {
  const out: unknown[] = [];
  for (const v of [0, 1]) {
    try {
      out.push((await c.query({ name: 'div', text: 'SELECT 10 / $1::int AS q', values: [v] })).rows[0]);
    } catch (e) {
      out.push(sqlstateOf(e));
    }
  }
  out.push((await c.query('SELECT 1 AS still')).rows[0]);
  return out;
});
await step('savepoint', async () => {
  await c.query('CREATE TEMP TABLE sp (i int)');
  await c.query('BEGIN');
  await c.query('INSERT INTO sp VALUES (1)');
  await c.query('SAVEPOINT a');
  await c.query('INSERT INTO sp VALUES (2)');
  await c.query('ROLLBACK TO SAVEPOINT a');
  await c.query('INSERT INTO sp VALUES (3)');
  await c.query('RELEASE SAVEPOINT a');
  await c.query('COMMIT');
  return (await c.query('SELECT array_agg(i ORDER BY i) AS a FROM sp')).rows;
});
await step('tx_error', async () => {
  const out: unknown[] = [];
  await c.query('BEGIN');
  for (const sql of ['SELECT 1/0', 'SELECT 1']) {
    try {
      await c.query(sql);
      out.push('ok');
    } catch (e) {
      out.push(sqlstateOf(e));
    }
  }
  await c.query('ROLLBACK');
  out.push((await c.query('SELECT 2 AS after')).rows[0]);
  return out;
});
await step('copy_in_out', async () => {
  await c.query('CREATE TEMP TABLE cp (i int, t text, b bytea)');
  const lines = Array.from({ length: 5000 }, (_, i) => `${i}\t${UNICODE} ${i}\t\\\\x${(i % 256).toString(16).padStart(2, '0')}\n`);
  const src = Buffer.from(lines.join(''));
  // Chunks that split lines and UTF-8 sequences anywhere.
  const chunks = [src.subarray(0, 7), src.subarray(7, 70_001), src.subarray(70_001)];
  const cin = await copy(c, 'COPY cp FROM STDIN', chunks);
  const cout = await copy(c, 'COPY (SELECT * FROM cp ORDER BY i) TO STDOUT');
  const out = Buffer.concat(cout.received);
  const outcomes: string[] = [];
  for (const [text, input, fail] of [
    ['COPY cp FROM STDIN', [Buffer.from('not a number\tx\t\\N\n')], undefined],
    ['COPY cp FROM STDIN', [Buffer.from('1\tx\t\\N\n')], 'client gave up'],
  ] as const) {
    try {
      await copy(c, text, [...input], fail);
      outcomes.push('accepted');
    } catch (e) {
      outcomes.push(sqlstateOf(e));
    }
  }
  return { in: cin.command, out: cout.command, same: out.equals(src), bytes: out.length, outcomes, after: (await c.query('SELECT count(*)::int AS n FROM cp')).rows };
});
await step('cursor', async () => {
  await c.query('BEGIN');
  await c.query('DECLARE cur NO SCROLL CURSOR FOR SELECT g FROM generate_series(1, 2500) g');
  const sizes: number[] = [];
  let sum = 0;
  for (;;) {
    const r = await c.query('FETCH 1000 FROM cur');
    if (r.rows.length === 0) break;
    sizes.push(r.rows.length);
    for (const row of r.rows) sum += row.g as number;
  }
  await c.query('COMMIT');
  return { sizes, sum };
});
await step('listen_notify', async () => {
  const got = new Promise<pg.Notification>((resolve) => c.once('notification', resolve));
  await c.query('LISTEN drv_chan');
  await other.query("SELECT pg_notify('drv_chan', $1)", [UNICODE]);
  const n = await got;
  await c.query('UNLISTEN drv_chan');
  return { channel: n.channel, payload: n.payload };
});
await step('big_fetch', async () => {
  const r = await c.query(`SELECT g, 'row ' || g AS t FROM generate_series(1, ${ROWS}) g`);
  let sum = 0;
  for (const row of r.rows) sum += row.g as number;
  return { rows: r.rows.length, sum, last: r.rows[r.rows.length - 1] };
});
await step('cancel', async () => {
  const pid = (await c.query('SELECT pg_backend_pid() AS p')).rows[0].p as number;
  const q = new pg.Query('SELECT pg_sleep(60)');
  const done = new Promise<string>((resolve) => {
    q.on('error', (e) => resolve(sqlstateOf(e)));
    q.on('end', () => resolve('not cancelled'));
  });
  c.query(q);
  await until(async () => (await other.query("SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND wait_event = 'PgSleep'", [pid])).rows.length === 1, 'pg_sleep to start');
  // Client#cancel(client, query) is public in node-postgres but missing from its type declarations.
  (new pg.Client(cfg) as unknown as { cancel(client: pg.Client, query: pg.Query): void }).cancel(c, q);
  const code = await done;
  return { code, after: (await c.query('SELECT 3 AS after')).rows[0] };
});
await c.end();
await other.end();
