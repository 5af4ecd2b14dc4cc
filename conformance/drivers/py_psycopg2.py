# psycopg2 everyday paths; one JSON line per step (see README.md).
import io, os, select, sys, threading
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import psycopg2, psycopg2.extras, psycopg2.extensions
from common import *

psycopg2.extras.register_uuid()
kw = dict(host=T['host'], port=T['port'], user=T['user'], password=T['password'], dbname=T['database'], sslmode='disable')
c = psycopg2.connect(**kw)
c.autocommit = True
other = psycopg2.connect(**kw)
other.autocommit = True


def one(sql, params=None, conn=None):
    cur = (conn or c).cursor()
    cur.execute(sql, params)
    return cur.fetchall()


TYPES_SQL = ('SELECT %s::int4 AS i4, %s::int8 AS i8, %s::numeric AS num, %s::text AS txt, %s::bytea AS by, %s::bool AS b, %s::date AS d, '
             '%s::timestamptz AS ts, %s::uuid AS u, %s::json AS j, %s::jsonb AS jb, %s::int4[] AS ai, %s::text[] AS at, %s::text AS nul, %s::float8 AS f8')
TYPES = [2147483647, BIG, NUMERIC, UNICODE, psycopg2.Binary(BYTES), True, DATE, TS, UUID, psycopg2.extras.Json(JSON_DOC), psycopg2.extras.Json(JSON_DOC),
         [1, 2, None, 4], ['x', 'y z', '"q"', None, UNICODE], None, 1.5e-300]

step('connect', lambda: one('SELECT current_user, current_database()'))
step('types', lambda: one(TYPES_SQL, TYPES))
step('server_types', lambda: one("SELECT 1::int2, 2^40::int8, 'NaN'::numeric, interval '1 day 02:03:04', '{{1,2},{3,4}}'::int[], '\\x00ff'::bytea, 'infinity'::date::text, B'101', NULL::int, '{\"k\": [true]}'::jsonb, 'allballs'::time"))


def prepared():
    c.cursor().execute('PREPARE sq (int, text) AS SELECT $1 * $1, $2')
    out = [one('EXECUTE sq (%s, %s)', (v, 'v%d' % v)) for v in (1, 2, 3)]
    c.cursor().execute('DEALLOCATE sq')
    return out
step('prepared', prepared)


def prepared_error():
    c.cursor().execute('PREPARE dv (int) AS SELECT 10 / $1')
    out = []
    for v in (0, 1, 0, 2):
        try:
            out.append(one('EXECUTE dv (%s)', (v,)))
        except psycopg2.Error as e:
            out.append(sqlstate(e))
    return out
step('prepared_error', prepared_error)


def savepoint():
    c.cursor().execute('CREATE TEMP TABLE sp (i int)')
    cur = c.cursor()
    cur.execute('BEGIN')
    cur.execute('INSERT INTO sp VALUES (1)')
    cur.execute('SAVEPOINT a')
    cur.execute('INSERT INTO sp VALUES (2)')
    try:
        cur.execute('SELECT 1/0')
    except psycopg2.Error as e:
        cur.execute('ROLLBACK TO SAVEPOINT a')
    cur.execute('INSERT INTO sp VALUES (3)')
    cur.execute('COMMIT')
    return one('SELECT array_agg(i ORDER BY i) FROM sp')
step('savepoint', savepoint)


def tx_error():
    tx = psycopg2.connect(**kw)  # not autocommit: the driver opens the transaction
    out = []
    for sql in ('SELECT 1/0', 'SELECT 1'):
        try:
            tx.cursor().execute(sql)
            out.append('ok')
        except psycopg2.Error as e:
            out.append(sqlstate(e))
    tx.rollback()
    out.append(one('SELECT 2', conn=tx))
    with tx:  # the context manager commits or rolls back
        tx.cursor().execute('SELECT 3')
    tx.close()
    return out
step('tx_error', tx_error)


def copy_in_out():
    cur = c.cursor()
    cur.execute('CREATE TEMP TABLE cp (i int, t text, b bytea)')
    src = ''.join('%d\t%s %d\t\\\\x%02x\n' % (i, UNICODE, i, i % 256) for i in range(5000))
    cur.copy_expert('COPY cp FROM STDIN', io.StringIO(src))
    cur.copy_from(io.StringIO('9001\tfrom copy_from\t\\N\n'), 'cp', columns=('i', 't', 'b'))
    out = io.StringIO()
    cur.copy_expert('COPY (SELECT * FROM cp ORDER BY i) TO STDOUT', out)
    text = out.getvalue()
    bad = None
    try:
        cur.copy_expert('COPY cp FROM STDIN', io.StringIO('not a number\tx\t\\N\n'))
    except psycopg2.Error as e:
        bad = sqlstate(e)
    return {'copied': one('SELECT count(*), sum(i) FROM cp'), 'same': text.startswith(src), 'chars': len(text), 'bad_row': bad}
step('copy_in_out', copy_in_out)


