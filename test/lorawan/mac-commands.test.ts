import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import loraPacketModule from 'lora-packet';
import { bytesToHex, hexToBytes } from '../../src/lorawan/bytes.js';
import { isLorawanError, LorawanError } from '../../src/lorawan/errors.js';
import {
  DOWNLINK_MAC_COMMAND_NAMES,
  decodeMacCommands,
  encodeMacCommand,
  encodeMacCommands,
  MAC_COMMAND_CIDS,
  MAC_COMMAND_NAMES,
  type MacCommand,
  type MacCommandName,
  type MacCommandOf,
  type MacDirection,
  macCommandDirection,
  macCommandName,
  macCommandPayloadLength,
  UPLINK_MAC_COMMAND_NAMES,
} from '../../src/lorawan/mac-commands.js';

// lora-packet's typings declare an ES default export, but at run time module.exports is the API.
const loraPacket = loraPacketModule as unknown as typeof loraPacketModule.default;

const DIRECTIONS: readonly MacDirection[] = ['uplink', 'downlink'];

/** A command without payload in each direction, to put something before the part under test. */
const EMPTY_COMMAND: Record<MacDirection, MacCommand> = {
  uplink: { cid: 'LinkCheckReq' },
  downlink: { cid: 'DevStatusReq' },
};

function hex(bytes: Uint8Array): string {
  return bytesToHex(bytes);
}

function decodeHex(h: string, direction: MacDirection): MacCommand[] {
  return decodeMacCommands(hexToBytes(h.replaceAll(' ', '')), direction);
}

function expectLorawanError(fn: () => unknown, code: LorawanError['code'], message?: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof LorawanError, `expected a LorawanError, got ${String(error)}`);
    assert.equal(error.code, code);
    if (message) assert.match(error.message, message);
    return true;
  });
}

/**
 * Known answers, worked out by hand from the field layouts of LoRaWAN 1.1 §5 (and 1.0.4 §5, the
 * class B and class C commands): CID byte, then the payload fields in order, multi-byte fields
 * little-endian, frequencies as 24-bit counts of 100 Hz. The `how` note shows the arithmetic.
 * Vectors marked "brocaar" give the same payload bytes as brocaar/lorawan mac_commands_test.go,
 * an independent Go implementation (lora-packet does not decode MAC commands).
 */
interface KnownAnswer {
  direction: MacDirection;
  hex: string;
  commands: MacCommand[];
  how: string;
}

