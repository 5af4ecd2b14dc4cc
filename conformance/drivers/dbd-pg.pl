# DBD::Pg everyday paths; one JSON line per step (see README.md).
use strict;
use warnings;
use utf8;
use DBI;
use DBD::Pg qw(:pg_types :async);
use JSON::PP;
use Time::HiRes qw(sleep time);

$| = 1;
my $json = JSON::PP->new->canonical->utf8->allow_nonref;
my $dsn = "dbi:Pg:host=$ENV{DRV_HOST};port=$ENV{DRV_PORT};dbname=$ENV{DRV_DATABASE};sslmode=disable";
sub connect_db { DBI->connect($dsn, $ENV{DRV_USER}, $ENV{DRV_PASSWORD}, { RaiseError => 1, PrintError => 0, AutoCommit => 1, pg_enable_utf8 => 1, @_ }) }
my $c = connect_db();
my $other = connect_db();
my $UNICODE = "héllo wörld — 日本語 🐘 \x{e9}\x{301}";
my $BYTES = pack('C*', 0, 1, 0xff, 0x7f, 0x5c, 0x27);
my $ROWS = 200000;

sub step {
  my ($name, $fn) = @_;
  my $v = eval { $fn->() };
  if ($@) {
    my $state = $DBI::state // '';
    my $msg = "$@";
    $msg =~ s/\s+$//;
    print $json->encode({ step => $name, error => "$state $msg" }), "\n";
  } else {
    print $json->encode({ step => $name, value => $v }), "\n";
  }
}

sub hex_of { my $b = shift; return defined $b ? '\\x' . unpack('H*', $b) : undef }
sub rows { my ($dbh, $sql, @p) = @_; return $dbh->selectall_arrayref($sql, { Slice => {} }, @p) }
sub state_of { my $dbh = shift; return $dbh->state }