def cursor():
    tx = psycopg2.connect(**kw)
    cur = tx.cursor(name='drv_cur')  # a named cursor is a server-side DECLARE ... FETCH
    cur.itersize = 1000
    cur.execute('SELECT g FROM generate_series(1, 2500) g')
    sizes, total = [], 0
    while True:
        rows = cur.fetchmany(700)
        if not rows:
            break
        sizes.append(len(rows))
        total += sum(r[0] for r in rows)
    it = tx.cursor(name='drv_iter')
    it.itersize = 300
    it.execute('SELECT g FROM generate_series(1, 1000) g')
    n = sum(1 for _ in it)
    tx.rollback()
    tx.close()
    return {'sizes': sizes, 'sum': total, 'iterated': n}
step('cursor', cursor)


def listen_notify():
    c.cursor().execute('LISTEN drv_chan')
    other.cursor().execute("SELECT pg_notify('drv_chan', %s)", (UNICODE,))
    deadline = 200
    while not c.notifies and deadline:
        select.select([c], [], [], 0.1)
        c.poll()
        deadline -= 1
    n = c.notifies.pop(0)
    c.cursor().execute('UNLISTEN drv_chan')
    return {'channel': n.channel, 'payload': n.payload}
step('listen_notify', listen_notify)


def big_fetch():
    rows = one("SELECT g, 'row ' || g FROM generate_series(1, %s) g", (ROWS,))
    return {'rows': len(rows), 'sum': sum(r[0] for r in rows), 'last': rows[-1]}
step('big_fetch', big_fetch)


def execute_values():
    cur = c.cursor()
    cur.execute('CREATE TEMP TABLE ev (i int, t text)')
    psycopg2.extras.execute_values(cur, 'INSERT INTO ev VALUES %s', [(i, 't%d' % i) for i in range(3000)], page_size=500)
    psycopg2.extras.execute_batch(cur, 'UPDATE ev SET t = %s WHERE i = %s', [('u%d' % i, i) for i in range(0, 3000, 7)])
    return one("SELECT count(*), count(*) FILTER (WHERE t LIKE 'u%%') FROM ev")
step('execute_values', execute_values)


def session_settings():
    tx = psycopg2.connect(**kw)
    tx.set_session(readonly=True, isolation_level='SERIALIZABLE', deferrable=True)
    r = one('SHOW transaction_read_only', conn=tx) + one('SHOW transaction_isolation', conn=tx)
    tx.rollback()
    tx.set_client_encoding('LATIN1')
    r += one("SELECT 'é'::text, current_setting('client_encoding')", conn=tx)
    tx.close()
    return r
step('session_settings', session_settings)


def withhold_and_callproc():
    tx = psycopg2.connect(**kw)
    cur = tx.cursor('wh', withhold=True)  # a WITH HOLD cursor outlives the transaction
    cur.itersize = 100
    cur.execute('SELECT g FROM generate_series(1, 500) g')
    tx.commit()
    n = sum(1 for _ in cur)
    cur.close()
    cur = tx.cursor()
    cur.callproc('generate_series', (1, 3))
    r = cur.fetchall()
    tx.close()
    return {'held': n, 'callproc': r}
step('withhold_and_callproc', withhold_and_callproc)


def large_object():
    tx = psycopg2.connect(**kw)
    lo = tx.lobject(0, 'wb')
    lo.write(BYTES * 10000)
    oid = lo.oid
    lo.close()
    lo = tx.lobject(oid, 'rb')
    data = lo.read()
    lo.unlink()
    tx.commit()
    tx.close()
    return {'len': len(data), 'same': data == BYTES * 10000}
step('large_object', large_object)


def async_connection():
    a = psycopg2.connect(async_=1, **kw)
    psycopg2.extras.wait_select(a)
    cur = a.cursor()
    cur.execute('SELECT 42, %s', (UNICODE,))
    psycopg2.extras.wait_select(a)
    r = cur.fetchall()
    a.close()
    return r
step('async_connection', async_connection)


def notices_and_error_fields():
    c.cursor().execute("DO $$ BEGIN RAISE NOTICE 'hi %', 1; RAISE WARNING 'w'; END $$")
    notices = list(c.notices)
    try:
        c.cursor().execute('SELECT * FROM nope_table')
    except psycopg2.Error as e:
        d = e.diag
        return {'notices': notices, 'error': [e.pgcode, d.message_primary, d.severity, d.statement_position, d.source_function]}
step('notices_and_error_fields', notices_and_error_fields)

def cancel():
    pid = one('SELECT pg_backend_pid()')[0][0]
    result = {}

    def sleeper():
        try:
            c.cursor().execute('SELECT pg_sleep(60)')
            result['code'] = 'not cancelled'
        except psycopg2.Error as e:
            result['code'] = sqlstate(e)
    th = threading.Thread(target=sleeper)
    th.start()
    until(lambda: one("SELECT 1 FROM pg_stat_activity WHERE pid = %s AND wait_event = 'PgSleep'", (pid,), conn=other) != [], 'pg_sleep to start')
    c.cancel()
    th.join(30)
    return {'code': result.get('code'), 'after': one('SELECT 3')}
step('cancel', cancel)

c.close()
other.close()
