# psycopg 3 everyday paths; one JSON line per step (see README.md).
import os, sys, threading
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import psycopg
from psycopg.types.json import Json, Jsonb
from common import *

conninfo = dict(host=T['host'], port=T['port'], user=T['user'], password=T['password'], dbname=T['database'], sslmode='disable')
c = psycopg.connect(**conninfo, autocommit=True)
other = psycopg.connect(**conninfo, autocommit=True)

TYPES_SQL = ('SELECT %s::int4 AS i4, %s::int8 AS i8, %s::numeric AS num, %s::text AS txt, %s::bytea AS by, %s::bool AS b, %s::date AS d, '
             '%s::timestamptz AS ts, %s::uuid AS u, %s::json AS j, %s::jsonb AS jb, %s::int4[] AS ai, %s::text[] AS at, %s::text AS nul, %s::float8 AS f8')
TYPES = [2147483647, BIG, NUMERIC, UNICODE, BYTES, True, DATE, TS, UUID, Json(JSON_DOC), Jsonb(JSON_DOC), [1, 2, None, 4], ['x', 'y z', '"q"', None, UNICODE], None, 1.5e-300]


def one(sql, params=None, **kw):
    return c.execute(sql, params, **kw).fetchall()


step('connect', lambda: one('SELECT current_user, current_database()'))
step('types_text', lambda: one(TYPES_SQL, TYPES))
step('types_binary', lambda: one(TYPES_SQL, TYPES, binary=True))
step('server_types', lambda: one("SELECT 1::int2, 2^40::int8, 'NaN'::numeric, interval '1 day 02:03:04', '{{1,2},{3,4}}'::int[], '\\x00ff'::bytea, 'infinity'::date::text, B'101', NULL::int, '{\"k\": [true]}'::jsonb, 'allballs'::time"))
step('prepared', lambda: [one('SELECT %s::int * %s::int, %s::text', (v, v, 'v%d' % v), prepare=True) for v in (1, 2, 3, 4, 5, 6)])


def prepared_error():
    out = []
    for v in (0, 1, 0, 2, 0, 3, 0):
        try:
            out.append(one('SELECT 10 / %s::int', (v,), prepare=True))
        except psycopg.Error as e:
            out.append(sqlstate(e))
    return out
step('prepared_error', prepared_error)


def savepoint():
    c.execute('CREATE TEMP TABLE sp (i int)')
    with c.transaction():
        c.execute('INSERT INTO sp VALUES (1)')
        try:
            with c.transaction():
                c.execute('INSERT INTO sp VALUES (2)')
                c.execute('SELECT 1/0')
        except psycopg.errors.DivisionByZero:
            pass
        with c.transaction():
            c.execute('INSERT INTO sp VALUES (3)')
    return one('SELECT array_agg(i ORDER BY i) FROM sp')
step('savepoint', savepoint)


def tx_error():
    out = []
    tx = psycopg.connect(**conninfo)  # not autocommit: the driver opens the transaction
    for sql in ('SELECT 1/0', 'SELECT 1'):
        try:
            tx.execute(sql)
            out.append('ok')
        except psycopg.Error as e:
            out.append(sqlstate(e))
    tx.rollback()
    out.append(tx.execute('SELECT 2').fetchall())
    tx.close()
    return out
step('tx_error', tx_error)


def copy_in_out():
    c.execute('CREATE TEMP TABLE cp (i int, t text, b bytea, j jsonb)')
    cur = c.cursor()
    with cur.copy('COPY cp FROM STDIN') as cp:
        for i in range(5000):
            cp.write_row((i, '%s %d' % (UNICODE, i), bytes([i % 256]), Jsonb({'i': i})))
    with cur.copy('COPY cp (i) FROM STDIN (FORMAT binary)') as cp:
        cp.set_types(['int4'])
        for i in range(5000, 6000):
            cp.write_row((i,))
    text = b''
    with cur.copy('COPY (SELECT * FROM cp ORDER BY i) TO STDOUT') as cp:
        for chunk in cp:
            text += bytes(chunk)
    rows = []
    with cur.copy('COPY (SELECT i, t FROM cp WHERE i % 1000 = 0 ORDER BY i) TO STDOUT (FORMAT binary)') as cp:
        cp.set_types(['int4', 'text'])
        rows = list(cp.rows())
    return {'copied': one('SELECT count(*), sum(i) FROM cp'), 'bytes': len(text), 'tail': text[-60:].decode('utf8', 'replace'), 'binary_rows': rows}
step('copy_in_out', copy_in_out)


def cursor():
    with psycopg.connect(**conninfo) as tx:  # a named (server-side) cursor lives in a transaction
        cur = tx.cursor('drv_cur')
        cur.itersize = 1000
        cur.execute('SELECT g, %s::text FROM generate_series(1, 2500) g', (UNICODE,))
        sizes, total = [], 0
        while True:
            rows = cur.fetchmany(700)
            if not rows:
                break
            sizes.append(len(rows))
            total += sum(r[0] for r in rows)
        scroll = tx.cursor('drv_scroll', scrollable=True)
        scroll.execute('SELECT g FROM generate_series(1, 10) g')
        scroll.scroll(7, 'absolute')
        return {'sizes': sizes, 'sum': total, 'scrolled': scroll.fetchone()}
step('cursor', cursor)


def pipeline():
    with c.pipeline():
        curs = [c.execute('SELECT %s::int + 1', (i,)) for i in range(20)]
    return [cur.fetchone()[0] for cur in curs]
step('pipeline', pipeline)


def listen_notify():
    c.execute('LISTEN drv_chan')
    other.execute("SELECT pg_notify('drv_chan', %s)", (UNICODE,))
    for n in c.notifies():
        c.execute('UNLISTEN drv_chan')
        return {'channel': n.channel, 'payload': n.payload}
step('listen_notify', listen_notify)


def big_fetch():
    rows = one("SELECT g, 'row ' || g FROM generate_series(1, %s) g", (ROWS,))
    return {'rows': len(rows), 'sum': sum(r[0] for r in rows), 'last': rows[-1]}
step('big_fetch', big_fetch)


def big_fetch_binary():
    rows = one("SELECT g, 'row ' || g FROM generate_series(1, %s) g", (ROWS,), binary=True)
    return {'rows': len(rows), 'sum': sum(r[0] for r in rows), 'last': rows[-1]}
step('big_fetch_binary', big_fetch_binary)

def cancel():
    pid = one('SELECT pg_backend_pid()')[0][0]
    result = {}

    def sleeper():
        try:
            c.execute('SELECT pg_sleep(60)')
            result['code'] = 'not cancelled'
        except psycopg.Error as e:
            result['code'] = sqlstate(e)
    th = threading.Thread(target=sleeper)
    th.start()
    until(lambda: other.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s AND wait_event = 'PgSleep'", (pid,)).fetchall() != [], 'pg_sleep to start')
    c.cancel()
    th.join(30)
    return {'code': result.get('code'), 'after': one('SELECT 3')}
step('cancel', cancel)

c.close()
other.close()