const KNOWN_ANSWERS: KnownAnswer[] = [
  // Uplink
  {
    direction: 'uplink',
    hex: '01 01',
    commands: [{ cid: 'ResetInd', minorVersion: 1 }],
    how: 'Dev LoRaWAN version: RFU 7:4 = 0, Minor = 1 (LoRaWAN 1.1)',
  },
  {
    direction: 'uplink',
    hex: '02',
    commands: [{ cid: 'LinkCheckReq' }],
    how: 'no payload',
  },
  {
    direction: 'uplink',
    hex: '03 07',
    commands: [{ cid: 'LinkADRAns', powerAck: true, dataRateAck: true, channelMaskAck: true }],
    how: 'Power ACK bit 2, Data rate ACK bit 1, Channel mask ACK bit 0 -> 0b111',
  },
  {
    direction: 'uplink',
    hex: '03 04',
    commands: [{ cid: 'LinkADRAns', powerAck: true, dataRateAck: false, channelMaskAck: false }],
    how: 'only bit 2 -> 0x04 (brocaar: PowerACK -> {4})',
  },
  {
    direction: 'uplink',
    hex: '04',
    commands: [{ cid: 'DutyCycleAns' }],
    how: 'no payload',
  },
  {
    direction: 'uplink',
    hex: '05 05',
    commands: [
      { cid: 'RXParamSetupAns', rx1DrOffsetAck: true, rx2DataRateAck: false, channelAck: true },
    ],
    how: 'RX1DRoffset ACK bit 2, RX2 Data rate ACK bit 1, Channel ACK bit 0 -> 0b101',
  },
  {
    direction: 'uplink',
    hex: '06 64 0a',
    commands: [{ cid: 'DevStatusAns', battery: 100, margin: 10 }],
    how: 'Battery 100 = 0x64; Margin +10 = 0b001010',
  },
  {
    direction: 'uplink',
    hex: '06 00 22',
    commands: [{ cid: 'DevStatusAns', battery: 0, margin: -30 }],
    how: "Margin -30 in 6-bit two's complement = 64 - 30 = 34 = 0x22 (brocaar: {0, 34})",
  },
  {
    direction: 'uplink',
    hex: '06 7f 3f',
    commands: [{ cid: 'DevStatusAns', battery: 127, margin: -1 }],
    how: 'Margin -1 = 0b111111 = 0x3f (brocaar: {127, 63})',
  },
  {
    direction: 'uplink',
    hex: '06 ff 20',
    commands: [{ cid: 'DevStatusAns', battery: 255, margin: -32 }],
    how: 'Battery 255 = cannot measure; Margin -32 = 0b100000 = 0x20',
  },
  {
    direction: 'uplink',
    hex: '07 03',
    commands: [{ cid: 'NewChannelAns', dataRateRangeOk: true, channelFrequencyOk: true }],
    how: 'Data rate range ok bit 1, Channel frequency ok bit 0',
  },
  {
    direction: 'uplink',
    hex: '08',
    commands: [{ cid: 'RXTimingSetupAns' }],
    how: 'no payload',
  },
  {
    direction: 'uplink',
    hex: '09',
    commands: [{ cid: 'TxParamSetupAns' }],
    how: 'no payload',
  },
  {
    direction: 'uplink',
    hex: '0a 02',
    commands: [{ cid: 'DlChannelAns', uplinkFrequencyExists: true, channelFrequencyOk: false }],
    how: 'Uplink frequency exists bit 1, Channel frequency ok bit 0 (brocaar: {false, true} -> {2})',
  },
  {
    direction: 'uplink',
    hex: '0b 01',
    commands: [{ cid: 'RekeyInd', minorVersion: 1 }],
    how: 'Dev LoRaWAN version Minor = 1',
  },
  {
    direction: 'uplink',
    hex: '0c',
    commands: [{ cid: 'ADRParamSetupAns' }],
    how: 'no payload',
  },
  {
    direction: 'uplink',
    hex: '0d',
    commands: [{ cid: 'DeviceTimeReq' }],
    how: 'no payload',
  },
  {
    direction: 'uplink',
    hex: '0f 01',
    commands: [{ cid: 'RejoinParamSetupAns', timeOk: true }],
    how: 'TimeOK bit 0',
  },
  {
    direction: 'uplink',
    hex: '10 07',
    commands: [{ cid: 'PingSlotInfoReq', periodicity: 7 }],
    how: 'Periodicity 2:0 = 7 (one ping slot every 128 s)',
  },
  {
    direction: 'uplink',
    hex: '11 02',
    commands: [{ cid: 'PingSlotChannelAns', dataRateOk: true, channelFrequencyOk: false }],
    how: 'Data rate ok bit 1 (brocaar: DataRateOK -> {2})',
  },
  {
    direction: 'uplink',
    hex: '12',
    commands: [{ cid: 'BeaconTimingReq' }],
    how: 'no payload (deprecated command)',
  },
  {
    direction: 'uplink',
    hex: '13 01',
    commands: [{ cid: 'BeaconFreqAns', beaconFrequencyOk: true }],
    how: 'Beacon frequency ok bit 0',
  },
  {
    direction: 'uplink',
    hex: '20 02',
    commands: [{ cid: 'DeviceModeInd', class: 'C' }],
    how: 'Class byte 0x02 = class C',
  },

  // Downlink
  {
    direction: 'downlink',
    hex: '01 01',
    commands: [{ cid: 'ResetConf', minorVersion: 1 }],
    how: 'Serv LoRaWAN version Minor = 1',
  },
  {
    direction: 'downlink',
    hex: '02 14 03',
    commands: [{ cid: 'LinkCheckAns', margin: 20, gatewayCount: 3 }],
    how: 'Margin 20 dB = 0x14, GwCnt 3',
  },
  {
    direction: 'downlink',
    hex: '03 51 07 00 01',
    commands: [
      { cid: 'LinkADRReq', dataRate: 5, txPower: 1, chMask: 0x0007, chMaskCntl: 0, nbTrans: 1 },
    ],
    how: 'DR 5 << 4 | TXPower 1 = 0x51; ChMask 0x0007 LE = 07 00; ChMaskCntl 0 << 4 | NbTrans 1',
  },
  {
    direction: 'downlink',
    hex: '03 12 04 00 45',
    commands: [
      { cid: 'LinkADRReq', dataRate: 1, txPower: 2, chMask: 0x0004, chMaskCntl: 4, nbTrans: 5 },
    ],
    how: '0x12; channel 2 only -> 04 00; 4 << 4 | 5 = 0x45 (brocaar: {18, 4, 0, 69})',
  },
  {
    direction: 'downlink',
    hex: '04 07',
    commands: [{ cid: 'DutyCycleReq', maxDutyCycle: 7 }],
    how: 'MaxDutyCycle 3:0 = 7 (1/128)',
  },
  {
    direction: 'downlink',
    hex: '05 23 d2 ad 84',
    commands: [
      { cid: 'RXParamSetupReq', rx1DrOffset: 2, rx2DataRate: 3, frequencyHz: 869_525_000 },
    ],
    how: 'DLsettings 2 << 4 | 3 = 0x23; 869.525 MHz / 100 = 8695250 = 0x84add2 -> d2 ad 84',
  },
  {
    direction: 'downlink',
    hex: '05 3b 01 02 04',
    commands: [
      { cid: 'RXParamSetupReq', rx1DrOffset: 3, rx2DataRate: 11, frequencyHz: 26_265_700 },
    ],
    how: '3 << 4 | 11 = 0x3b; 262657 = 0x040201 (brocaar: {59, 1, 2, 4})',
  },
  {
    direction: 'downlink',
    hex: '06',
    commands: [{ cid: 'DevStatusReq' }],
    how: 'no payload',
  },
  {
    direction: 'downlink',
    hex: '07 03 18 4f 84 50',
    commands: [{ cid: 'NewChannelReq', chIndex: 3, frequencyHz: 867_100_000, minDr: 0, maxDr: 5 }],
    how: 'ChIndex 3; 867.1 MHz / 100 = 8671000 = 0x844f18 -> 18 4f 84; MaxDR 5 << 4 | MinDR 0',
  },
  {
    direction: 'downlink',
    hex: '07 03 01 02 04 5a',
    commands: [{ cid: 'NewChannelReq', chIndex: 3, frequencyHz: 26_265_700, minDr: 10, maxDr: 5 }],
    how: 'DrRange 5 << 4 | 10 = 0x5a (brocaar: {3, 1, 2, 4, 90})',
  },
  {
    direction: 'downlink',
    hex: '08 01',
    commands: [{ cid: 'RXTimingSetupReq', delaySeconds: 1 }],
    how: 'Del 3:0 = 1',
  },
  {
    direction: 'downlink',
    hex: '08 0f',
    commands: [{ cid: 'RXTimingSetupReq', delaySeconds: 15 }],
    how: 'Del 3:0 = 15 (brocaar: {15})',
  },
  {
    direction: 'downlink',
    hex: '09 25',
    commands: [
      {
        cid: 'TxParamSetupReq',
        downlinkDwellTime: true,
        uplinkDwellTime: false,
        maxEirpIndex: 5,
      },
    ],
    how: 'DownlinkDwellTime bit 5 = 0x20 | MaxEIRP 5',
  },
  {
    direction: 'downlink',
    hex: '09 1d',
    commands: [
      {
        cid: 'TxParamSetupReq',
        downlinkDwellTime: false,
        uplinkDwellTime: true,
        maxEirpIndex: 13,
      },
    ],
    how: 'UplinkDwellTime bit 4 = 0x10 | MaxEIRP 13 = 0x0d',
  },
  {
    direction: 'downlink',
    hex: '0a 00 28 76 84',
    commands: [{ cid: 'DlChannelReq', chIndex: 0, frequencyHz: 868_100_000 }],
    how: '868.1 MHz / 100 = 8681000 = 0x847628 -> 28 76 84 (brocaar: {0, 40, 118, 132})',
  },
  {
    direction: 'downlink',
    hex: '0b 01',
    commands: [{ cid: 'RekeyConf', minorVersion: 1 }],
    how: 'Serv LoRaWAN version Minor = 1',
  },
  {
    direction: 'downlink',
    hex: '0c af',
    commands: [{ cid: 'ADRParamSetupReq', limitExp: 10, delayExp: 15 }],
    how: 'Limit_exp 10 << 4 | Delay_exp 15 = 0xaf (brocaar: {175})',
  },
  {
    direction: 'downlink',
    hex: '0d d2 02 96 49 80',
    commands: [{ cid: 'DeviceTimeAns', gpsEpochSeconds: 1_234_567_890, fractionalSecond: 128 }],
    how: '1234567890 = 0x499602d2 LE; 0.5 s = 128/256',
  },
  {
    direction: 'downlink',
    hex: '0d 01 00 00 00 02',
    commands: [{ cid: 'DeviceTimeAns', gpsEpochSeconds: 1, fractionalSecond: 2 }],
    how: '1 s + 2/256 s (brocaar: {1, 0, 0, 0, 2})',
  },
  {
    direction: 'downlink',
    hex: '0e 25 1c',
    commands: [{ cid: 'ForceRejoinReq', period: 3, maxRetries: 4, rejoinType: 2, dataRate: 5 }],
    how:
      '16-bit LE: bits 7:0 = RFU 0 | RejoinType 2 << 4 | DR 5 = 0x25; bits 15:8 = Period 3 << 3 | ' +
      'Max_Retries 4 = 0x1c (brocaar: {37, 28})',
  },
  {
    direction: 'downlink',
    hex: '0f ef',
    commands: [{ cid: 'RejoinParamSetupReq', maxTimeN: 14, maxCountN: 15 }],
    how: 'MaxTimeN 14 << 4 | MaxCountN 15 = 0xef (brocaar: {239})',
  },
  {
    direction: 'downlink',
    hex: '10',
    commands: [{ cid: 'PingSlotInfoAns' }],
    how: 'no payload',
  },
  {
    direction: 'downlink',
    hex: '11 28 76 84 05',
    commands: [{ cid: 'PingSlotChannelReq', frequencyHz: 868_100_000, dataRate: 5 }],
    how: 'Frequency first, then DR 3:0 (brocaar: {40, 118, 132, 5})',
  },
  {
    direction: 'downlink',
    hex: '12 e8 03 02',
    commands: [{ cid: 'BeaconTimingAns', delay: 1000, channel: 2 }],
    how: 'Delay 1000 = 0x03e8 LE; Channel 2',
  },
  {
    direction: 'downlink',
    hex: '13 28 76 84',
    commands: [{ cid: 'BeaconFreqReq', frequencyHz: 868_100_000 }],
    how: '868.1 MHz (brocaar: {40, 118, 132})',
  },
  {
    direction: 'downlink',
    hex: '20 00',
    commands: [{ cid: 'DeviceModeConf', class: 'A' }],
    how: 'Class byte 0x00 = class A',
  },
];

