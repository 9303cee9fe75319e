/**
 * A peer that does not follow the protocol, on either end: its frames are refused, counted and
 * logged (a few lines, not one per frame); the connection survives, or is closed cleanly for a
 * frame too large or a dead peer; the process never crashes.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it, type TestContext } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';
import { LINK_PATH } from '../../src/link/protocol.js';
import { eventually, sleep, startNetwork, startProvider, TOKEN_A } from './harness.js';

interface RawPeer {
  socket: WebSocket;
  /** Text frames received, parsed. */
  frames: Array<Record<string, unknown>>;
  closeCode?: number;
}

function watch(socket: WebSocket): RawPeer {
  const peer: RawPeer = { socket, frames: [] };
  socket.on('message', (data) =>
    peer.frames.push(JSON.parse(String(data)) as Record<string, unknown>),
  );
  socket.on('close', (code) => {
    peer.closeCode = code;
  });
  socket.on('error', () => {});
  return peer;
}

async function rawProvider(
  t: TestContext,
  port: number,
  options: { autoPong?: boolean } = {},
): Promise<RawPeer> {
  const socket = new WebSocket(`ws://127.0.0.1:${port}${LINK_PATH}`, {
    headers: { authorization: `Bearer ${TOKEN_A}` },
    ...options,
  });
  t.after(() => socket.terminate());
  const peer = watch(socket);
  await once(socket, 'open');
  return peer;
}

/** A network that speaks raw frames to a real LinkClient. */
async function rawNetwork(t: TestContext): Promise<{ url: string; peers: RawPeer[] }> {
  const http = createServer();
  const wss = new WebSocketServer({ server: http, path: LINK_PATH });
  const peers: RawPeer[] = [];
  wss.on('connection', (socket) => peers.push(watch(socket)));
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  t.after(async () => {
    for (const peer of peers) peer.socket.terminate();
    wss.close();
    http.closeAllConnections();
    await new Promise<void>((resolve) => http.close(() => resolve()));
  });
  return { url: `http://127.0.0.1:${(http.address() as AddressInfo).port}`, peers };
}

describe('a hostile provider', () => {
  it('gets its bad frames counted and logged while the connection keeps working', async (t) => {
    const network = await startNetwork(t);
    network.server.onRequest('ping', async (linkId, body) => ({ linkId, body }));
    await network.server.deliver('provider-a', 'uplink', { n: 1 });
    const peer = await rawProvider(t, network.port);
    await eventually(() => peer.frames.length === 1, 'the pending delivery');
    assert.deepEqual(peer.frames[0], { type: 'deliver', seq: 1, topic: 'uplink', body: { n: 1 } });

    for (const frame of [
      'not json',
      '[1]',
      '{"type":"hello"}',
      '{"type":"request","id":"","method":"x","body":1}',
      '{"type":"answer","id":"999","ok":true,"body":1}',
      '{"type":"ack","seq":5}',
      '{"type":"nack","seq":2}',
      '{"type":"deliver","seq":1,"topic":"t","body":1}',
    ]) {
      peer.socket.send(frame);
    }
    peer.socket.send(Buffer.from([1, 2, 3]), { binary: true });
    for (let n = 0; n < 500; n++) peer.socket.send('{"type":');
    peer.socket.send('{"type":"request","id":"r1","method":"ping","body":42}');
    await eventually(() => peer.frames.length === 2, 'the answer');
    assert.deepEqual(peer.frames[1], {
      type: 'answer',
      id: 'r1',
      ok: true,
      body: { linkId: 'provider-a', body: 42 },
    });
    peer.socket.send('{"type":"ack","seq":1}');
    await eventually(
      async () => (await network.server.pendingDeliveries('provider-a')) === 0,
      'the valid ack',
    );

    const errors = network.server.counters().protocolErrors;
    assert.deepEqual(errors, {
      ...errors,
      BAD_JSON: 501,
      NOT_AN_OBJECT: 1,
      UNKNOWN_TYPE: 1,
      INVALID_FIELD: 1,
      UNKNOWN_ID: 1,
      UNKNOWN_SEQ: 2,
      UNEXPECTED_FRAME: 1,
      BINARY_FRAME: 1,
    });
    const warnings = network.logger.lines.filter((line) => line.message.includes('refused'));
    assert.ok(warnings.length >= 1 && warnings.length <= 2, `${warnings.length} log lines`);
    assert.equal(network.server.isConnected('provider-a'), true);
  });

  it('is disconnected with 1009 for a frame too large, and may connect again', async (t) => {
    const network = await startNetwork(t, { maxFrameBytes: 4096 });
    const peer = await rawProvider(t, network.port);
    peer.socket.send(`{"type":"request","id":"1","method":"x","body":"${'x'.repeat(10_000)}"}`);
    await eventually(() => peer.closeCode !== undefined, 'the close');
    assert.equal(peer.closeCode, 1009);
    await eventually(() => !network.server.isConnected('provider-a'), 'the server noticing');
    assert.equal(network.server.counters().protocolErrors.FRAME_TOO_LARGE, 1);
    const again = await rawProvider(t, network.port);
    assert.equal(again.socket.readyState, WebSocket.OPEN);
    await eventually(() => network.server.isConnected('provider-a'), 'the new connection');
  });

  it('is disconnected when it stops answering pings', async (t) => {
    const network = await startNetwork(t, { pingIntervalMs: 30 });
    await rawProvider(t, network.port, { autoPong: false });
    await eventually(
      () => network.server.counters().connects === 1 && !network.server.isConnected('provider-a'),
      'the dead peer closed',
      2000,
    );
  });
});

