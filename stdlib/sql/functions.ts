// Which built-in functions a statement may call and still be what its statement type says.
//
// Written as data so a reviewer can read the policy at a glance (docs/facts.md describes it):
// - SAFE_FUNCTIONS: built-ins (pg_catalog, called unqualified or as `pg_catalog.f`) that neither
//   change state nor reach outside the database. Calling only these keeps a SELECT a `select`.
// - EFFECTFUL_FUNCTIONS: built-ins with a known effect, mapped to the kind of that effect.
// - Anything else (user-defined, extension, schema-qualified outside pg_catalog, unknown) is a
//   `call`: the classifier cannot see what it does.
//
// Names are as the parser reports them: unquoted identifiers are already lower-cased.

import type { SqlKind } from '../../language/ast.ts';

const safe = (words: string): string[] => words.trim().split(/\s+/);

/** Side-effect-free built-ins. Volatile-but-harmless ones (random, now) are included on purpose. */
export const SAFE_FUNCTIONS: ReadonlySet<string> = new Set([
  // aggregates
  ...safe(`count sum avg min max every bool_and bool_or bit_and bit_or bit_xor string_agg array_agg
    json_agg jsonb_agg json_object_agg jsonb_object_agg json_agg_strict jsonb_agg_strict
    json_object_agg_strict jsonb_object_agg_strict json_object_agg_unique jsonb_object_agg_unique
    json_arrayagg json_objectagg xmlagg range_agg range_intersect_agg any_value
    stddev stddev_pop stddev_samp variance var_pop var_samp corr covar_pop covar_samp
    regr_avgx regr_avgy regr_count regr_intercept regr_r2 regr_slope regr_sxx regr_sxy regr_syy
    mode percentile_cont percentile_disc rank dense_rank percent_rank cume_dist grouping`),
  // window functions
  ...safe(`row_number ntile lag lead first_value last_value nth_value`),
  // math
  ...safe(`abs cbrt ceil ceiling degrees div erf erfc exp factorial floor gcd lcm ln log log10
    min_scale mod pi power pow radians round scale sign sqrt trim_scale trunc width_bucket
    random random_normal setseed acos acosd asin asind atan atand atan2 atan2d cos cosd cot cotd
    sin sind tan tand sinh cosh tanh asinh acosh atanh numeric_inc`),
  // strings
  ...safe(`ascii bit_length btrim char_length character_length chr concat concat_ws format
    initcap left length lower lpad ltrim md5 normalize octet_length overlay parse_ident position
    quote_ident quote_literal quote_nullable regexp_count regexp_instr regexp_like regexp_match
    regexp_matches regexp_replace regexp_split_to_array regexp_split_to_table regexp_substr repeat is_normalized
    replace reverse right rpad rtrim split_part starts_with string_to_array string_to_table strpos
    substr substring to_ascii to_hex to_bin to_oct translate trim upper unistr casefold
    convert convert_from convert_to encode decode get_bit get_byte set_bit set_byte bit_count
    sha224 sha256 sha384 sha512 crc32 crc32c unicode_assigned similar_to_escape like_escape
    text_larger text_smaller textlen textcat`),
  // formatting and casts
  ...safe(`to_char to_date to_number to_timestamp text varchar bpchar int2 int4 int8 float4 float8
    numeric bool boolean date time timestamp timestamptz interval bytea name oid regclass
    regproc regprocedure regoper regoperator regtype regnamespace regrole regcollation
    regconfig regdictionary to_regclass to_regproc to_regprocedure to_regoper to_regoperator
    to_regtype to_regtypemod to_regnamespace to_regrole to_regcollation format_type
    cast_to_text`),
  // date and time
  ...safe(`age clock_timestamp current_date current_time current_timestamp date_add date_bin
    date_part date_subtract date_trunc extract isfinite justify_days justify_hours
    justify_interval localtime localtimestamp make_date make_interval make_time make_timestamp
    make_timestamptz now statement_timestamp timeofday transaction_timestamp timezone overlaps`),
  // conditionals and comparison helpers (most are syntax, a few are functions)
  ...safe(`coalesce nullif greatest least num_nulls num_nonnulls`),
  // arrays
  ...safe(`array_append array_cat array_dims array_fill array_length array_lower array_ndims
    array_position array_positions array_prepend array_remove array_replace array_reverse
    array_sample array_shuffle array_sort array_to_string array_upper cardinality trim_array
    unnest generate_series generate_subscripts array_to_json`),
  // ranges
  ...safe(`lower_inc upper_inc lower_inf upper_inf isempty range_merge int4range int8range
    numrange tsrange tstzrange daterange int4multirange int8multirange nummultirange
    tsmultirange tstzmultirange datemultirange multirange`),
  // json and jsonb
  ...safe(`to_json to_jsonb row_to_json json_build_array jsonb_build_array json_build_object
    jsonb_build_object json_object jsonb_object json_array_elements jsonb_array_elements
    json_array_elements_text jsonb_array_elements_text json_array_length jsonb_array_length
    json_each jsonb_each json_each_text jsonb_each_text json_extract_path jsonb_extract_path
    json_extract_path_text jsonb_extract_path_text json_object_keys jsonb_object_keys
    json_populate_record jsonb_populate_record jsonb_populate_record_valid
    json_populate_recordset jsonb_populate_recordset json_to_record jsonb_to_record
    json_to_recordset jsonb_to_recordset json_strip_nulls jsonb_strip_nulls jsonb_set
    jsonb_set_lax jsonb_insert jsonb_pretty json_typeof jsonb_typeof jsonb_path_exists
    jsonb_path_match jsonb_path_query jsonb_path_query_array jsonb_path_query_first
    jsonb_path_exists_tz jsonb_path_match_tz jsonb_path_query_tz jsonb_path_query_array_tz
    jsonb_path_query_first_tz json_scalar json_serialize jsonb_concat jsonb_delete
    jsonb_delete_path jsonb_exists jsonb_exists_any jsonb_exists_all jsonb_contains
    jsonb_contained json_array jsonb_array`),
  // xml (pure constructors and accessors; the ones that run SQL strings are effectful below)
  ...safe(`xmlcomment xmlconcat xmlelement xmlforest xmlpi xmlroot xmlparse xmlserialize xmltext
    xml_is_well_formed xml_is_well_formed_document xml_is_well_formed_content xpath xpath_exists
    xmlexists`),
  // text search (ts_stat runs a query string and is listed as effectful)
  ...safe(`to_tsvector to_tsquery plainto_tsquery phraseto_tsquery websearch_to_tsquery ts_rank
    ts_rank_cd ts_headline ts_lexize ts_parse ts_token_type ts_debug setweight strip numnode
    querytree tsvector_to_array array_to_tsvector ts_delete ts_filter get_current_ts_config
    tsquery_phrase`),
  // uuid, network, geometry, misc pure
  ...safe(`gen_random_uuid uuidv4 uuidv7 uuid_extract_timestamp uuid_extract_version
    abbrev broadcast family host hostmask inet_merge inet_same_family masklen netmask network
    set_masklen inet_client_addr inet_client_port inet_server_addr inet_server_port macaddr8_set7bit
    area center diameter height width isclosed isopen npoints pclose popen radius box circle
    line lseg path point polygon bound_box diagonal
    hashtext hashtextextended hash_array hashint4 hashint8 num_nonnulls`),
  // session information and catalog accessors (read-only)
  ...safe(`current_catalog current_database current_query current_role current_schema
    current_schemas current_user session_user system_user user version current_setting
    pg_backend_pid pg_blocking_pids pg_conf_load_time pg_current_logfile pg_my_temp_schema
    pg_is_other_temp_schema pg_jit_available pg_postmaster_start_time pg_safe_snapshot_blocking_pids
    pg_trigger_depth pg_listening_channels pg_notification_queue_usage
    has_any_column_privilege has_column_privilege has_database_privilege
    has_foreign_data_wrapper_privilege has_function_privilege has_language_privilege
    has_parameter_privilege has_schema_privilege has_sequence_privilege has_server_privilege
    has_table_privilege has_tablespace_privilege has_type_privilege pg_has_role
    row_security_active acldefault aclexplode makeaclitem
    pg_collation_is_visible pg_conversion_is_visible pg_function_is_visible pg_opclass_is_visible
    pg_operator_is_visible pg_opfamily_is_visible pg_statistics_obj_is_visible
    pg_table_is_visible pg_ts_config_is_visible pg_ts_dict_is_visible pg_ts_parser_is_visible
    pg_ts_template_is_visible pg_type_is_visible
    format_type pg_basetype pg_char_to_encoding pg_encoding_to_char pg_get_catalog_foreign_keys
    pg_get_constraintdef pg_get_expr pg_get_functiondef pg_get_function_arguments
    pg_get_function_identity_arguments pg_get_function_result pg_get_indexdef pg_get_keywords
    pg_get_partkeydef pg_get_ruledef pg_get_serial_sequence pg_get_statisticsobjdef
    pg_get_triggerdef pg_get_userbyid pg_get_viewdef pg_index_column_has_property
    pg_index_has_property pg_indexam_has_property pg_options_to_table pg_settings_get_flags
    pg_tablespace_databases pg_tablespace_location pg_typeof pg_collation_for
    pg_describe_object pg_identify_object pg_identify_object_as_address pg_get_object_address
    col_description obj_description shobj_description
    pg_column_size pg_column_compression pg_column_toast_chunk_id pg_database_size
    pg_indexes_size pg_relation_size pg_size_bytes pg_size_pretty pg_table_size
    pg_tablespace_size pg_total_relation_size pg_relation_filenode pg_relation_filepath
    pg_filenode_relation pg_partition_tree pg_partition_ancestors pg_partition_root
    pg_get_publication_tables pg_input_is_valid pg_input_error_info
    txid_current_snapshot txid_snapshot_xmin txid_snapshot_xmax txid_snapshot_xip
    txid_visible_in_snapshot txid_status txid_current_if_assigned pg_current_snapshot
    pg_snapshot_xmin pg_snapshot_xmax pg_snapshot_xip pg_visible_in_snapshot pg_xact_status
    pg_current_xact_id_if_assigned pg_xact_commit_timestamp pg_last_committed_xact
    pg_control_checkpoint pg_control_system pg_control_init pg_control_recovery
    pg_is_in_recovery pg_last_wal_receive_lsn pg_last_wal_replay_lsn pg_last_xact_replay_timestamp
    pg_current_wal_lsn pg_current_wal_insert_lsn pg_current_wal_flush_lsn pg_wal_lsn_diff
    pg_walfile_name pg_walfile_name_offset pg_is_wal_replay_paused pg_get_wal_replay_pause_state
    pg_stat_get_activity pg_stat_get_backend_idset pg_stat_get_backend_pid
    pg_stat_get_numscans pg_stat_get_tuples_returned pg_stat_get_live_tuples
    pg_stat_get_dead_tuples pg_stat_get_xact_numscans pg_stat_get_db_numbackends
    pg_get_backend_memory_contexts pg_get_shmem_allocations pg_lock_status pg_prepared_xact
    pg_show_all_settings pg_show_all_file_settings pg_hba_file_rules pg_ident_file_mappings
    pg_available_extensions pg_available_extension_versions pg_cursor pg_prepared_statement
    pg_timezone_names pg_timezone_abbrevs pg_get_replication_slots pg_stat_get_wal_senders
    pg_sequence_last_value pg_sequence_parameters currval lastval`),
]);

