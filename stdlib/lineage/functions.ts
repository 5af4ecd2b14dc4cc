// Which built-in functions lineage can see through. These lists are about data flow and error
// messages, not side effects (the SQL classifier's SAFE_FUNCTIONS is about side effects):
//
// - ECHO_SAFE: built-ins that may take a masked value as an argument, each with the argument
//   positions where it may (`any`, or a list of 0-based positions) and why. Their result is
//   `derived` (redacted). The evidence is PostgreSQL 15's error messages: a function is listed for a
//   position only if none of its errors quote (any part of) the value passed there. Casts like
//   `int4(email)`, `to_date(email, ..)`, `jsonb(email)` or `to_tsquery(email)` do quote it, so they
//   are absent; so are the positions below that were once listed and do quote: `encode(x, FORMAT)`
//   (`unrecognized encoding: "…"`), `jsonb_set`/`jsonb_insert(j, PATH, ..)` (`path element at
//   position 1 is not an integer: "…"`), regexp flags (`invalid regular expression option: "z"`),
//   regexp start/N/subexpr (`invalid value for parameter "start": 0`), `length(bytea, ENCODING)`
//   (`invalid encoding name "…"`), `percentile_disc(FRACTION)` (`percentile value 1.5 is not
//   between 0 and 1`), and `format('%*s', WIDTH)` (`invalid input syntax for type integer: "…"`;
//   format takes masked arguments only after a constant format string without `*`).
//   proxy/masking/error-quoting.test.ts runs every entry's probes with hostile values on the real
//   server, and every known quoting form, so the list cannot drift from the evidence. A built-in
//   not listed here, or a masked value in a position not listed, blocks the statement.
// - READS_DATA: built-ins that read data or expose it through another channel whatever their
//   arguments: SQL-string executors (`query_to_xml`, `ts_stat`), files and large objects, logical
//   decoding, planner statistics, NOTIFY and settings (a value parked there can be read back
//   later). They block the statement whenever column masks apply.
// - `count` reveals only how many values are non-NULL: its result is clear.
//
// Names are as the parser reports them (unquoted identifiers are lower-cased).

const words = (s: string): string[] => s.trim().split(/\s+/);

export interface EchoSafeEntry {
  /** Argument positions (0-based, direct arguments) that may hold a masked value. */
  masked: 'any' | readonly number[];
  /** Why the function's errors do not quote a value in those positions. */
  why: string;
  /** Expressions run by the evidence test: `$M` stands for the masked value (text). */
  probes: readonly string[];
}

