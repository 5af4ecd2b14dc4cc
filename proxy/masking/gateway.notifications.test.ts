// LISTEN/NOTIFY through the real gateway (issue 14 item 5, "every byte sent to the client"): a
// notification is another session's data arriving outside any statement, so its payload gets every
// mask the policy has for the listening session (proxy/postgres/session/notifications.ts).

import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../../testing/pg-cluster.ts';
import { startTestGateway, type TestGateway } from '../postgres/test-support.ts';
import { createResultMasker, type GatewayResultMasker } from './index.ts';

const CARD = '4111 1111 1111 1111';
const EMAIL = 'alice@example.com';

// The mask rules are scoped to one statement kind and table, as in the README: a notification
// answers no statement, so what they say about this identity applies to every payload it hears.
const POLICY = `package t
default block "not allowed"

rule everything {
  match sql
  allow
}

rule cards {
  when group "card-checked"
  match sql select on tables ["public.people"]
  mask detect credit_card with redact
}

rule pii {
  when group "pii-masked"
  match sql select on tables ["public.people"]
  mask column "people.email" with email
}
`;

let cluster: Cluster;
let gw: TestGateway;
let masker: GatewayResultMasker;
let sender: pg.Client;

beforeAll(async () => {
  cluster = await startCluster();
  masker = createResultMasker({ catalogFor: () => ({ connection: { connectionString: cluster.appUser.url } }) });
  gw = await startTestGateway(cluster, POLICY, { masker });
  // The notifying session connects directly: nothing of the gateway sees its NOTIFY.
  sender = new pg.Client({ connectionString: cluster.appUser.url });
  await sender.connect();
});

afterAll(async () => {
  await sender?.end();
  await gw?.close();
  await masker?.close();
  await cluster?.stop();
});

interface Heard {
  channel: string;
  payload?: string;
}

/** A session through the gateway listening on `channel`, and the next notification it hears. */
async function listener(groups: string[], channel: string): Promise<{ next(): Promise<Heard>; end(): Promise<void> }> {
  const c = new pg.Client(gw.pgConfig(await gw.token({ groups })));
  await c.connect();
  const heard: Heard[] = [];
  const waiting: ((h: Heard) => void)[] = [];
  c.on('notification', (n) => {
    const h = { channel: n.channel, ...(n.payload !== undefined ? { payload: n.payload } : {}) };
    const w = waiting.shift();
    if (w) w(h);
    else heard.push(h);
  });
  await c.query(`LISTEN ${channel}`);
  return {
    next: () => (heard.length > 0 ? Promise.resolve(heard.shift()!) : new Promise((resolve) => waiting.push(resolve))),
    end: () => c.end(),
  };
}

describe('notifications under the listener\'s masks', () => {
  it('a card number sent by NOTIFY is redacted for a listener whose policy detects cards, untouched under allow-all', async () => {
    const masked = await listener(['card-checked'], 'payments');
    const clear = await listener(['data-reader'], 'payments');
    try {
      await sender.query(`NOTIFY payments, 'paid with ${CARD}'`);
      await sender.query(`SELECT pg_notify('payments', $1)`, [`refund ${CARD} to ${EMAIL}`]);
      expect(await masked.next()).toEqual({ channel: 'payments', payload: 'paid with [REDACTED]' });
      expect(await masked.next()).toEqual({ channel: 'payments', payload: `refund [REDACTED] to ${EMAIL}` });
      expect(await clear.next()).toEqual({ channel: 'payments', payload: `paid with ${CARD}` });
      expect(await clear.next()).toEqual({ channel: 'payments', payload: `refund ${CARD} to ${EMAIL}` });
    } finally {
      await masked.end();
      await clear.end();
    }
  });

  it('a channel name goes through the detectors too', async () => {
    const channel = `"card ${CARD}"`;
    const masked = await listener(['card-checked'], channel);
    try {
      await sender.query(`NOTIFY ${channel}, 'x'`);
      expect(await masked.next()).toEqual({ channel: 'card [REDACTED]', payload: 'x' });
    } finally {
      await masked.end();
    }
  });

  it('with column masks every non-empty payload is withheld (no detector can tell a masked value)', async () => {
    const masked = await listener(['pii-masked'], 'people_changed');
    const clear = await listener(['data-reader'], 'people_changed');
    try {
      await sender.query(`SELECT pg_notify('people_changed', $1)`, [EMAIL]);
      await sender.query(`NOTIFY people_changed`);
      expect(await masked.next()).toEqual({ channel: 'people_changed', payload: '[REDACTED]' });
      expect(await masked.next()).toEqual({ channel: 'people_changed', payload: '' });
      expect(await clear.next()).toEqual({ channel: 'people_changed', payload: EMAIL });
      expect(await clear.next()).toEqual({ channel: 'people_changed', payload: '' });
    } finally {
      await masked.end();
      await clear.end();
    }
  });
});
