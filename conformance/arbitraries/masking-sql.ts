// The masking differential's world: a table whose masked columns hold sentinels, views over it,
// and a fast-check grammar of SELECTs over them (expressions, functions, operators, casts,
// aggregates with WITHIN GROUP / ORDER BY / FILTER, window functions, subqueries, CTEs, set
// operations, LATERAL, function scans, whole-row references, views, EXPLAIN and COPY TO).
//
// Sentinels: every secret part is built so that each 4-character window (letters) or 8-character
// window (digits) occurs nowhere else, contains a rare letter and is not made of hex digits only;
// `leakNeedles` turns them into the fragments the test looks for in every byte the gateway sends
// (also lower-cased, reversed and hex-encoded forms, since upper()/reverse()/encode() are in the
// grammar).
//
// Constructs kept OUT of the CI grammar while other helpers fix them (issue 14), with the
// reproduction each one found, are listed in EXCLUDED below; HOOP_MASKING_DIFF_EXCLUDED=1 puts
// them back for a local run.

import fc from 'fast-check';

export interface Person {
  id: number;
  name: string;
  /** The e-mail's local part (secret; the `email` masker shows its first character and the domain). */
  local: string;
  secret: string;
  nick: string;
  tags: [string, string];
  card: string;
  ssn: string;
  salary: string;
  score: number;
  /** The table holding the row (default people). */
  table?: string;
}

export const PEOPLE: Person[] = [
  { id: 1, name: 'Ann One', local: 'mgpxvtrzwt', secret: 'zrzhkzvxvmwzmv', nick: 'jttqpgqzbz', tags: ['xbmsxkrq', 'zxqqkkqz'], card: '4579036751412302', ssn: '347-72-8601', salary: '4586627.31', score: 1 },
  { id: 2, name: 'Bo Two', local: 'dwqnvcxwwm', secret: 'mgcxzgppxqsxrn', nick: 'kxtmqxzxsb', tags: ['qxbjhxbp', 'bqsktqck'], card: '4222035980967475', ssn: '150-81-1610', salary: '2104026.92', score: 2 },
  { id: 3, name: 'Cy Three', local: 'rwmxwqrswj', secret: 'xhnvjhtxdqjxcg', nick: 'jfqqgxpxmz', tags: ['qfqxmqwg', 'czgjpnkx'], card: '4208684773072734', ssn: '389-41-7607', salary: '8565485.81', score: 2 },
  // A row of people_kid, an inheritance child of people (SELECT ... FROM people returns it too).
  { id: 4, name: 'Di Four', local: 'mpjkjfnvxk', secret: 'qwkzczhhxjmqnc', nick: 'hfhxmnfqwm', tags: ['pnjztkxm', 'czrnkxhz'], card: '4916338506082832', ssn: '523-71-4986', salary: '3729164.58', score: 3, table: 'people_kid' },
];

const sq = (s: string): string => `'${s.replaceAll("'", "''")}'`;

export const SETUP_SQL = `
CREATE EXTENSION IF NOT EXISTS citext;
CREATE TABLE people (id int PRIMARY KEY, name text NOT NULL, email text, ssn text, card text, secret text,
  profile jsonb, tags text[], salary numeric, score int);
CREATE TABLE orders (id int PRIMARY KEY, person_id int REFERENCES people(id), amount numeric, note text);
CREATE TABLE people_kid (kid_note text) INHERITS (people);
${PEOPLE.map(
  (p) =>
    `INSERT INTO ${p.table ?? 'people'} (id, name, email, ssn, card, secret, profile, tags, salary, score) VALUES (${p.id}, ${sq(p.name)}, ${sq(`${p.local}@example.org`)}, ${sq(p.ssn)}, ${sq(p.card)}, ${sq(p.secret)}, ` +
    `${sq(JSON.stringify({ nick: p.nick, tier: 'gold' }))}, ARRAY[${sq(p.tags[0])}, ${sq(p.tags[1])}], ${p.salary}, ${p.score});`,
).join('\n')}
INSERT INTO orders VALUES (1, 1, 10, 'first'), (2, 2, 20, 'second'), (3, 3, 30, 'third'), (4, 1, 40, 'fourth');
CREATE VIEW v_people AS SELECT id, name, email, upper(secret) AS usecret FROM people;
CREATE VIEW v_union AS SELECT id, email AS val FROM people UNION ALL SELECT id, name FROM people;
CREATE VIEW v_sb WITH (security_barrier) AS SELECT id, ssn, card FROM people WHERE id > 0;
CREATE VIEW v_cte AS WITH c AS (SELECT id, secret FROM people) SELECT * FROM c;
CREATE VIEW v_lateral AS SELECT p.id, l.x FROM people p, LATERAL (SELECT p.email || '' AS x) l;
CREATE VIEW v_nested AS SELECT id, email, usecret FROM v_people WHERE id < 100;
CREATE MATERIALIZED VIEW mv_people AS SELECT id, email, card FROM people;
CREATE STATISTICS people_mcv (mcv) ON email, score FROM people;
CREATE STATISTICS people_expr ON (lower(secret)) FROM people;
ANALYZE people;
ANALYZE people_kid;
CREATE VIEW v_stats AS SELECT tablename, attname, most_common_vals::text AS mcv, histogram_bounds::text AS hist FROM pg_stats;
CREATE MATERIALIZED VIEW mv_stats AS SELECT attname, most_common_vals::text AS mcv FROM pg_stats WHERE tablename = 'people';
CREATE FUNCTION stats_of() RETURNS SETOF pg_stats LANGUAGE sql STABLE AS 'SELECT * FROM pg_stats';
CREATE FUNCTION email_of(int) RETURNS text LANGUAGE sql STABLE AS 'SELECT email FROM people WHERE id = $1';
CREATE MATERIALIZED VIEW mv_fn AS SELECT id, email_of(person_id) AS contact FROM orders;
`;

export const MASK_RULES = `
  mask column "people.email" with email
  mask column "people.ssn" with redact
  mask column "people.card" with last4
  mask column "people.secret" with redact
  mask column "people.profile" with redact
  mask column "people.tags" with redact
  mask column "people.salary" with redact
  mask detect credit_card, us_ssn with redact`;