const ECHO_SAFE_TABLE: readonly (readonly [names: string, entry: EchoSafeEntry])[] = [
  [
    'lower upper initcap reverse md5 quote_ident quote_literal quote_nullable ascii text sha224 sha256 sha384 sha512 to_hex',
    { masked: 'any', why: 'total on text: no error depends on the value', probes: ['lower($M)', 'upper($M)', 'initcap($M)', 'reverse($M)', 'md5($M)', 'quote_ident($M)', 'quote_literal($M)', 'quote_nullable($M)', 'ascii($M)', 'text($M)', "sha256(convert_to($M, 'UTF8'))"] },
  ],
  [
    'length char_length character_length octet_length bit_length',
    // length(bytea, encoding name) quotes the encoding name.
    { masked: [0], why: 'counting never fails; length(bytea, ENCODING) quotes an unknown encoding name, so only the first argument', probes: ['length($M)', 'char_length($M)', 'octet_length($M)', 'bit_length($M)', "length(convert_to($M, 'UTF8'), 'UTF8')"] },
  ],
  [
    'concat concat_ws textcat left right substr substring btrim ltrim rtrim trim lpad rpad replace translate repeat split_part strpos position starts_with overlay',
    {
      masked: 'any',
      why: 'string functions whose only errors are fixed texts about lengths and positions (negative substring length not allowed, field position must not be zero)',
      probes: ['concat($M, $M)', 'concat_ws($M, $M, $M)', 'textcat($M, $M)', 'left($M, 2)', 'right($M, -2)', 'substr($M, 2, 3)', 'substring($M, $M)', 'substring($M from 2 for 3)', 'btrim($M, $M)', 'ltrim($M, $M)', 'rtrim($M, $M)', 'lpad($M, 40, $M)', 'rpad($M, 40, $M)', 'replace($M, $M, $M)', 'translate($M, $M, $M)', 'repeat($M, 2)', 'split_part($M, $M, 2)', 'strpos($M, $M)', 'position($M in $M)', 'starts_with($M, $M)', 'overlay($M placing $M from 2 for 3)'],
    },
  ],
  [
    'format',
    { masked: 'any', why: 'a masked value is allowed only as an argument after a constant format string without `*` (analyze.ts checks the string): %s/%I/%L render any value', probes: ["format('%s %I %L %1$s', $M)"] },
  ],
  [
    'regexp_replace',
    { masked: [0, 1, 2], why: 'a bad pattern gives a fixed message (invalid regular expression: parentheses () not balanced); the 4th and later arguments are flags (quoted one character at a time) or positions (quoted)', probes: ['regexp_replace($M, $M, $M)'] },
  ],
  [
    'regexp_match regexp_matches regexp_split_to_array regexp_split_to_table regexp_like regexp_count regexp_substr regexp_instr',
    { masked: [0, 1], why: 'source and pattern only: a bad pattern gives a fixed message; flags are quoted one character at a time and start/N/subexpr values are quoted', probes: ['regexp_match($M, $M)', 'regexp_matches($M, $M)', 'regexp_split_to_array($M, $M)', 'regexp_split_to_table($M, $M)', 'regexp_like($M, $M)', 'regexp_count($M, $M)', 'regexp_substr($M, $M)', 'regexp_instr($M, $M)'] },
  ],
  [
    'like_escape similar_to_escape',
    { masked: 'any', why: 'a bad escape gives a fixed message (invalid escape string)', probes: ['like_escape($M, $M)', 'similar_to_escape($M, $M)', "'abc' LIKE $M ESCAPE $M", "'abc' SIMILAR TO $M ESCAPE $M"] },
  ],
  [
    'string_to_array string_to_table array_to_string',
    { masked: 'any', why: 'splitting and joining never fail on the value', probes: ['string_to_array($M, $M, $M)', 'string_to_table($M, $M, $M)', 'array_to_string(ARRAY[$M], $M, $M)'] },
  ],
  [
    'encode',
    { masked: [0], why: 'the data argument only: an unknown format is quoted (unrecognized encoding: "…")', probes: ["encode(convert_to($M, 'UTF8'), 'base64')", "encode(convert_to($M, 'UTF8'), 'escape')"] },
  ],
  [
    'array_agg string_agg json_agg jsonb_agg json_object_agg jsonb_object_agg json_agg_strict jsonb_agg_strict json_object_agg_strict jsonb_object_agg_strict',
    { masked: 'any', why: 'aggregates that collect values; their errors (field name must not be null) are fixed texts', probes: ['array_agg($M)', 'string_agg($M, $M)', 'json_agg($M)', 'jsonb_agg($M)', 'json_object_agg($M, $M)', 'jsonb_object_agg($M, $M)', 'json_object_agg(NULL::text, $M)'] },
  ],
  [
    'json_build_object jsonb_build_object json_build_array jsonb_build_array to_json to_jsonb row_to_json array_to_json',
    { masked: 'any', why: 'JSON constructors: any value is rendered; their errors (key must not be null) are fixed texts', probes: ['json_build_object($M, $M)', 'jsonb_build_object($M, $M)', 'json_build_array($M)', 'jsonb_build_array($M)', 'to_json($M)', 'to_jsonb($M)', 'row_to_json(row($M))', 'array_to_json(ARRAY[$M])'] },
  ],
  [
    'jsonb_set jsonb_insert',
    { masked: [0, 2, 3], why: 'target, new value and the flag only: a path element that is not an integer is quoted (path element at position 1 is not an integer: "…")', probes: ["jsonb_set(jsonb_build_object($M, 1), '{a}', to_jsonb($M))", "jsonb_insert(jsonb_build_array($M), '{0}', to_jsonb($M))"] },
  ],
  [
    'jsonb_strip_nulls json_strip_nulls jsonb_pretty json_typeof jsonb_typeof json_array_length jsonb_array_length json_object_keys jsonb_object_keys',
    { masked: 'any', why: 'the input is an already valid JSON value (a masked text reaching it is a cast, which is checked as a cast); errors name the JSON kind, not the value', probes: ['jsonb_strip_nulls(jsonb_build_object($M, NULL))', 'jsonb_pretty(to_jsonb($M))', 'json_typeof(to_json($M))', 'jsonb_array_length(to_jsonb($M))', 'jsonb_object_keys(to_jsonb($M))', 'json_object_keys(to_json($M))'] },
  ],
  [
    'json_extract_path jsonb_extract_path json_extract_path_text jsonb_extract_path_text',
    { masked: 'any', why: 'a path element that does not match (also a non-integer one on an array) gives NULL, not an error', probes: ['json_extract_path(json_build_array($M), $M)', 'jsonb_extract_path(jsonb_build_array($M), $M)', 'json_extract_path_text(json_build_object($M, 1), $M)', 'jsonb_extract_path_text(jsonb_build_array(1), $M, $M)'] },
  ],
  [
    'json_each jsonb_each json_each_text jsonb_each_text json_array_elements jsonb_array_elements json_array_elements_text jsonb_array_elements_text',
    { masked: 'any', why: 'errors name the JSON kind (cannot deconstruct a scalar), not the value', probes: ['jsonb_each(jsonb_build_object($M, $M))', 'json_each_text(json_build_object($M, $M))', 'jsonb_array_elements(to_jsonb($M))', 'json_array_elements_text(to_json($M))'] },
  ],
  [
    'min max count any_value mode every bool_and bool_or sum avg abs sign num_nulls num_nonnulls',
    { masked: 'any', why: 'comparison and arithmetic aggregates: overflow errors (integer out of range) do not quote', probes: ['min($M)', 'max($M)', 'count($M)', 'num_nulls($M, $M)', 'mode() WITHIN GROUP (ORDER BY $M)'] },
  ],
  [
    'percentile_disc',
    { masked: [], why: 'its values come from WITHIN GROUP (ordering never fails); its direct argument, the fraction, is quoted when out of range (percentile value 1.5 is not between 0 and 1)', probes: ['percentile_disc(0.5) WITHIN GROUP (ORDER BY $M)'] },
  ],
  [
    'first_value last_value nth_value lag lead row_number rank dense_rank percent_rank cume_dist ntile',
    { masked: 'any', why: 'window functions return an argument; their errors (argument of ntile must be greater than zero) do not quote', probes: ['first_value($M) OVER ()', 'last_value($M) OVER ()', 'nth_value($M, 1) OVER ()', 'lag($M, 1, $M) OVER ()', 'lead($M) OVER ()', 'rank($M) WITHIN GROUP (ORDER BY $M)'] },
  ],
  [
    'array_append array_prepend array_cat array_length cardinality unnest array_remove array_replace array_position array_positions array_dims array_ndims array_lower array_upper',
    { masked: 'any', why: 'array functions: errors (cannot concatenate incompatible arrays) describe dimensions, not elements', probes: ['array_append(ARRAY[$M], $M)', 'array_prepend($M, ARRAY[$M])', 'array_cat(ARRAY[$M], ARRAY[$M])', 'unnest(ARRAY[$M])', 'array_remove(ARRAY[$M], $M)', 'array_replace(ARRAY[$M], $M, $M)', 'array_position(ARRAY[$M], $M)', 'array_positions(ARRAY[$M], $M)', 'cardinality(ARRAY[$M])'] },
  ],
  [
    'to_tsvector',
    { masked: 'any', why: 'parsing a document never fails; a masked configuration must be of type regconfig (there is no implicit cast from text), whose values all exist', probes: ['to_tsvector($M)', "to_tsvector('simple', $M)"] },
  ],
];

