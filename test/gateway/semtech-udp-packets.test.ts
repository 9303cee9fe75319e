import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  downlinkToTxpk,
  encodePacket,
  hzToMegahertz,
  isSemtechUdpError,
  megahertzToHz,
  modulationOf,
  type PushData,
  parsePacket,
  parseRxpk,
  type Rxpk,
  rxpkToUplink,
  type SemtechPacket,
  type SemtechPacketToEncode,
  type SemtechUdpErrorCode,
  type Stat,
  statTimeToIso,
  statToGatewayStats,
  type Txpk,
  txAckStatusOf,
  txpkToDownlink,
  uplinkToRxpk,
} from '../../src/gateway/semtech-udp/packets.js';
import type { GatewayDownlink, Modulation } from '../../src/gateway/types.js';

const GATEWAY_ID = 'aa555a0000000101';
const PLAIN = { noNullPrototype: true } as const;

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

function bytes(hexText: string): Uint8Array {
  return new Uint8Array(Buffer.from(hexText.replace(/\s+/g, ''), 'hex'));
}

function withJson(headerHex: string, json: string): Uint8Array {
  return new Uint8Array(Buffer.concat([Buffer.from(headerHex, 'hex'), Buffer.from(json, 'utf8')]));
}

const PUSH_DATA_HEADER = `02abcd00${GATEWAY_ID}`;

function pushData(json: string): Uint8Array {
  return withJson(PUSH_DATA_HEADER, json);
}

function expectCode(datagram: Uint8Array, code: SemtechUdpErrorCode, message?: RegExp): void {
  assert.throws(
    () => parsePacket(datagram),
    (error: unknown) => {
      assert.ok(isSemtechUdpError(error), `expected a SemtechUdpError, got ${String(error)}`);
      assert.equal(error.code, code, error.message);
      if (message !== undefined) assert.match(error.message, message);
      return true;
    },
  );
}

const VALID_RXPK = {
  time: '2013-03-31T16:21:17.528002Z',
  tmst: 3512348611,
  chan: 2,
  rfch: 0,
  freq: 866.349812,
  stat: 1,
  modu: 'LORA',
  datr: 'SF7BW125',
  codr: '4/6',
  rssi: -35,
  lsnr: 5.1,
  size: 4,
  data: 'AQIDBA==',
};

function rxpkJson(overrides: Record<string, unknown> = {}, omit: string[] = []): string {
  const rxpk: Record<string, unknown> = { ...VALID_RXPK, ...overrides };
  for (const key of omit) delete rxpk[key];
  return JSON.stringify({ rxpk: [rxpk] });
}

function firstRxpkError(json: string): SemtechUdpErrorCode | undefined {
  const packet = parsePacket(pushData(json)) as PushData;
  return packet.invalidRxpk?.[0]?.code;
}

// ---------------------------------------------------------------------------------------------