/**
 * Built-ins whose effect is known. The kind is what the call does:
 * - `do`: reaches outside the database (server files, the OS, the network, other databases).
 * - `unknown`: runs SQL text given as an argument (or a table chosen at run time), which the
 *   classifier cannot see.
 * - `grant`: changes server configuration or identity.
 * - `update`/`insert`/`delete`: changes sequences, large objects, locks or transaction state.
 * - `call`: other side effects (signals to other backends, sleeping, WAL and replication control,
 *   notifications, statistics resets).
 * `set_config` is handled in the classifier: its kind depends on the setting it changes.
 */
export const EFFECTFUL_FUNCTIONS: ReadonlyMap<string, SqlKind> = new Map<string, SqlKind>([
  ...safe(`pg_read_file pg_read_binary_file pg_ls_dir pg_stat_file pg_ls_logdir pg_ls_waldir
    pg_ls_tmpdir pg_ls_archive_statusdir pg_ls_logicalsnapdir pg_ls_logicalmapdir
    pg_ls_replslotdir pg_ls_summariesdir pg_file_write pg_file_rename pg_file_unlink pg_file_sync
    pg_logdir_ls lo_import lo_export dblink dblink_exec dblink_connect dblink_connect_u
    dblink_disconnect dblink_open dblink_fetch dblink_close dblink_send_query dblink_get_result
    dblink_get_connections dblink_is_busy dblink_cancel_query dblink_error_message
    dblink_get_notify dblink_build_sql_insert dblink_build_sql_update dblink_build_sql_delete
    pg_import_system_collations`).map((f) => [f, 'do'] as [string, SqlKind]),
  ...safe(`query_to_xml query_to_xmlschema query_to_xml_and_xmlschema cursor_to_xml
    cursor_to_xmlschema table_to_xml table_to_xmlschema table_to_xml_and_xmlschema schema_to_xml
    schema_to_xmlschema schema_to_xml_and_xmlschema database_to_xml database_to_xmlschema
    database_to_xml_and_xmlschema ts_stat`).map((f) => [f, 'unknown'] as [string, SqlKind]),
  ...safe(`pg_reload_conf`).map((f) => [f, 'grant'] as [string, SqlKind]),
  ...safe(`nextval setval pg_advisory_lock pg_advisory_lock_shared pg_advisory_xact_lock
    pg_advisory_xact_lock_shared pg_try_advisory_lock pg_try_advisory_lock_shared
    pg_try_advisory_xact_lock pg_try_advisory_xact_lock_shared pg_advisory_unlock
    pg_advisory_unlock_shared pg_advisory_unlock_all txid_current pg_current_xact_id
    lo_put lowrite lo_truncate lo_truncate64 lo_open brin_summarize_new_values
    brin_summarize_range brin_desummarize_range gin_clean_pending_list
    pg_replication_origin_advance pg_replication_origin_session_progress
    pg_replication_origin_xact_setup pg_replication_origin_xact_reset`).map((f) => [f, 'update'] as [string, SqlKind]),
  ...safe(`lo_create lo_creat lo_from_bytea`).map((f) => [f, 'insert'] as [string, SqlKind]),
  ...safe(`lo_unlink`).map((f) => [f, 'delete'] as [string, SqlKind]),
  ...safe(`pg_terminate_backend pg_cancel_backend pg_rotate_logfile pg_sleep pg_sleep_for
    pg_sleep_until pg_notify pg_switch_wal pg_create_restore_point pg_backup_start pg_backup_stop
    pg_promote pg_wal_replay_pause pg_wal_replay_resume pg_log_backend_memory_contexts
    pg_create_physical_replication_slot pg_create_logical_replication_slot pg_drop_replication_slot
    pg_copy_physical_replication_slot pg_copy_logical_replication_slot
    pg_replication_slot_advance pg_logical_slot_get_changes pg_logical_slot_peek_changes
    pg_logical_slot_get_binary_changes pg_logical_slot_peek_binary_changes pg_logical_emit_message
    pg_replication_origin_create pg_replication_origin_drop pg_replication_origin_session_setup
    pg_replication_origin_session_reset pg_stat_reset pg_stat_reset_shared
    pg_stat_reset_single_table_counters pg_stat_reset_single_function_counters
    pg_stat_reset_slru pg_stat_reset_replication_slot pg_stat_reset_subscription_stats
    pg_stat_statements_reset pg_stat_clear_snapshot pg_export_snapshot pg_sync_replication_slots
    lo_close loread lo_get lo_lseek lo_lseek64 lo_tell lo_tell64`).map((f) => [f, 'call'] as [string, SqlKind]),
]);