describe('a hostile network', () => {
  it('gets its bad frames counted while deliveries keep working and duplicates are recognised', async (t) => {
    const network = await rawNetwork(t);
    const provider = startProvider(t, network, { start: false });
    const handled: number[] = [];
    provider.onDelivery('uplink', async (_body, seq) => {
      handled.push(seq);
    });
    provider.start();
    await eventually(() => network.peers.length === 1, 'the connection');
    const peer = network.peers[0]!;
    for (const frame of [
      '{"type":"ack","seq":1}',
      '{"type":"answer","id":"77","ok":true,"body":null}',
      '{"type":"deliver","seq":0,"topic":"uplink","body":1}',
      '{"type":"deliver","seq":1,"topic":"uplink"}',
      '}{',
    ]) {
      peer.socket.send(frame);
    }
    peer.socket.send(Buffer.from('{"type":"ack","seq":1}'), { binary: true });
    peer.socket.send('{"type":"deliver","seq":1,"topic":"uplink","body":{"n":1}}');
    peer.socket.send('{"type":"deliver","seq":1,"topic":"uplink","body":{"n":1}}');
    peer.socket.send('{"type":"deliver","seq":2,"topic":"uplink","body":{"n":2}}');
    await eventually(() => peer.frames.length === 3, 'the acks');
    assert.deepEqual(peer.frames, [
      { type: 'ack', seq: 1 },
      { type: 'ack', seq: 1 },
      { type: 'ack', seq: 2 },
    ]);
    assert.deepEqual(handled, [1, 2]);
    const counters = provider.counters();
    assert.equal(counters.deliveriesDuplicate, 1);
    assert.deepEqual(counters.protocolErrors, {
      ...counters.protocolErrors,
      UNEXPECTED_FRAME: 1,
      UNKNOWN_ID: 1,
      INVALID_FIELD: 1,
      MISSING_FIELD: 1,
      BAD_JSON: 1,
      BINARY_FRAME: 1,
    });
    assert.equal(provider.isConnected(), true);
  });

  it('is left with 1009 for a frame too large, and the client reconnects', async (t) => {
    const network = await rawNetwork(t);
    const provider = startProvider(t, network, { maxFrameBytes: 4096 });
    await eventually(() => network.peers.length === 1, 'the connection');
    network.peers[0]!.socket.send(
      `{"type":"deliver","seq":1,"topic":"uplink","body":"${'x'.repeat(10_000)}"}`,
    );
    await eventually(() => network.peers.length === 2, 'the reconnection');
    assert.equal(network.peers[0]!.closeCode, 1009);
    assert.equal(provider.counters().protocolErrors.FRAME_TOO_LARGE, 1);
  });

  it('is left when it goes silent, and the client reconnects', async (t) => {
    const network = await rawNetwork(t);
    startProvider(t, network, { idleTimeoutMs: 50 });
    await eventually(() => network.peers.length >= 2, 'the reconnection after silence', 2000);
  });

  it('gets BUSY for requests beyond the concurrency limit', async (t) => {
    const network = await rawNetwork(t);
    const provider = startProvider(t, network, { start: false, maxConcurrentRequests: 1 });
    provider.onRequest('hang', () => new Promise(() => {}));
    provider.start();
    await eventually(() => network.peers.length === 1, 'the connection');
    const peer = network.peers[0]!;
    peer.socket.send('{"type":"request","id":"a","method":"hang","body":null}');
    await sleep(10);
    peer.socket.send('{"type":"request","id":"b","method":"hang","body":null}');
    await eventually(() => peer.frames.length === 1, 'the refusal');
    assert.deepEqual(peer.frames[0], {
      type: 'answer',
      id: 'b',
      ok: false,
      error: { code: 'BUSY', message: 'too many requests at once; try again later' },
    });
    assert.equal(provider.counters().requestsRefusedBusy, 1);
  });
});
