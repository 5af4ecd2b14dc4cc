# Shared by the Python driver scripts (asyncpg, psycopg 3, psycopg2): the target from the
# environment, one JSON line per step, values normalised the same way every time (see README.md).
import datetime, decimal, json, os, sys, time, uuid

T = {k: os.environ['DRV_' + k.upper()] for k in ('host', 'port', 'user', 'password', 'database')}

UNICODE = 'héllo wörld — 日本語 🐘 \u00e9\u0301'
BIG = 9007199254740993
NUMERIC = decimal.Decimal('12345678901234567890.123456789')
UUID = uuid.UUID('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11')
JSON_DOC = {'a': [1, 2, {'b': None}], 'ü': 'x'}
TS = datetime.datetime(2024, 2, 29, 12, 34, 56, 789000, tzinfo=datetime.timezone.utc)
DATE = datetime.date(2024, 2, 29)
BYTES = bytes([0, 1, 0xff, 0x7f, 0x5c, 0x27])
ROWS = 200000


def norm(v):
    if isinstance(v, (bytes, bytearray, memoryview)):
        return '\\x' + bytes(v).hex()
    if isinstance(v, (datetime.date, datetime.time, datetime.datetime)):
        return v.isoformat()
    if isinstance(v, datetime.timedelta):
        return str(v)
    if isinstance(v, (decimal.Decimal, uuid.UUID)):
        return str(v)
    if isinstance(v, (list, tuple)):
        return [norm(x) for x in v]
    if isinstance(v, dict) or type(v).__name__ == 'Record':  # asyncpg.Record reads like a dict
        return {str(k): norm(x) for k, x in v.items()}
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    return repr(v)


def sqlstate(e):
    code = getattr(e, 'sqlstate', None) or getattr(e, 'pgcode', None)
    return code or 'no SQLSTATE: %s' % e


_t0 = time.monotonic()


def emit(obj):
    if os.environ.get('DRV_TIMING'):
        sys.stderr.write('%7.3fs %s\n' % (time.monotonic() - _t0, obj['step']))
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + '\n')
    sys.stdout.flush()


def step(name, fn):
    try:
        emit({'step': name, 'value': norm(fn())})
    except Exception as e:  # an unexpected failure is itself the step's result
        emit({'step': name, 'error': ('%s %s: %s' % (sqlstate(e) if hasattr(e, 'sqlstate') or hasattr(e, 'pgcode') else '', type(e).__name__, e)).strip()})


def until(probe, what, seconds=20):
    """Polls until another session sees the event (not a fixed sleep)."""
    deadline = time.monotonic() + seconds
    while not probe():
        if time.monotonic() > deadline:
            raise TimeoutError('timed out waiting for ' + what)
        time.sleep(0.02)
