import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { describe, it } from 'node:test';
import { isSemtechUdpError } from '../../src/gateway/semtech-udp/errors.js';
import {
  encodePacket,
  parsePacket,
  type SemtechPacket,
  type SemtechPacketToEncode,
} from '../../src/gateway/semtech-udp/packets.js';
import {
  SemtechUdpWorkerBackend,
  type SemtechUdpWorkerBackendOptions,
} from '../../src/gateway/semtech-udp/worker-backend.js';
import type {
  DeduplicatedUplink,
  GatewayStats,
  GatewayTxAck,
  GatewayUplink,
} from '../../src/gateway/types.js';
import { downlink, GATEWAY_ID, rxpk } from './samples.js';

const UNKNOWN_GATEWAY_ID = '0016c001ff10a235';

/** A gateway's socket that queues what the backend sends back. */
class TestGateway {
  readonly #received: SemtechPacket[] = [];
  #waiters: ((packet: SemtechPacket) => void)[] = [];

  static async open(serverPort: number): Promise<TestGateway> {
    const socket = createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    return new TestGateway(socket, serverPort);
  }

  private constructor(
    readonly socket: Socket,
    readonly serverPort: number,
  ) {
    socket.on('message', (datagram) => {
      const packet = parsePacket(datagram);
      const waiter = this.#waiters.shift();
      if (waiter) waiter(packet);
      else this.#received.push(packet);
    });
  }

  send(packet: SemtechPacketToEncode): void {
    this.socket.send(encodePacket(packet), this.serverPort, '127.0.0.1');
  }

  next(timeoutMs = 3000): Promise<SemtechPacket> {
    const queued = this.#received.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no datagram within ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.#waiters.push((packet) => {
        clearTimeout(timer);
        resolve(packet);
      });
    });
  }

  close(): void {
    this.socket.close();
  }
}

