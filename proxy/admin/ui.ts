// The approvals page's files (proxy/admin/ui/): plain HTML, CSS and an ES module, served as they
// are: no build step. Read once when first asked for. Every response forbids framing, inline
// script and style, and any origin but the admin API's own (statements come from agents: the page
// only ever puts them in the document as text).

import { readFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';

const FILES: Record<string, string> = {
  '': 'index.html',
  'index.html': 'index.html',
  'app.js': 'app.js',
  'app.css': 'app.css',
};

const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
};

export const UI_HEADERS: Record<string, string> = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-cache',
};

const cache = new Map<string, Buffer>();

/** Writes the file `name` names under /ui/; false when there is none. */
export function serveUi(name: string, method: string, res: ServerResponse): boolean {
  const file = FILES[name];
  if (!file) return false;
  let body = cache.get(file);
  if (!body) {
    body = readFileSync(new URL(`./ui/${file}`, import.meta.url));
    cache.set(file, body);
  }
  res.writeHead(200, { 'content-type': TYPES[file.split('.').pop()!]!, 'content-length': body.length, ...UI_HEADERS });
  res.end(method === 'HEAD' ? undefined : body);
  return true;
}