describe('Semtech UDP datagrams: known byte strings', () => {
  it('reads a PULL_DATA: version, big-endian token, gateway EUI in wire order', () => {
    const packet = parsePacket(bytes(`02 5a1e 02 ${GATEWAY_ID}`));
    assert.deepEqual(packet, {
      type: 'PULL_DATA',
      version: 2,
      token: 0x5a1e,
      gatewayId: GATEWAY_ID,
    });
  });

  it('answers PUSH_DATA and PULL_DATA with ACKs echoing version and token', () => {
    assert.equal(hex(encodePacket({ type: 'PUSH_ACK', version: 2, token: 0xabcd })), '02abcd01');
    assert.equal(hex(encodePacket({ type: 'PULL_ACK', version: 1, token: 0x0102 })), '01010204');
    assert.deepEqual(parsePacket(bytes('02abcd01')), {
      type: 'PUSH_ACK',
      version: 2,
      token: 0xabcd,
    });
  });

  it('reads a PUSH_DATA with one rxpk and a stat', () => {
    const json = JSON.stringify({
      rxpk: [VALID_RXPK],
      stat: {
        time: '2014-01-12 08:59:28 GMT',
        lati: 46.24,
        long: 3.2523,
        alti: 145,
        rxnb: 2,
        rxok: 2,
        rxfw: 2,
        ackr: 100.0,
        dwnb: 2,
        txnb: 2,
      },
    });
    const packet = parsePacket(pushData(json));
    assert.equal(packet.type, 'PUSH_DATA');
    assert.equal(packet.version, 2);
    assert.equal(packet.token, 0xabcd);
    assert.equal(packet.gatewayId, GATEWAY_ID);
    assert.deepEqual(packet.rxpk, [VALID_RXPK]);
    assert.equal(packet.stat?.rxnb, 2);
    assert.equal(packet.invalidRxpk, undefined);
  });

  it('writes a PULL_RESP as header then {"txpk":...}', () => {
    const txpk: Txpk = {
      imme: false,
      tmst: 1000000,
      freq: 869.525,
      rfch: 0,
      powe: 27,
      modu: 'LORA',
      datr: 'SF12BW125',
      codr: '4/5',
      ipol: true,
      size: 3,
      data: 'AQID',
      ncrc: true,
    };
    const datagram = encodePacket({ type: 'PULL_RESP', version: 2, token: 0x0007, txpk });
    assert.equal(hex(datagram.subarray(0, 4)), '02000703');
    assert.equal(
      Buffer.from(datagram.subarray(4)).toString(),
      '{"txpk":{"imme":false,"tmst":1000000,"freq":869.525,"rfch":0,"powe":27,"modu":"LORA",' +
        '"datr":"SF12BW125","codr":"4/5","ipol":true,"size":3,"data":"AQID","ncrc":true}}',
    );
    assert.deepEqual(parsePacket(datagram), { type: 'PULL_RESP', version: 2, token: 7, txpk });
  });

  it('reads TX_ACK without JSON, with an error, and with a trailing NUL byte', () => {
    assert.deepEqual(parsePacket(bytes(`02 1234 05 ${GATEWAY_ID}`)), {
      type: 'TX_ACK',
      version: 2,
      token: 0x1234,
      gatewayId: GATEWAY_ID,
    });
    const late = parsePacket(
      withJson(`02123405${GATEWAY_ID}`, '{"txpk_ack":{"error":"TOO_LATE"}}\u0000'),
    );
    assert.equal(late.type, 'TX_ACK');
    assert.deepEqual(late.type === 'TX_ACK' && late.txpkAck, { error: 'TOO_LATE' });
    const onlyNul = parsePacket(bytes(`02 1234 05 ${GATEWAY_ID} 00`));
    assert.equal(onlyNul.type === 'TX_ACK' && onlyNul.txpkAck, undefined);
  });

  it('writes PULL_DATA and PUSH_DATA with the EUI most significant byte first', () => {
    assert.equal(
      hex(encodePacket({ type: 'PULL_DATA', version: 1, token: 0xffff, gatewayId: GATEWAY_ID })),
      `01ffff02${GATEWAY_ID}`,
    );
    const datagram = encodePacket({
      type: 'PUSH_DATA',
      version: 2,
      token: 1,
      gatewayId: GATEWAY_ID,
      rxpk: [],
      stat: { rxnb: 0 },
    });
    assert.equal(hex(datagram.subarray(0, 12)), `02000100${GATEWAY_ID}`);
    assert.equal(Buffer.from(datagram.subarray(12)).toString(), '{"stat":{"rxnb":0}}');
  });
});