async function until<T>(what: string, read: () => T | undefined, timeoutMs = 3000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = read();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function withBackend(
  options: SemtechUdpWorkerBackendOptions,
  body: (context: {
    backend: SemtechUdpWorkerBackend;
    gateway: TestGateway;
    uplinks: GatewayUplink[];
    stats: GatewayStats[];
    txAcks: GatewayTxAck[];
  }) => Promise<void>,
): Promise<void> {
  const backend = await SemtechUdpWorkerBackend.listen({ host: '127.0.0.1', port: 0, ...options });
  const gateway = await TestGateway.open(backend.address().port);
  const uplinks: GatewayUplink[] = [];
  const stats: GatewayStats[] = [];
  const txAcks: GatewayTxAck[] = [];
  backend.onUplink((uplink) => uplinks.push(uplink));
  backend.onStats((s) => stats.push(s));
  backend.onTxAck((ack) => txAcks.push(ack));
  try {
    await body({ backend, gateway, uplinks, stats, txAcks });
  } finally {
    gateway.close();
    await backend.close();
  }
}

describe('Semtech UDP backend in a worker thread', () => {
  it('acknowledges PUSH_DATA and emits its frames and stats on the main thread', async () => {
    await withBackend({}, async ({ backend, gateway, uplinks, stats }) => {
      assert.ok(backend.address().port > 0);
      gateway.send({
        type: 'PUSH_DATA',
        version: 2,
        token: 0x1234,
        gatewayId: GATEWAY_ID,
        rxpk: [rxpk(), rxpk({ data: 'QAQDAgE=', size: 5 })],
        stat: {
          time: '2026-11-29 10:00:00 GMT',
          rxnb: 2,
          rxok: 2,
          rxfw: 2,
          ackr: 100,
          dwnb: 0,
          txnb: 0,
        },
      });
      const ack = await gateway.next();
      assert.deepEqual([ack.type, ack.token], ['PUSH_ACK', 0x1234]);
      await until('two uplinks', () => (uplinks.length === 2 ? true : undefined));
      assert.deepEqual([...uplinks[0]!.phyPayload], [0x40, 1, 2, 3]);
      assert.deepEqual([...uplinks[1]!.phyPayload], [0x40, 4, 3, 2, 1]);
      assert.equal(uplinks[0]!.rxInfo.gatewayId, GATEWAY_ID);
      assert.equal(uplinks[0]!.txInfo.frequencyHz, 868_100_000);
      assert.ok(uplinks[0]!.phyPayload instanceof Uint8Array);
      assert.equal(stats.length, 1);
      await backend.refreshCounters();
      const counters = backend.counters();
      assert.equal(counters.uplinks, 2);
      assert.equal(counters.packetsReceived.PUSH_DATA, 1);
      assert.equal(counters.workerRestarts, 0);
    });
  });

  it('sends a downlink to the latest PULL_DATA address and reports its TX_ACK', async () => {
    await withBackend({}, async ({ backend, gateway, txAcks }) => {
      gateway.send({ type: 'PULL_DATA', version: 2, token: 7, gatewayId: GATEWAY_ID });
      assert.equal((await gateway.next()).type, 'PULL_ACK');
      assert.equal(await backend.sendDownlink(downlink(GATEWAY_ID, 41)), true);
      const pullResp = await gateway.next();
      assert.equal(pullResp.type, 'PULL_RESP');
      assert.ok(pullResp.type === 'PULL_RESP');
      gateway.send({
        type: 'TX_ACK',
        version: 2,
        token: pullResp.token,
        gatewayId: GATEWAY_ID,
        txpkAck: { error: 'TOO_LATE' },
      });
      const ack = await until('the TX_ACK', () => txAcks[0]);
      assert.deepEqual(ack, { gatewayId: GATEWAY_ID, downlinkId: 41, status: 'TOO_LATE' });
      // A gateway without a downlink path: not sent, no error.
      assert.equal(
        await backend.sendDownlink({ ...downlink(GATEWAY_ID, 42), gatewayId: UNKNOWN_GATEWAY_ID }),
        false,
      );
    });
  });

  it('refuses an invalid downlink with the same typed error as the in-thread backend', async () => {
    await withBackend({}, async ({ backend, gateway }) => {
      gateway.send({ type: 'PULL_DATA', version: 2, token: 7, gatewayId: GATEWAY_ID });
      await gateway.next();
      await assert.rejects(
        backend.sendDownlink({ ...downlink(GATEWAY_ID, 1), phyPayload: new Uint8Array(300) }),
        (error: unknown) => isSemtechUdpError(error),
      );
    });
  });

  it('asks the main thread once whether a gateway is allowed, and ignores refused ones', async () => {
    const asked: string[] = [];
    await withBackend(
      {
        isGatewayAllowed: async (gatewayId) => {
          asked.push(gatewayId);
          return gatewayId === GATEWAY_ID;
        },
      },
      async ({ backend, gateway, uplinks }) => {
        for (let i = 0; i < 3; i++) {
          gateway.send({
            type: 'PUSH_DATA',
            version: 2,
            token: i,
            gatewayId: UNKNOWN_GATEWAY_ID,
            rxpk: [rxpk()],
          });
          gateway.send({
            type: 'PUSH_DATA',
            version: 2,
            token: i,
            gatewayId: GATEWAY_ID,
            rxpk: [rxpk()],
          });
        }
        for (let i = 0; i < 6; i++) assert.equal((await gateway.next()).type, 'PUSH_ACK');
        await until('three uplinks', () => (uplinks.length === 3 ? true : undefined));
        await backend.refreshCounters();
        assert.equal(backend.counters().unknownGatewayDatagrams, 3);
        assert.ok(uplinks.every((uplink) => uplink.rxInfo.gatewayId === GATEWAY_ID));
        assert.deepEqual(
          asked.filter((id) => id === GATEWAY_ID),
          [GATEWAY_ID],
        );
      },
    );
  });

  it('counts malformed datagrams without losing the worker', async () => {
    await withBackend({}, async ({ backend, gateway, uplinks }) => {
      gateway.socket.send(Buffer.from([2, 0]), gateway.serverPort, '127.0.0.1');
      gateway.socket.send(
        Buffer.from('garbage that is no datagram'),
        gateway.serverPort,
        '127.0.0.1',
      );
      gateway.send({
        type: 'PUSH_DATA',
        version: 2,
        token: 1,
        gatewayId: GATEWAY_ID,
        rxpk: [rxpk()],
      });
      await until('the uplink after the garbage', () => uplinks[0]);
      await backend.refreshCounters();
      const counters = backend.counters();
      assert.equal(counters.malformedDatagrams.SHORT_HEADER, 1);
      assert.equal(counters.malformedDatagrams.BAD_VERSION, 1);
      assert.equal(counters.workerRestarts, 0);
    });
  });

  it('starts a worker that died again on the same port', async () => {
    const errors: string[] = [];
    const logger = {
      debug: () => {},
      info: () => {},
      warn: () => {},
      error: (_fields: Record<string, unknown>, message: string) => errors.push(message),
    };
    await withBackend({ restartDelayMs: 50, logger }, async ({ backend, gateway, uplinks }) => {
      const port = backend.address().port;
      await backend.killWorkerForTest();
      await until('the restart', () =>
        backend.counters().workerRestarts === 1 ? true : undefined,
      );
      assert.ok(errors.includes('Semtech UDP worker stopped'));
      // The new worker listens on the same port: the gateway keeps its configuration.
      const received = await until(
        'an uplink through the new worker',
        () => {
          gateway.send({
            type: 'PUSH_DATA',
            version: 2,
            token: 9,
            gatewayId: GATEWAY_ID,
            rxpk: [rxpk()],
          });
          return uplinks[0];
        },
        5000,
      );
      assert.equal(received.rxInfo.gatewayId, GATEWAY_ID);
      assert.equal(backend.address().port, port);
    });
  });

  it('merges the copies of a frame in the worker and emits one uplink after the window', async () => {
    const backend = await SemtechUdpWorkerBackend.listen({
      host: '127.0.0.1',
      port: 0,
      deduplicationWindowMs: 150,
    });
    const gateways = await Promise.all(
      [0, 1, 2].map(() => TestGateway.open(backend.address().port)),
    );
    try {
      const frames: DeduplicatedUplink[] = [];
      const copies: GatewayUplink[] = [];
      assert.ok(backend.deduplication !== undefined);
      backend.deduplication.onUplink((frame) => frames.push(frame));
      backend.onUplink((copy) => copies.push(copy));
      const started = Date.now();
      for (const [index, gateway] of gateways.entries()) {
        gateway.send({
          type: 'PUSH_DATA',
          version: 2,
          token: index,
          gatewayId: `aa555a000000010${index}`,
          rxpk: [{ ...rxpk(), lsnr: index }],
        });
      }
      for (const gateway of gateways) assert.equal((await gateway.next()).type, 'PUSH_ACK');
      const frame = await until('the merged frame', () => frames[0]);
      assert.ok(Date.now() - started >= 140, 'emitted after its window');
      assert.deepEqual(frame.rxInfo.map((rx) => rx.gatewayId).sort(), [
        'aa555a0000000100',
        'aa555a0000000101',
        'aa555a0000000102',
      ]);
      assert.deepEqual([...frame.phyPayload], [0x40, 1, 2, 3]);
      assert.equal(frames.length, 1);
      assert.equal(copies.length, 0, 'copies are not emitted one by one');
      // A window still open is emitted at once by flush (shutdown loses nothing).
      gateways[0]!.send({
        type: 'PUSH_DATA',
        version: 2,
        token: 9,
        gatewayId: 'aa555a0000000100',
        rxpk: [rxpk({ data: 'QAQDAgE=', size: 5 })],
      });
      assert.equal((await gateways[0]!.next()).type, 'PUSH_ACK');
      await backend.deduplication.flush();
      assert.equal(frames.length, 2);
      assert.deepEqual([...frames[1]!.phyPayload], [0x40, 4, 3, 2, 1]);
    } finally {
      for (const gateway of gateways) gateway.close();
      await backend.close();
    }
  });

  it('reports a port already in use as an error from listen', async () => {
    const first = await SemtechUdpWorkerBackend.listen({ host: '127.0.0.1', port: 0 });
    try {
      await assert.rejects(
        SemtechUdpWorkerBackend.listen({ host: '127.0.0.1', port: first.address().port }),
        (error: NodeJS.ErrnoException) => error.code === 'EADDRINUSE',
      );
    } finally {
      await first.close();
    }
  });
});
