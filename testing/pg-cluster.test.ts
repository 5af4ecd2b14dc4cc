import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { startCluster, type Cluster } from './pg-cluster.ts';

describe('throwaway PostgreSQL cluster', () => {
  let cluster: Cluster;
  beforeAll(async () => {
    cluster = await startCluster();
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  it('serves the superuser over trust and the app user over SCRAM only', async () => {
    expect(cluster.psql('SHOW server_version_num').trim()).toMatch(/^15\d{4}$/);
    const ok = new pg.Client({ connectionString: cluster.appUser.url });
    await ok.connect();
    const r = await ok.query('SELECT current_user AS u');
    expect(r.rows[0].u).toBe('app');
    await ok.end();
    const bad = new pg.Client({ host: '127.0.0.1', port: cluster.port, user: 'app', password: 'wrong', database: 'app' });
    await expect(bad.connect()).rejects.toThrow(/password authentication failed/);
  });
});