describe('Semtech UDP datagrams: malformations are typed errors', () => {
  it('refuses short headers, bad versions and unknown types', () => {
    expectCode(new Uint8Array(0), 'SHORT_HEADER');
    expectCode(bytes('020000'), 'SHORT_HEADER', /3 bytes/);
    expectCode(bytes('03000000'), 'BAD_VERSION', /version 3/);
    expectCode(bytes('00000002'), 'BAD_VERSION');
    expectCode(bytes('02000006'), 'UNKNOWN_TYPE', /0x06/);
    expectCode(bytes('020000ff'), 'UNKNOWN_TYPE');
    expectCode(bytes('02000000aa555a00000001'), 'SHORT_HEADER', /PUSH_DATA is 11 bytes/);
    expectCode(bytes('02000002'), 'SHORT_HEADER', /PULL_DATA/);
    expectCode(bytes('02000005aa'), 'SHORT_HEADER', /TX_ACK/);
    expectCode(bytes('0200000100'), 'TRAILING_BYTES');
  });

  it('refuses bad JSON, JSON that is not an object and rxpk that is not an array', () => {
    expectCode(bytes(PUSH_DATA_HEADER), 'BAD_JSON', /no JSON/);
    expectCode(pushData('{"rxpk":'), 'BAD_JSON');
    expectCode(new Uint8Array([...bytes(PUSH_DATA_HEADER), 0x7b, 0xff, 0x7d]), 'BAD_JSON', /UTF-8/);
    expectCode(pushData('[1,2]'), 'JSON_NOT_OBJECT');
    expectCode(pushData('null'), 'JSON_NOT_OBJECT');
    expectCode(pushData('"rxpk"'), 'JSON_NOT_OBJECT');
    expectCode(pushData('{"rxpk":{}}'), 'RXPK_NOT_ARRAY');
    expectCode(pushData('{"stat":5}'), 'INVALID_FIELD', /stat must be an object/);
    expectCode(pushData('{"stat":{"rxnb":-1}}'), 'INVALID_FIELD', /stat\.rxnb/);
    expectCode(bytes('02000003'), 'BAD_JSON');
    expectCode(withJson('02000003', '{}'), 'MISSING_FIELD', /txpk is missing/);
    expectCode(
      withJson(
        '02000003',
        '{"txpk":{"freq":869.525,"rfch":0,"powe":14,"modu":"LORA","datr":"SF9BW125","codr":"4/5","size":0,"data":""}}',
      ),
      'MISSING_FIELD',
      /imme, txpk\.tmst or txpk\.tmms/,
    );
    expectCode(withJson(`02000005${GATEWAY_ID}`, '{"txpk_ack":5}'), 'INVALID_FIELD');
  });

  it('refuses one bad rxpk by reason and keeps the good ones of the same datagram', () => {
    assert.equal(firstRxpkError(rxpkJson({ data: 'AQ!D' })), 'BAD_BASE64');
    assert.equal(firstRxpkError(rxpkJson({ size: 5 })), 'SIZE_MISMATCH');
    assert.equal(firstRxpkError(rxpkJson({}, ['tmst'])), 'MISSING_FIELD');
    assert.equal(firstRxpkError(rxpkJson({}, ['data'])), 'MISSING_FIELD');
    assert.equal(firstRxpkError(rxpkJson({}, ['rssi'])), 'MISSING_FIELD');
    assert.equal(firstRxpkError(rxpkJson({}, ['codr'])), 'MISSING_FIELD');
    assert.equal(firstRxpkError(rxpkJson({ freq: '868.1' })), 'INVALID_FIELD');
    assert.equal(firstRxpkError(rxpkJson({ tmst: 2 ** 32 })), 'INVALID_FIELD');
    assert.equal(firstRxpkError(rxpkJson({ stat: 2 })), 'INVALID_FIELD');
    assert.equal(firstRxpkError(rxpkJson({ datr: 'SF13BW125' })), 'INVALID_FIELD');
    assert.equal(firstRxpkError(rxpkJson({ modu: 'FSK' })), 'INVALID_FIELD');
    assert.equal(firstRxpkError(rxpkJson({ codr: '5/4' })), 'INVALID_FIELD');
    const mixed = parsePacket(
      pushData(JSON.stringify({ rxpk: [VALID_RXPK, { ...VALID_RXPK, size: 9 }, 7] })),
    ) as PushData;
    assert.equal(mixed.rxpk.length, 1);
    assert.deepEqual(
      mixed.invalidRxpk?.map((error) => [error.code, error.message]),
      [
        ['SIZE_MISMATCH', 'rxpk[1].size is 9 but rxpk[1].data holds 4 bytes'],
        ['INVALID_FIELD', 'rxpk[2] must be an object, got 7'],
      ],
    );
  });
});