/** Payload lengths per direction, transcribed from the command tables of LoRaWAN 1.1 §5. */
const SPEC_LENGTHS: Record<number, { uplink?: number; downlink?: number }> = {
  1: { uplink: 1, downlink: 1 },
  2: { uplink: 0, downlink: 2 },
  3: { uplink: 1, downlink: 4 },
  4: { uplink: 0, downlink: 1 },
  5: { uplink: 1, downlink: 4 },
  6: { uplink: 2, downlink: 0 },
  7: { uplink: 1, downlink: 5 },
  8: { uplink: 0, downlink: 1 },
  9: { uplink: 0, downlink: 1 },
  10: { uplink: 1, downlink: 4 },
  11: { uplink: 1, downlink: 1 },
  12: { uplink: 0, downlink: 1 },
  13: { uplink: 0, downlink: 5 },
  14: { downlink: 2 },
  15: { uplink: 1, downlink: 1 },
  16: { uplink: 1, downlink: 0 },
  17: { uplink: 1, downlink: 4 },
  18: { uplink: 0, downlink: 3 },
  19: { uplink: 1, downlink: 3 },
  32: { uplink: 1, downlink: 1 },
};

// ---------------------------------------------------------------------------------------------
// Arbitraries: one per command name; the mapped type makes a missing name a compile error.

const u = (bits: number) => fc.integer({ min: 0, max: 2 ** bits - 1 });
const frequencyHz = fc.integer({ min: 0, max: 0xffffff }).map((n) => n * 100);
const deviceClass = fc.constantFrom<'A' | 'C'>('A', 'C');

/** fc.record with ordinary prototypes, so that deepStrictEqual matches decoded commands. */
function rec<T>(model: { [K in keyof T]: fc.Arbitrary<T[K]> }): fc.Arbitrary<T> {
  return fc.record(model, { noNullPrototype: true }) as fc.Arbitrary<T>;
}

