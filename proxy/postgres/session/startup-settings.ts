// Settings a client may put in its startup packet, as parameters (`search_path=...`) or inside
// `options` (`-c name=value`, `--name=value`). They are not statements, so the classifier never
// sees them; a setting the classifier would call `grant` (identity, search_path, or a change to
// how the server reads statement text such as a client-only encoding where a backslash can hide
// inside a multi-byte character) must therefore be refused here, or it would bypass the policy.

import { settingKind } from '../../../stdlib/sql/functions.ts';

/**
 * Encodings in which every byte below 0x80 stands for itself: the server reads statement text
 * exactly as the classifier (UTF-8) does. Client-only encodings (SJIS, BIG5, GBK, UHC, GB18030,
 * JOHAB) are absent on purpose.
 */
const ASCII_SAFE_ENCODINGS = new Set([
  'utf8', 'unicode', 'sqlascii', 'latin1', 'latin2', 'latin3', 'latin4', 'latin5', 'latin6', 'latin7', 'latin8', 'latin9', 'latin10',
  'iso88591', 'iso88592', 'iso88593', 'iso88594', 'iso88595', 'iso88596', 'iso88597', 'iso88598', 'iso88599', 'iso885910', 'iso885913', 'iso885914', 'iso885915', 'iso885916',
  'win866', 'win874', 'win1250', 'win1251', 'win1252', 'win1253', 'win1254', 'win1255', 'win1256', 'win1257', 'win1258',
  'windows866', 'windows874', 'windows1250', 'windows1251', 'windows1252', 'windows1253', 'windows1254', 'windows1255', 'windows1256', 'windows1257', 'windows1258',
  'koi8', 'koi8r', 'koi8u', 'eucjp', 'euccn', 'euckr', 'euctw', 'eucjis2004', 'mulecinternal', 'alt', 'tcvn', 'tcvn5712', 'vscii', 'abc',
  'iso88595', 'cp866', 'cp1251', 'isoir144',
]);

/** Splits a libpq `options` string: whitespace separates, a backslash escapes the next character. */
export function splitOptions(options: string): string[] {
  const out: string[] = [];
  let cur = '';
  let has = false;
  for (let i = 0; i < options.length; i++) {
    const ch = options[i]!;
    if (ch === '\\' && i + 1 < options.length) {
      cur += options[++i];
      has = true;
    } else if (/\s/.test(ch)) {
      if (has) out.push(cur);
      cur = '';
      has = false;
    } else {
      cur += ch;
      has = true;
    }
  }
  if (has) out.push(cur);
  return out;
}

/** The `name=value` settings an `options` string asks for (`-c x=y`, `-cx=y`, `--x=y`). */
export function optionSettings(options: string): { name: string; value: string }[] {
  const words = splitOptions(options);
  const out: { name: string; value: string }[] = [];
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    let spec: string | undefined;
    if (w === '-c') spec = words[++i];
    else if (w.startsWith('-c')) spec = w.slice(2);
    else if (w.startsWith('--')) spec = w.slice(2);
    if (spec === undefined) continue;
    const eq = spec.indexOf('=');
    if (eq > 0) out.push({ name: spec.slice(0, eq).replace(/-/g, '_'), value: spec.slice(eq + 1) });
  }
  return out;
}

/** Why this startup setting may not be made through the gateway, or undefined when it may. */
export function refusedStartupSetting(name: string, value: string): string | undefined {
  const setting = name.toLowerCase();
  if (setting === 'client_encoding') {
    const enc = value.toLowerCase().replace(/[^a-z0-9]/g, '');
    return ASCII_SAFE_ENCODINGS.has(enc) ? undefined : `client_encoding ${JSON.stringify(value)} is not allowed through the gateway: statements are read as UTF-8 (use UTF8)`;
  }
  if (settingKind(setting, value) === 'grant') {
    return `setting ${setting} at connection time is not allowed through the gateway: it changes identity or how statements are read`;
  }
  return undefined;
}