/**
 * Settings that change who the session is or how later names resolve. Changing them (SET,
 * RESET, set_config) is `grant`: after `SET search_path`, an unqualified `customers` is no longer
 * `public.customers`, and every later fact about tables and functions would be wrong.
 */
/** A function name as the classifier lists it, as pg_catalog's: unqualified or `pg_catalog.`-qualified; undefined for another schema. */
export function catalogFunctionName(name: string): string | undefined {
  const bare = name.startsWith('pg_catalog.') ? name.slice('pg_catalog.'.length) : name;
  return bare.includes('.') ? undefined : bare;
}

/** A built-in the classifier knows by its (pg_catalog) name: side-effect free, or of a known effect. */
/**
 * Built-ins whose results hold rows of any table, whatever tables the statement names: logical
 * decoding returns every change written since the slot began, each row's values in clear. A read
 * view treats a call of one as code whose reads cannot be known (stdlib/sql/read-view.ts).
 */
export const ROW_DATA_FUNCTIONS: ReadonlySet<string> = new Set(
  safe(`pg_logical_slot_get_changes pg_logical_slot_peek_changes pg_logical_slot_get_binary_changes
    pg_logical_slot_peek_binary_changes`),
);

export function isKnownBuiltin(name: string): boolean {
  return SAFE_FUNCTIONS.has(name) || EFFECTFUL_FUNCTIONS.has(name);
}