describe('Semtech UDP conversions', () => {
  it('reads LoRa and FSK data rates and coding rates', () => {
    assert.deepEqual(modulationOf({ modu: 'LORA', datr: 'SF7BW125', codr: '4/5' }), {
      lora: { spreadingFactor: 7, bandwidthHz: 125_000, codeRate: 'CR_4_5' },
    });
    assert.deepEqual(modulationOf({ modu: 'LORA', datr: 'SF12BW500', codr: '4/8LI' }), {
      lora: { spreadingFactor: 12, bandwidthHz: 500_000, codeRate: 'CR_4_8_LI' },
    });
    assert.deepEqual(modulationOf({ modu: 'LORA', datr: 'SF9BW62.5', codr: '4/7' }), {
      lora: { spreadingFactor: 9, bandwidthHz: 62_500, codeRate: 'CR_4_7' },
    });
    assert.deepEqual(modulationOf({ modu: 'FSK', datr: 50000 }), { fsk: { datarate: 50_000 } });
  });

  it('turns MHz into integer Hz without floating-point residue', () => {
    assert.equal(megahertzToHz(868.1), 868_100_000);
    assert.equal(megahertzToHz(867.9), 867_900_000);
    assert.equal(megahertzToHz(869.525), 869_525_000);
    assert.equal(megahertzToHz(866.349812), 866_349_812);
    assert.equal(JSON.stringify(hzToMegahertz(868_300_000)), '868.3');
    fc.assert(
      fc.property(fc.integer({ min: 1_000_000, max: 9_999_999_999 }), (frequencyHz) => {
        const text = JSON.stringify(hzToMegahertz(frequencyHz));
        const decimals = text.split('.')[1]?.length ?? 0;
        return decimals <= 6 && megahertzToHz(JSON.parse(text)) === frequencyHz;
      }),
      { numRuns: 2000 },
    );
  });

  it('gives an uplink the metadata of its rxpk', () => {
    const rxpk = parseRxpk({ ...VALID_RXPK, tmms: 1_300_000_000_000 });
    const uplink = rxpkToUplink(rxpk, {
      gatewayId: GATEWAY_ID,
      uplinkId: 42,
      receivedAtMs: 1_700_000_000_000,
      location: { latitude: 48.39, longitude: -4.49, altitude: 40 },
    });
    assert.deepEqual(uplink, {
      phyPayload: new Uint8Array([1, 2, 3, 4]),
      txInfo: {
        frequencyHz: 866_349_812,
        modulation: { lora: { spreadingFactor: 7, bandwidthHz: 125_000, codeRate: 'CR_4_6' } },
      },
      rxInfo: {
        gatewayId: GATEWAY_ID,
        uplinkId: 42,
        timestampUs: 3512348611,
        gwTime: '2013-03-31T16:21:17.528002Z',
        timeSinceGpsEpochMs: 1_300_000_000_000,
        rssi: -35,
        snr: 5.1,
        channel: 2,
        rfChain: 0,
        crcStatus: 'ok',
        receivedAtMs: 1_700_000_000_000,
        location: { latitude: 48.39, longitude: -4.49, altitude: 40 },
      },
    });
    const bad = rxpkToUplink(parseRxpk({ ...VALID_RXPK, stat: -1 }), {
      gatewayId: GATEWAY_ID,
      uplinkId: 1,
      receivedAtMs: 0,
    });
    assert.equal(bad.rxInfo.crcStatus, 'bad');
    assert.equal(
      rxpkToUplink(parseRxpk({ ...VALID_RXPK, stat: 0 }), {
        gatewayId: GATEWAY_ID,
        uplinkId: 1,
        receivedAtMs: 0,
      }).rxInfo.crcStatus,
      'none',
    );
  });

  it('takes rssis, then the best rsig antenna, when rssi is absent', () => {
    const { rssi: _rssi, lsnr: _lsnr, ...withoutSignal } = VALID_RXPK;
    assert.equal(parseRxpk({ ...withoutSignal, rssis: -97, lsnr: 2 }).rssi, -97);
    const multiAntenna = parseRxpk({
      ...withoutSignal,
      rsig: [
        { ant: 0, chan: 2, rssic: -110, lsnr: -3.5 },
        { ant: 1, chan: 2, rssic: -101, lsnr: 4.25 },
      ],
    });
    assert.equal(multiAntenna.rssi, -101);
    assert.equal(multiAntenna.lsnr, 4.25);
  });

  it('builds the txpk of a class A downlink: tmst, MHz, inverted polarity, no CRC', () => {
    const downlink: GatewayDownlink = {
      gatewayId: GATEWAY_ID,
      downlinkId: 9,
      phyPayload: new Uint8Array([0x60, 1, 2, 3, 4, 0, 0, 0, 1, 2, 3, 4]),
      frequencyHz: 868_100_000,
      powerDbm: 14,
      modulation: { lora: { spreadingFactor: 7, bandwidthHz: 125_000, codeRate: 'CR_4_5' } },
      timing: { kind: 'counter', timestampUs: 2 ** 32 + 999_999 },
    };
    assert.deepEqual(downlinkToTxpk(downlink), {
      freq: 868.1,
      rfch: 0,
      powe: 14,
      modu: 'LORA',
      datr: 'SF7BW125',
      codr: '4/5',
      size: 12,
      data: Buffer.from(downlink.phyPayload).toString('base64'),
      tmst: 999_999,
      ipol: true,
      ncrc: true,
    });
    const immediate = downlinkToTxpk({ ...downlink, timing: { kind: 'immediately' } });
    assert.equal(immediate.imme, true);
    assert.equal(immediate.tmst, undefined);
    const fsk = downlinkToTxpk({ ...downlink, modulation: { fsk: { datarate: 50_000 } } });
    assert.deepEqual([fsk.modu, fsk.datr, fsk.fdev, fsk.ipol], ['FSK', 50_000, 25_000, undefined]);
    assert.throws(
      () => downlinkToTxpk({ ...downlink, phyPayload: new Uint8Array(256) }),
      (error: unknown) => isSemtechUdpError(error) && error.code === 'INVALID_FIELD',
    );
  });

  it('turns a stat into gateway stats: ISO time, position, ack ratio', () => {
    const stat: Stat = {
      time: '2014-01-12 08:59:28 GMT',
      lati: 46.24,
      long: 3.2523,
      alti: 145,
      rxnb: 10,
      rxok: 8,
      rxfw: 7,
      ackr: 50,
      dwnb: 3,
      txnb: 2,
    };
    assert.deepEqual(statToGatewayStats(stat, { gatewayId: GATEWAY_ID, receivedAtMs: 5 }), {
      gatewayId: GATEWAY_ID,
      time: '2014-01-12T08:59:28.000Z',
      location: { latitude: 46.24, longitude: 3.2523, altitude: 145 },
      rxReceived: 10,
      rxReceivedOk: 8,
      rxForwarded: 7,
      ackRatio: 0.5,
      txReceived: 3,
      txEmitted: 2,
      receivedAtMs: 5,
    });
    const noFix = statToGatewayStats(
      { lati: 0, long: 0, time: 'yesterday' },
      { gatewayId: GATEWAY_ID, receivedAtMs: 5 },
    );
    assert.equal(noFix.location, undefined);
    assert.equal(noFix.time, undefined);
    assert.equal(statTimeToIso('2024-02-29T10:00:00Z'), '2024-02-29T10:00:00.000Z');
  });

  it('maps TX_ACK JSON to a status', () => {
    assert.equal(txAckStatusOf(undefined), 'NONE');
    assert.equal(txAckStatusOf({}), 'NONE');
    assert.equal(txAckStatusOf({ error: 'NONE' }), 'NONE');
    assert.equal(txAckStatusOf({ warn: 'TX_POWER', value: 14 }), 'NONE');
    assert.equal(txAckStatusOf({ error: 'TOO_LATE' }), 'TOO_LATE');
    assert.equal(txAckStatusOf({ error: 'COLLISION_BEACON' }), 'COLLISION_BEACON');
    assert.equal(txAckStatusOf({ error: 'HALF_DUPLEX' }), 'UNKNOWN');
  });
});

