// How the gateway reaches a resource's database for its own reads (the masker's catalog, function
// names for FunctionCall messages): the resource's upstream, with its gateway-held credentials.

import { readFileSync } from 'node:fs';
import type { ClientConfig } from 'pg';
import type { ResourceConfig } from './config.ts';

/** host/port/database/user of a postgres:// URL as explicit fields (so an explicit password is not overridden). */
export function pgConnection(url: string): ClientConfig {
  const u = new URL(url);
  return {
    host: u.hostname.replace(/^\[|\]$/g, ''),
    port: u.port ? Number(u.port) : 5432,
    database: decodeURIComponent(u.pathname.replace(/^\//, '')) || undefined,
    user: u.username ? decodeURIComponent(u.username) : undefined,
  };
}

/** The masker reads the upstream catalog with the gateway-held credentials of the resource. */
export function catalogConnection(r: ResourceConfig): ClientConfig {
  const base = pgConnection(r.upstream);
  const ssl =
    r.tls.mode === 'disable'
      ? false
      : { rejectUnauthorized: r.tls.mode === 'verify-full', ...(r.tls.ca ? { ca: readFileSync(r.tls.ca, 'utf8') } : {}), ...(r.tls.servername ? { servername: r.tls.servername } : {}) };
  return { ...base, user: r.user ?? base.user, password: r.password, ssl, application_name: 'hoop-gateway-catalog' };
}