const ARBITRARIES: { [N in MacCommandName]: fc.Arbitrary<MacCommandOf<N>> } = {
  ResetInd: rec({ cid: fc.constant('ResetInd'), minorVersion: u(4) }),
  ResetConf: rec({ cid: fc.constant('ResetConf'), minorVersion: u(4) }),
  LinkCheckReq: rec({ cid: fc.constant('LinkCheckReq') }),
  LinkCheckAns: rec({ cid: fc.constant('LinkCheckAns'), margin: u(8), gatewayCount: u(8) }),
  LinkADRReq: rec({
    cid: fc.constant('LinkADRReq'),
    dataRate: u(4),
    txPower: u(4),
    chMask: u(16),
    chMaskCntl: u(3),
    nbTrans: u(4),
  }),
  LinkADRAns: rec({
    cid: fc.constant('LinkADRAns'),
    powerAck: fc.boolean(),
    dataRateAck: fc.boolean(),
    channelMaskAck: fc.boolean(),
  }),
  DutyCycleReq: rec({ cid: fc.constant('DutyCycleReq'), maxDutyCycle: u(4) }),
  DutyCycleAns: rec({ cid: fc.constant('DutyCycleAns') }),
  RXParamSetupReq: rec({
    cid: fc.constant('RXParamSetupReq'),
    rx1DrOffset: u(3),
    rx2DataRate: u(4),
    frequencyHz,
  }),
  RXParamSetupAns: rec({
    cid: fc.constant('RXParamSetupAns'),
    rx1DrOffsetAck: fc.boolean(),
    rx2DataRateAck: fc.boolean(),
    channelAck: fc.boolean(),
  }),
  DevStatusReq: rec({ cid: fc.constant('DevStatusReq') }),
  DevStatusAns: rec({
    cid: fc.constant('DevStatusAns'),
    battery: u(8),
    margin: fc.integer({ min: -32, max: 31 }),
  }),
  NewChannelReq: rec({
    cid: fc.constant('NewChannelReq'),
    chIndex: u(8),
    frequencyHz,
    minDr: u(4),
    maxDr: u(4),
  }),
  NewChannelAns: rec({
    cid: fc.constant('NewChannelAns'),
    dataRateRangeOk: fc.boolean(),
    channelFrequencyOk: fc.boolean(),
  }),
  RXTimingSetupReq: rec({
    cid: fc.constant('RXTimingSetupReq'),
    delaySeconds: fc.integer({ min: 1, max: 15 }),
  }),
  RXTimingSetupAns: rec({ cid: fc.constant('RXTimingSetupAns') }),
  TxParamSetupReq: rec({
    cid: fc.constant('TxParamSetupReq'),
    downlinkDwellTime: fc.boolean(),
    uplinkDwellTime: fc.boolean(),
    maxEirpIndex: u(4),
  }),
  TxParamSetupAns: rec({ cid: fc.constant('TxParamSetupAns') }),
  DlChannelReq: rec({ cid: fc.constant('DlChannelReq'), chIndex: u(8), frequencyHz }),
  DlChannelAns: rec({
    cid: fc.constant('DlChannelAns'),
    uplinkFrequencyExists: fc.boolean(),
    channelFrequencyOk: fc.boolean(),
  }),
  RekeyInd: rec({ cid: fc.constant('RekeyInd'), minorVersion: u(4) }),
  RekeyConf: rec({ cid: fc.constant('RekeyConf'), minorVersion: u(4) }),
  ADRParamSetupReq: rec({
    cid: fc.constant('ADRParamSetupReq'),
    limitExp: u(4),
    delayExp: u(4),
  }),
  ADRParamSetupAns: rec({ cid: fc.constant('ADRParamSetupAns') }),
  DeviceTimeReq: rec({ cid: fc.constant('DeviceTimeReq') }),
  DeviceTimeAns: rec({
    cid: fc.constant('DeviceTimeAns'),
    gpsEpochSeconds: u(32),
    fractionalSecond: u(8),
  }),
  ForceRejoinReq: rec({
    cid: fc.constant('ForceRejoinReq'),
    period: u(3),
    maxRetries: u(3),
    rejoinType: u(3),
    dataRate: u(4),
  }),
  RejoinParamSetupReq: rec({
    cid: fc.constant('RejoinParamSetupReq'),
    maxTimeN: u(4),
    maxCountN: u(4),
  }),
  RejoinParamSetupAns: rec({ cid: fc.constant('RejoinParamSetupAns'), timeOk: fc.boolean() }),
  PingSlotInfoReq: rec({ cid: fc.constant('PingSlotInfoReq'), periodicity: u(3) }),
  PingSlotInfoAns: rec({ cid: fc.constant('PingSlotInfoAns') }),
  PingSlotChannelReq: rec({
    cid: fc.constant('PingSlotChannelReq'),
    frequencyHz,
    dataRate: u(4),
  }),
  PingSlotChannelAns: rec({
    cid: fc.constant('PingSlotChannelAns'),
    dataRateOk: fc.boolean(),
    channelFrequencyOk: fc.boolean(),
  }),
  BeaconTimingReq: rec({ cid: fc.constant('BeaconTimingReq') }),
  BeaconTimingAns: rec({ cid: fc.constant('BeaconTimingAns'), delay: u(16), channel: u(8) }),
  BeaconFreqReq: rec({ cid: fc.constant('BeaconFreqReq'), frequencyHz }),
  BeaconFreqAns: rec({ cid: fc.constant('BeaconFreqAns'), beaconFrequencyOk: fc.boolean() }),
  DeviceModeInd: rec({ cid: fc.constant('DeviceModeInd'), class: deviceClass }),
  DeviceModeConf: rec({ cid: fc.constant('DeviceModeConf'), class: deviceClass }),
};

function arbitraryOf(name: MacCommandName): fc.Arbitrary<MacCommand> {
  return ARBITRARIES[name] as fc.Arbitrary<MacCommand>;
}

function commandArbitrary(direction: MacDirection): fc.Arbitrary<MacCommand> {
  const names = direction === 'uplink' ? UPLINK_MAC_COMMAND_NAMES : DOWNLINK_MAC_COMMAND_NAMES;
  return fc.oneof(...names.map(arbitraryOf));
}

const directionArbitrary = fc.constantFrom<MacDirection>('uplink', 'downlink');

/** A direction and a valid stream of commands for it. */
const streamArbitrary = directionArbitrary.chain((direction) =>
  fc.record({
    direction: fc.constant(direction),
    commands: fc.array(commandArbitrary(direction), { maxLength: 12 }),
  }),
);