/** TABLESAMPLE methods built into PostgreSQL; any other method is an extension's function. */
export const BUILTIN_TABLESAMPLE_METHODS: ReadonlySet<string> = new Set(['system', 'bernoulli']);

export const IDENTITY_SETTINGS: ReadonlySet<string> = new Set(
  safe(`role session_authorization search_path session_replication_role
    session_preload_libraries local_preload_libraries dynamic_library_path`),
);

/**
 * Settings that change how the server reads later statement text. The classifier (and the
 * gateway) read text as UTF-8 with standard-conforming strings; a session that switches to, say,
 * `client_encoding = 'SJIS'` (where a backslash can hide inside a multi-byte character) or
 * `standard_conforming_strings = off` would make the server see statements the classifier did
 * not. Setting one to a value other than these is `grant`; RESET (back to the server's default)
 * is `set`.
 */
export const TEXT_SETTINGS: ReadonlyMap<string, ReadonlySet<string>> = new Map([
  ['client_encoding', new Set(['utf8', 'utf-8', 'unicode'])],
  ['standard_conforming_strings', new Set(['on', 'true', 'yes', '1'])],
  ['backslash_quote', new Set(['safe_encoding', 'off', 'false', 'no', '0'])],
]);

/**
 * Encodings in which every byte below 0x80 stands for itself, so the server reads statement text
 * exactly as the classifier (UTF-8) does; compared lower-cased without punctuation (`EUC_JP` is
 * `eucjp`). Client-only encodings (SJIS, BIG5, GBK, UHC, GB18030, JOHAB), where a backslash or a
 * quote can be the second byte of a character, are absent on purpose.
 */