step('connect', sub { rows($c, 'SELECT current_user AS u, current_database() AS d') });
step('types', sub {
  my $sth = $c->prepare('SELECT ?::int4 AS i4, ?::int8 AS i8, ?::numeric AS num, ?::text AS txt, ? AS by, ?::bool AS b, ?::date AS d, '
    . '?::timestamptz AS ts, ?::uuid AS u, ?::json AS j, ?::jsonb AS jb, ?::int4[] AS ai, ?::text[] AS at, ?::text AS nul, ?::float8 AS f8');
  my @p = (2147483647, '9007199254740993', '12345678901234567890.123456789', $UNICODE, $BYTES, 1, '2024-02-29', '2024-02-29T12:34:56.789Z',
    'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a":[1,2,{"b":null}],"ü":"x"}', '{"a":[1,2,{"b":null}],"ü":"x"}', [1, 2, undef, 4], ['x', 'y z', '"q"', undef, $UNICODE], undef, 1.5e-300);
  for my $i (0 .. $#p) { $sth->bind_param($i + 1, $p[$i], $i == 4 ? { pg_type => PG_BYTEA } : undef) }
  $sth->execute;
  my $r = $sth->fetchrow_hashref;
  $r->{by} = hex_of($r->{by});
  return $r;
});
step('server_types', sub {
  my $r = rows($c, q{SELECT 1::int2 AS i2, 2^40::int8 AS i8, 'NaN'::numeric AS nan, interval '1 day 02:03:04' AS iv, '{{1,2},{3,4}}'::int[] AS a2, }
    . q{'\x00ff'::bytea AS by, 'infinity'::timestamptz AS inf, B'101' AS bits, NULL::int AS n, '{"k": [true]}'::jsonb AS jb, true AS t});
  $r->[0]{by} = hex_of($r->[0]{by});
  return $r;
});
step('prepared', sub {
  my $sth = $c->prepare('SELECT ?::int * ?::int AS sq, ?::text AS t', { pg_server_prepare => 1 });
  my @out;
  for my $v (1, 2, 3) { $sth->execute($v, $v, "v$v"); push @out, $sth->fetchall_arrayref({}) }
  return \@out;
});
step('prepared_error', sub {
  my $sth = $c->prepare('SELECT 10 / ?::int AS q', { pg_server_prepare => 1 });
  my @out;
  for my $v (0, 1, 0, 2) {
    if (eval { $sth->execute($v); 1 }) { push @out, $sth->fetchall_arrayref({}) } else { push @out, $sth->state }
  }
  return \@out;
});
step('savepoint', sub {
  $c->do('CREATE TEMP TABLE sp (i int)');
  $c->begin_work;
  $c->do('INSERT INTO sp VALUES (1)');
  $c->pg_savepoint('a');
  $c->do('INSERT INTO sp VALUES (2)');
  eval { $c->do('SELECT 1/0') };
  $c->pg_rollback_to('a');
  $c->do('INSERT INTO sp VALUES (3)');
  $c->pg_release('a');
  $c->commit;
  return rows($c, 'SELECT array_agg(i ORDER BY i) AS a FROM sp');
});
step('tx_error', sub {
  my $tx = connect_db(AutoCommit => 0);
  my @out;
  for my $sql ('SELECT 1/0', 'SELECT 1') { push @out, (eval { $tx->do($sql); 1 } ? 'ok' : $tx->state) }
  $tx->rollback;
  push @out, rows($tx, 'SELECT 2 AS after');
  $tx->disconnect;
  return \@out;
});
step('copy_in_out', sub {
  $c->do('CREATE TEMP TABLE cp (i int, t text, b bytea)');
  $c->do('COPY cp FROM STDIN');
  my $src = '';
  for my $i (0 .. 4999) { my $line = sprintf("%d\t%s %d\t\\\\x%02x\n", $i, $UNICODE, $i, $i % 256); $src .= $line; $c->pg_putcopydata($line) }
  $c->pg_putcopyend;
  my $bad = eval { $c->do('COPY cp FROM STDIN'); $c->pg_putcopydata("not a number\tx\t\\N\n"); $c->pg_putcopyend; 'accepted' } // $c->state;
  $c->do('COPY (SELECT * FROM cp ORDER BY i) TO STDOUT');
  my ($line, $text) = ('', '');
  $text .= $line while $c->pg_getcopydata($line) >= 0;
  return { copied => rows($c, 'SELECT count(*) AS n, sum(i) AS s FROM cp'), same => ($text eq $src ? 1 : 0), chars => length($text), bad_row => $bad };
});
step('cursor', sub {
  $c->begin_work;
  $c->do('DECLARE cur NO SCROLL CURSOR FOR SELECT g FROM generate_series(1, 2500) g');
  my (@sizes, $sum);
  while (1) {
    my $r = $c->selectall_arrayref('FETCH 1000 FROM cur');
    last unless @$r;
    push @sizes, scalar @$r;
    $sum += $_->[0] for @$r;
  }
  $c->commit;
  return { sizes => \@sizes, sum => $sum };
});
step('listen_notify', sub {
  $c->do('LISTEN drv_chan');
  $other->do('SELECT pg_notify(?, ?)', undef, 'drv_chan', $UNICODE);
  my $n;
  my $deadline = time + 20;
  until ($n = $c->pg_notifies) {
    die 'no notification' if time > $deadline;
    $c->do('SELECT 1');  # DBD::Pg reads notifications as it talks to the server
  }
  $c->do('UNLISTEN drv_chan');
  return { channel => $n->[0], payload => $n->[2] };
});
step('big_fetch', sub {
  my $r = $c->selectall_arrayref(q{SELECT g, 'row ' || g AS t FROM generate_series(1, ?::int) g}, undef, $ROWS);
  my $sum = 0;
  $sum += $_->[0] for @$r;
  return { rows => scalar @$r, sum => $sum, last => $r->[-1] };
});
step('cancel', sub {
  my $pid = $c->selectrow_array('SELECT pg_backend_pid()');
  my $sth = $c->prepare('SELECT pg_sleep(60)', { pg_async => PG_ASYNC });
  $sth->execute;
  my $deadline = time + 20;
  until ($other->selectrow_array(q{SELECT 1 FROM pg_stat_activity WHERE pid = ? AND wait_event = 'PgSleep'}, undef, $pid)) {
    die 'pg_sleep never started' if time > $deadline;
    sleep 0.02;  # polling another session for the event
  }
  my $cancelled = $c->pg_cancel ? 1 : 0;
  my $state = $c->state;
  return { cancelled => $cancelled, state => $state, after => rows($c, 'SELECT 3 AS after') };
});
$c->disconnect;
$other->disconnect;