// ---------------------------------------------------------------------------------------------
// Property round trips.

const payloadArb = fc.uint8Array({ minLength: 0, maxLength: 255 });
const frequencyHzArb = fc.integer({ min: 100_000_000, max: 2_500_000_000 });
const loraArb = fc.record(
  {
    modu: fc.constant('LORA' as const),
    datr: fc
      .tuple(fc.integer({ min: 5, max: 12 }), fc.constantFrom('125', '250', '500', '62.5', '7.8'))
      .map(([sf, bw]) => `SF${sf}BW${bw}`),
    codr: fc.constantFrom('4/5', '4/6', '4/7', '4/8', '4/6LI'),
    lsnr: fc.integer({ min: -250, max: 150 }).map((tenths) => tenths / 10),
  },
  PLAIN,
);
const fskArb = fc.record(
  { modu: fc.constant('FSK' as const), datr: fc.integer({ min: 1, max: 300_000 }) },
  PLAIN,
);
const isoTimeArb = fc
  .date({ min: new Date('2000-01-01'), max: new Date('2100-01-01'), noInvalidDate: true })
  .map((date) => date.toISOString());

const rxpkArb: fc.Arbitrary<Rxpk> = fc
  .tuple(
    fc.record(
      {
        tmst: fc.integer({ min: 0, max: 0xffff_ffff }),
        freq: frequencyHzArb.map(hzToMegahertz),
        chan: fc.integer({ min: 0, max: 255 }),
        rfch: fc.integer({ min: 0, max: 1 }),
        stat: fc.constantFrom(1 as const, -1 as const, 0 as const),
        rssi: fc.integer({ min: -150, max: 0 }),
        time: isoTimeArb,
        tmms: fc.integer({ min: 0, max: 2 ** 45 }),
      },
      { ...PLAIN, requiredKeys: ['tmst', 'freq', 'chan', 'rfch', 'stat', 'rssi'] },
    ),
    fc.oneof(loraArb, fskArb),
    payloadArb,
  )
  .map(([base, modulation, payload]) => ({
    ...base,
    ...modulation,
    size: payload.length,
    data: Buffer.from(payload).toString('base64'),
  }));

