import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { after, before, describe, it } from 'node:test';
import {
  encodePacket,
  parsePacket,
  type SemtechPacket,
  type SemtechPacketToEncode,
} from '../../src/gateway/semtech-udp/packets.js';
import {
  type GatewayLogger,
  SemtechUdpBackend,
  type SemtechUdpBackendOptions,
} from '../../src/gateway/semtech-udp/server.js';
import type { GatewayStats, GatewayTxAck, GatewayUplink } from '../../src/gateway/types.js';
import { downlink, GATEWAY_ID, rxpk } from './samples.js';

const OTHER_GATEWAY_ID = '0016c001ff10a235';
const START_MS = 1_700_000_000_000;

/** A gateway's socket: sends datagrams to the backend and queues what comes back. */
class TestGateway {
  readonly #socket: Socket;
  readonly #port: number;
  readonly #received: SemtechPacket[] = [];
  #waiter: ((packet: SemtechPacket) => void) | undefined;

  static async open(serverPort: number): Promise<TestGateway> {
    const socket = createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    return new TestGateway(socket, serverPort);
  }

  private constructor(socket: Socket, serverPort: number) {
    this.#socket = socket;
    this.#port = serverPort;
    socket.on('message', (datagram) => {
      const packet = parsePacket(datagram);
      const waiter = this.#waiter;
      this.#waiter = undefined;
      if (waiter) waiter(packet);
      else this.#received.push(packet);
    });
  }