// Every statement kind a reader could be allowed: the mask rule applies to each of them.
export const MASKED_READER_KINDS = 'select, explain, copy_to, set, transaction, utility';
/** Readers allowed, everything they read masked: the differentials' policy (wire and MCP). */
export const MASKED_READER_POLICY = `package t
default block "not allowed"

rule readers {
  match sql ${MASKED_READER_KINDS}
  allow
}

rule mask_people {
  match sql ${MASKED_READER_KINDS}${MASK_RULES}
}
`;

const hex = (s: string): string => Buffer.from(s, 'utf8').toString('hex');
const windows = (s: string, n: number): string[] => {
  const out: string[] = [];
  for (let i = 0; i + n <= s.length; i++) out.push(s.slice(i, i + n));
  return out;
};

/** Lower-case fragments: any of them in the (lower-cased) bytes sent to the client is a leak. */
export function leakNeedles(): Map<string, string> {
  const needles = new Map<string, string>();
  const add = (fragment: string, what: string): void => {
    needles.set(fragment.toLowerCase(), what);
  };
  for (const p of PEOPLE) {
    for (const [what, word] of [
      ['email', p.local],
      ['secret', p.secret],
      ['profile.nick', p.nick],
      ['tags[1]', p.tags[0]],
      ['tags[2]', p.tags[1]],
    ] as const) {
      for (const w of windows(word, 4)) {
        add(w, `${what} of person ${p.id}`);
        add([...w].reverse().join(''), `${what} of person ${p.id} (reversed)`);
      }
      for (const w of windows(word, 6)) add(hex(w), `${what} of person ${p.id} (hex)`);
    }
    for (const [what, digits] of [
      ['card', p.card],
      ['ssn', p.ssn],
      ['ssn digits', p.ssn.replaceAll('-', '')],
      ['salary', p.salary],
    ] as const) {
      for (const w of windows(digits, 8)) {
        add(w, `${what} of person ${p.id}`);
        add([...w].reverse().join(''), `${what} of person ${p.id} (reversed)`);
      }
    }
  }
  return needles;
}