// ---------------------------------------------------------------------------------------------

describe('MAC command known answers', () => {
  for (const vector of KNOWN_ANSWERS) {
    const names = vector.commands.map((c) => c.cid).join(', ');
    it(`${vector.direction} ${names}: ${vector.hex} (${vector.how})`, () => {
      assert.deepEqual(decodeHex(vector.hex, vector.direction), vector.commands);
      assert.equal(hex(encodeMacCommands(vector.commands)), vector.hex.replaceAll(' ', ''));
    });
  }

  it('has a known answer for every command name', () => {
    const covered = new Set(KNOWN_ANSWERS.flatMap((v) => v.commands.map((c) => c.cid)));
    assert.deepEqual(
      MAC_COMMAND_NAMES.filter((name) => !covered.has(name)),
      [],
    );
  });

  it('decodes the FPort-0 payload of a brocaar/lorawan frame decrypted by lora-packet', () => {
    // Independent path: lora-packet parses the PHYPayload of the fixture and decrypts its
    // FRMPayload with NwkSKey; we only read the resulting MAC command bytes.
    const fixtures = JSON.parse(
      readFileSync(new URL('../fixtures/lorawan-vectors.json', import.meta.url), 'utf8'),
    ) as { vectors: { id: string; phy: string; nwkSKey: string }[] };
    const vector = fixtures.vectors.find((v) => v.id === 'brocaar-data-fport0');
    assert.ok(vector);
    const packet = loraPacket.fromWire(Buffer.from(vector.phy, 'hex'));
    assert.equal(packet.getFPort(), 0);
    const payload = loraPacket.decrypt(packet, undefined, Buffer.from(vector.nwkSKey, 'hex'));
    assert.equal(payload.toString('hex'), '020305');
    // 02: LinkCheckReq (no payload); 03 05: LinkADRAns with bits 2 and 0 set.
    assert.deepEqual(decodeMacCommands(payload, 'uplink'), [
      { cid: 'LinkCheckReq' },
      { cid: 'LinkADRAns', powerAck: true, dataRateAck: false, channelMaskAck: true },
    ]);
  });

  it('encodes FOpts that lora-packet carries through a frame unchanged', () => {
    const commands: MacCommand[] = [
      { cid: 'LinkADRAns', powerAck: true, dataRateAck: true, channelMaskAck: true },
      { cid: 'DevStatusAns', battery: 200, margin: -7 },
      { cid: 'DeviceTimeReq' },
    ];
    const fOpts = encodeMacCommands(commands);
    const built = loraPacket.fromFields(
      {
        MType: 'Unconfirmed Data Up',
        DevAddr: Buffer.from('01020304', 'hex'),
        FCnt: 1,
        FOpts: Buffer.from(fOpts),
        FPort: 1,
        payload: Buffer.from('00', 'hex'),
      },
      Buffer.alloc(16, 1),
      Buffer.alloc(16, 2),
    );
    const parsed = loraPacket.fromWire(built.getPHYPayload()!);
    assert.equal(parsed.FCtrl!.readUInt8(0) & 0x0f, fOpts.length);
    assert.deepEqual(decodeMacCommands(parsed.FOpts!, 'uplink'), commands);
  });
});

describe('MAC command streams', () => {
  it('decodes several LinkADRReq blocks and other commands in order', () => {
    // A US915-style channel mask sequence: channels 0-15 off with ChMaskCntl 7, then 8-15 on
    // with ChMaskCntl 0, then the final block with DR/power; then DevStatusReq, RXTimingSetupReq.
    const bytes = '03 50 00 00 70  03 50 00 ff 00  03 53 00 00 11  06  08 05  02 0a 02';
    const commands: MacCommand[] = [
      { cid: 'LinkADRReq', dataRate: 5, txPower: 0, chMask: 0x0000, chMaskCntl: 7, nbTrans: 0 },
      { cid: 'LinkADRReq', dataRate: 5, txPower: 0, chMask: 0xff00, chMaskCntl: 0, nbTrans: 0 },
      { cid: 'LinkADRReq', dataRate: 5, txPower: 3, chMask: 0x0000, chMaskCntl: 1, nbTrans: 1 },
      { cid: 'DevStatusReq' },
      { cid: 'RXTimingSetupReq', delaySeconds: 5 },
      { cid: 'LinkCheckAns', margin: 10, gatewayCount: 2 },
    ];
    assert.deepEqual(decodeHex(bytes, 'downlink'), commands);
    assert.equal(hex(encodeMacCommands(commands)), bytes.replaceAll(' ', ''));
  });

  it('decodes an uplink answer stream in order', () => {
    const bytes = '03 07 03 07 03 06 06 ff 3f 0d 02 20 02';
    assert.deepEqual(decodeHex(bytes, 'uplink'), [
      { cid: 'LinkADRAns', powerAck: true, dataRateAck: true, channelMaskAck: true },
      { cid: 'LinkADRAns', powerAck: true, dataRateAck: true, channelMaskAck: true },
      { cid: 'LinkADRAns', powerAck: true, dataRateAck: true, channelMaskAck: false },
      { cid: 'DevStatusAns', battery: 255, margin: -1 },
      { cid: 'DeviceTimeReq' },
      { cid: 'LinkCheckReq' },
      { cid: 'DeviceModeInd', class: 'C' },
    ]);
  });

  it('reads the same CID as a different command in each direction', () => {
    const bytes = hexToBytes('0d');
    assert.deepEqual(decodeMacCommands(bytes, 'uplink'), [{ cid: 'DeviceTimeReq' }]);
    expectLorawanError(() => decodeMacCommands(bytes, 'downlink'), 'MAC_COMMAND_TRUNCATED');
  });

  it('decodes an empty stream to no commands and encodes no commands to no bytes', () => {
    for (const direction of DIRECTIONS) {
      assert.deepEqual(decodeMacCommands(new Uint8Array(0), direction), []);
    }
    assert.equal(encodeMacCommands([]).length, 0);
  });

  it('reads from a subarray without looking outside it', () => {
    const frame = hexToBytes('ff0302ff');
    assert.deepEqual(decodeMacCommands(frame.subarray(1, 3), 'uplink'), [
      { cid: 'LinkADRAns', powerAck: false, dataRateAck: true, channelMaskAck: false },
    ]);
  });

  it('encodes one command with encodeMacCommand', () => {
    assert.equal(hex(encodeMacCommand({ cid: 'DutyCycleReq', maxDutyCycle: 15 })), '040f');
  });
});

