// Settings a client may put in its startup packet, as parameters (`DateStyle=ISO`) or inside
// `options`. They are not statements, so the classifier never sees them; a setting the classifier
// would call `grant` (identity, or a change to how the server reads statement text such as a
// client-only encoding where a backslash can hide inside a multi-byte character, or
// standard_conforming_strings=off) must therefore be refused here, or it would bypass the policy.
//
// `options` is read exactly as PostgreSQL 15 reads it (postinit.c process_startup_options):
// pg_split_opts() splits it into words, then process_postgres_switches() (postgres.c) runs glibc
// getopt over them with the server's option string, so switches cluster (`-nc x=y`, `-ncx=y`,
// `-n-x=y`) and several switches set settings themselves (`-e` is DateStyle, `-S` work_mem...).
// Anything this parser cannot follow exactly is refused: an options string the server would
// reject ends the connection there anyway, so refusing it costs nothing.

import { ASCII_SAFE_ENCODINGS, settingKind } from '../../../stdlib/sql/functions.ts';
import { parseSearchPath, searchPathRisk } from '../../../stdlib/sql/search-path.ts';

/** C isspace() in the "C" locale: the server splits `options` on these bytes. */
const C_SPACE = new Set([' ', '\t', '\n', '\v', '\f', '\r']);

/**
 * Splits an `options` string into words as pg_split_opts() does: C whitespace separates, a
 * backslash makes the next character (a space, or a backslash) part of the word. A trailing lone
 * backslash is dropped, as the server drops it.
 */
export function splitOptions(options: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < options.length) {
    while (i < options.length && C_SPACE.has(options[i]!)) i++;
    if (i >= options.length) break;
    let word = '';
    let escaped = false;
    for (; i < options.length; i++) {
      const ch = options[i]!;
      if (C_SPACE.has(ch) && !escaped) break;
      if (!escaped && ch === '\\') escaped = true;
      else {
        escaped = false;
        word += ch;
      }
    }
    out.push(word);
  }
  return out;
}

export interface StartupSetting {
  name: string;
  value: string;
}

export type OptionsReading = { ok: true; settings: StartupSetting[] } | { ok: false; reason: string };

/**
 * The server's getopt option string (postgres.c, PostgreSQL 15): a letter followed by `:` takes
 * an argument, from the rest of its word or else from the next word.
 */
const SERVER_OPTSTRING = 'B:bc:C:D:d:EeFf:h:ijk:lN:nOPp:r:S:sTt:v:W:-:';
const TAKES_ARG = new Map<string, boolean>();
for (let i = 0; i < SERVER_OPTSTRING.length; i++) {
  const c = SERVER_OPTSTRING[i]!;
  if (c === ':') continue;
  TAKES_ARG.set(c, SERVER_OPTSTRING[i + 1] === ':');
}

/** Switches that set a setting to a fixed value (their argument, if any, is ignored or absent). */
const FIXED_SWITCH_SETTINGS: Record<string, StartupSetting> = {
  e: { name: 'datestyle', value: 'euro' },
  F: { name: 'fsync', value: 'false' },
  i: { name: 'listen_addresses', value: '*' },
  l: { name: 'ssl', value: 'true' },
  O: { name: 'allow_system_table_mods', value: 'true' },
  P: { name: 'ignore_system_indexes', value: 'true' },
  s: { name: 'log_statement_stats', value: 'true' },
};

/** Switches whose argument becomes the value of a setting. */
const VALUE_SWITCH_SETTINGS: Record<string, string> = {
  B: 'shared_buffers', h: 'listen_addresses', k: 'unix_socket_directories', N: 'max_connections',
  p: 'port', S: 'work_mem', W: 'post_auth_delay',
};

/** Switches a client connection ignores (single-user or postmaster-only meaning). */
const IGNORED_SWITCHES = new Set(['b', 'C', 'D', 'E', 'j', 'n', 'r', 'T', 'v']);

/** C atoi(): optional leading whitespace and sign, then digits; anything else stops it. */
function atoi(s: string): number {
  const m = /^[ \t\n\v\f\r]*([+-]?\d+)/.exec(s);
  if (!m) return 0;
  const n = Number.parseInt(m[1]!, 10);
  return Math.max(-2147483648, Math.min(2147483647, n));
}

/** set_debug_options() for a client connection (context is never PGC_POSTMASTER here). */
function debugSettings(level: number): StartupSetting[] {
  const out: StartupSetting[] = [{ name: 'log_min_messages', value: level > 0 ? `debug${level}` : 'notice' }];
  if (level >= 2) out.push({ name: 'log_statement', value: 'all' });
  if (level >= 3) out.push({ name: 'debug_print_parse', value: 'true' });
  if (level >= 4) out.push({ name: 'debug_print_plan', value: 'true' });
  if (level >= 5) out.push({ name: 'debug_print_rewritten', value: 'true' });
  return out;
}

const PLAN_DISABLING: Record<string, string> = {
  s: 'enable_seqscan', i: 'enable_indexscan', o: 'enable_indexonlyscan', b: 'enable_bitmapscan',
  t: 'enable_tidscan', n: 'enable_nestloop', m: 'enable_mergejoin', h: 'enable_hashjoin',
};