/** The first needle found in these bytes, if any. */
export function findLeak(bytes: Buffer, needles: Map<string, string>): { fragment: string; what: string } | undefined {
  const text = bytes.toString('latin1').toLowerCase();
  for (const [fragment, what] of needles) if (text.includes(fragment)) return { fragment, what };
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// The grammar.

type Ty = 't' | 'i' | 'n' | 'b' | 'j' | 'a';

interface Col {
  ref: string;
  ty: Ty;
}

interface Scope {
  cols: Col[];
  /** Aliases whose whole row can be referenced (`p`, `row_to_json(p)`). */
  rows: string[];
}

interface Query {
  sql: string;
  tys: Ty[];
}

const RELATIONS: Record<string, [string, Ty][]> = {
  people: [['id', 'i'], ['name', 't'], ['email', 't'], ['ssn', 't'], ['card', 't'], ['secret', 't'], ['profile', 'j'], ['tags', 'a'], ['salary', 'n'], ['score', 'i']],
  orders: [['id', 'i'], ['person_id', 'i'], ['amount', 'n'], ['note', 't']],
  v_people: [['id', 'i'], ['name', 't'], ['email', 't'], ['usecret', 't']],
  v_union: [['id', 'i'], ['val', 't']],
  v_sb: [['id', 'i'], ['ssn', 't'], ['card', 't']],
  v_cte: [['id', 'i'], ['secret', 't']],
  v_lateral: [['id', 'i'], ['x', 't']],
  v_nested: [['id', 'i'], ['email', 't'], ['usecret', 't']],
  mv_people: [['id', 'i'], ['email', 't'], ['card', 't']],
  people_kid: [['id', 'i'], ['name', 't'], ['email', 't'], ['ssn', 't'], ['card', 't'], ['secret', 't'], ['profile', 'j'], ['tags', 'a'], ['salary', 'n'], ['score', 'i'], ['kid_note', 't']],
  v_stats: [['tablename', 't'], ['attname', 't'], ['mcv', 't'], ['hist', 't']],
  mv_stats: [['attname', 't'], ['mcv', 't']],
  // Its rows came from a user function reading people: no table scope names people otherwise.
  mv_fn: [['id', 'i'], ['contact', 't']],
};
const REL_WEIGHTS: [string, number][] = [
  ['people', 8], ['orders', 1], ['v_people', 2], ['v_union', 1], ['v_sb', 1], ['v_cte', 1], ['v_lateral', 1], ['v_nested', 1], ['mv_people', 1],
  ['people_kid', 2], ['v_stats', 1], ['mv_stats', 1], ['mv_fn', 1],
];

const TEXT_LITERALS = ["'x'", "'ab'", "''", "'@'", "'example.org'", 'NULL::text', "'%'"];

/**
 * Constructs out of the CI grammar: each hit a hole another helper is fixing (issue 14). Each
 * entry names the item and the reproduction the generator found. Set HOOP_MASKING_DIFF_EXCLUDED=1
 * to generate them anyway.
 */
export const EXCLUDED: Record<string, string> = {
  // Empty since items 3, 5, 7 and 8 of issue 14 landed: cursors (DECLARE/FETCH), SQL-level
  // PREPARE/EXECUTE and the error-quoting forms below were out of the grammar until then; each
  // leaked before its fix (e.g. `SELECT jsonb_set('{"a": [1]}', ARRAY['a', email], '1') FROM
  // people` put the e-mail in the ErrorResponse).
};

/** Text expressions (over a masked value `x`) whose errors quote `x` (issue 14 item 5). */
const ERROR_TEXT_FORMS = [
  (x: string) => `(${x})::int::text`, (x: string) => `(${x})::numeric::text`, (x: string) => `(${x})::date::text`, (x: string) => `(${x})::jsonb::text`,
  (x: string) => `(${x})::bool::text`, (x: string) => `(${x}).int4::text`, (x: string) => `encode('x'::bytea, ${x})`, (x: string) => `regexp_replace('a', 'a', 'b', ${x})`,
  (x: string) => `jsonb_set('{"a": [1]}'::jsonb, ARRAY['a', ${x}], '1')::text`, (x: string) => `decode(${x}, 'hex')::text`, (x: string) => `(${x})::uuid::text`,
  (x: string) => `jsonb_insert('[1]', ARRAY[${x}], '1')::text`, (x: string) => `('[1]'::jsonb #- ARRAY[${x}])::text`, (x: string) => `(('\\x' || ${x})::bytea)::text`,
  (x: string) => `length('x'::bytea, ${x})::text`, (x: string) => `format('%*s', ${x}, 'y')`, (x: string) => `regexp_match('a', 'a', ${x})::text`, (x: string) => `to_tsquery(${x})::text`,
];

export const includeExcluded = (env: NodeJS.ProcessEnv = process.env): boolean => env.HOOP_MASKING_DIFF_EXCLUDED === '1';

export interface GrammarOptions {
  /** Generate the constructs in EXCLUDED too. */
  excluded: boolean;
}

type W<T> = { arbitrary: fc.Arbitrary<T>; weight: number };
const w = <T>(weight: number, arbitrary: fc.Arbitrary<T>): W<T> => ({ arbitrary, weight });
const pick = <T>(xs: readonly T[]): fc.Arbitrary<T> => fc.constantFrom(...xs);

export function maskingGrammar(opts: GrammarOptions): { statement: fc.Arbitrary<string> } {
  let aliasN = 0;
  const fresh = (p: string): string => `${p}${aliasN++}`;

  const memo = new WeakMap<Scope, Map<string, fc.Arbitrary<string>>>();
  function memoized(scope: Scope, key: string, build: () => fc.Arbitrary<string>): fc.Arbitrary<string> {
    let m = memo.get(scope);
    if (!m) memo.set(scope, (m = new Map()));
    let a = m.get(key);
    if (!a) {
      // Lazy: the arbitrary is built the first time a value is drawn, so building a grammar level
      // does not build every level under it.
      let built: fc.Arbitrary<string> | undefined;
      a = fc.constant(null).chain(() => (built ??= build()));
      m.set(key, a);
    }
    return a;
  }

  const colsOf = (scope: Scope, ty: Ty): string[] => scope.cols.filter((c) => c.ty === ty).map((c) => c.ref);

  /** A base relation as a FROM item. */
  const baseRel: fc.Arbitrary<{ sql: string; scope: Scope }> = fc
    .tuple(fc.constantFrom(...REL_WEIGHTS.flatMap(([r, n]) => Array<string>(n).fill(r))), fc.boolean())
    .map(([rel, only]) => {
      const alias = fresh('r');
      const scope: Scope = { cols: RELATIONS[rel]!.map(([c, ty]) => ({ ref: `${alias}.${c}`, ty })), rows: [alias] };
      const sample = only && rel === 'people_kid' ? ' TABLESAMPLE BERNOULLI (100) REPEATABLE (1)' : '';
      return { sql: `${only && rel === 'people' ? 'ONLY ' : ''}${rel} ${alias}${sample}`, scope };
    });

  function expr(scope: Scope, ty: Ty, depth: number): fc.Arbitrary<string> {
    return memoized(scope, `${ty}${depth}`, () => buildExpr(scope, ty, depth));
  }

  /** A scalar subquery over a fresh relation, maybe correlated with `scope`. */
  function scalarSubquery(scope: Scope, ty: Ty, depth: number): fc.Arbitrary<string> {
    return baseRel.chain(({ sql, scope: inner }) => {
      const both: Scope = { cols: [...inner.cols, ...scope.cols], rows: inner.rows };
      const innerCols = colsOf(inner, 'i').length ? colsOf(inner, 'i') : ['1'];
      return fc.oneof(
        expr(inner, ty, depth).map((e) => `(SELECT ${e} FROM ${sql} ORDER BY 1 LIMIT 1)`),
        fc.tuple(expr(both, ty, depth), pick(innerCols), expr(scope, 'i', 0)).map(([e, k, o]) => `(SELECT ${e} FROM ${sql} WHERE ${k} = ${o} LIMIT 1)`),
        aggregate(inner, ty, depth).map((e) => `(SELECT ${e} FROM ${sql})`),
      );
    });
  }

  function buildExpr(scope: Scope, ty: Ty, depth: number): fc.Arbitrary<string> {
    const leaves = colsOf(scope, ty);
    const sub = (t: Ty): fc.Arbitrary<string> => expr(scope, t, depth - 1);
    const arms: W<string>[] = [];
    const T = depth > 0 ? sub('t') : undefined;
    switch (ty) {
      case 't': {
        if (leaves.length) arms.push(w(10, pick(leaves)));
        arms.push(w(1, pick(TEXT_LITERALS)));
        if (depth <= 0) {
          if (!leaves.length) arms.push(w(1, fc.constant("'lit'")));
          break;
        }
        const t = T!;
        arms.push(
          w(6, fc.tuple(pick(['upper', 'lower', 'initcap', 'reverse', 'btrim', 'ltrim', 'rtrim', 'md5', 'quote_literal', 'quote_ident', 'quote_nullable', 'normalize', 'pg_catalog.upper', 'text']), t).map(([f, a]) => `${f}(${a})`)),
          w(6, fc.tuple(t, pick([
            (x: string) => `substr(${x}, 2, 6)`, (x: string) => `substr(${x}, 3)`, (x: string) => `substring(${x} from 2 for 5)`,
            (x: string) => `left(${x}, 7)`, (x: string) => `right(${x}, 7)`, (x: string) => `lpad(${x}, 40, '*')`, (x: string) => `rpad(${x}, 40, '-')`,
            (x: string) => `repeat(${x}, 2)`, (x: string) => `replace(${x}, 'q', 'Q')`, (x: string) => `translate(${x}, 'qxz', 'QXZ')`,
            (x: string) => `split_part(${x}, '@', 1)`, (x: string) => `regexp_replace(${x}, '[aeiou]', '', 'g')`,
            (x: string) => `overlay(${x} placing '#' from 2 for 1)`, (x: string) => `${x}::varchar(80)::text`, (x: string) => `CAST(${x} AS char(60))::text`,
            (x: string) => `(${x} COLLATE "C")`, (x: string) => `${x}::name::text`, (x: string) => `${x}::citext::text`,
            (x: string) => `encode(convert_to(${x}, 'UTF8'), 'hex')`, (x: string) => `encode(convert_to(${x}, 'UTF8'), 'base64')`, (x: string) => `encode(${x}::bytea, 'escape')`,
            (x: string) => `convert_from(convert_to(${x}, 'UTF8'), 'UTF8')`, (x: string) => `to_json(${x})::text`, (x: string) => `jsonb_build_object('k', ${x})::text`,
            (x: string) => `json_build_array(${x}, 1)::text`, (x: string) => `array_to_string(ARRAY[${x}, 'y'], ',')`, (x: string) => `(ARRAY[${x}])[1]`,
            (x: string) => `(regexp_match(${x}, '(.*)'))[1]`, (x: string) => `(string_to_array(${x}, '@'))[1]`, (x: string) => `substring(${x} from '^(.*)@')`,
            (x: string) => `format('%s', ${x})`, (x: string) => `format('%I/%L', ${x}, ${x})`, (x: string) => `concat_ws('|', ${x}, 'z')`, (x: string) => `to_tsvector('simple', ${x})::text`,
            (x: string) => `(${x}).upper`, (x: string) => `(${x}).md5`, (x: string) => `(${x})::text`, (x: string) => `${x} || ''`,
            (x: string) => `xmlelement(name x, ${x})::text`, (x: string) => `xmlforest(${x} AS f)::text`, (x: string) => `quote_literal(${x}::citext)`,
            (x: string) => `ROW(${x}, 1)::text`, (x: string) => `(SELECT ${x})`, (x: string) => `(SELECT v FROM (VALUES (${x})) vv(v))`,
          ])).map(([a, f]) => f(a))),
          w(2, fc.tuple(t, pick(ERROR_TEXT_FORMS)).map(([a, f]) => f(a))),
          w(3, fc.tuple(t, t, pick(['||', 'concat', 'coalesce', 'greatest', 'least', 'nullif'])).map(([a, b, op]) => (op === '||' ? `(${a} || ${b})` : `${op}(${a}, ${b})`))),
          // A masked value in the other argument positions: delimiters, fills, replacements, formats.
          w(3, fc.tuple(t, t, pick([
            (a: string, b: string) => `replace(${a}, 'q', ${b})`, (a: string, b: string) => `lpad(${a}, 50, ${b})`, (a: string, b: string) => `concat_ws(${b}, ${a}, 'z')`,
            (a: string, b: string) => `translate(${a}, 'aeio', ${b})`, (a: string, b: string) => `overlay(${a} placing ${b} from 2)`, (a: string, b: string) => `array_to_string(ARRAY[${a}, 'y'], ${b})`,
            (a: string, b: string) => `regexp_replace(${a}, 'q', ${b})`, (a: string, b: string) => `format('%s|%s', ${a}, ${b})`, (a: string, b: string) => `split_part(${a}, ${b}, 1)`,
            (a: string, b: string) => `rtrim(${a}, ${b})`, (a: string, b: string) => `array_to_string(string_to_array(${a}, ${b}), '-')`, (a: string, b: string) => `substring(${a} from ${b})`,
            (a: string, b: string) => `(jsonb_build_object(${a}, ${b}) ->> ${a})`, (a: string, b: string) => `(ROW(${a}, ${b})).f2`, (a: string, b: string) => `CASE ${a} WHEN ${b} THEN ${a} ELSE ${b} END`,
            (a: string, b: string) => `coalesce(${a})`, (a: string, b: string) => `(SELECT ${a} WHERE ${b} IS NOT NULL)`, (a: string, b: string) => `xmlelement(name e, xmlattributes(${a} AS a), ${b})::text`,
          ])).map(([a, b, f]) => f(a, b))),
          w(2, fc.tuple(sub('b'), t, t).map(([c, a, b]) => `CASE WHEN ${c} THEN ${a} ELSE ${b} END`)),
          w(2, sub('i').map((i) => `${i}::text`)),
          w(1, sub('n').map((n) => `${n}::text`)),
          w(3, sub('j').chain((j) => pick([`${j}::text`, `${j} ->> 'nick'`, `${j} #>> '{nick}'`, `jsonb_extract_path_text(${j}, 'nick')`, `jsonb_pretty(${j})`, `(${j} -> 'nick')::text`, `jsonb_path_query_first(${j}, '$.nick')::text`,
            `(${j})['nick']::text`, `((${j})['nick'])::text`, `(${j})['nick'] #>> '{}'`, `jsonb_path_query_array(${j}, '$.*')::text`, `(SELECT string_agg(k || v, ',') FROM jsonb_each_text(${j}) e(k, v))`]))),
          w(3, sub('a').chain((a) => pick([`${a}::text`, `${a}[1]`, `array_to_string(${a}, ',')`, `(${a})[2]`, `array_to_string(array_append(${a}, 'w'), ';')`,
            `(${a})[1:1]::text`, `(${a})[:2]::text`, `(SELECT max(x) FROM unnest(${a}) x)`, `array_to_string(ARRAY(SELECT unnest(${a}) ORDER BY 1), '')`]))),
          w(2, scalarSubquery(scope, 't', depth - 1)),
        );
        if (scope.rows.length) {
          arms.push(w(2, fc.tuple(pick(scope.rows), pick([(r: string) => `${r}::text`, (r: string) => `row_to_json(${r})::text`, (r: string) => `to_jsonb(${r})::text`, (r: string) => `ROW(${r}.*)::text`, (r: string) => `json_build_array(${r}.*)::text`,
            (r: string) => `(to_jsonb(${r}) ->> 'email')`, (r: string) => `(row_to_json(${r}) ->> 'secret')`, (r: string) => `(SELECT string_agg(v, ',') FROM jsonb_each_text(to_jsonb(${r})) e(k, v))`,
            (r: string) => `ARRAY[${r}]::text`, (r: string) => `(ARRAY[${r}])[1]::text`, (r: string) => `(SELECT x FROM (SELECT ${r}) y(x))::text`])).map(([r, f]) => f(r))));
          arms.push(w(2, pick([
            '((SELECT q FROM people q ORDER BY q.id LIMIT 1)).email',
            '((ARRAY(SELECT q FROM people q ORDER BY q.id))[1]).secret',
            '(jsonb_populate_record(NULL::people, (SELECT to_jsonb(q) FROM people q LIMIT 1))).email',
            '((SELECT q FROM people_kid q LIMIT 1)::people).ssn',
            '(SELECT (q).card FROM people q LIMIT 1)',
            '(SELECT (q.*)::text FROM people q LIMIT 1)',
          ])));
        }
        arms.push(
          w(1, pick([
            "(SELECT string_agg(most_common_vals::text, ';') FROM pg_stats WHERE tablename = 'people')",
            "query_to_xml('SELECT email FROM people', true, false, '')::text",
            "(SELECT string_agg(word, ',') FROM ts_stat('SELECT to_tsvector(''simple'', secret) FROM people'))",
            "(SELECT definition FROM pg_views WHERE viewname = 'v_people')",
            'current_query()',
            "(SELECT string_agg(most_common_vals::text, ';') FROM pg_stats_ext WHERE tablename = 'people')",
            "(SELECT string_agg(most_common_vals::text, ';') FROM pg_catalog.pg_stats_ext_exprs WHERE tablename = 'people')",
            "(SELECT string_agg(histogram_bounds::text, ';') FROM \"pg_stats\" WHERE tablename = 'people_kid')",
            "(SELECT string_agg(mcv, ';') FROM v_stats WHERE tablename = 'people')",
            "(SELECT string_agg(mcv, ';') FROM mv_stats)",
            "(SELECT string_agg(most_common_vals::text, ';') FROM stats_of() WHERE tablename = 'people')",
            // A user function reading people: what it reads is not in the statement's text.
            'email_of(1)',
            "(SELECT string_agg(email_of(o.person_id), ',') FROM orders o)",
            'table_to_xml(\'people\', true, false, \'\')::text',
          ])),
        );
        break;
      }
      case 'i': {
        if (leaves.length) arms.push(w(4, pick(leaves)));
        arms.push(w(2, pick(['1', '2', '3', '0'])));
        if (depth <= 0) break;
        const t = T!;
        arms.push(
          w(4, fc.tuple(pick(['length', 'char_length', 'octet_length', 'ascii', 'bit_length']), t).map(([f, a]) => `${f}(${a})`)),
          w(2, t.chain((a) => pick([`position('q' in ${a})`, `strpos(${a}, '@')`, `(${a} < 'n')::int`, `hashtext(${a})`, `regexp_count(${a}, 'q')`]))),
          w(2, fc.tuple(sub('i'), sub('i'), pick(['+', '-', '*'])).map(([a, b, op]) => `(${a} ${op} ${b})`)),
          w(1, sub('a').chain((a) => pick([`array_length(${a}, 1)`, `cardinality(${a})`]))),
          w(1, sub('n').map((n) => `${n}::int`)),
          w(1, sub('j').map((j) => `jsonb_array_length(jsonb_build_array(${j}))`)),
          w(1, scalarSubquery(scope, 'i', depth - 1)),
        );
        break;
      }
      case 'n': {
        if (leaves.length) arms.push(w(4, pick(leaves)));
        arms.push(w(1, pick(['1.5', '0'])));
        if (depth <= 0) break;
        arms.push(
          w(2, sub('n').chain((n) => pick([`round(${n}, 1)`, `(${n} + 1)`, `abs(${n})`, `trunc(${n})`, `(${n} * 2)`]))),
          w(1, sub('i').map((i) => `${i}::numeric`)),
        );
        break;
      }
      case 'b': {
        arms.push(w(1, pick(['true', 'false'])));
        if (depth <= 0) {
          const ints = colsOf(scope, 'i');
          if (ints.length) arms.push(w(3, pick(ints).map((c) => `${c} > 1`)));
          break;
        }
        const t = T!;
        arms.push(
          w(4, t.chain((a) => pick([`${a} LIKE 'm%'`, `${a} ILIKE '%Q%'`, `${a} ~ '^[a-m]'`, `${a} IS NULL`, `starts_with(${a}, 'd')`, `${a} IN ('a', 'b')`, `${a} SIMILAR TO '%x%'`, `${a} IS DISTINCT FROM 'x'`]))),
          w(2, fc.tuple(t, t, pick(['=', '<', '<>', '>='])).map(([a, b, op]) => `${a} ${op} ${b}`)),
          w(2, fc.tuple(sub('i'), sub('i')).map(([a, b]) => `${a} > ${b}`)),
          w(1, fc.tuple(sub('b'), sub('b'), pick(['AND', 'OR'])).map(([a, b, op]) => `(${a} ${op} ${b})`)),
          w(1, sub('j').map((j) => `${j} ? 'nick'`)),
          w(1, sub('a').map((a) => `${a} @> ARRAY['x']`)),
          w(1, t.map((a) => `EXISTS (SELECT 1 FROM people e WHERE e.email = ${a})`)),
          w(1, fc.tuple(t, pick(ERROR_TEXT_FORMS)).map(([a, f]) => `${f(a)} IS NOT NULL`)),
          w(1, t.chain((a) => pick([`'people'::regclass = ${a}`, `${a} IN (SELECT 'people'::regclass)`, `${a} = ANY (ARRAY['x'])`, `${a} = ANY (SELECT tags[1] FROM people)`, `(${a}, 1) = ('x', 1)`, `${a} BETWEEN 'a' AND 'n'`]))),
        );
        break;
      }
      case 'j': {
        if (leaves.length) arms.push(w(4, pick(leaves)));
        arms.push(w(1, fc.constant(`'{"a": 1}'::jsonb`)));
        if (depth <= 0) break;
        const t = T!;
        arms.push(
          w(2, t.chain((a) => pick([`to_jsonb(${a})`, `jsonb_build_object('k', ${a})`, `jsonb_build_array(${a})`]))),
          w(2, sub('j').chain((j) => pick([`(${j} -> 'nick')`, `(${j} || '{"b": 2}')`, `jsonb_strip_nulls(${j})`, `(${j} - 'tier')`, `jsonb_set(${j}, '{tier}', '"x"')`]))),
        );
        if (scope.rows.length) arms.push(w(1, pick(scope.rows).chain((r) => pick([`to_jsonb(${r})`, `row_to_json(${r})::jsonb`]))));
        break;
      }
      case 'a': {
        if (leaves.length) arms.push(w(4, pick(leaves)));
        arms.push(w(1, fc.constant(`ARRAY['x', 'y']`)));
        if (depth <= 0) break;
        const t = T!;
        arms.push(
          w(2, fc.tuple(t, t).map(([a, b]) => `ARRAY[${a}, ${b}]`)),
          w(2, t.chain((a) => pick([`string_to_array(${a}, '@')`, `regexp_split_to_array(${a}, 'q')`, `ARRAY(SELECT ${a})`]))),
          w(1, fc.tuple(sub('a'), t).map(([a, b]) => `array_append(${a}, ${b})`)),
        );
        break;
      }
    }
    return fc.oneof(...arms);
  }

  /** An aggregate of type `ty` over `scope`. */
  function aggregate(scope: Scope, ty: Ty, depth: number): fc.Arbitrary<string> {
    const d = Math.max(depth, 0);
    const t = expr(scope, 't', d);
    const i = expr(scope, 'i', d);
    const b = expr(scope, 'b', Math.min(d, 1));
    const filter = fc.option(b, { nil: undefined, freq: 3 }).map((f) => (f === undefined ? '' : ` FILTER (WHERE ${f})`));
    const order = fc.oneof(t, i).chain((o) => pick([` ORDER BY ${o}`, ` ORDER BY ${o} DESC`, '']));
    switch (ty) {
      case 't':
        return fc.oneof(
          fc.tuple(t, order, filter).map(([x, o, f]) => `string_agg(${x}, ','${o})${f}`),
          fc.tuple(t, filter).map(([x, f]) => `string_agg(DISTINCT ${x}, ';')${f}`),
          fc.tuple(pick(['max', 'min']), t, filter).map(([g, x, f]) => `${g}(${x})${f}`),
          fc.tuple(t, filter).map(([x, f]) => `mode() WITHIN GROUP (ORDER BY ${x})${f}`),
          fc.tuple(t, pick(['0.5', '0', '1'])).map(([x, p]) => `percentile_disc(${p}) WITHIN GROUP (ORDER BY ${x})`),
          fc.tuple(t, pick(['0.5', '0', '1'])).map(([x, p]) => `(percentile_disc(ARRAY[${p}]) WITHIN GROUP (ORDER BY ${x}))[1]`),
          fc.tuple(t, order, filter).map(([x, o, f]) => `(array_agg(${x}${o})${f})[1]`),
          fc.tuple(t, order).map(([x, o]) => `json_agg(${x}${o})::text`),
          fc.tuple(t, i).map(([x, k]) => `jsonb_object_agg(${x}, ${k})::text`),
          fc.tuple(t, t).map(([k, x]) => `json_object_agg(${k}, ${x})::text`),
          fc.tuple(t, order).map(([x, o]) => `xmlagg(xmlelement(name e, ${x})${o})::text`),
        );
      case 'i':
        return fc.oneof(
          fc.constant('count(*)'),
          fc.tuple(t, filter).map(([x, f]) => `count(DISTINCT ${x})${f}`),
          fc.tuple(pick(['sum', 'max', 'min']), i).map(([g, x]) => `${g}(${x})::int`),
          fc.tuple(t).map(([x]) => `rank('m') WITHIN GROUP (ORDER BY ${x})::int`),
        );
      case 'n':
        return fc.tuple(pick(['sum', 'avg', 'max']), expr(scope, 'n', d)).map(([g, x]) => `${g}(${x})`);
      case 'b':
        return fc.tuple(pick(['bool_and', 'bool_or', 'every']), b).map(([g, x]) => `${g}(${x})`);
      case 'j':
        return fc.oneof(
          fc.tuple(t, order).map(([x, o]) => `jsonb_agg(${x}${o})`),
          expr(scope, 'j', d).map((x) => `jsonb_agg(${x})`),
        );
      case 'a':
        return fc.tuple(t, order, filter).map(([x, o, f]) => `array_agg(${x}${o})${f}`);
    }
  }

  /** A window function of type `ty` over `scope`. */
  function windowFn(scope: Scope, ty: Ty, depth: number): fc.Arbitrary<string> {
    const t = expr(scope, 't', Math.max(depth, 0));
    const ints = colsOf(scope, 'i');
    const key = ints.length ? pick(ints) : fc.constant('1');
    const spec = fc.tuple(fc.option(fc.oneof(key, t), { nil: undefined }), fc.oneof(key, t), pick(['', ' ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING', ' ROWS BETWEEN 1 PRECEDING AND CURRENT ROW', ' DESC']))
      .map(([part, ord, frame]) => `(${part ? `PARTITION BY ${part} ` : ''}ORDER BY ${ord}${frame === ' DESC' ? ' DESC' : frame})`);
    if (ty === 't') {
      return fc.oneof(
        fc.tuple(pick(['first_value', 'last_value', 'lag', 'lead', 'max', 'min']), t, spec).map(([f, x, s]) => `${f}(${x}) OVER ${s}`),
        fc.tuple(t, spec).map(([x, s]) => `nth_value(${x}, 2) OVER ${s}`),
        fc.tuple(t, spec).map(([x, s]) => `lead(${x}, 1, 'none') OVER ${s}`),
        fc.tuple(t, spec).map(([x, s]) => `string_agg(${x}, ',') OVER ${s}`),
      );
    }
    if (ty === 'i') {
      return fc.oneof(
        fc.tuple(pick(['row_number()', 'rank()', 'dense_rank()', 'ntile(2)']), spec).map(([f, s]) => `${f} OVER ${s}`),
        fc.tuple(t, spec).map(([x, s]) => `count(${x}) OVER ${s}`),
      );
    }
    return expr(scope, ty, depth);
  }

  /** FROM clauses: a relation, a join, LATERAL, a function scan, a subquery or set operation. */
  function fromItem(depth: number): fc.Arbitrary<{ sql: string; scope: Scope }> {
    const arms: W<{ sql: string; scope: Scope }>[] = [w(8, baseRel)];
    arms.push(
      w(2, fc.tuple(baseRel, baseRel, pick(['JOIN', 'LEFT JOIN', 'FULL JOIN'])).map(([a, b, j]) => ({
        sql: `${a.sql} ${j} ${b.sql} ON ${a.scope.cols[0]!.ref} = ${b.scope.cols[0]!.ref}`,
        scope: { cols: [...a.scope.cols, ...b.scope.cols], rows: [...a.scope.rows, ...b.scope.rows] },
      }))),
      w(1, baseRel.map((a) => ({ sql: `${a.sql} CROSS JOIN (VALUES (1), (2)) vv(k)`, scope: { cols: [...a.scope.cols, { ref: 'vv.k', ty: 'i' as Ty }], rows: a.scope.rows } }))),
    );
    // LATERAL over people: a derived value, a set-returning function, a record function.
    const peopleScope = (alias: string): Scope => ({ cols: RELATIONS.people!.map(([c, ty]) => ({ ref: `${alias}.${c}`, ty })), rows: [alias] });
    arms.push(
      w(3, fc.constant(null).chain(() => {
        const alias = fresh('p');
        const ps = peopleScope(alias);
        const l = fresh('l');
        return fc.oneof(
          expr(ps, 't', Math.min(depth, 1)).map((e) => ({ sql: `people ${alias} CROSS JOIN LATERAL (SELECT ${e} AS x) ${l}`, scope: { cols: [...ps.cols, { ref: `${l}.x`, ty: 't' as Ty }], rows: ps.rows } })),
          expr(ps, 't', Math.min(depth, 1)).map((e) => ({ sql: `people ${alias} LEFT JOIN LATERAL (SELECT ${e} AS x WHERE ${alias}.id > 0) ${l} ON true`, scope: { cols: [...ps.cols, { ref: `${l}.x`, ty: 't' as Ty }], rows: ps.rows } })),
          pick([
            [`unnest(${alias}.tags) WITH ORDINALITY AS ${l}(x, n)`, [['x', 't'], ['n', 'i']]],
            [`jsonb_each_text(${alias}.profile) AS ${l}(k, x)`, [['k', 't'], ['x', 't']]],
            [`jsonb_to_record(${alias}.profile) AS ${l}(nick text, tier text)`, [['nick', 't'], ['tier', 't']]],
            [`regexp_split_to_table(${alias}.secret, 'x') AS ${l}(x)`, [['x', 't']]],
            [`string_to_table(${alias}.email, '@') AS ${l}(x)`, [['x', 't']]],
            [`ROWS FROM (unnest(${alias}.tags), jsonb_object_keys(${alias}.profile)) AS ${l}(x, y)`, [['x', 't'], ['y', 't']]],
            [`jsonb_array_elements_text(jsonb_build_array(${alias}.ssn, ${alias}.card)) AS ${l}(x)`, [['x', 't']]],
            [`unnest(ARRAY[${alias}.email, ${alias}.name]) AS ${l}(x)`, [['x', 't']]],
            [`jsonb_to_record(to_jsonb(${alias})) AS ${l}(email text, secret text)`, [['email', 't'], ['secret', 't']]],
            [`regexp_matches(${alias}.email, '(.)(.*)') AS ${l}(x)`, [['x', 'a']]],
          ] as [string, [string, Ty][]][]).map(([f, cols]) => ({
            sql: `people ${alias}${f.startsWith('ROWS') || f.startsWith('unnest(ARRAY') ? ', LATERAL' : ','} ${f}`,
            scope: { cols: [...ps.cols, ...cols.map(([c, ty]) => ({ ref: `${l}.${c}`, ty }))], rows: ps.rows },
          })),
        );
      })),
    );
    // Whole rows of people expanded again: unnest of a row array, (q).*, populate_recordset.
    arms.push(
      w(1, fc.constant(null).chain(() => {
        const u = fresh('u');
        return pick([
          `unnest(ARRAY(SELECT q FROM people q)) AS ${u}`,
          `(SELECT (q).* FROM people q) ${u}`,
          `json_populate_recordset(NULL::people, (SELECT json_agg(q) FROM people q)) AS ${u}`,
          `(SELECT * FROM people q ORDER BY q.email DISTINCT) ${u}`.replace(' ORDER BY q.email DISTINCT', ''),
          `(SELECT DISTINCT ON (q.email) q.* FROM people q ORDER BY q.email USING >) ${u}`,
        ]).map((sql) => ({ sql, scope: peopleScope(u) }));
      })),
    );
    if (depth > 0) {
      arms.push(
        w(3, fc.constant(null).chain(() => query(depth - 1, undefined)).map((q) => {
          const alias = fresh('s');
          return { sql: `(${q.sql}) ${alias}(${q.tys.map((_, k) => `c${k}`).join(', ')})`, scope: { cols: q.tys.map((ty, k) => ({ ref: `${alias}.c${k}`, ty })), rows: [alias] } };
        })),
      );
    }
    return fc.oneof(...arms);
  }

  const shapeArb = fc.array(fc.constantFrom<Ty>('t', 't', 't', 't', 'i', 'j', 'a', 'n'), { minLength: 1, maxLength: 3 });

  /** A SELECT (or set operation) with result types `shape` (random if not given). */
  function query(depth: number, shape: Ty[] | undefined): fc.Arbitrary<Query> {
    const shaped = shape ? fc.constant(shape) : shapeArb;
    const simple = shaped.chain((tys) => select(depth, tys));
    if (depth <= 0) return simple;
    return fc.oneof(
      { arbitrary: simple, weight: 5 },
      {
        arbitrary: shaped.chain((tys) =>
          fc.tuple(select(depth - 1, tys), select(depth - 1, tys), pick(['UNION', 'UNION ALL', 'INTERSECT', 'EXCEPT', 'EXCEPT ALL', 'INTERSECT ALL'])).map(([a, b, op]) => ({ sql: `(${a.sql}) ${op} (${b.sql})`, tys })),
        ),
        weight: 1,
      },
    );
  }

  function select(depth: number, tys: Ty[]): fc.Arbitrary<Query> {
    return fromItem(depth).chain(({ sql: from, scope }) => {
      const d = Math.max(depth, 0) + 1;
      const where = fc.option(expr(scope, 'b', 1), { nil: undefined, freq: 2 }).map((b) => (b ? ` WHERE ${b}` : ''));
      const tail = fc.tuple(pick(['', ' ORDER BY 1', ' ORDER BY 1 DESC LIMIT 2', ' LIMIT 1 OFFSET 1', ' FETCH FIRST 2 ROWS ONLY']), fc.boolean());
      const list = (f: (ty: Ty) => fc.Arbitrary<string>) => fc.tuple(...tys.map(f)).map((xs) => xs.map((x, k) => `${x} AS c${k}`).join(', '));
      const plain = fc.tuple(list((ty) => expr(scope, ty, d)), where, tail, fc.boolean()).map(([l, wh, [t], distinct]) => `SELECT ${distinct ? 'DISTINCT ' : ''}${l} FROM ${from}${wh}${t}`);
      const windowed = fc.tuple(list((ty) => fc.oneof(windowFn(scope, ty, d - 1), expr(scope, ty, d - 1))), where).map(([l, wh]) => `SELECT ${l} FROM ${from}${wh}`);
      const ints = colsOf(scope, 'i');
      const aggregated = fc
        .tuple(list((ty) => aggregate(scope, ty, d - 1)), where, (ints.length ? fc.option(pick(ints), { nil: undefined }) : fc.constant(undefined)), fc.option(expr(scope, 'b', 0), { nil: undefined, freq: 4 }))
        .map(([l, wh, g, h]) => `SELECT ${l} FROM ${from}${wh}${g ? ` GROUP BY ${g}` : ''}${h ? ` HAVING bool_or(${h})` : ''}`);
      const groupingSets = ints.length
        ? fc.tuple(list((ty) => aggregate(scope, ty, d - 1)), pick(ints), pick(['ROLLUP', 'CUBE', 'GROUPING SETS'])).map(([l, g, k]) => `SELECT ${l} FROM ${from} GROUP BY ${k} (${g})`)
        : aggregated;
      return fc.oneof(w(6, plain), w(3, windowed), w(4, aggregated), w(1, groupingSets)).map((sql) => ({ sql, tys }));
    });
  }

  /** A top-level statement: a query, with CTEs, EXPLAIN, COPY TO STDOUT, TABLE, VALUES. */
  const statement: fc.Arbitrary<string> = fc.oneof(
    w(10, query(2, undefined).map((q) => q.sql)),
    w(4, fc.tuple(query(1, undefined), pick(['', ' MATERIALIZED', ' NOT MATERIALIZED'])).chain(([cte, mat]) => {
      const name = fresh('cte');
      const scope: Scope = { cols: cte.tys.map((ty, k) => ({ ref: `${name}.c${k}`, ty })), rows: [name] };
      return fc.tuple(fc.oneof(expr(scope, 't', 2), aggregate(scope, 't', 1)), fc.option(expr(scope, 'b', 1), { nil: undefined })).map(
        ([e, b]) => `WITH ${name}(${cte.tys.map((_, k) => `c${k}`).join(', ')}) AS${mat} (${cte.sql}) SELECT ${e} FROM ${name}${b ? ` WHERE ${b}` : ''}`,
      );
    })),
    w(1, query(1, ['t']).map((q) => `WITH RECURSIVE r(n, v) AS (SELECT 1, c0 FROM (${q.sql}) s0(c0) UNION ALL SELECT n + 1, v || '.' FROM r WHERE n < 2) SELECT v FROM r`)),
    w(1, fc.tuple(query(1, ['t']), pick([
      'SEARCH DEPTH FIRST BY v SET ord SELECT ord::text FROM r', 'SEARCH BREADTH FIRST BY v SET ord SELECT n, ord FROM r',
      'CYCLE v SET is_cycle USING path SELECT path::text FROM r', 'CYCLE v SET is_cycle TO true DEFAULT false USING path SELECT path FROM r',
    ])).map(([q, tail]) => `WITH RECURSIVE r(n, v) AS (SELECT 1, c0 FROM (${q.sql}) s0(c0) UNION ALL SELECT n + 1, v FROM r WHERE n < 2) ${tail}`)),
    w(1, query(1, undefined).chain((q) => pick([`EXPLAIN (VERBOSE, COSTS OFF) ${q.sql}`, `EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) ${q.sql}`, `EXPLAIN (FORMAT JSON, VERBOSE) ${q.sql}`]))),
    w(1, query(1, undefined).chain((q) => pick([`COPY (${q.sql}) TO STDOUT`, `COPY (${q.sql}) TO STDOUT WITH (FORMAT csv, HEADER)`]))),
    w(1, pick(['TABLE people', 'TABLE v_people', 'TABLE mv_people', 'COPY people TO STDOUT', 'COPY people (email) TO STDOUT', 'SELECT * FROM v_nested', 'SELECT * FROM v_lateral', 'SELECT * FROM v_cte'])),
    w(1, query(1, ['t']).map((q) => `VALUES ((SELECT c0 FROM (${q.sql}) s(c0) LIMIT 1)), ('x')`)),
    w(1, fc.tuple(query(1, undefined), pick(['FETCH ALL FROM c', 'FETCH 2 FROM c; FETCH BACKWARD 1 FROM c', 'MOVE 1 IN c; FETCH NEXT FROM c', 'FETCH ABSOLUTE 2 FROM c'])).map(
      ([q, f]) => `DECLARE c SCROLL CURSOR WITH HOLD FOR ${q.sql}; ${f}; CLOSE c`,
    )),
    w(1, query(1, undefined).map((q) => `PREPARE p AS ${q.sql}; EXECUTE p; DEALLOCATE p`)),
  );
  return { statement };
}
