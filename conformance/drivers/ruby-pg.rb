# Ruby pg everyday paths; one JSON line per step (see README.md).
require 'pg'
require 'json'
require 'bigdecimal'
require 'date'
$stdout.sync = true

CONN = { host: ENV.fetch('DRV_HOST'), port: ENV.fetch('DRV_PORT'), user: ENV.fetch('DRV_USER'), password: ENV.fetch('DRV_PASSWORD'),
         dbname: ENV.fetch('DRV_DATABASE'), sslmode: 'disable' }.freeze
UNICODE = "héllo wörld — 日本語 🐘 \u00e9\u0301"
BIG = 9_007_199_254_740_993
BYTES = [0, 1, 0xff, 0x7f, 0x5c, 0x27].pack('C*')
ROWS = 200_000

def norm(v)
  case v
  when nil, true, false, Integer, Float then v
  when String then v.encoding == Encoding::BINARY ? "\\x#{v.unpack1('H*')}" : v
  when BigDecimal then v.to_s('F')
  when Time then v.utc.strftime('%Y-%m-%dT%H:%M:%S.%6NZ')
  when Date then v.iso8601
  when Array then v.map { |x| norm(x) }
  when Hash then v.to_h { |k, x| [k.to_s, norm(x)] }
  when PG::Result then v.to_a.map { |r| norm(r) }
  else v.inspect
  end
end

def step(name)
  puts JSON.generate({ step: name, value: norm(yield) })
rescue StandardError => e
  code = e.respond_to?(:result) && e.result ? e.result.error_field(PG::Result::PG_DIAG_SQLSTATE) : nil
  puts JSON.generate({ step: name, error: "#{code} #{e.class}: #{e.message}".strip })
end

def sqlstate(e) = e.result.error_field(PG::Result::PG_DIAG_SQLSTATE)

def connect
  c = PG.connect(**CONN)
  c.type_map_for_results = PG::BasicTypeMapForResults.new(c)
  c.type_map_for_queries = PG::BasicTypeMapForQueries.new(c)
  c.set_notice_processor { |_| nil }
  c
end

c = connect
other = connect

TYPES_SQL = 'SELECT $1::int4 AS i4, $2::int8 AS i8, $3::numeric AS num, $4::text AS txt, $5::bytea AS by, $6::bool AS b, $7::date AS d, ' \
            '$8::timestamptz AS ts, $9::uuid AS u, $10::json AS j, $11::jsonb AS jb, $12::int4[] AS ai, $13::text[] AS at, $14::text AS nul, $15::float8 AS f8'
TYPES = [2_147_483_647, BIG, BigDecimal('12345678901234567890.123456789'), UNICODE, PG::TextEncoder::Bytea.new.encode(BYTES), true, '2024-02-29',
         Time.utc(2024, 2, 29, 12, 34, 56.789r), 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', { a: [1, 2, { b: nil }], 'ü' => 'x' },
         { a: [1, 2, { b: nil }], 'ü' => 'x' }, [1, 2, nil, 4], ['x', 'y z', '"q"', nil, UNICODE], nil, 1.5e-300].freeze

step('connect') { c.exec('SELECT current_user AS u, current_database() AS d') }
step('types_text') { c.exec_params(TYPES_SQL, TYPES) }
step('types_binary') { c.exec_params(TYPES_SQL, TYPES, 1) }
step('server_types') do
  c.exec("SELECT 1::int2 AS i2, 2^40::int8 AS i8, 'NaN'::numeric AS nan, interval '1 day 02:03:04'::text AS iv, '{{1,2},{3,4}}'::int[] AS a2, " \
         "'\\x00ff'::bytea AS by, 'infinity'::date::text AS inf, B'101'::text AS bits, NULL::int AS n, '{\"k\": [true]}'::jsonb AS jb")
end
step('prepared') do
  c.prepare('sq', 'SELECT $1::int * $1::int AS sq, $2::text AS t')
  r = [1, 2, 3].map { |v| c.exec_prepared('sq', [v, "v#{v}"]).to_a }
  r << c.describe_prepared('sq').nfields
  c.exec('DEALLOCATE sq')
  r
end
step('prepared_error') do
  c.prepare('dv', 'SELECT 10 / $1::int AS q')
  [0, 1, 0, 2].map do |v|
    c.exec_prepared('dv', [v]).to_a
  rescue PG::Error => e
    sqlstate(e)
  end
