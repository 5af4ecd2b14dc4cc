// The SQLSTATE, HINT and DETAIL PostgreSQL's parser gives some of its errors. libpg-query reports
// only the message, the position and the source file, so a refusal of a statement that does not
// parse (issue 14 item 18) adds them here, to say what the server would have said. Taken from
// PostgreSQL 15's src/backend/parser/gram.y, scan.l and parser.c: every ereport there with an
// errcode other than ERRCODE_SYNTAX_ERROR, and every one with a constant errhint/errdetail (those
// that only fire with standard_conforming_strings off are left out: the gateway reads statements
// with it on).

export interface ParserErrorFields {
  /** The server's SQLSTATE when it is not 42601 (syntax_error). */
  sqlstate?: string;
  hint?: string;
  detail?: string;
}

/** Every parser ereport whose SQLSTATE is not syntax_error (gram.y, scan.l), as message → code. */
const SQLSTATE_BY_MESSAGE: readonly [RegExp, string][] = [
  [/^modulus for hash partition provided more than once$/s, '42710'],
  [/^remainder for hash partition provided more than once$/s, '42710'],
  [/^.+ constraints cannot be marked DEFERRABLE$/s, '0A000'],
  [/^.+ constraints cannot be marked NO INHERIT$/s, '0A000'],
  [/^.+ constraints cannot be marked NOT VALID$/s, '0A000'],
  [/^CREATE ASSERTION is not yet implemented$/s, '0A000'],
  [/^CREATE EXTENSION \.\.\. FROM is no longer supported$/s, '0A000'],
  [/^CREATE OR REPLACE CONSTRAINT TRIGGER is not supported$/s, '0A000'],
  [/^CREATE SCHEMA IF NOT EXISTS cannot include schema elements$/s, '0A000'],
  [/^MATCH PARTIAL not yet implemented$/s, '0A000'],
  [/^UNENCRYPTED PASSWORD is no longer supported$/s, '0A000'],
  [/^UNIQUE predicate is not yet implemented$/s, '0A000'],
  [/^WITH CHECK OPTION not supported on recursive views$/s, '0A000'],
  [/^a column list with .+ is only supported for ON DELETE actions$/s, '0A000'],
  [/^aggregates cannot have output arguments$/s, '0A000'],
  [/^an ordered-set aggregate with a VARIADIC direct argument must have one VARIADIC aggregated argument of the same data type$/s, '0A000'],
  [/^current database cannot be changed$/s, '0A000'],
  [/^unsafe use of string constant with Unicode escapes$/s, '0A000'],
  [/^column number must be in range from 1 to -?\d+$/s, '22023'],
  [/^precision for type float must be at least 1 bit$/s, '22023'],
  [/^precision for type float must be less than 54 bits$/s, '22023'],
  [/^unsafe use of \\' in a string literal$/s, '22P06'],
  [/^.+ cannot be used as a role name here$/s, '42939'],
  [/^role name ".+" is reserved$/s, '42939'],
  [/^frame end cannot be UNBOUNDED PRECEDING$/s, '42P20'],
  [/^frame start cannot be UNBOUNDED FOLLOWING$/s, '42P20'],
  [/^frame starting from current row cannot have preceding rows$/s, '42P20'],
  [/^frame starting from following row cannot end with current row$/s, '42P20'],
  [/^frame starting from following row cannot have preceding rows$/s, '42P20'],
];

const BY_MESSAGE: readonly [RegExp, ParserErrorFields][] = [
  [/^UNENCRYPTED PASSWORD is no longer supported$/, { hint: 'Remove UNENCRYPTED to store the password in encrypted form instead.' }],
  [/^unrecognized row security option ".*"$/s, { hint: 'Only PERMISSIVE or RESTRICTIVE policies are supported currently.' }],
  [/^RECHECK is no longer required$/, { hint: 'Update your data type.' }],
  [/^missing argument$/, { hint: 'Use NONE to denote the missing argument of a unary operator.' }],
  [/^LIMIT #,# syntax is not supported$/, { hint: 'Use separate LIMIT and OFFSET clauses.' }],
  [/^VALUES in FROM must have an alias$/, { hint: 'For example, FROM (VALUES ...) [AS] foo.' }],
  [/^subquery in FROM must have an alias$/, { hint: 'For example, FROM (SELECT ...) [AS] foo.' }],
  [/^invalid publication object list$/, { detail: 'One of TABLE or TABLES IN SCHEMA must be specified before a standalone table or schema name.' }],
  [/^unsafe use of \\' in a string literal$/, { hint: "Use '' to write quotes in strings. \\' is insecure in client-only encodings." }],
];

/** The HINT/DETAIL the server adds to this parser error (none for most). */
export function parserErrorFields(message: string, file: string | undefined): ParserErrorFields {
  if (message === 'invalid Unicode escape') {
    // The same message from two places: U&'...' / U&"..." (parser.c) and E'...' strings (scan.l).
    if (file === undefined) return {};
    if (/parser\.c$/.test(file)) return { hint: 'Unicode escapes must be \\XXXX or \\+XXXXXX.' };
    if (/scan\.l$/.test(file)) return { sqlstate: '22025', hint: 'Unicode escapes must be \\uXXXX or \\UXXXXXXXX.' };
    return {};
  }
  const fields: ParserErrorFields = { ...BY_MESSAGE.find(([re]) => re.test(message))?.[1] };
  const code = SQLSTATE_BY_MESSAGE.find(([re]) => re.test(message))?.[1];
  if (code) fields.sqlstate = code;
  return fields;
}