export const ASCII_SAFE_ENCODINGS: ReadonlySet<string> = new Set([
  'utf8', 'unicode', 'sqlascii', 'latin1', 'latin2', 'latin3', 'latin4', 'latin5', 'latin6', 'latin7', 'latin8', 'latin9', 'latin10',
  'iso88591', 'iso88592', 'iso88593', 'iso88594', 'iso88595', 'iso88596', 'iso88597', 'iso88598', 'iso88599', 'iso885910', 'iso885913', 'iso885914', 'iso885915', 'iso885916',
  'win866', 'win874', 'win1250', 'win1251', 'win1252', 'win1253', 'win1254', 'win1255', 'win1256', 'win1257', 'win1258',
  'windows866', 'windows874', 'windows1250', 'windows1251', 'windows1252', 'windows1253', 'windows1254', 'windows1255', 'windows1256', 'windows1257', 'windows1258',
  'koi8', 'koi8r', 'koi8u', 'eucjp', 'euccn', 'euckr', 'euctw', 'eucjis2004', 'mulecinternal', 'alt', 'tcvn', 'tcvn5712', 'vscii', 'abc',
  'cp866', 'cp1251', 'isoir144',
]);

/**
 * The words that start the reason of a statement setting a text setting to a value the gateway
 * cannot read statements under (the gateway refuses such a statement whatever the policy).
 */