/** get_stats_option_name(): `-t pa[rser]`, `-t pl[anner]`, `-t e[xecutor]`. */
function statsOption(arg: string): string | undefined {
  if (arg[0] === 'p') {
    if (arg[1] === 'a') return 'log_parser_stats';
    if (arg[1] === 'l') return 'log_planner_stats';
    return undefined;
  }
  return arg[0] === 'e' ? 'log_executor_stats' : undefined;
}

/**
 * Every setting the server would make from an `options` string, in its order, or why the string
 * is refused. Refused: anything outside printable ASCII and C whitespace (the server splits words
 * with isspace() under the database's LC_CTYPE, which we cannot see), unknown switches, a switch
 * missing its argument, words that are not switches, `-c`/`--` without `=`, and `-f`/`-t`
 * arguments the server rejects.
 */
export function readOptions(options: string): OptionsReading {
  if (/[^\x20-\x7e\t\n\v\f\r]/.test(options)) {
    return { ok: false, reason: 'options may only contain printable ASCII characters and spaces' };
  }
  const words = splitOptions(options);
  const settings: StartupSetting[] = [];
  let wi = 0;
  while (wi < words.length) {
    const word = words[wi++]!;
    if (word === '--') {
      // getopt's end of switches; anything after it is a non-switch word, which the server refuses.
      if (wi < words.length) return { ok: false, reason: `unexpected word "${words[wi]}" after "--"` };
      break;
    }
    if (word.length < 2 || word[0] !== '-') return { ok: false, reason: `"${word}" is not a switch` };
    for (let ci = 1; ci < word.length; ci++) {
      const sw = word[ci]!;
      const takesArg = TAKES_ARG.get(sw);
      if (takesArg === undefined) return { ok: false, reason: `unknown switch -${sw}` };
      let arg = '';
      if (takesArg) {
        if (ci + 1 < word.length) arg = word.slice(ci + 1);
        else if (wi < words.length) arg = words[wi++]!;
        else return { ok: false, reason: `switch -${sw} needs an argument` };
        ci = word.length; // the argument took the rest of the word
      }
      const fixed = FIXED_SWITCH_SETTINGS[sw];
      if (fixed) settings.push({ ...fixed });
      else if (VALUE_SWITCH_SETTINGS[sw]) settings.push({ name: VALUE_SWITCH_SETTINGS[sw]!, value: arg });
      else if (sw === 'd') settings.push(...debugSettings(atoi(arg)));
      else if (sw === 'f') {
        const name = PLAN_DISABLING[arg[0] ?? ''];
        if (!name) return { ok: false, reason: `-f ${arg} is not a plan type` };
        settings.push({ name, value: 'false' });
      } else if (sw === 't') {
        const name = statsOption(arg);
        if (!name) return { ok: false, reason: `-t ${arg} is not a statistics option` };
        settings.push({ name, value: 'true' });
      } else if (sw === 'c' || sw === '-') {
        // ParseLongOption(): name up to the first '=', dashes in it become underscores.
        const eq = arg.indexOf('=');
        if (eq < 0) return { ok: false, reason: `${sw === 'c' ? '-c ' : '--'}${arg} requires a value` };
        settings.push({ name: arg.slice(0, eq).replace(/-/g, '_'), value: arg.slice(eq + 1) });
      } else if (!IGNORED_SWITCHES.has(sw)) {
        return { ok: false, reason: `unknown switch -${sw}` };
      }
    }
  }
  return { ok: true, settings };
}

/** Why this startup setting may not be made through the gateway, or undefined when it may. */
export function refusedStartupSetting(name: string, value: string): string | undefined {
  const setting = name.toLowerCase();
  if (setting === 'client_encoding') {
    const enc = value.toLowerCase().replace(/[^a-z0-9]/g, '');
    return ASCII_SAFE_ENCODINGS.has(enc) ? undefined : `client_encoding ${JSON.stringify(value)} is not allowed through the gateway: statements are read as UTF-8 (use UTF8)`;
  }
  // search_path is followed: the session reads its effective value once connected (upstream.ts
  // SESSION_PROBE) and resolves unqualified names through it (search-path.ts).
  if (setting === 'search_path') {
    const list = parseSearchPath(value);
    if (list === null) return `search_path ${JSON.stringify(value)} is not a list of schema names`;
    const risk = searchPathRisk(list);
    return risk ? `${risk}; this is not allowed through the gateway` : undefined;
  }
  if (settingKind(setting, value) === 'grant') {
    return `setting ${setting} at connection time is not allowed through the gateway: it changes identity or how statements are read`;
  }
  return undefined;
}

/** The gateway's own setting inside `options` (`-c hoop.approval=hold`); never sent upstream. */
export const APPROVAL_OPTION = 'hoop.approval';

/**
 * The `options` string to send upstream: the settings as read, each as one `-c name=value` word
 * (spaces and backslashes escaped as pg_split_opts() expects), without the gateway's own. Sending
 * what was decided, rather than an edit of the client's text, means the server cannot read the
 * string differently from the check.
 */
export function upstreamOptions(settings: readonly StartupSetting[]): string | undefined {
  const words = settings
    .filter((s) => s.name.toLowerCase() !== APPROVAL_OPTION)
    .map((s) => `-c ${`${s.name}=${s.value}`.replace(/[\\\s]/g, (c) => `\\${c}`)}`);
  return words.length > 0 ? words.join(' ') : undefined;
}