const statArb: fc.Arbitrary<Stat> = fc.record(
  {
    time: fc.constant('2014-01-12 08:59:28 GMT'),
    lati: fc.integer({ min: -90_000, max: 90_000 }).map((v) => v / 1000),
    long: fc.integer({ min: -180_000, max: 180_000 }).map((v) => v / 1000),
    alti: fc.integer({ min: -100, max: 5000 }),
    rxnb: fc.nat(),
    rxok: fc.nat(),
    rxfw: fc.nat(),
    ackr: fc.integer({ min: 0, max: 1000 }).map((v) => v / 10),
    dwnb: fc.nat(),
    txnb: fc.nat(),
  },
  { ...PLAIN, requiredKeys: [] },
);

const modulationArb: fc.Arbitrary<Modulation> = fc.oneof(
  fc
    .record(
      {
        spreadingFactor: fc.integer({ min: 5, max: 12 }),
        bandwidthHz: fc.constantFrom(125_000, 250_000, 500_000),
        codeRate: fc.constantFrom('CR_4_5', 'CR_4_6', 'CR_4_7', 'CR_4_8'),
        polarizationInversion: fc.boolean(),
      },
      PLAIN,
    )
    .map((lora) => ({ lora })),
  fc
    .record(
      {
        datarate: fc.integer({ min: 1, max: 300_000 }),
        frequencyDeviationHz: fc.integer({ min: 0, max: 100_000 }),
      },
      PLAIN,
    )
    .map((fsk) => ({ fsk })),
);

const downlinkArb: fc.Arbitrary<GatewayDownlink> = fc.record(
  {
    gatewayId: fc.uint8Array({ minLength: 8, maxLength: 8 }).map(hex),
    downlinkId: fc.nat(),
    phyPayload: fc.uint8Array({ minLength: 1, maxLength: 255 }),
    frequencyHz: frequencyHzArb,
    powerDbm: fc.integer({ min: -10, max: 30 }),
    modulation: modulationArb,
    timing: fc.oneof(
      fc.constant({ kind: 'immediately' as const }),
      fc
        .integer({ min: 0, max: 0xffff_ffff })
        .map((timestampUs) => ({ kind: 'counter' as const, timestampUs })),
    ),
    rfChain: fc.integer({ min: 0, max: 1 }),
  },
  PLAIN,
);

const headerArb = fc.record(
  { version: fc.constantFrom(1 as const, 2 as const), token: fc.integer({ min: 0, max: 0xffff }) },
  PLAIN,
);
const gatewayIdArb = fc.uint8Array({ minLength: 8, maxLength: 8 }).map(hex);

const packetArb: fc.Arbitrary<SemtechPacketToEncode> = fc.oneof(
  fc
    .tuple(headerArb, gatewayIdArb, fc.array(rxpkArb, { maxLength: 4 }), fc.option(statArb))
    .map(([header, gatewayId, rxpk, stat]) => ({
      type: 'PUSH_DATA' as const,
      ...header,
      gatewayId,
      rxpk,
      ...(stat === null ? {} : { stat }),
    })),
  headerArb.map((header) => ({ type: 'PUSH_ACK' as const, ...header })),
  fc
    .tuple(headerArb, gatewayIdArb)
    .map(([header, gatewayId]) => ({ type: 'PULL_DATA' as const, ...header, gatewayId })),
  fc.tuple(headerArb, downlinkArb).map(([header, downlink]) => ({
    type: 'PULL_RESP' as const,
    ...header,
    txpk: downlinkToTxpk(downlink),
  })),
  headerArb.map((header) => ({ type: 'PULL_ACK' as const, ...header })),
  fc
    .tuple(
      headerArb,
      gatewayIdArb,
      fc.option(fc.constantFrom('NONE', 'TOO_LATE', 'TX_FREQ', 'SOMETHING_NEW')),
    )
    .map(([header, gatewayId, error]) => ({
      type: 'TX_ACK' as const,
      ...header,
      gatewayId,
      ...(error === null ? {} : { txpkAck: { error } }),
    })),
);