export const UNREADABLE_TEXT_SETTING = 'the gateway cannot read statements as the server would after';

/**
 * Why changing `name` to `value` would leave the gateway unable to read later statements as the
 * server does, or undefined: standard_conforming_strings other than on, a client_encoding that is
 * not ASCII-safe, backslash_quote = on, or any non-constant value of these (`null`). RESET
 * (`undefined`) goes back to a default the server then reports (ParameterStatus), checked there.
 */
export function unreadableTextSetting(name: string, value: string | null | undefined): string | undefined {
  const setting = name.toLowerCase();
  const safeValues = TEXT_SETTINGS.get(setting);
  if (safeValues === undefined || value === undefined) return undefined;
  const shown = value === null ? 'a value that is not a constant' : JSON.stringify(value);
  const why = `${UNREADABLE_TEXT_SETTING} setting ${setting} to ${shown}`;
  if (value === null) return why;
  if (setting === 'client_encoding') return ASCII_SAFE_ENCODINGS.has(value.toLowerCase().replace(/[^a-z0-9]/g, '')) ? undefined : why;
  return safeValues.has(value.toLowerCase()) ? undefined : why;
}

/**
 * Why code stored as text (a function body, a DO block) could run differently from how the
 * classifier read it, or undefined. The server parses such a body when it runs, under the
 * standard_conforming_strings of that moment, and the gateway only keeps the session's setting on:
 * a function called in the same message as one that turns it off (`SELECT scs_off(); SELECT g()`)
 * runs its body under off. With it off only a backslash right before a quote moves where a string
 * ends (`'x\' AS a, '; DELETE ...`), so a body with none reads the same both ways.
 */
export function settingDependentBody(body: string, what: string): string | undefined {
  return body.includes("\\'")
    ? `${UNREADABLE_TEXT_SETTING} standard_conforming_strings changes: ${what} has a backslash before a quote, which the server reads differently with it off`
    : undefined;
}

/**
 * The kind of changing a setting: `grant` for identity settings and for text settings set to an
 * unsafe (or non-constant) value, `set` otherwise. `value` is the new value, `undefined` for RESET.
 */
export function settingKind(name: string, value: string | null | undefined): 'grant' | 'set' {
  const setting = name.toLowerCase();
  if (IDENTITY_SETTINGS.has(setting)) return 'grant';
  const safeValues = TEXT_SETTINGS.get(setting);
  if (safeValues === undefined || value === undefined) return 'set';
  return value !== null && safeValues.has(value.toLowerCase()) ? 'set' : 'grant';
}