export const ECHO_SAFE: ReadonlyMap<string, EchoSafeEntry> = new Map(ECHO_SAFE_TABLE.flatMap(([n, e]) => words(n).map((name) => [name, e] as const)));

/**
 * Operators a masked operand may reach (by symbol, over all their built-in versions). The same
 * evidence as ECHO_SAFE: comparisons, pattern matching (a bad pattern or escape gives a fixed
 * message), concatenation, arithmetic (out of range, division by zero: no value), JSON accessors
 * (a missing key or a non-integer index gives NULL), containment and existence. Absent because
 * they quote: `#-` (jsonb delete path: `path element at position 1 is not an integer: "…"`).
 * Keyword forms are checked by their operator (IN: = or <>, LIKE: ~~, IS DISTINCT FROM and NULLIF:
 * =), BETWEEN by its kind (a comparison).
 */
export const ECHO_SAFE_OPERATORS: ReadonlySet<string> = new Set(
  words(`
  = <> != < > <= >= || ~~ !~~ ~~* !~~* ~ !~ ~* !~* ^@ @@ + - * / % ^ |/ ||/ @ & | # << >>
  -> ->> #> #>> ? ?| ?& @> <@ && ~<~ ~<=~ ~>=~ ~>~
`),
);

/** Operator probes for the evidence test (`$M`: the masked value, text). */
export const OPERATOR_PROBES: readonly string[] = [
  "$M = 'x'", "$M < $M", "$M || $M", "$M LIKE $M", "$M ILIKE $M", "$M ~ $M", "$M ~* $M", "$M !~ $M", "$M ^@ $M", "$M @@ $M", "$M SIMILAR TO $M",
  "$M BETWEEN $M AND $M", "$M IN ($M, 'x')", "$M IS DISTINCT FROM $M", "NULLIF($M, $M)",
  "jsonb_build_array($M) -> $M", "jsonb_build_array($M) ->> $M", "jsonb_build_array($M) #> ARRAY[$M]", "jsonb_build_array($M) #>> ARRAY[$M]",
  "json_build_array($M) -> $M", "json_build_array($M) #> ARRAY[$M]", "to_jsonb($M) ? $M", "to_jsonb($M) ?| ARRAY[$M]", "jsonb_build_object($M, 1) - $M",
  "ARRAY[$M] @> ARRAY[$M]", "ARRAY[$M] && ARRAY[$M]", "ARRAY[$M] || $M", "$M ~<~ $M", "$M ~>=~ $M",
];

