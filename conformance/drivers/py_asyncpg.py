# asyncpg everyday paths (binary protocol throughout); one JSON line per step (see README.md).
import asyncio, io, json, os, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import asyncpg
from common import *

kw = dict(host=T['host'], port=int(T['port']), user=T['user'], password=T['password'], database=T['database'], ssl=False)


async def astep(name, fn):
    try:
        emit({'step': name, 'value': norm(await fn())})
    except Exception as e:
        emit({'step': name, 'error': ('%s %s: %s' % (getattr(e, 'sqlstate', '') or '', type(e).__name__, e)).strip()})


def rows(rs):
    return [dict(r) for r in rs]


async def main():
    c = await asyncpg.connect(**kw)
    other = await asyncpg.connect(**kw)
    for conn in (c, other):
        await conn.set_type_codec('json', encoder=json.dumps, decoder=json.loads, schema='pg_catalog')
        await conn.set_type_codec('jsonb', encoder=json.dumps, decoder=json.loads, schema='pg_catalog')

    await astep('connect', lambda: c.fetch('SELECT current_user AS u, current_database() AS d'))
    await astep('types', lambda: c.fetch(
        'SELECT $1::int4 AS i4, $2::int8 AS i8, $3::numeric AS num, $4::text AS txt, $5::bytea AS by, $6::bool AS b, $7::date AS d, '
        '$8::timestamptz AS ts, $9::uuid AS u, $10::json AS j, $11::jsonb AS jb, $12::int4[] AS ai, $13::text[] AS at, $14::text AS nul, $15::float8 AS f8',
        2147483647, BIG, NUMERIC, UNICODE, BYTES, True, DATE, TS, UUID, JSON_DOC, JSON_DOC, [1, 2, None, 4], ['x', 'y z', '"q"', None, UNICODE], None, 1.5e-300))
    await astep('server_types', lambda: c.fetch(
        "SELECT 1::int2 AS i2, 2^40::int8 AS i8, 'NaN'::numeric AS nan, interval '1 day 02:03:04' AS iv, '{{1,2},{3,4}}'::int[] AS a2, "
        "'\\x00ff'::bytea AS by, 'infinity'::date AS inf, B'101' AS bits, NULL::int AS n, '(1,2)'::point AS pt, '[1,5)'::int4range AS r, 'allballs'::time AS t"))

    async def prepared():
        st = await c.prepare('SELECT $1::int * $1::int AS sq, $2::text AS t')
        return [rows(await st.fetch(v, 'v%d' % v)) for v in (1, 2, 3)] + [[str(a.type.name) for a in st.get_attributes()]]
    await astep('prepared', prepared)

    async def prepared_error():
        st = await c.prepare('SELECT 10 / $1::int AS q')
        out = []
        for v in (0, 1, 0, 2):
            try:
                out.append(await st.fetchval(v))
            except asyncpg.PostgresError as e:
                out.append(e.sqlstate)
        return out
    await astep('prepared_error', prepared_error)

    async def savepoint():
        await c.execute('CREATE TEMP TABLE sp (i int)')
        async with c.transaction():
            await c.execute('INSERT INTO sp VALUES (1)')
            try:
                async with c.transaction():  # nested: a savepoint
                    await c.execute('INSERT INTO sp VALUES (2)')
                    await c.execute('SELECT 1/0')
            except asyncpg.DivisionByZeroError:
                pass
            async with c.transaction():
                await c.execute('INSERT INTO sp VALUES (3)')
        return await c.fetchval('SELECT array_agg(i ORDER BY i) FROM sp')
    await astep('savepoint', savepoint)

    async def tx_error():
        out = []
        tr = c.transaction()
        await tr.start()
        for sql in ('SELECT 1/0', 'SELECT 1'):
            try:
                await c.execute(sql)
                out.append('ok')
            except asyncpg.PostgresError as e:
                out.append(e.sqlstate)
        await tr.rollback()
        out.append(await c.fetchval('SELECT 2'))
        return out
    await astep('tx_error', tx_error)

    async def copy_in_out():
        await c.execute('CREATE TEMP TABLE cp (i int, t text, b bytea, j jsonb)')
        res = await c.copy_records_to_table('cp', columns=['i', 't', 'b'], records=[(i, '%s %d' % (UNICODE, i), bytes([i % 256])) for i in range(5000)])
        src = ''.join('%d\tcsv %d\t\\N\t{}\n' % (i, i) for i in range(5000, 5100)).encode()
        res2 = await c.copy_to_table('cp', source=io.BytesIO(src))
        out = io.BytesIO()
        res3 = await c.copy_from_query('SELECT * FROM cp ORDER BY i', output=out)
        data = out.getvalue()
        return {'in': [res, res2], 'out': res3, 'bytes': len(data), 'tail': data[-40:].decode('utf8', 'replace'),
                'copied': rows(await c.fetch('SELECT count(*) AS n, sum(i) AS s FROM cp'))}
    await astep('copy_in_out', copy_in_out)

    async def cursor():
        async with c.transaction():
            total, n = 0, 0
            async for r in c.cursor('SELECT g FROM generate_series(1, 2500) g', prefetch=1000):
                total += r['g']
                n += 1
            cur = await c.cursor('SELECT g FROM generate_series(1, 2500) g')
            first = await cur.fetch(700)
            await cur.forward(1000)
            rest = await cur.fetch(5000)
            return {'n': n, 'sum': total, 'first': len(first), 'rest': len(rest), 'rest_first': rest[0]['g']}
    await astep('cursor', cursor)

    async def listen_notify():
        got = asyncio.get_running_loop().create_future()
        cb = lambda conn, pid, channel, payload: got.done() or got.set_result((channel, payload))
        await c.add_listener('drv_chan', cb)
        await other.execute("SELECT pg_notify('drv_chan', $1)", UNICODE)
        channel, payload = await asyncio.wait_for(got, 20)
        await c.remove_listener('drv_chan', cb)
        return {'channel': channel, 'payload': payload}
    await astep('listen_notify', listen_notify)

    async def big_fetch():
        rs = await c.fetch("SELECT g, 'row ' || g AS t FROM generate_series(1, $1::int) g", ROWS)
        return {'rows': len(rs), 'sum': sum(r['g'] for r in rs), 'last': dict(rs[-1])}
    await astep('big_fetch', big_fetch)

    async def executemany():
        await c.execute('CREATE TEMP TABLE em (i int, t text)')
        await c.executemany('INSERT INTO em VALUES ($1, $2)', [(i, 't%d' % i) for i in range(2000)])
        return rows(await c.fetch('SELECT count(*) AS n, max(t) AS m FROM em'))
    await astep('executemany', executemany)

    async def cancel():
        # Not get_server_pid(): through the gateway BackendKeyData carries a gateway-made key.
        pid = await c.fetchval('SELECT pg_backend_pid()')
        sleeping = "SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND wait_event = 'PgSleep'"
        task = asyncio.ensure_future(c.fetch('SELECT pg_sleep(60)'))
        for _ in range(1000):  # poll another session for the event, not a fixed sleep
            if await other.fetch(sleeping, pid):
                break
            await asyncio.sleep(0.02)
        else:
            raise TimeoutError('pg_sleep never started')
        task.cancel()  # asyncpg sends a CancelRequest for the running query
        try:
            await task
            outcome = 'not cancelled'
        except asyncio.CancelledError:
            outcome = 'cancelled'
        after = await c.fetchval('SELECT 3')
        return {'outcome': outcome, 'after': after, 'still_sleeping': len(await other.fetch(sleeping, pid))}
    await astep('cancel', cancel)

    await c.close()
    await other.close()

asyncio.run(main())