describe('MAC command reserved bits and special values', () => {
  it('ignores RFU bits on decode', () => {
    const cases: [MacDirection, string, MacCommand][] = [
      ['uplink', '01 f1', { cid: 'ResetInd', minorVersion: 1 }],
      [
        'uplink',
        '03 f8',
        { cid: 'LinkADRAns', powerAck: false, dataRateAck: false, channelMaskAck: false },
      ],
      ['uplink', '06 10 c5', { cid: 'DevStatusAns', battery: 16, margin: 5 }],
      ['uplink', '06 10 ff', { cid: 'DevStatusAns', battery: 16, margin: -1 }],
      ['uplink', '0f fe', { cid: 'RejoinParamSetupAns', timeOk: false }],
      ['uplink', '10 f9', { cid: 'PingSlotInfoReq', periodicity: 1 }],
      [
        'downlink',
        '03 00 00 00 f0',
        { cid: 'LinkADRReq', dataRate: 0, txPower: 0, chMask: 0, chMaskCntl: 7, nbTrans: 0 },
      ],
      ['downlink', '04 f3', { cid: 'DutyCycleReq', maxDutyCycle: 3 }],
      [
        'downlink',
        '05 80 00 00 00',
        { cid: 'RXParamSetupReq', rx1DrOffset: 0, rx2DataRate: 0, frequencyHz: 0 },
      ],
      [
        'downlink',
        '09 c0',
        {
          cid: 'TxParamSetupReq',
          downlinkDwellTime: false,
          uplinkDwellTime: false,
          maxEirpIndex: 0,
        },
      ],
      [
        'downlink',
        '0e 80 c0',
        { cid: 'ForceRejoinReq', period: 0, maxRetries: 0, rejoinType: 0, dataRate: 0 },
      ],
      ['downlink', '11 00 00 00 f2', { cid: 'PingSlotChannelReq', frequencyHz: 0, dataRate: 2 }],
    ];
    for (const [direction, bytes, command] of cases) {
      assert.deepEqual(decodeHex(bytes, direction), [command], bytes);
    }
  });

  it('reads RXTimingSetupReq Del 0 as 1 second and writes 1 second as 1', () => {
    assert.deepEqual(decodeHex('08 00', 'downlink'), [
      { cid: 'RXTimingSetupReq', delaySeconds: 1 },
    ]);
    assert.deepEqual(decodeHex('08 f0', 'downlink'), [
      { cid: 'RXTimingSetupReq', delaySeconds: 1 },
    ]);
    assert.equal(hex(encodeMacCommand({ cid: 'RXTimingSetupReq', delaySeconds: 1 })), '0801');
  });

  it("reads every 6-bit DevStatusAns margin as a two's complement integer", () => {
    for (let raw = 0; raw < 64; raw++) {
      const [command] = decodeMacCommands(Uint8Array.of(0x06, 0, raw), 'uplink');
      assert.deepEqual(command, {
        cid: 'DevStatusAns',
        battery: 0,
        margin: raw < 32 ? raw : raw - 64,
      });
    }
  });

  it('refuses a DeviceModeInd or DeviceModeConf class other than A (0x00) or C (0x02)', () => {
    for (const value of [0x01, 0x03, 0xff]) {
      expectLorawanError(
        () => decodeMacCommands(Uint8Array.of(0x02, 0x20, value), 'uplink'),
        'INVALID_FIELD',
        /CID 0x20 \(DeviceModeInd\) in uplink at byte 1 has class 0x/,
      );
      expectLorawanError(
        () => decodeMacCommands(Uint8Array.of(0x20, value), 'downlink'),
        'INVALID_FIELD',
        /DeviceModeConf\) in downlink at byte 0/,
      );
    }
  });

  it('keeps the full 32-bit GPS time and 24-bit frequency range', () => {
    const commands: MacCommand[] = [
      { cid: 'DeviceTimeAns', gpsEpochSeconds: 0xffff_ffff, fractionalSecond: 255 },
      { cid: 'BeaconFreqReq', frequencyHz: 0xff_ffff * 100 },
    ];
    const bytes = encodeMacCommands(commands);
    assert.equal(hex(bytes), '0dffffffffff13ffffff');
    assert.deepEqual(decodeMacCommands(bytes, 'downlink'), commands);
  });
});

