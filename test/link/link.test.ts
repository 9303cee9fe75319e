/** The provider link end to end: a LinkServer and LinkClients over real WebSockets. */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { type LinkClientStateChange, linkUrl } from '../../src/link/client.js';
import type { LinkDeliveryCursor } from '../../src/link/delivery-receiver.js';
import { isLinkError, LinkAnswerError, type LinkErrorCode } from '../../src/link/errors.js';
import { LINK_PATH } from '../../src/link/protocol.js';
import { LinkOutboxRepository, openDatabase, SecretBox } from '../../src/storage/index.js';
import {
  eventually,
  range,
  sleep,
  startNetwork,
  startProvider,
  TOKEN_A,
  TOKEN_B,
} from './harness.js';

async function rejectsWith(promise: Promise<unknown>, code: LinkErrorCode): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(isLinkError(error), `expected a LinkError ${code}, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    return true;
  });
}

/** An upgrade request by hand: the status line of the answer, and whether it upgraded. */
function upgradeAttempt(
  port: number,
  path: string,
  headers: Record<string, string>,
): Promise<{ status: number; upgraded: boolean; body: string }> {
  return new Promise((resolve, reject) => {
    const request = httpRequest({
      host: '127.0.0.1',
      port,
      path,
      headers: {
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-version': '13',
        'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
        ...headers,
      },
    });
    request.on('upgrade', (response, socket) => {
      socket.destroy();
      resolve({ status: response.statusCode ?? 0, upgraded: true, body: '' });
    });
    request.on('response', (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        body += chunk;
      });
      response.on('end', () =>
        resolve({ status: response.statusCode ?? 0, upgraded: false, body }),
      );
    });
    request.on('error', reject);
    request.end();
  });
}

describe('link URL', () => {
  it('turns the network URL into the WebSocket URL of the link', () => {
    assert.equal(linkUrl('http://127.0.0.1:8080'), 'ws://127.0.0.1:8080/api/v1/link');
    assert.equal(linkUrl('https://lora.example.org/'), 'wss://lora.example.org/api/v1/link');
    assert.equal(linkUrl('https://example.org/galet/?x=1'), 'wss://example.org/galet/api/v1/link');
    assert.equal(linkUrl('wss://example.org'), 'wss://example.org/api/v1/link');
    for (const bad of ['ftp://example.org', 'example.org', 'https://user:pw@example.org']) {
      assert.throws(
        () => linkUrl(bad),
        (error: unknown) => isLinkError(error, 'INVALID_ARGUMENT'),
      );
    }
  });
});

describe('link authentication', () => {
  it('refuses an upgrade without a valid bearer token with 401, before upgrading', async (t) => {
    const network = await startNetwork(t);
    const wrong = await upgradeAttempt(network.port, LINK_PATH, {
      authorization: 'Bearer not-a-known-token',
    });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.upgraded, false);
    assert.deepEqual(JSON.parse(wrong.body), {
      error: 'UNAUTHORIZED',
      message: 'a valid link token is needed',
    });
    const none = await upgradeAttempt(network.port, LINK_PATH, {});
    assert.equal(none.status, 401);
    const basic = await upgradeAttempt(network.port, LINK_PATH, { authorization: 'Basic abc' });
    assert.equal(basic.status, 401);
    assert.deepEqual(network.tokensSeen, ['not-a-known-token']);
    assert.equal(network.server.counters().authFailures, 3);
    assert.ok(!network.logger.text().includes('not-a-known-token'), 'the token is never logged');
    assert.match(network.logger.text(), /not authenticated/);
  });

  it('answers 503 when authentication fails to answer', async (t) => {
    const network = await startNetwork(t, {
      authenticate: async () => {
        throw new Error('token table unavailable');
      },
    });
    const attempt = await upgradeAttempt(network.port, LINK_PATH, {
      authorization: `Bearer ${TOKEN_A}`,
    });
    assert.equal(attempt.status, 503);
    assert.equal(network.server.counters().authErrors, 1);
  });

  it('accepts a valid token and names the link after it', async (t) => {
    const network = await startNetwork(t);
    const connected: string[] = [];
    network.server.onConnect((linkId) => connected.push(linkId));
    const provider = startProvider(t, network);
    await eventually(() => network.server.isConnected('provider-a'), 'the connection');
    await eventually(() => provider.isConnected(), 'the client state');
    assert.deepEqual(connected, ['provider-a']);
    assert.deepEqual(network.server.connectedLinks(), ['provider-a']);
    assert.ok(!network.logger.text().includes(TOKEN_A));
    assert.ok(!provider.logger.text().includes(TOKEN_A));
  });

  it('reports a refused token to the client as UNAUTHORIZED and retries slowly', async (t) => {
    const network = await startNetwork(t);
    const changes: LinkClientStateChange[] = [];
    const provider = startProvider(t, network, {
      token: 'revoked-token',
      unauthorizedRetryDelayMs: 5000,
      onStateChange: (change) => changes.push(change),
    });
    await eventually(() => provider.state === 'waiting', 'the failed attempt');
    const waiting = changes.find((change) => change.state === 'waiting');
    assert.equal(waiting?.error?.code, 'UNAUTHORIZED');
    assert.equal(waiting?.error?.httpStatus, 401);
    assert.ok((waiting?.retryInMs ?? 0) >= 3750, `retry in ${waiting?.retryInMs} ms`);
    await sleep(100);
    const counters = provider.counters();
    assert.equal(counters.connectAttempts, 1);
    assert.equal(counters.unauthorized, 1);
    assert.ok(!provider.logger.text().includes('revoked-token'));
  });

  it('leaves upgrades of other paths to their own listeners, and refuses them when there is none', async (t) => {
    const network = await startNetwork(t);
    const lonely = await upgradeAttempt(network.port, '/api/v1/other', {});
    assert.equal(lonely.status, 404);
    network.http.on('upgrade', (request, socket) => {
      if (request.url === '/other')
        socket.end('HTTP/1.1 418 I am a teapot\r\nContent-Length: 0\r\n\r\n');
    });
    const other = await upgradeAttempt(network.port, '/other', {});
    assert.equal(other.status, 418);
    assert.equal(network.server.counters().authFailures, 0);
  });

  it('keeps one connection per link: a newer one replaces the older', async (t) => {
    const network = await startNetwork(t);
    const disconnected: string[] = [];
    network.server.onDisconnect((linkId) => disconnected.push(linkId));
    const first = startProvider(t, network, { reconnect: { initialDelayMs: 60_000 } });
    first.onRequest('whoami', async () => 'first');
    await eventually(() => first.isConnected(), 'the first connection');
    const second = startProvider(t, network, { start: false });
    second.onRequest('whoami', async () => 'second');
    second.start();
    await eventually(() => !first.isConnected() && second.isConnected(), 'the replacement');
    assert.equal(await network.server.request('provider-a', 'whoami', null), 'second');
    assert.equal(network.server.counters().connectionsReplaced, 1);
    assert.deepEqual(disconnected, [], 'the link never went down');
    const other = startProvider(t, network, { token: TOKEN_B });
    await eventually(() => other.isConnected(), 'another link');
    assert.deepEqual(network.server.connectedLinks().sort(), ['provider-a', 'provider-b']);
  });
});

describe('link requests', () => {
  it('carries requests and answers both ways', async (t) => {
    const network = await startNetwork(t);
    network.server.onRequest('registerDevice', async (linkId, body) => ({ linkId, got: body }));
    const provider = startProvider(t, network, { start: false });
    provider.onRequest('JoinReq', async (body) => ({ MessageType: 'JoinAns', echo: body }));
    provider.start();
    await eventually(() => network.server.isConnected('provider-a'), 'the connection');

    assert.deepEqual(await network.server.request('provider-a', 'JoinReq', { DevEUI: '01' }), {
      MessageType: 'JoinAns',
      echo: { DevEUI: '01' },
    });
    assert.deepEqual(await provider.request('registerDevice', { devEui: '0102030405060708' }), {
      linkId: 'provider-a',
      got: { devEui: '0102030405060708' },
    });
    const answers = await Promise.all(
      range(1, 50).map((n) => network.server.request('provider-a', 'JoinReq', n)),
    );
    assert.deepEqual(
      answers.map((answer) => (answer as { echo: number }).echo),
      range(1, 50),
    );
  });

  it('rejects with REMOTE_ERROR when the peer answers ok:false, without internal details', async (t) => {
    const network = await startNetwork(t);
    const provider = startProvider(t, network, { start: false });
    provider.onRequest('JoinReq', async () => {
      throw new LinkAnswerError('UnknownDevEUI', 'no such device here');
    });
    provider.onRequest('crash', async () => {
      throw new Error('database password is hunter2');
    });
    provider.start();
    await eventually(() => network.server.isConnected('provider-a'), 'the connection');

    await assert.rejects(network.server.request('provider-a', 'JoinReq', {}), (error: unknown) => {
      assert.ok(isLinkError(error, 'REMOTE_ERROR'));
      assert.deepEqual(error.remote, { code: 'UnknownDevEUI', message: 'no such device here' });
      return true;
    });
    await assert.rejects(network.server.request('provider-a', 'crash', {}), (error: unknown) => {
      assert.ok(isLinkError(error, 'REMOTE_ERROR'));
      assert.equal(error.remote?.code, 'INTERNAL_ERROR');
      assert.ok(!error.message.includes('hunter2'));
      return true;
    });
    await assert.rejects(
      network.server.request('provider-a', 'noSuchMethod', {}),
      (error: unknown) => {
        assert.ok(isLinkError(error, 'REMOTE_ERROR'));
        assert.equal(error.remote?.code, 'UNKNOWN_METHOD');
        return true;
      },
    );
    await rejectsWith(provider.request('noSuchMethod', {}), 'REMOTE_ERROR');
    assert.equal(provider.counters().requestHandlerErrors, 1);
    assert.match(provider.logger.text(), /hunter2/, 'the detail stays in the local log');
    assert.equal(network.server.counters().requestsFailedRemotely, 3);
  });

  it('times out, and counts the late answer without calling it a protocol error', async (t) => {
    const network = await startNetwork(t);
    const provider = startProvider(t, network, { start: false });
    provider.onRequest('slow', async () => {
      await sleep(150);
      return 'late';
    });
    provider.start();
    await eventually(() => network.server.isConnected('provider-a'), 'the connection');
    await rejectsWith(
      network.server.request('provider-a', 'slow', {}, { timeoutMs: 30 }),
      'TIMEOUT',
    );
    await eventually(() => network.server.counters().lateAnswers === 1, 'the late answer');
    const counters = network.server.counters();
    assert.equal(counters.requestTimeouts, 1);
    assert.equal(counters.protocolErrors.UNKNOWN_ID, 0);
    assert.equal(network.server.isConnected('provider-a'), true);
  });

  it('rejects requests of a link that is down, or goes down, or too large', async (t) => {
    const network = await startNetwork(t, { maxFrameBytes: 4096 });
    await rejectsWith(network.server.request('provider-a', 'JoinReq', {}), 'NOT_CONNECTED');
    const provider = startProvider(t, network, {
      start: false,
      maxFrameBytes: 4096,
      reconnect: { initialDelayMs: 60_000 },
    });
    await rejectsWith(provider.request('registerDevice', {}), 'NOT_CONNECTED');
    provider.onRequest('hang', () => new Promise(() => {}));
    provider.start();
    await eventually(() => network.server.isConnected('provider-a'), 'the connection');
    await rejectsWith(
      network.server.request('provider-a', 'JoinReq', 'x'.repeat(5000)),
      'FRAME_TOO_LARGE',
    );
    const hanging = network.server.request('provider-a', 'hang', {});
    await sleep(20);
    await network.server.disconnect('provider-a');
    await rejectsWith(hanging, 'DISCONNECTED');
  });
});

describe('link deliveries', () => {
  it('delivers in order and empties the outbox as the provider acks', async (t) => {
    const network = await startNetwork(t, { maxInFlightDeliveries: 8 });
    const provider = startProvider(t, network, { start: false });
    const handled: Array<{ seq: number; body: unknown }> = [];
    provider.onDelivery('uplink', async (body, seq) => {
      handled.push({ seq, body });
    });
    provider.start();
    const seqs = [];
    for (const n of range(1, 200))
      seqs.push(await network.server.deliver('provider-a', 'uplink', { n }));
    assert.deepEqual(seqs, range(1, 200));
    await eventually(() => handled.length === 200, 'every delivery');
    assert.deepEqual(
      handled.map((entry) => entry.seq),
      range(1, 200),
    );
    assert.deepEqual(handled[41]?.body, { n: 42 });
    await eventually(
      async () => (await network.server.pendingDeliveries('provider-a')) === 0,
      'the acks',
    );
    const counters = network.server.counters();
    assert.equal(counters.deliveriesStored, 200);
    assert.equal(counters.deliveriesAcked, 200);
    assert.equal(counters.deliveriesPending['provider-a'], 0);
    assert.equal(provider.counters().deliveriesHandled, 200);
  });

  it('keeps deliveries made while the provider is away and sends them when it connects', async (t) => {
    const network = await startNetwork(t);
    for (const n of range(1, 20)) await network.server.deliver('provider-a', 'uplink', { n });
    assert.equal(network.server.counters().deliveriesPending['provider-a'], 20);
    const handled: number[] = [];
    const provider = startProvider(t, network, { start: false });
    provider.onDelivery('uplink', async (_body, seq) => {
      handled.push(seq);
    });
    provider.start();
    await eventually(() => handled.length === 20, 'the buffered deliveries');
    assert.deepEqual(handled, range(1, 20));
  });

  it('loses and reorders nothing across reconnections; retransmissions are recognised', async (t) => {
    const network = await startNetwork(t, { maxInFlightDeliveries: 16 });
    const provider = startProvider(t, network, { start: false });
    const handled: number[] = [];
    provider.onDelivery('uplink', async (_body, seq) => {
      handled.push(seq);
      // The connection drops before these acks leave: the network sends them again.
      if (seq === 30 || seq === 70) await network.server.disconnect('provider-a');
    });
    provider.start();
    const delivering = (async () => {
      for (const n of range(1, 100)) {
        await network.server.deliver('provider-a', 'uplink', { n });
        if (n % 10 === 0) await sleep(1);
      }
    })();
    await delivering;
    await eventually(() => handled.length >= 100, 'every delivery');
    await eventually(
      async () => (await network.server.pendingDeliveries('provider-a')) === 0,
      'the acks',
    );
    assert.deepEqual(handled, range(1, 100), 'each handled once, in order');
    const counters = provider.counters();
    assert.ok(counters.connects >= 3, `${counters.connects} connections`);
    assert.ok(counters.deliveriesDuplicate >= 2, `${counters.deliveriesDuplicate} duplicates`);
    assert.ok(network.server.counters().deliveriesRetransmitted >= 2);
  });

  it('gives every pending delivery exactly once to a restarted provider with a persisted cursor', async (t) => {
    const network = await startNetwork(t);
    // What the provider's database would hold: the last handled seq.
    let persisted = 0;
    const cursor: LinkDeliveryCursor = {
      load: async () => persisted,
      save: async (seq) => {
        persisted = seq;
        // The provider dies right after handling 10: its ack never reaches the network.
        if (seq === 10) await network.server.disconnect('provider-a');
      },
    };
    const handledByFirst: number[] = [];
    const first = startProvider(t, network, {
      start: false,
      deliveryCursor: cursor,
      reconnect: { initialDelayMs: 60_000 },
    });
    first.onDelivery('uplink', async (_body, seq) => {
      handledByFirst.push(seq);
    });
    first.start();
    for (const n of range(1, 10)) await network.server.deliver('provider-a', 'uplink', { n });
    await eventually(() => persisted === 10 && !first.isConnected(), 'the crash after 10');
    await first.close();
    for (const n of range(11, 20)) await network.server.deliver('provider-a', 'uplink', { n });
    assert.equal(await network.server.pendingDeliveries('provider-a'), 11, '10 was never acked');

    const handledBySecond: number[] = [];
    const second = startProvider(t, network, { start: false, deliveryCursor: cursor });
    second.onDelivery('uplink', async (_body, seq) => {
      handledBySecond.push(seq);
    });
    second.start();
    await eventually(
      async () => (await network.server.pendingDeliveries('provider-a')) === 0,
      'the acks',
    );
    assert.deepEqual(handledByFirst, range(1, 10));
    assert.deepEqual(handledBySecond, range(11, 20));
    assert.equal(second.counters().deliveriesDuplicate, 1);
    assert.equal(persisted, 20);
  });

  it('sends a delivery again, after a delay, when the provider handler fails', async (t) => {
    const network = await startNetwork(t);
    const provider = startProvider(t, network, { start: false });
    const attempts: number[] = [];
    let failures = 2;
    provider.onDelivery('uplink', async (_body, seq) => {
      attempts.push(seq);
      if (seq === 3 && failures-- > 0) throw new Error('application database busy');
    });
    provider.start();
    for (const n of range(1, 6)) await network.server.deliver('provider-a', 'uplink', { n });
    await eventually(
      async () => (await network.server.pendingDeliveries('provider-a')) === 0,
      'the acks',
    );
    assert.deepEqual(attempts, [1, 2, 3, 3, 3, 4, 5, 6]);
    assert.equal(provider.counters().deliveryHandlerErrors, 2);
    const counters = network.server.counters();
    assert.equal(counters.deliveriesNacked, 2);
    assert.ok(counters.deliveriesRetransmitted >= 2);
    assert.match(provider.logger.text(), /application database busy/);
  });

  it('treats a delivery of a topic without a handler as failed, not as handled', async (t) => {
    const network = await startNetwork(t, { redeliveryDelayMs: 1000, maxRedeliveryDelayMs: 1000 });
    const provider = startProvider(t, network);
    await network.server.deliver('provider-a', 'status', { battery: 80 });
    await eventually(() => provider.counters().deliveryHandlerErrors === 1, 'the failure');
    assert.equal(await network.server.pendingDeliveries('provider-a'), 1);
  });

  it('refuses a delivery with OUTBOX_FULL when the link holds its maximum, and counts it', async (t) => {
    const network = await startNetwork(t, { maxPendingPerLink: 3 });
    for (const n of range(1, 3)) await network.server.deliver('provider-a', 'uplink', { n });
    await rejectsWith(network.server.deliver('provider-a', 'uplink', { n: 4 }), 'OUTBOX_FULL');
    await rejectsWith(network.server.deliver('provider-a', 'uplink', { n: 5 }), 'OUTBOX_FULL');
    assert.equal(await network.server.deliver('provider-b', 'uplink', { n: 1 }), 1);
    const counters = network.server.counters();
    assert.equal(counters.deliveriesRefused, 2);
    assert.equal(counters.deliveriesPending['provider-a'], 3);
    assert.match(network.logger.text(), /outbox full/);
  });

  it('refuses a delivery that could never be sent', async (t) => {
    const network = await startNetwork(t, { maxFrameBytes: 1024 });
    await rejectsWith(
      network.server.deliver('provider-a', 'uplink', 'x'.repeat(2000)),
      'FRAME_TOO_LARGE',
    );
    await rejectsWith(
      network.server.deliver('provider-a', 'uplink', { n: 1n }),
      'INVALID_ARGUMENT',
    );
    await rejectsWith(network.server.deliver('provider-a', '', {}), 'INVALID_ARGUMENT');
    await rejectsWith(network.server.deliver('', 'uplink', {}), 'INVALID_ARGUMENT');
    assert.equal(await network.server.pendingDeliveries('provider-a'), 0);
  });
});

describe('link outbox in the database', () => {
  it('keeps deliveries across a restart of the network', async (t) => {
    const dataDir = await mkdtemp(join(tmpdir(), 'galet-link-'));
    t.after(() => rm(dataDir, { recursive: true, force: true }));
    const secrets = SecretBox.fromKey(new Uint8Array(32));
    const before = await openDatabase({ dataDir });
    const network = await startNetwork(t, { outbox: new LinkOutboxRepository(before, secrets) });
    for (const n of range(1, 5)) await network.server.deliver('provider-a', 'uplink', { n });
    await network.server.close();
    await before.close();

    const after = await openDatabase({ dataDir });
    t.after(() => after.close());
    const restarted = await startNetwork(t, { outbox: new LinkOutboxRepository(after, secrets) });
    const received: unknown[] = [];
    const provider = startProvider(t, restarted, { start: false });
    provider.onDelivery('uplink', async (body) => {
      received.push(body);
    });
    provider.start();
    await eventually(
      async () => (await restarted.server.pendingDeliveries('provider-a')) === 0,
      'the acks',
    );
    assert.deepEqual(
      received,
      range(1, 5).map((n) => ({ n })),
    );
  });
});

describe('link shutdown', () => {
  it('closes connections and rejects requests waiting for an answer with CLOSED', async (t) => {
    const network = await startNetwork(t);
    const provider = startProvider(t, network, { start: false });
    provider.onRequest('hang', () => new Promise(() => {}));
    provider.start();
    await eventually(() => network.server.isConnected('provider-a'), 'the connection');
    const hanging = network.server.request('provider-a', 'hang', {});
    await sleep(20);
    await network.server.close();
    await rejectsWith(hanging, 'CLOSED');
    await rejectsWith(network.server.deliver('provider-a', 'uplink', {}), 'CLOSED');
    await eventually(() => !provider.isConnected(), 'the client noticing');
    await provider.close();
    assert.equal(provider.state, 'closed');
    await rejectsWith(provider.request('x', {}), 'CLOSED');
  });
});