  send(packet: SemtechPacketToEncode | Uint8Array): Promise<void> {
    const datagram = packet instanceof Uint8Array ? packet : encodePacket(packet);
    return new Promise((resolve, reject) =>
      this.#socket.send(datagram, this.#port, '127.0.0.1', (error) =>
        error ? reject(error) : resolve(),
      ),
    );
  }

  next(timeoutMs = 2000): Promise<SemtechPacket> {
    const queued = this.#received.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiter = undefined;
        reject(new Error(`no datagram within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiter = (packet) => {
        clearTimeout(timer);
        resolve(packet);
      };
    });
  }

  /**
   * Sends a PULL_DATA and waits for its ACK, so that everything sent before has been handled.
   * ACKs received meanwhile are dropped; anything else stays queued.
   */
  async sync(gatewayId = GATEWAY_ID): Promise<void> {
    const token = 0xbeef;
    await this.send({ type: 'PULL_DATA', version: 2, token, gatewayId });
    const others: SemtechPacket[] = [];
    for (;;) {
      const packet = await this.next();
      if (packet.type === 'PULL_ACK' && packet.token === token) break;
      if (packet.type !== 'PUSH_ACK' && packet.type !== 'PULL_ACK') others.push(packet);
    }
    this.#received.unshift(...others);
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.#socket.close(() => resolve()));
  }
}

interface LogLine {
  level: string;
  fields: Record<string, unknown>;
  message: string;
}

function recordingLogger(lines: LogLine[]): GatewayLogger {
  const at =
    (level: string) =>
    (fields: Record<string, unknown>, message: string): void => {
      lines.push({ level, fields, message });
    };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

interface Harness {
  backend: SemtechUdpBackend;
  gateway: TestGateway;
  uplinks: GatewayUplink[];
  stats: GatewayStats[];
  txAcks: GatewayTxAck[];
  logs: LogLine[];
  clock: { ms: number };
  open(): Promise<TestGateway>;
  close(): Promise<void>;
}

async function harness(options: SemtechUdpBackendOptions = {}): Promise<Harness> {
  const clock = { ms: START_MS };
  const logs: LogLine[] = [];
  const backend = await SemtechUdpBackend.listen({
    host: '127.0.0.1',
    port: 0,
    now: () => clock.ms,
    logger: recordingLogger(logs),
    ...options,
  });
  const uplinks: GatewayUplink[] = [];
  const stats: GatewayStats[] = [];
  const txAcks: GatewayTxAck[] = [];
  backend.onUplink((uplink) => uplinks.push(uplink));
  backend.onStats((s) => stats.push(s));
  backend.onTxAck((ack) => txAcks.push(ack));
  const sockets: TestGateway[] = [];
  const open = async () => {
    const socket = await TestGateway.open(backend.address().port);
    sockets.push(socket);
    return socket;
  };
  const gateway = await open();
  return {
    backend,
    gateway,
    uplinks,
    stats,
    txAcks,
    logs,
    clock,
    open,
    close: async () => {
      await Promise.all(sockets.map((socket) => socket.close()));
      await backend.close();
    },
  };
}

describe('SemtechUdpBackend over real UDP sockets', () => {
  let h: Harness;
  before(async () => {
    h = await harness();
  });
  after(async () => {
    await h.close();
  });

  it('listens on the port it was given (0: a free one)', () => {
    const { address, port } = h.backend.address();
    assert.equal(address, '127.0.0.1');
    assert.ok(port > 0);
  });

  it('acknowledges PUSH_DATA and PULL_DATA with the same token and version', async () => {
    await h.gateway.send({ type: 'PULL_DATA', version: 1, token: 0x1234, gatewayId: GATEWAY_ID });
    assert.deepEqual(await h.gateway.next(), { type: 'PULL_ACK', version: 1, token: 0x1234 });
    await h.gateway.send({
      type: 'PUSH_DATA',
      version: 2,
      token: 0xabcd,
      gatewayId: GATEWAY_ID,
      rxpk: [],
      stat: { rxnb: 0 },
    });
    assert.deepEqual(await h.gateway.next(), { type: 'PUSH_ACK', version: 2, token: 0xabcd });
  });

  it('emits one uplink per CRC-ok rxpk with its metadata, and the stat', async () => {
    h.uplinks.length = 0;
    h.stats.length = 0;
    const before = h.backend.counters();
    h.clock.ms = START_MS + 1234;
    await h.gateway.send({
      type: 'PUSH_DATA',
      version: 2,
      token: 1,
      gatewayId: GATEWAY_ID,
      rxpk: [
        rxpk({ time: '2024-05-01T10:00:00.000001Z' }),
        rxpk({ stat: -1 }),
        rxpk({ stat: 0 }),
        rxpk({ freq: 868.3, chan: 1, rssi: -110, lsnr: -12.5, datr: 'SF12BW125', tmst: 7 }),
      ],
      stat: { time: '2024-05-01 10:00:00 GMT', lati: 48.39, long: -4.49, alti: 40, rxnb: 4 },
    });
    await h.gateway.sync();
    assert.equal(h.uplinks.length, 2);
    const [first, second] = h.uplinks;
    assert.deepEqual(first!.phyPayload, new Uint8Array([0x40, 1, 2, 3]));
    assert.deepEqual(first!.txInfo, {
      frequencyHz: 868_100_000,
      modulation: { lora: { spreadingFactor: 7, bandwidthHz: 125_000, codeRate: 'CR_4_5' } },
    });
    assert.deepEqual(
      { ...first!.rxInfo, uplinkId: 0 },
      {
        gatewayId: GATEWAY_ID,
        uplinkId: 0,
        timestampUs: 3_512_348_611,
        gwTime: '2024-05-01T10:00:00.000001Z',
        rssi: -57,
        snr: 7.8,
        channel: 0,
        rfChain: 0,
        crcStatus: 'ok',
        receivedAtMs: START_MS + 1234,
        location: { latitude: 48.39, longitude: -4.49, altitude: 40 },
      },
    );
    assert.equal(second!.txInfo.frequencyHz, 868_300_000);
    assert.equal(second!.rxInfo.timestampUs, 7);
    assert.equal(second!.rxInfo.snr, -12.5);
    assert.notEqual(first!.rxInfo.uplinkId, second!.rxInfo.uplinkId);
    assert.equal(h.stats.length, 1);
    assert.equal(h.stats[0]!.time, '2024-05-01T10:00:00.000Z');
    assert.equal(h.stats[0]!.rxReceived, 4);
    const after = h.backend.counters();
    assert.equal(after.uplinks - before.uplinks, 2);
    assert.equal(after.crcFailed - before.crcFailed, 1);
    assert.equal(after.crcMissing - before.crcMissing, 1);
    assert.equal(after.stats - before.stats, 1);
  });

  it('sends PULL_RESP to the latest PULL_DATA address, in its protocol version', async () => {
    const moved = await h.open();
    await h.gateway.send({ type: 'PULL_DATA', version: 2, token: 10, gatewayId: GATEWAY_ID });
    assert.equal((await h.gateway.next()).type, 'PULL_ACK');
    // The gateway's NAT mapping changed: the new source address wins.
    await moved.send({ type: 'PULL_DATA', version: 1, token: 11, gatewayId: GATEWAY_ID });
    assert.equal((await moved.next()).type, 'PULL_ACK');
    assert.equal(await h.backend.sendDownlink(downlink()), true);
    const packet = await moved.next();
    assert.equal(packet.type, 'PULL_RESP');
    assert.equal(packet.version, 1);
    if (packet.type !== 'PULL_RESP') return;
    assert.equal(packet.txpk.tmst, 3_513_348_611);
    assert.equal(packet.txpk.freq, 868.1);
    assert.equal(packet.txpk.datr, 'SF7BW125');
    assert.equal(packet.txpk.ipol, true);
    assert.equal(packet.txpk.ncrc, true);
    assert.equal(packet.txpk.powe, 14);
    assert.equal(
      Buffer.from(packet.txpk.data, 'base64').toString('hex'),
      '60040302012000' + '00aabbccdd',
    );
    await assert.rejects(h.gateway.next(100), /no datagram/);
  });

  it('maps TX_ACKs to downlinks by token', async () => {
    h.txAcks.length = 0;
    await h.gateway.send({ type: 'PULL_DATA', version: 2, token: 12, gatewayId: GATEWAY_ID });
    await h.gateway.next();
    const statuses: [number, string | undefined][] = [
      [101, undefined],
      [102, 'TOO_LATE'],
      [103, 'NONE'],
    ];
    for (const [downlinkId, error] of statuses) {
      assert.equal(await h.backend.sendDownlink(downlink(GATEWAY_ID, downlinkId)), true);
      const resp = await h.gateway.next();
      assert.equal(resp.type, 'PULL_RESP');
      await h.gateway.send({
        type: 'TX_ACK',
        version: 2,
        token: resp.token,
        gatewayId: GATEWAY_ID,
        ...(error === undefined ? {} : { txpkAck: { error } }),
      });
    }
    const before = h.backend.counters().txAcksUnmatched;
    // A second TX_ACK for the same token matches nothing any more.
    await h.gateway.send({ type: 'TX_ACK', version: 2, token: 0, gatewayId: OTHER_GATEWAY_ID });
    await h.gateway.sync();
    assert.deepEqual(h.txAcks, [
      { gatewayId: GATEWAY_ID, downlinkId: 101, status: 'NONE' },
      { gatewayId: GATEWAY_ID, downlinkId: 102, status: 'TOO_LATE' },
      { gatewayId: GATEWAY_ID, downlinkId: 103, status: 'NONE' },
    ]);
    const counters = h.backend.counters();
    assert.equal(counters.txAcksUnmatched, before + 1);
    assert.ok(counters.txAcks.NONE >= 2);
    assert.ok(counters.txAcks.TOO_LATE >= 1);
  });

  it('resolves false for a gateway without a PULL_DATA address, or a stale one', async () => {
    assert.equal(await h.backend.sendDownlink(downlink(OTHER_GATEWAY_ID)), false);
    await h.gateway.send({ type: 'PULL_DATA', version: 2, token: 13, gatewayId: GATEWAY_ID });
    await h.gateway.next();
    h.clock.ms += 61_000;
    assert.equal(await h.backend.sendDownlink(downlink()), false);
    h.clock.ms -= 61_000;
    assert.ok(h.backend.counters().downlinksWithoutPath >= 2);
  });

  it('rejects an invalid downlink instead of sending it', async () => {
    await assert.rejects(
      h.backend.sendDownlink({ ...downlink(), phyPayload: new Uint8Array(0) }),
      /1 to 255 bytes/,
    );
  });

  it('survives malformed datagrams, counts them by reason and logs a source once', async () => {
    const before = h.backend.counters();
    const logsBefore = h.logs.filter((line) => line.message.startsWith('malformed')).length;
    const garbage = [
      new Uint8Array([]),
      new Uint8Array([2, 0]),
      new Uint8Array([9, 0, 0, 0]),
      new Uint8Array([2, 0, 0, 0x42]),
      new Uint8Array([...Buffer.from(`02000100${GATEWAY_ID}`, 'hex'), 0x7b]),
      new Uint8Array([...Buffer.from(`02000100${GATEWAY_ID}`, 'hex'), ...Buffer.from('[]')]),
      new Uint8Array([
        ...Buffer.from(`02000100${GATEWAY_ID}`, 'hex'),
        ...Buffer.from('{"rxpk":[{"tmst":1}]}'),
      ]),
    ];
    for (const datagram of garbage) await h.gateway.send(datagram);
    await h.gateway.sync();
    const counters = h.backend.counters();
    const delta = (code: keyof typeof counters.malformedDatagrams) =>
      counters.malformedDatagrams[code] - before.malformedDatagrams[code];
    assert.equal(delta('SHORT_HEADER'), 2);
    assert.equal(delta('BAD_VERSION'), 1);
    assert.equal(delta('UNKNOWN_TYPE'), 1);
    assert.equal(delta('BAD_JSON'), 1);
    assert.equal(delta('JSON_NOT_OBJECT'), 1);
    assert.equal(counters.invalidRxpk.MISSING_FIELD - before.invalidRxpk.MISSING_FIELD, 1);
    assert.equal(counters.datagramsReceived - before.datagramsReceived, garbage.length + 1);
    const malformedLogs = h.logs.filter((line) => line.message.startsWith('malformed'));
    assert.equal(malformedLogs.length - logsBefore, logsBefore === 0 ? 1 : 0);
    // Ten seconds later the same source may log again, with the count of what was held back.
    h.clock.ms += 10_000;
    await h.gateway.send(new Uint8Array([2, 0]));
    await h.gateway.sync();
    h.clock.ms -= 10_000;
    const last = h.logs.filter((line) => line.message.startsWith('malformed')).at(-1)!;
    assert.ok((last.fields.suppressed as number) >= garbage.length - 1);
  });

  it('ignores server-side packet types sent to it', async () => {
    const before = h.backend.counters().unexpectedPackets;
    await h.gateway.send({ type: 'PUSH_ACK', version: 2, token: 1 });
    await h.gateway.send({ type: 'PULL_ACK', version: 2, token: 1 });
    await h.gateway.sync();
    assert.equal(h.backend.counters().unexpectedPackets, before + 2);
  });
});

describe('SemtechUdpBackend with a gateway allow list', () => {
  it('acknowledges an unknown gateway but lets nothing through, logging it once a minute', async () => {
    const h = await harness({
      isGatewayAllowed: async (gatewayId) => gatewayId === GATEWAY_ID,
    });
    try {
      for (let token = 1; token <= 3; token++) {
        await h.gateway.send({
          type: 'PUSH_DATA',
          version: 2,
          token,
          gatewayId: OTHER_GATEWAY_ID,
          rxpk: [rxpk()],
          stat: { rxnb: 1 },
        });
        assert.deepEqual(await h.gateway.next(), { type: 'PUSH_ACK', version: 2, token });
      }
      await h.gateway.send({
        type: 'PULL_DATA',
        version: 2,
        token: 4,
        gatewayId: OTHER_GATEWAY_ID,
      });
      assert.equal((await h.gateway.next()).type, 'PULL_ACK');
      await h.gateway.send({
        type: 'PUSH_DATA',
        version: 2,
        token: 5,
        gatewayId: GATEWAY_ID,
        rxpk: [rxpk()],
      });
      await h.gateway.next();
      await h.gateway.sync();
      assert.deepEqual(
        h.uplinks.map((uplink) => uplink.rxInfo.gatewayId),
        [GATEWAY_ID],
      );
      assert.equal(h.stats.length, 0);
      assert.equal(await h.backend.sendDownlink(downlink(OTHER_GATEWAY_ID)), false);
      assert.equal(h.backend.counters().unknownGatewayDatagrams, 4);
      const unknownLogs = h.logs.filter((line) => line.message.includes('unknown gateway'));
      assert.equal(unknownLogs.length, 1);
      assert.equal(unknownLogs[0]!.fields.gatewayId, OTHER_GATEWAY_ID);
    } finally {
      await h.close();
    }
  });

  it('treats a failing gateway check as an unknown gateway', async () => {
    const h = await harness({
      isGatewayAllowed: () => {
        throw new Error('database down');
      },
    });
    try {
      await h.gateway.send({
        type: 'PUSH_DATA',
        version: 2,
        token: 1,
        gatewayId: GATEWAY_ID,
        rxpk: [rxpk()],
      });
      await h.gateway.next();
      await h.gateway.sync();
      assert.equal(h.uplinks.length, 0);
      assert.equal(h.backend.counters().gatewayCheckFailures, 2);
    } finally {
      await h.close();
    }
  });

  it('keeps serving when an uplink handler throws', async () => {
    const h = await harness();
    try {
      h.backend.onUplink(() => {
        throw new Error('handler bug');
      });
      await h.gateway.send({
        type: 'PUSH_DATA',
        version: 2,
        token: 1,
        gatewayId: GATEWAY_ID,
        rxpk: [rxpk(), rxpk()],
      });
      await h.gateway.next();
      await h.gateway.sync();
      assert.equal(h.uplinks.length, 2);
      assert.equal(h.backend.counters().handlerErrors, 2);
    } finally {
      await h.close();
    }
  });
});
