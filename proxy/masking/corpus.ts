// The masking corpus: statements that try to read masked columns, each with the classification
// lineage must give it. Shared by the lineage test (proxy/masking/masking.test.ts) and the
// end-to-end sentinel test through the gateway.
//
// Schema (SETUP_SQL): public.customers(id, name, email, card_number, ssn, balance) with email,
// card_number and ssn masked; orders; views over customers; a user-defined function that reads it.
//
// `expect`: one letter per output column — c clear, e/k/s direct copy of email/card_number/ssn,
// d derived (redacted) — or 'block' when the statement must be refused before it runs.

export const SENTINEL = {
  email: 'zq-sentinel-mail-7731@example.org',
  card: '4929000000006783',
  ssn: '219-09-9999',
} as const;

export const SETUP_SQL = `
CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL, email text, card_number text, ssn text, balance numeric);
CREATE TABLE orders (id serial PRIMARY KEY, customer_id int REFERENCES customers(id), total numeric, note text);
CREATE VIEW v_customers AS SELECT id, email, upper(name) AS uname FROM customers;
CREATE VIEW v_nested AS SELECT * FROM v_customers;
CREATE VIEW v_derived AS SELECT id, lower(email) AS le FROM customers;
CREATE VIEW v_clear AS SELECT id, name FROM customers;
CREATE MATERIALIZED VIEW mv_emails AS SELECT id, email FROM customers;
CREATE FUNCTION leak() RETURNS SETOF text LANGUAGE sql AS 'SELECT email FROM customers';
CREATE FUNCTION leak_one(int) RETURNS text LANGUAGE sql AS 'SELECT email FROM customers WHERE id = $1';
INSERT INTO customers (name, email, card_number, ssn, balance) VALUES
  ('Zed Sentinel', '${SENTINEL.email}', '${SENTINEL.card}', '${SENTINEL.ssn}', 12.5),
  ('Ann Other', 'ann@example.com', '5555555555554444', '123-45-6789', 7);
INSERT INTO orders (customer_id, total, note) VALUES (1, 10, 'first'), (2, 20, 'second');
REFRESH MATERIALIZED VIEW mv_emails;
CREATE TABLE events (id int, contact text) PARTITION BY RANGE (id);
CREATE TABLE events_low PARTITION OF events FOR VALUES FROM (0) TO (100);
INSERT INTO events VALUES (1, '${SENTINEL.email}');
CREATE VIEW v_contacts AS SELECT id, name AS contact_name FROM customers;
CREATE EXTENSION citext;
CREATE FUNCTION initcap(int) RETURNS text LANGUAGE sql AS 'SELECT email FROM customers LIMIT 1';
ANALYZE customers;
`;

export const MASKED_COLUMNS = [
  { column: 'public.customers.email', masker: { name: 'email', args: [] } },
  { column: 'public.customers.card_number', masker: { name: 'last4', args: [] } },
  { column: 'public.customers.ssn', masker: { name: 'redact', args: [] } },
  // A partitioned table (its partitions inherit the mask) and a view column masked by name.
  { column: 'public.events.contact', masker: { name: 'redact', args: [] } },
  { column: 'public.v_contacts.contact_name', masker: { name: 'redact', args: [] } },
] as const;

export interface CorpusCase {
  sql: string;
  expect: string | 'block';
  /** Why the case is interesting. */
  note?: string;
}