export const READS_DATA: ReadonlySet<string> = new Set(
  words(`
  query_to_xml query_to_xmlschema query_to_xml_and_xmlschema table_to_xml table_to_xmlschema
  table_to_xml_and_xmlschema cursor_to_xml cursor_to_xmlschema schema_to_xml schema_to_xmlschema
  schema_to_xml_and_xmlschema database_to_xml database_to_xmlschema database_to_xml_and_xmlschema
  ts_stat ts_rewrite pg_read_file pg_read_binary_file pg_stat_file pg_ls_dir pg_ls_logdir
  pg_ls_waldir pg_ls_tmpdir pg_ls_archive_statusdir pg_ls_logicalsnapdir pg_ls_logicalmapdir
  pg_ls_replslotdir pg_current_logfile lo_get lo_export lo_import loread lo_open lo_from_bytea lo_put
  pg_logical_slot_get_changes pg_logical_slot_peek_changes pg_logical_slot_get_binary_changes
  pg_logical_slot_peek_binary_changes pg_logical_emit_message pg_mcv_list_items
  pg_notify set_config dblink dblink_exec dblink_open dblink_fetch dblink_send_query
  dblink_get_result pg_stat_statements crosstab crosstab2 crosstab3 crosstab4 connectby
  get_raw_page heap_page_items heap_page_item_attrs tuple_data_split bt_page_items brin_page_items
  gist_page_items gist_page_items_bytea gin_leafpage_items hash_page_items
  pg_get_wal_records_info pg_get_wal_record_info pg_get_wal_block_info pg_get_wal_stats
  pg_stat_get_activity pg_stat_get_backend_activity
`),
);

/** Built-ins whose result says nothing about argument values beyond NULL-ness. */
export const CLEAR_RESULT: ReadonlySet<string> = new Set(['count']);

/**
 * Relations that expose column values without naming the column: planner statistics (most common
 * values, histograms). Reading them while columns are masked is blocked.
 */
export const STATISTICS_RELATIONS: ReadonlySet<string> = new Set(['pg_stats', 'pg_stats_ext', 'pg_stats_ext_exprs', 'pg_statistic', 'pg_statistic_ext_data']);

/**
 * Type names a masked value may be cast to without risk: their input functions accept any string
 * (a too-long value for varchar(n)/char(n) gives `value too long for type ...`, no value). Every
 * other cast's error quotes the value (`invalid input syntax for type integer: "alice@example.com"`);
 * so does bytea's hex input, one character at a time (`'\\xzq'::bytea`: `invalid hexadecimal
 * digit: "z"`), which is why bytea is not listed.
 */
export const SAFE_CAST_TYPES: ReadonlySet<string> = new Set(['text', 'varchar', 'bpchar', 'char', 'name', 'citext', 'character varying', 'character']);

/** Columns every table has without declaring them. */
export const SYSTEM_COLUMNS: ReadonlySet<string> = new Set(['ctid', 'xmin', 'xmax', 'cmin', 'cmax', 'tableoid', 'oid']);