describe('MAC command decode errors', () => {
  it('stops at an unknown CID with UNKNOWN_MAC_COMMAND naming CID, direction and offset', () => {
    expectLorawanError(
      () => decodeHex('02 03 07 42 00', 'uplink'),
      'UNKNOWN_MAC_COMMAND',
      /^unknown MAC command CID 0x42 in uplink at byte 3: not defined by LoRaWAN/,
    );
    expectLorawanError(
      () => decodeHex('00', 'downlink'),
      'UNKNOWN_MAC_COMMAND',
      /^unknown MAC command CID 0x00 in downlink at byte 0/,
    );
  });

  it('refuses proprietary CIDs 0x80-0xFF, whose length is unknown', () => {
    for (let cid = 0x80; cid <= 0xff; cid++) {
      for (const direction of DIRECTIONS) {
        expectLorawanError(
          () =>
            decodeMacCommands(
              Uint8Array.of(MAC_COMMAND_CIDS[EMPTY_COMMAND[direction].cid], cid),
              direction,
            ),
          'UNKNOWN_MAC_COMMAND',
          /at byte 1: proprietary CID/,
        );
      }
    }
  });

  it('refuses a CID that exists only in the other direction', () => {
    expectLorawanError(
      () => decodeHex('0e 25 1c', 'uplink'),
      'UNKNOWN_MAC_COMMAND',
      /^unknown MAC command CID 0x0e in uplink at byte 0: only ForceRejoinReq uses this CID, and it travels downlink/,
    );
  });

  it('throws MAC_COMMAND_TRUNCATED for every cut inside every payload', () => {
    for (const name of MAC_COMMAND_NAMES) {
      const direction = macCommandDirection(name);
      const full = encodeMacCommand(fc.sample(arbitraryOf(name), { numRuns: 1, seed: 1 })[0]!);
      for (let cut = 1; cut < full.length; cut++) {
        const empty = EMPTY_COMMAND[direction];
        const stream = Uint8Array.of(
          ...encodeMacCommands([empty, empty]),
          ...full.subarray(0, cut),
        );
        const cid = `0x${full[0]!.toString(16).padStart(2, '0')}`;
        expectLorawanError(
          () => decodeMacCommands(stream, direction),
          'MAC_COMMAND_TRUNCATED',
          new RegExp(
            `^MAC command CID ${cid} \\(${name}\\) in ${direction} at byte 2 is truncated: its ` +
              `payload needs ${full.length - 1} bytes, ${cut - 1} left$`,
          ),
        );
      }
    }
  });
});

describe('MAC command encode validation', () => {
  const cases: [MacCommand, RegExp][] = [
    [
      { cid: 'LinkADRReq', dataRate: 5, txPower: 16, chMask: 7, chMaskCntl: 0, nbTrans: 1 },
      /^LinkADRReq\.txPower must be an integer from 0 to 15, got 16$/,
    ],
    [
      { cid: 'LinkADRReq', dataRate: -1, txPower: 0, chMask: 7, chMaskCntl: 0, nbTrans: 1 },
      /^LinkADRReq\.dataRate must be an integer from 0 to 15, got -1$/,
    ],
    [
      { cid: 'LinkADRReq', dataRate: 0, txPower: 0, chMask: 0x10000, chMaskCntl: 0, nbTrans: 1 },
      /^LinkADRReq\.chMask must be an integer from 0 to 65535, got 65536$/,
    ],
    [
      { cid: 'LinkADRReq', dataRate: 0, txPower: 0, chMask: 1, chMaskCntl: 8, nbTrans: 1 },
      /^LinkADRReq\.chMaskCntl must be an integer from 0 to 7/,
    ],
    [
      { cid: 'LinkADRReq', dataRate: 1.5, txPower: 0, chMask: 1, chMaskCntl: 0, nbTrans: 1 },
      /^LinkADRReq\.dataRate must be an integer/,
    ],
    [
      { cid: 'NewChannelReq', chIndex: 3, frequencyHz: 867_100_050, minDr: 0, maxDr: 5 },
      /^NewChannelReq\.frequencyHz must be a multiple of 100 Hz from 0 to 1677721500, got 867100050$/,
    ],
    [
      { cid: 'DlChannelReq', chIndex: 0, frequencyHz: 1_677_721_600 },
      /^DlChannelReq\.frequencyHz must be a multiple of 100 Hz/,
    ],
    [
      { cid: 'BeaconFreqReq', frequencyHz: -100 },
      /^BeaconFreqReq\.frequencyHz must be a multiple of 100 Hz/,
    ],
    [
      { cid: 'NewChannelReq', chIndex: 256, frequencyHz: 0, minDr: 0, maxDr: 0 },
      /^NewChannelReq\.chIndex must be an integer from 0 to 255, got 256$/,
    ],
    [
      { cid: 'DevStatusAns', battery: 0, margin: 32 },
      /^DevStatusAns\.margin must be an integer from -32 to 31, got 32$/,
    ],
    [
      { cid: 'DevStatusAns', battery: 0, margin: -33 },
      /^DevStatusAns\.margin must be an integer from -32 to 31, got -33$/,
    ],
    [
      { cid: 'RXTimingSetupReq', delaySeconds: 0 },
      /^RXTimingSetupReq\.delaySeconds must be an integer from 1 to 15, got 0$/,
    ],
    [
      { cid: 'RXTimingSetupReq', delaySeconds: 16 },
      /^RXTimingSetupReq\.delaySeconds must be an integer from 1 to 15, got 16$/,
    ],
    [
      { cid: 'ForceRejoinReq', period: 8, maxRetries: 0, rejoinType: 0, dataRate: 0 },
      /^ForceRejoinReq\.period must be an integer from 0 to 7, got 8$/,
    ],
    [
      { cid: 'DeviceTimeAns', gpsEpochSeconds: 2 ** 32, fractionalSecond: 0 },
      /^DeviceTimeAns\.gpsEpochSeconds must be an integer from 0 to 4294967295/,
    ],
    [{ cid: 'PingSlotInfoReq', periodicity: 8 }, /^PingSlotInfoReq\.periodicity must be/],
    [{ cid: 'ResetInd', minorVersion: 16 }, /^ResetInd\.minorVersion must be/],
    [
      { cid: 'DeviceModeInd', class: 'B' as 'A' },
      /^DeviceModeInd\.class must be 'A' or 'C', got B$/,
    ],
    [
      {
        cid: 'LinkADRAns',
        powerAck: 1 as unknown as boolean,
        dataRateAck: true,
        channelMaskAck: true,
      },
      /^LinkADRAns\.powerAck must be true or false, got 1$/,
    ],
  ];

  for (const [command, message] of cases) {
    it(`refuses ${JSON.stringify(command)}`, () => {
      expectLorawanError(() => encodeMacCommand(command), 'INVALID_FIELD', message);
      expectLorawanError(
        () => encodeMacCommands([{ cid: 'DevStatusReq' }, command]),
        'INVALID_FIELD',
        message,
      );
    });
  }

  it('refuses a command name it does not know', () => {
    expectLorawanError(
      () => encodeMacCommand({ cid: 'FooReq' } as unknown as MacCommand),
      'UNKNOWN_MAC_COMMAND',
      /^unknown MAC command name "FooReq"$/,
    );
    expectLorawanError(
      () => encodeMacCommand({ cid: 'toString' } as unknown as MacCommand),
      'UNKNOWN_MAC_COMMAND',
    );
  });
});