export const CORPUS: CorpusCase[] = [
  // Direct copies, through every kind of indirection.
  { sql: 'SELECT id, email FROM customers', expect: 'ce' },
  { sql: 'SELECT * FROM customers', expect: 'cceksc', note: '* expansion' },
  { sql: 'TABLE customers', expect: 'cceksc' },
  { sql: 'SELECT c.email AS e FROM customers c', expect: 'e' },
  { sql: 'SELECT e FROM (SELECT email AS e FROM customers) s', expect: 'e' },
  { sql: 'WITH x AS (SELECT email FROM customers) SELECT * FROM x', expect: 'e' },
  { sql: 'WITH x(a, b) AS (SELECT id, ssn FROM customers) SELECT b, a FROM x', expect: 'sc' },
  { sql: 'SELECT * FROM v_customers', expect: 'cec', note: 'view' },
  { sql: 'SELECT * FROM v_nested', expect: 'cec', note: 'view over a view' },
  { sql: 'SELECT le FROM v_derived', expect: 'd' },
  { sql: 'SELECT * FROM v_clear', expect: 'cc' },
  { sql: 'SELECT email FROM mv_emails', expect: 'e', note: 'materialized view' },
  { sql: 'SELECT (SELECT email FROM customers ORDER BY id LIMIT 1) AS first', expect: 'e' },
  { sql: 'SELECT email FROM customers UNION SELECT name FROM customers', expect: 'e' },
  { sql: 'SELECT name FROM customers UNION ALL SELECT ssn FROM customers', expect: 's' },
  { sql: 'SELECT x.* FROM customers x JOIN orders o ON o.customer_id = x.id', expect: 'cceksc' },
  { sql: 'SELECT o.note, c.card_number FROM orders o JOIN customers c ON c.id = o.customer_id', expect: 'ck' },
  { sql: 'SELECT * FROM (SELECT * FROM customers) s', expect: 'cceksc' },
  { sql: 'SELECT id, email FROM customers ORDER BY email FOR UPDATE', expect: 'ce' },
  { sql: 'SELECT t.e FROM (VALUES (1)) v(i) JOIN (SELECT id, email AS e FROM customers) t ON t.id = v.i', expect: 'e', note: 'VALUES join' },
  { sql: 'SELECT email FROM customers c WHERE EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.id)', expect: 'e' },
  { sql: "INSERT INTO orders (customer_id, total, note) VALUES (1, 1, 'x') RETURNING id, note", expect: 'cc' },
  { sql: 'SELECT contact FROM events', expect: 'p' },
  { sql: 'SELECT id, contact FROM events_low', expect: 'cp', note: 'a partition carries its parent table mask' },
  { sql: 'SELECT contact_name FROM v_contacts', expect: 'v', note: 'a mask on a view column' },
  // Derived: any expression over a masked column is redacted.
  { sql: "SELECT email || '' FROM customers", expect: 'd' },
  { sql: 'SELECT upper(email) FROM customers', expect: 'd' },
  { sql: 'SELECT email::text FROM customers', expect: 'd' },
  { sql: 'SELECT email::varchar(200) FROM customers', expect: 'd' },
  { sql: 'SELECT row_to_json(c) FROM customers c', expect: 'd' },
  { sql: 'SELECT to_jsonb(c.*) FROM customers c', expect: 'd' },
  { sql: 'SELECT c FROM customers c', expect: 'd', note: 'whole-row reference' },
  { sql: 'SELECT (c).email FROM customers c', expect: 'd' },
  { sql: "SELECT string_agg(email, ',') FROM customers", expect: 'd' },
  { sql: "SELECT format('%s', email) FROM customers", expect: 'd' },
  { sql: "SELECT encode(convert_to(email, 'UTF8'), 'base64') FROM customers", expect: 'block', note: 'convert_to quotes an unknown encoding name; not listed' },
  { sql: "SELECT regexp_replace(email, '@.*', '') FROM customers", expect: 'd' },
  { sql: "SELECT jsonb_set('{}', '{a}', to_jsonb(email)) FROM customers", expect: 'd', note: 'the new value is not quoted; the path is' },
  { sql: "SELECT format('%s <%s>', name, email) FROM customers", expect: 'd' },
  { sql: 'SELECT (email).text FROM customers', expect: 'd', note: 'functional notation: text(email)' },
  { sql: 'SELECT (c).name FROM customers c', expect: 'c', note: 'a field of the whole row' },
  { sql: 'SELECT (c.*).name, (c.*).ssn FROM customers c', expect: 'cd' },
  { sql: 'SELECT (ROW(email, 1)).f1 FROM customers', expect: 'd' },
  { sql: "SELECT CASE WHEN email LIKE '%@x' THEN 'a' ELSE email END FROM customers", expect: 'd' },
  { sql: "SELECT coalesce(ssn, 'none') FROM customers", expect: 'd' },
  { sql: "SELECT json_build_object('e', email) FROM customers", expect: 'd' },
  { sql: 'SELECT jsonb_agg(c) FROM customers c', expect: 'd' },
  { sql: 'SELECT array_agg(card_number) FROM customers', expect: 'd' },
  { sql: 'SELECT ARRAY[email, name] FROM customers', expect: 'd' },
  { sql: 'SELECT id, lag(email) OVER (ORDER BY id) FROM customers', expect: 'cd', note: 'window function' },
  // Every input whose value reaches an aggregate's result (issue 14 item 4): WITHIN GROUP, the
  // aggregate ORDER BY, FILTER (conservatively), and window functions' arguments.
  { sql: 'SELECT mode() WITHIN GROUP (ORDER BY email) FROM customers', expect: 'd', note: 'ordered-set aggregate: the value is in WITHIN GROUP' },
  { sql: 'SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY ssn) FROM customers', expect: 'd' },
  { sql: 'SELECT percentile_disc(ARRAY[0, 1]) WITHIN GROUP (ORDER BY email DESC) FROM customers', expect: 'd' },
  { sql: "SELECT rank('a') WITHIN GROUP (ORDER BY email) FROM customers", expect: 'd', note: 'hypothetical-set aggregate' },
  { sql: "SELECT mode() WITHIN GROUP (ORDER BY translate(card_number, '0123456789', 'abcdefghij')) FROM customers", expect: 'd' },
  { sql: 'SELECT (SELECT mode() WITHIN GROUP (ORDER BY email) FROM customers) AS m', expect: 'd' },
  { sql: 'SELECT x.m FROM (SELECT mode() WITHIN GROUP (ORDER BY email) AS m FROM customers) x', expect: 'd' },
  { sql: "SELECT string_agg(name, ',' ORDER BY email) FROM customers", expect: 'd', note: 'aggregate ORDER BY' },
  { sql: 'SELECT json_agg(id ORDER BY ssn) FROM customers', expect: 'd' },
  { sql: "SELECT count(*) FILTER (WHERE email LIKE 'zq%') FROM customers", expect: 'd', note: 'FILTER is a side channel: counted as a flow' },
  { sql: "SELECT max(name) FILTER (WHERE ssn = '219-09-9999') FROM customers", expect: 'd' },
  { sql: 'SELECT first_value(email) OVER (ORDER BY id) FROM customers', expect: 'd', note: 'window function argument' },
  { sql: 'SELECT nth_value(card_number, 1) OVER w FROM customers WINDOW w AS (ORDER BY id)', expect: 'd' },
  { sql: 'SELECT lead(email, 1, email) OVER (PARTITION BY name) FROM customers', expect: 'd' },
  { sql: 'SELECT count(email) OVER () FROM customers', expect: 'c' },
  { sql: 'SELECT min(ssn) FROM customers', expect: 'd' },
  { sql: "SELECT email = 'a@b.c' FROM customers", expect: 'd' },
  { sql: 'SELECT length(email) FROM customers', expect: 'd' },
  { sql: 'SELECT u FROM customers, unnest(ARRAY[email]) u', expect: 'd' },
  { sql: 'SELECT substring(card_number from 1 for 12) FROM customers', expect: 'd' },
  { sql: "SELECT x.e FROM customers c, LATERAL (SELECT c.email || '!' AS e) x", expect: 'd', note: 'lateral' },
  { sql: "SELECT 1 AS one, (SELECT string_agg(ssn, '') FROM customers) AS all_ssn", expect: 'cd' },
  { sql: 'SELECT reverse(email) FROM customers', expect: 'd' },
  { sql: "SELECT replace(ssn, '-', '') FROM customers", expect: 'd' },
  { sql: 'SELECT jsonb_build_array(email) ->> 0 FROM customers', expect: 'd' },
  { sql: 'WITH RECURSIVE r(n, e) AS (SELECT 1, email FROM customers UNION ALL SELECT n + 1, e FROM r WHERE n < 2) SELECT e FROM r', expect: 'e' },
  // Clear.
  { sql: 'SELECT count(email) FROM customers', expect: 'c' },
  { sql: "SELECT id FROM customers WHERE email LIKE 'zq%'", expect: 'c' },
  { sql: 'SELECT * FROM orders', expect: 'cccc' },
  { sql: "SELECT replace(name, 'a', 'b') FROM customers", expect: 'c', note: 'citext adds replace() overloads: a pure extension' },
  { sql: 'SELECT * FROM information_schema.tables WHERE table_schema = \'public\'', expect: 'cccccccccccc' },
  { sql: 'SELECT generate_series(1, 3)', expect: 'c' },
  { sql: 'EXPLAIN SELECT email FROM customers', expect: 'c' },
  { sql: 'CREATE VIEW v_orders AS SELECT id, note FROM orders', expect: '', note: 'a view over clear columns may be defined' },
  // Blocked: flows the gateway cannot follow or channels outside the result rows.
  { sql: 'COPY customers TO STDOUT', expect: 'block' },
  { sql: 'COPY customers (email) TO STDOUT', expect: 'block' },
  { sql: 'COPY (SELECT email FROM customers) TO STDOUT', expect: 'block' },
  { sql: "COPY (SELECT upper(ssn) FROM customers) TO STDOUT WITH (FORMAT csv)", expect: 'block' },
  { sql: 'SELECT email::int FROM customers', expect: 'block', note: 'the cast error would quote the value' },
  // Functions and operators whose error quotes a masked argument (issue 14 item 5; functions.ts).
  { sql: "SELECT encode('x'::bytea, email) FROM customers", expect: 'block', note: 'unrecognized encoding: "..."' },
  { sql: "SELECT jsonb_set('[1]', ARRAY[email], '1') FROM customers", expect: 'block', note: 'path element ... is not an integer: "..."' },
  { sql: "SELECT jsonb_insert('[1]', ARRAY[ssn], '1') FROM customers", expect: 'block' },
  { sql: "SELECT '[1]'::jsonb #- ARRAY[email] FROM customers", expect: 'block' },
  { sql: "SELECT id FROM customers WHERE '[1]'::jsonb #- ARRAY[card_number] IS NULL", expect: 'block' },
  { sql: "SELECT ('\\x' || email)::bytea FROM customers", expect: 'block', note: 'bytea hex input quotes one character' },
  { sql: "SELECT email::bytea FROM customers", expect: 'block' },
  { sql: "SELECT regexp_replace('a', 'a', 'b', email) FROM customers", expect: 'block', note: 'regexp flags quote one character' },
  { sql: "SELECT regexp_match('a', 'a', substr(ssn, 3)) FROM customers", expect: 'block' },
  { sql: "SELECT regexp_count('a', 'a', length(email)) FROM customers", expect: 'block', note: 'invalid value for parameter "start": N' },
  { sql: "SELECT length('x'::bytea, email) FROM customers", expect: 'block', note: 'invalid encoding name "..."' },
  { sql: "SELECT format('%*s', email, 'x') FROM customers", expect: 'block', note: 'a width argument is quoted' },
  { sql: "SELECT percentile_disc(length(email) / 10.0) WITHIN GROUP (ORDER BY id) FROM customers", expect: 'block', note: 'percentile value N is not between 0 and 1' },
  // Functional notation (issue 14 item 2): (expr).f is f(expr).
  { sql: 'SELECT (email).int4 FROM customers', expect: 'block', note: 'int4(email): the error quotes the value' },
  { sql: 'SELECT email.int4 FROM customers', expect: 'block' },
  { sql: 'SELECT customers.ssn.int4 FROM customers', expect: 'block' },
  { sql: 'SELECT c.email.date FROM customers c', expect: 'block' },
  { sql: 'SELECT (substr(email, 1, 3)).int4 FROM customers', expect: 'block' },
  { sql: "SELECT ('select email::tsvector from customers').ts_stat", expect: 'block', note: 'ts_stat(query) runs the query' },
  { sql: 'SELECT id FROM customers WHERE email::int = 1', expect: 'block' },
  { sql: 'SELECT email::jsonb FROM customers', expect: 'block' },
  { sql: 'SELECT ssn::date FROM customers', expect: 'block' },
  { sql: "SELECT to_date(email, 'YYYY') FROM customers", expect: 'block' },
  { sql: "SELECT convert_to(email, 'LATIN1') FROM customers", expect: 'block' },
  { sql: 'SELECT leak()', expect: 'block', note: 'user-defined function' },
  { sql: 'SELECT * FROM leak()', expect: 'block' },
  { sql: 'SELECT leak_one(1)', expect: 'block' },
  { sql: 'SELECT initcap(1)', expect: 'block', note: 'a user-defined overload of a built-in name' },
  { sql: "SELECT initcap(name) FROM customers", expect: 'block', note: 'the overload could be the one that runs' },
  { sql: "SELECT query_to_xml('select email from customers', true, true, '')", expect: 'block' },
  { sql: "SELECT most_common_vals::text FROM pg_stats WHERE tablename = 'customers'", expect: 'block' },
  { sql: "DO $$ BEGIN RAISE NOTICE '%', (SELECT email FROM customers LIMIT 1); END $$", expect: 'block' },
  { sql: 'INSERT INTO orders (note) SELECT email FROM customers', expect: 'block' },
  { sql: 'UPDATE orders SET note = (SELECT email FROM customers LIMIT 1)', expect: 'block' },
  { sql: 'CREATE TABLE copy1 AS SELECT email FROM customers', expect: 'block' },
  { sql: 'SELECT email INTO copy2 FROM customers', expect: 'block' },
  { sql: "SELECT set_config('x.y', email, false) FROM customers", expect: 'block' },
  { sql: "SELECT pg_notify('c', email) FROM customers", expect: 'block' },
  { sql: 'WITH u AS (UPDATE customers SET name = name RETURNING email) SELECT * FROM u', expect: 'e' },
  // A write of a table with masked columns runs (its errors, which quote the failing row, are
  // withheld: gateway.masking.test.ts); what it returns is masked like a SELECT's outputs.
  { sql: 'UPDATE customers SET name = name WHERE id > 0 RETURNING id, email, ssn, upper(card_number)', expect: 'cesd' },
  { sql: 'DELETE FROM customers WHERE id = 0 RETURNING email', expect: 'e' },
  { sql: 'DELETE FROM customers WHERE id = 0 RETURNING *', expect: 'cceksc' },
  { sql: "INSERT INTO customers (id, name) VALUES (1, 'x') ON CONFLICT (id) DO UPDATE SET name = excluded.name RETURNING email", expect: 'e' },
  { sql: 'UPDATE customers SET name = email', expect: 'block', note: 'copies a masked value into a clear column' },
  { sql: 'SELECT xmlparse(content email) FROM customers', expect: 'block' },
  { sql: "SELECT json_value(email, '$') FROM customers", expect: 'block' },
  { sql: 'SELECT id FROM no_such_table', expect: 'block' },
  { sql: "SELECT to_tsquery(email) FROM customers", expect: 'block' },
  { sql: "SELECT format(email) FROM customers", expect: 'block', note: 'masked format string' },
  { sql: 'ALTER TABLE customers ALTER COLUMN email TYPE int USING email::int', expect: 'block', note: 'the rewrite error quotes a value' },
  { sql: 'CREATE INDEX ON customers ((ssn::date))', expect: 'block' },
  { sql: "CREATE FUNCTION f2() RETURNS text LANGUAGE sql AS 'SELECT email FROM customers LIMIT 1'", expect: 'block' },
  { sql: 'CREATE RULE r1 AS ON INSERT TO orders DO ALSO INSERT INTO orders (note) SELECT email FROM customers', expect: 'block' },
  { sql: 'DECLARE c1 CURSOR FOR SELECT email::int FROM customers', expect: 'block' },
  { sql: 'CREATE OR REPLACE VIEW v_clear AS SELECT id, upper(email) AS name FROM customers', expect: 'block', note: 'the catalog connection would still see the old, clear definition inside the transaction' },
  { sql: 'SELECT id FROM customers ORDER BY ssn::int', expect: 'block' },
  { sql: 'SELECT count(*) FILTER (WHERE email::int > 0) FROM customers', expect: 'block' },
  { sql: 'WITH x AS (INSERT INTO orders (note) SELECT ssn FROM customers RETURNING 1) SELECT * FROM x', expect: 'block' },
];
