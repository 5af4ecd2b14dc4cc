// Which built-in functions lineage can see through. These lists are about data flow and error
// messages, not side effects (the SQL classifier's SAFE_FUNCTIONS is about side effects):
//
// - ECHO_SAFE: built-ins that may take a masked value as an argument. Their result is `derived`
//   (redacted), and none of them can fail with an error message that quotes the argument (casts
//   like `int4(email)`, `to_date(email, ..)`, `jsonb(email)` or `to_tsquery(email)` do quote it, so
//   they are absent). A built-in not listed here, applied to a masked value, blocks the statement.
// - READS_DATA: built-ins that read data or expose it through another channel whatever their
//   arguments: SQL-string executors (`query_to_xml`, `ts_stat`), files and large objects, logical
//   decoding, planner statistics, NOTIFY and settings (a value parked there can be read back
//   later). They block the statement whenever column masks apply.
// - `count` reveals only how many values are non-NULL: its result is clear.
//
// Names are as the parser reports them (unquoted identifiers are lower-cased).

const words = (s: string): string[] => s.trim().split(/\s+/);

export const ECHO_SAFE: ReadonlySet<string> = new Set(
  words(`
  format lower upper initcap length char_length character_length octet_length bit_length md5
  sha224 sha256 sha384 sha512 concat concat_ws left right substr substring btrim ltrim rtrim trim
  lpad rpad replace translate reverse repeat split_part strpos position starts_with overlay
  quote_ident quote_literal quote_nullable to_hex ascii textcat text
  regexp_replace regexp_match regexp_matches regexp_split_to_array regexp_split_to_table
  regexp_like regexp_count regexp_substr regexp_instr like_escape similar_to_escape
  string_to_array string_to_table array_to_string encode
  array_agg string_agg json_agg jsonb_agg json_object_agg jsonb_object_agg json_agg_strict
  jsonb_agg_strict json_object_agg_strict jsonb_object_agg_strict
  json_build_object jsonb_build_object json_build_array jsonb_build_array to_json to_jsonb
  row_to_json array_to_json jsonb_set jsonb_insert jsonb_strip_nulls json_strip_nulls jsonb_pretty
  json_extract_path jsonb_extract_path json_extract_path_text jsonb_extract_path_text
  json_each jsonb_each json_each_text jsonb_each_text json_array_elements jsonb_array_elements
  json_array_elements_text jsonb_array_elements_text json_object_keys jsonb_object_keys
  json_typeof jsonb_typeof json_array_length jsonb_array_length
  min max count coalesce nullif greatest least any_value mode percentile_disc
  first_value last_value nth_value lag lead row_number rank dense_rank percent_rank cume_dist ntile
  every bool_and bool_or sum avg abs sign
  array_append array_prepend array_cat array_length cardinality unnest array_remove array_replace
  array_position array_positions array_dims array_ndims array_lower array_upper
  to_tsvector num_nulls num_nonnulls
`),
);

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
 * Type names a masked value may be cast to without risk: their input functions either accept any
 * string (text-likes) or fail without quoting it (bytea: "invalid input syntax for type bytea",
 * checked on PostgreSQL 15). Every other cast's error quotes the value (`invalid input syntax for
 * type integer: "alice@example.com"`).
 */
export const SAFE_CAST_TYPES: ReadonlySet<string> = new Set(['text', 'varchar', 'bpchar', 'char', 'name', 'citext', 'character varying', 'character', 'bytea']);

/** Columns every table has without declaring them. */
export const SYSTEM_COLUMNS: ReadonlySet<string> = new Set(['ctid', 'xmin', 'xmax', 'cmin', 'cmax', 'tableoid', 'oid']);