describe('Semtech UDP round trips (fast-check)', () => {
  it('parses back every packet it encodes', () => {
    fc.assert(
      fc.property(packetArb, (packet) => {
        assert.deepEqual(parsePacket(encodePacket(packet)), packet);
      }),
      { numRuns: 1000 },
    );
  });

  it('turns an rxpk into an uplink and back', () => {
    fc.assert(
      fc.property(rxpkArb, fc.nat(), (rxpk, uplinkId) => {
        const uplink = rxpkToUplink(rxpk, { gatewayId: GATEWAY_ID, uplinkId, receivedAtMs: 0 });
        assert.equal(uplink.phyPayload.length, rxpk.size);
        assert.equal(uplink.txInfo.frequencyHz, megahertzToHz(rxpk.freq));
        const expected = { ...rxpk };
        if (expected.modu === 'FSK') delete expected.lsnr;
        assert.deepEqual(uplinkToRxpk(uplink), expected);
      }),
      { numRuns: 1000 },
    );
  });

  it('turns a downlink into a txpk on the wire and back', () => {
    fc.assert(
      fc.property(downlinkArb, headerArb, (downlink, header) => {
        const datagram = encodePacket({
          type: 'PULL_RESP',
          ...header,
          txpk: downlinkToTxpk(downlink),
        });
        const packet = parsePacket(datagram);
        assert.equal(packet.type, 'PULL_RESP');
        if (packet.type !== 'PULL_RESP') return;
        assert.deepEqual(txpkToDownlink(packet.txpk, downlink), downlink);
      }),
      { numRuns: 1000 },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Fuzzing: random and mutated datagrams.

/** mulberry32: a small seeded PRNG, so that a failure is reproducible from its seed. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const JSON_VALUES: unknown[] = [
  null,
  true,
  false,
  0,
  -1,
  1.5,
  2 ** 32,
  Number.MAX_SAFE_INTEGER,
  1e308,
  '',
  'LORA',
  'FSK',
  'SF7BW125',
  'SF0BW0',
  '4/5',
  'AQID',
  '====',
  [],
  [1],
  {},
  { rssic: -100 },
  'x'.repeat(300),
];

/** Everything a parsed packet promises: its rxpk and txpk convert without surprise. */
function checkParsed(packet: SemtechPacket): void {
  if (packet.type === 'PUSH_DATA') {
    for (const rxpk of packet.rxpk) {
      rxpkToUplink(rxpk, { gatewayId: packet.gatewayId, uplinkId: 1, receivedAtMs: 0 });
    }
    if (packet.stat !== undefined) {
      statToGatewayStats(packet.stat, { gatewayId: packet.gatewayId, receivedAtMs: 0 });
    }
  }
  if (packet.type === 'PULL_RESP') {
    try {
      txpkToDownlink(packet.txpk, { gatewayId: GATEWAY_ID, downlinkId: 1 });
    } catch (error) {
      if (!isSemtechUdpError(error)) throw error;
    }
  }
  if (packet.type === 'TX_ACK') txAckStatusOf(packet.txpkAck);
}

function parseOrTypedError(datagram: Uint8Array, counts: Map<string, number>): void {
  let outcome: string;
  try {
    const packet = parsePacket(datagram);
    checkParsed(packet);
    outcome = packet.type;
    if (packet.type === 'PUSH_DATA') {
      for (const error of packet.invalidRxpk ?? []) {
        counts.set(`rxpk ${error.code}`, (counts.get(`rxpk ${error.code}`) ?? 0) + 1);
      }
    }
  } catch (error) {
    if (!isSemtechUdpError(error)) {
      assert.fail(`untyped ${String(error)} for datagram ${hex(datagram)}`);
    }
    outcome = error.code;
  }
  counts.set(outcome, (counts.get(outcome) ?? 0) + 1);
}

function mutateJson(value: unknown, random: () => number, depth = 0): unknown {
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
  if (Array.isArray(value)) {
    const out = value.map((item) => (random() < 0.5 ? mutateJson(item, random, depth + 1) : item));
    if (random() < 0.2) out.push(pick(JSON_VALUES));
    if (random() < 0.2) out.splice(Math.floor(random() * out.length), 1);
    return out;
  }
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = { ...(value as Record<string, unknown>) };
    const keys = Object.keys(out);
    for (const key of keys) {
      const roll = random();
      if (roll < 0.1) delete out[key];
      else if (roll < 0.25) out[key] = pick(JSON_VALUES);
      else if (roll < 0.6) out[key] = mutateJson(out[key], random, depth + 1);
    }
    if (random() < 0.1)
      out[pick(['__proto__', 'constructor', 'rsig', 'rssis'])] = pick(JSON_VALUES);
    return out;
  }
  if (typeof value === 'number' && random() < 0.5) return value + (random() - 0.5) * 10;
  return random() < 0.3 ? pick(JSON_VALUES) : value;
}

function mutateBytes(datagram: Uint8Array, random: () => number): Uint8Array {
  const out = Array.from(datagram);
  const edits = 1 + Math.floor(random() * 4);
  for (let i = 0; i < edits; i++) {
    const at = Math.floor(random() * (out.length + 1));
    const roll = random();
    if (roll < 0.4 && out.length > 0) out[at % out.length] = Math.floor(random() * 256);
    else if (roll < 0.6) out.splice(at, 1);
    else if (roll < 0.8) out.splice(at, 0, Math.floor(random() * 256));
    else out.length = at;
  }
  return new Uint8Array(out);
}

describe('Semtech UDP fuzzing: only typed errors', () => {
  it('survives 100 000 random and mutated datagrams', () => {
    const random = prng(0x5e317ec);
    const seeds: Uint8Array[] = fc
      .sample(packetArb, { numRuns: 200, seed: 42 })
      .map((packet) => encodePacket(packet));
    const counts = new Map<string, number>();
    const total = 100_000;
    for (let i = 0; i < total; i++) {
      const kind = i % 4;
      let datagram: Uint8Array;
      if (kind === 0) {
        const length = Math.floor(random() * 64);
        datagram = new Uint8Array(length);
        for (let j = 0; j < length; j++) datagram[j] = Math.floor(random() * 256);
        if (length >= 4 && random() < 0.7) {
          datagram[0] = 1 + Math.floor(random() * 2);
          datagram[3] = Math.floor(random() * 7);
        }
      } else if (kind === 1) {
        datagram = mutateBytes(seeds[i % seeds.length]!, random);
      } else {
        const seed = seeds[i % seeds.length]!;
        const jsonOffset = seed[3] === 0x03 ? 4 : 12;
        if (seed.length <= jsonOffset) {
          datagram = mutateBytes(seed, random);
        } else {
          const json = JSON.parse(Buffer.from(seed.subarray(jsonOffset)).toString());
          const mutated = Buffer.from(JSON.stringify(mutateJson(json, random)) ?? '');
          datagram = new Uint8Array(Buffer.concat([seed.subarray(0, jsonOffset), mutated]));
        }
      }
      parseOrTypedError(datagram, counts);
    }
    const seen = [...counts]
      .filter(([outcome]) => !outcome.startsWith('rxpk '))
      .reduce((sum, [, count]) => sum + count, 0);
    assert.equal(seen, total);
    // The mutations reach deep into the validators, not just the header checks.
    for (const code of [
      'BAD_JSON',
      'INVALID_FIELD',
      'SHORT_HEADER',
      'PUSH_DATA',
      'PULL_RESP',
      'rxpk INVALID_FIELD',
      'rxpk MISSING_FIELD',
    ]) {
      assert.ok((counts.get(code) ?? 0) > 100, `${code}: ${counts.get(code)}`);
    }
  });

  it('refuses arbitrary JSON in every JSON-carrying packet with typed errors only', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(`02000100${GATEWAY_ID}`, '02000103', `02000105${GATEWAY_ID}`),
        fc.oneof(
          fc.json(),
          fc.jsonValue().map((value) => JSON.stringify({ rxpk: [value] })),
          fc.jsonValue().map((value) => JSON.stringify({ txpk: value, stat: value })),
        ),
        (header, json) => {
          const counts = new Map<string, number>();
          parseOrTypedError(withJson(header, json), counts);
        },
      ),
      { numRuns: 2000 },
    );
  });
});