describe('MAC command tables', () => {
  it('gives the payload length of every CID in each direction as the spec tables do', () => {
    for (let cid = 0; cid < 256; cid++) {
      for (const direction of DIRECTIONS) {
        assert.equal(
          macCommandPayloadLength(cid, direction),
          SPEC_LENGTHS[cid]?.[direction],
          `CID 0x${cid.toString(16)} ${direction}`,
        );
      }
    }
    assert.equal(macCommandPayloadLength(-1, 'uplink'), undefined);
    assert.equal(macCommandPayloadLength(256, 'downlink'), undefined);
    assert.equal(macCommandPayloadLength(1.5, 'downlink'), undefined);
  });

  it('agrees with itself: CID, direction, name and encoded length of every command', () => {
    assert.equal(MAC_COMMAND_NAMES.length, 39);
    assert.equal(UPLINK_MAC_COMMAND_NAMES.length, 19);
    assert.equal(DOWNLINK_MAC_COMMAND_NAMES.length, 20);
    for (const name of MAC_COMMAND_NAMES) {
      const direction = macCommandDirection(name);
      const cid = MAC_COMMAND_CIDS[name];
      assert.equal(macCommandName(cid, direction), name);
      const [sample] = fc.sample(arbitraryOf(name), { numRuns: 1, seed: 7 });
      const bytes = encodeMacCommand(sample!);
      assert.equal(bytes[0], cid);
      assert.equal(bytes.length - 1, macCommandPayloadLength(cid, direction));
    }
  });

  it('sends device-initiated requests and indications uplink, network-initiated ones downlink', () => {
    for (const name of [
      'ResetInd',
      'LinkCheckReq',
      'RekeyInd',
      'DeviceTimeReq',
      'PingSlotInfoReq',
      'BeaconTimingReq',
      'DeviceModeInd',
      'RejoinParamSetupAns',
      'LinkADRAns',
    ] as const) {
      assert.equal(macCommandDirection(name), 'uplink', name);
    }
    for (const name of [
      'ResetConf',
      'LinkCheckAns',
      'LinkADRReq',
      'ForceRejoinReq',
      'RejoinParamSetupReq',
      'PingSlotInfoAns',
      'BeaconTimingAns',
      'DeviceModeConf',
    ] as const) {
      assert.equal(macCommandDirection(name), 'downlink', name);
    }
    assert.equal(MAC_COMMAND_CIDS.ForceRejoinReq, 0x0e);
    assert.equal(MAC_COMMAND_CIDS.DeviceModeInd, 0x20);
    assert.equal(macCommandName(0x0e, 'uplink'), undefined);
    assert.equal(macCommandName(0x80, 'downlink'), undefined);
  });
});

describe('MAC command properties', () => {
  it('round-trips every command with arbitrary valid fields', () => {
    for (const name of MAC_COMMAND_NAMES) {
      const direction = macCommandDirection(name);
      fc.assert(
        fc.property(arbitraryOf(name), (command) => {
          const bytes = encodeMacCommand(command);
          assert.deepEqual(decodeMacCommands(bytes, direction), [command]);
        }),
        { numRuns: 300 },
      );
    }
  });

  it('round-trips arbitrary lists of commands, and they survive JSON as they are', () => {
    fc.assert(
      fc.property(streamArbitrary, ({ direction, commands }) => {
        const decoded = decodeMacCommands(encodeMacCommands(commands), direction);
        assert.deepEqual(decoded, commands);
        assert.deepEqual(JSON.parse(JSON.stringify(decoded)), decoded);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('MAC command decoder robustness', () => {
  /** Decodes; anything but a LorawanError fails. A successful decode must re-encode stably. */
  function decodeOrTypedError(bytes: Uint8Array, direction: MacDirection): void {
    let commands: MacCommand[];
    try {
      commands = decodeMacCommands(bytes, direction);
    } catch (error) {
      if (isLorawanError(error)) return;
      throw error;
    }
    // Whatever decodes can be encoded again (RFU bits become 0) and reads back the same.
    const again = encodeMacCommands(commands);
    assert.ok(again.length === bytes.length);
    assert.deepEqual(decodeMacCommands(again, direction), commands);
  }

  it('throws only LorawanError for 100,000 random byte strings, in both directions', () => {
    let count = 0;
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 48 }), (bytes) => {
        decodeOrTypedError(bytes, 'uplink');
        decodeOrTypedError(bytes, 'downlink');
        count++;
      }),
      { numRuns: 100_000 },
    );
    assert.equal(count, 100_000);
  });

  it('throws only LorawanError for 40,000 mutations of valid streams, in both directions', () => {
    const mutation = fc.record({
      flips: fc.array(fc.record({ index: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }), {
        maxLength: 3,
      }),
      cut: fc.nat(),
      extra: fc.uint8Array({ maxLength: 4 }),
    });
    fc.assert(
      fc.property(streamArbitrary, mutation, ({ commands }, { flips, cut, extra }) => {
        const valid = encodeMacCommands(commands);
        const mutated = new Uint8Array(valid.length + extra.length);
        mutated.set(valid);
        mutated.set(extra, valid.length);
        for (const { index, value } of flips) {
          if (mutated.length > 0) mutated[index % mutated.length] = value;
        }
        const bytes = mutated.subarray(0, mutated.length - (cut % (mutated.length + 1)));
        decodeOrTypedError(bytes, 'uplink');
        decodeOrTypedError(bytes, 'downlink');
      }),
      { numRuns: 40_000 },
    );
  });
});