end
step('savepoint') do
  c.exec('CREATE TEMP TABLE sp (i int)')
  c.transaction do
    c.exec('INSERT INTO sp VALUES (1)')
    c.exec('SAVEPOINT a')
    c.exec('INSERT INTO sp VALUES (2)')
    begin
      c.exec('SELECT 1/0')
    rescue PG::DivisionByZero
      c.exec('ROLLBACK TO SAVEPOINT a')
    end
    c.exec('INSERT INTO sp VALUES (3)')
  end
  c.exec('SELECT array_agg(i ORDER BY i) AS a FROM sp')
end
step('tx_error') do
  out = []
  begin
    c.transaction do
      c.exec('INSERT INTO sp VALUES (100)')
      c.exec('SELECT 1/0')
    end
  rescue PG::Error => e
    out << sqlstate(e)
  end
  out << c.transaction_status
  out << c.exec('SELECT count(*)::int AS n FROM sp WHERE i = 100').to_a
end
step('copy_in_out') do
  c.exec('CREATE TEMP TABLE cp (i int, t text, b bytea)')
  enc = PG::TextEncoder::CopyRow.new
  c.copy_data('COPY cp FROM STDIN', enc) do
    5000.times { |i| c.put_copy_data([i, "#{UNICODE} #{i}", "\\x#{format('%02x', i % 256)}"]) }
  end
  bad = begin
    c.copy_data('COPY cp FROM STDIN') { c.put_copy_data("not a number\tx\t\\N\n") }
  rescue PG::Error => e
    sqlstate(e)
  end
  text = +''
  c.copy_data('COPY (SELECT * FROM cp ORDER BY i) TO STDOUT') do
    while (row = c.get_copy_data)
      text << row
    end
  end
  dec_rows = []
  c.copy_data('COPY (SELECT i, t FROM cp WHERE i % 1000 = 0 ORDER BY i) TO STDOUT', PG::TextDecoder::CopyRow.new) do
    while (row = c.get_copy_data)
      dec_rows << row
    end
  end
  { copied: c.exec('SELECT count(*)::int AS n, sum(i)::int AS s FROM cp').to_a, bytes: text.bytesize, bad_row: bad, rows: dec_rows }
end
step('cursor') do
  sizes = []
  sum = 0
  c.transaction do
    c.exec('DECLARE cur NO SCROLL CURSOR FOR SELECT g FROM generate_series(1, 2500) g')
    loop do
      r = c.exec('FETCH 1000 FROM cur')
      break if r.ntuples.zero?

      sizes << r.ntuples
      r.each { |row| sum += row['g'] }
    end
  end
  { sizes: sizes, sum: sum }
end
step('single_row_mode') do
  c.send_query("SELECT g, 'r' || g AS t FROM generate_series(1, 3000) g")
  c.set_single_row_mode
  n = 0
  sum = 0
  while (r = c.get_result)
    r.check
    r.each { |row| n += 1; sum += row['g'] }
  end
  { n: n, sum: sum }
end
step('listen_notify') do
  c.exec('LISTEN drv_chan')
  other.exec_params("SELECT pg_notify('drv_chan', $1)", [UNICODE])
  got = nil
  c.wait_for_notify(20) { |channel, _pid, payload| got = { channel: channel, payload: payload } }
  c.exec('UNLISTEN drv_chan')
  got
end
step('big_fetch') do
  r = c.exec_params("SELECT g, 'row ' || g AS t FROM generate_series(1, $1::int) g", [ROWS])
  sum = 0
  r.each { |row| sum += row['g'] }
  { rows: r.ntuples, sum: sum, last: r[r.ntuples - 1] }
end
step('cancel') do
  pid = c.exec('SELECT pg_backend_pid() AS p').getvalue(0, 0)
  result = nil
  th = Thread.new do
    c.exec('SELECT pg_sleep(60)')
    result = 'not cancelled'
  rescue PG::Error => e
    result = sqlstate(e)
  end
  deadline = Time.now + 20
  until other.exec_params("SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND wait_event = 'PgSleep'", [pid]).ntuples == 1
    raise 'pg_sleep never started' if Time.now > deadline

    sleep 0.02 # polling another session for the event
  end
  cancel_error = c.cancel
  th.join(30)
  { code: result, cancel_error: cancel_error, after: c.exec('SELECT 3 AS after').to_a }
end
c.close
other.close
