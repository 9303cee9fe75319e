/**
 * MAC command codec for LoRaWAN 1.0.4 and 1.1 (§5 of both specs, plus the class B and class C
 * commands): a FOpts or FPort-0 byte stream <-> a list of typed commands.
 *
 * The same CID means a different command in each direction (0x03 is LinkADRReq going down and
 * LinkADRAns going up), and the payload length depends on both, so a stream can only be split
 * with the direction known. Every command has exactly one entry in `CODECS`; the compiler checks
 * that each name of the `MacCommand` union has one.
 *
 * Encoding validates what the wire can carry (bit widths, 100 Hz frequency steps); whether a
 * value makes sense for a region or a device (a data rate that exists, RFU rejoin types) is for
 * the MAC layer to decide. Reserved (RFU) bits are ignored on decode and written as 0.
 */
import {
  assertUint,
  readUint16LE,
  readUint24LE,
  readUint32LE,
  writeUint16LE,
  writeUint24LE,
  writeUint32LE,
} from './bytes.js';
import { LorawanError } from './errors.js';

export type MacDirection = 'uplink' | 'downlink';

/** The device classes DeviceModeInd/DeviceModeConf can name (0x00 class A, 0x02 class C). */
export type DeviceModeClass = 'A' | 'C';

// ---------------------------------------------------------------------------------------------
// Uplink commands: device-initiated Req/Ind and the answers to network-initiated Req.

/** LoRaWAN 1.1: the device's LoRaWAN minor version after an ABP reset. */
export interface ResetInd {
  cid: 'ResetInd';
  minorVersion: number;
}
export interface LinkCheckReq {
  cid: 'LinkCheckReq';
}
export interface LinkADRAns {
  cid: 'LinkADRAns';
  powerAck: boolean;
  dataRateAck: boolean;
  channelMaskAck: boolean;
}
export interface DutyCycleAns {
  cid: 'DutyCycleAns';
}
export interface RXParamSetupAns {
  cid: 'RXParamSetupAns';
  rx1DrOffsetAck: boolean;
  rx2DataRateAck: boolean;
  channelAck: boolean;
}
export interface DevStatusAns {
  cid: 'DevStatusAns';
  /** 0 external power, 1-254 battery level, 255 unable to measure. */
  battery: number;
  /** SNR of the DevStatusReq in dB, rounded, signed 6-bit: -32..31. */
  margin: number;
}
export interface NewChannelAns {
  cid: 'NewChannelAns';
  dataRateRangeOk: boolean;
  channelFrequencyOk: boolean;
}
export interface RXTimingSetupAns {
  cid: 'RXTimingSetupAns';
}
export interface TxParamSetupAns {
  cid: 'TxParamSetupAns';
}
export interface DlChannelAns {
  cid: 'DlChannelAns';
  uplinkFrequencyExists: boolean;
  channelFrequencyOk: boolean;
}
/** LoRaWAN 1.1: first uplink after a (re)join; the network confirms with RekeyConf. */
export interface RekeyInd {
  cid: 'RekeyInd';
  minorVersion: number;
}
export interface ADRParamSetupAns {
  cid: 'ADRParamSetupAns';
}
export interface DeviceTimeReq {
  cid: 'DeviceTimeReq';
}
export interface RejoinParamSetupAns {
  cid: 'RejoinParamSetupAns';
  /** False when the device cannot honour MaxTimeN (it then uses the count limit only). */
  timeOk: boolean;
}
export interface PingSlotInfoReq {
  cid: 'PingSlotInfoReq';
  /** Ping slot period is 2^periodicity seconds (0-7). */
  periodicity: number;
}
export interface PingSlotChannelAns {
  cid: 'PingSlotChannelAns';
  dataRateOk: boolean;
  channelFrequencyOk: boolean;
}
/** Deprecated since LoRaWAN 1.0.3 / class B 1.0; still decoded for old devices. */
export interface BeaconTimingReq {
  cid: 'BeaconTimingReq';
}
export interface BeaconFreqAns {
  cid: 'BeaconFreqAns';
  beaconFrequencyOk: boolean;
}
/** LoRaWAN 1.1 class C: the device switched class. */
export interface DeviceModeInd {
  cid: 'DeviceModeInd';
  class: DeviceModeClass;
}

// ---------------------------------------------------------------------------------------------
// Downlink commands: network-initiated Req and the answers to device-initiated Req/Ind.

export interface ResetConf {
  cid: 'ResetConf';
  minorVersion: number;
}
export interface LinkCheckAns {
  cid: 'LinkCheckAns';
  /** Demodulation margin in dB above the demodulation floor of the best gateway (255 RFU). */
  margin: number;
  gatewayCount: number;
}
export interface LinkADRReq {
  cid: 'LinkADRReq';
  dataRate: number;
  txPower: number;
  /** 16-bit channel mask, bit i = channel i of the block that chMaskCntl selects. */
  chMask: number;
  chMaskCntl: number;
  nbTrans: number;
}
export interface DutyCycleReq {
  cid: 'DutyCycleReq';
  /** Aggregated duty cycle limit is 1 / 2^maxDutyCycle; 0 means no limit beyond regulation. */
  maxDutyCycle: number;
}
export interface RXParamSetupReq {
  cid: 'RXParamSetupReq';
  rx1DrOffset: number;
  rx2DataRate: number;
  frequencyHz: number;
}
export interface DevStatusReq {
  cid: 'DevStatusReq';
}
export interface NewChannelReq {
  cid: 'NewChannelReq';
  chIndex: number;
  /** 0 disables the channel. */
  frequencyHz: number;
  minDr: number;
  maxDr: number;
}
export interface RXTimingSetupReq {
  cid: 'RXTimingSetupReq';
  /** RECEIVE_DELAY1 in seconds, 1-15 (0 on the wire also means 1). */
  delaySeconds: number;
}
export interface TxParamSetupReq {
  cid: 'TxParamSetupReq';
  /** True: 400 ms dwell time limit. */
  downlinkDwellTime: boolean;
  uplinkDwellTime: boolean;
  /** Index into the regional MaxEIRP table (8, 10, 12, 13, 14, 16, 18, 20, 21, 24, ... dBm). */
  maxEirpIndex: number;
}
export interface DlChannelReq {
  cid: 'DlChannelReq';
  chIndex: number;
  frequencyHz: number;
}
export interface RekeyConf {
  cid: 'RekeyConf';
  minorVersion: number;
}
export interface ADRParamSetupReq {
  cid: 'ADRParamSetupReq';
  /** ADR_ACK_LIMIT = 2^limitExp. */
  limitExp: number;
  /** ADR_ACK_DELAY = 2^delayExp. */
  delayExp: number;
}
export interface DeviceTimeAns {
  cid: 'DeviceTimeAns';
  /** Whole seconds since the GPS epoch (1980-01-06T00:00:00Z), modulo 2^32. */
  gpsEpochSeconds: number;
  /** Units of 1/256 s. */
  fractionalSecond: number;
}
/** LoRaWAN 1.1, downlink only: the device answers with a rejoin request, not a MAC command. */
export interface ForceRejoinReq {
  cid: 'ForceRejoinReq';
  /** Delay between retransmissions is 32 s × 2^period + random(0-32 s). */
  period: number;
  /** Retransmissions after the first rejoin request (0-7). */
  maxRetries: number;
  /** 0 or 1: rejoin type 0; 2: rejoin type 2; 3-7 RFU. */
  rejoinType: number;
  dataRate: number;
}
export interface RejoinParamSetupReq {
  cid: 'RejoinParamSetupReq';
  /** Periodic rejoin at least every 2^(maxTimeN + 10) seconds. */
  maxTimeN: number;
  /** Periodic rejoin at least every 2^(maxCountN + 4) uplinks. */
  maxCountN: number;
}
export interface PingSlotInfoAns {
  cid: 'PingSlotInfoAns';
}
export interface PingSlotChannelReq {
  cid: 'PingSlotChannelReq';
  /** 0 restores the region's default ping slot frequency (plan). */
  frequencyHz: number;
  dataRate: number;
}
/** Deprecated since LoRaWAN 1.0.3 / class B 1.0; still decoded for old networks. */
export interface BeaconTimingAns {
  cid: 'BeaconTimingAns';
  /** The next beacon starts between 30 ms × (delay + 1) and 30 ms × (delay + 2) after this frame. */
  delay: number;
  /** Beacon channel index. */
  channel: number;
}
export interface BeaconFreqReq {
  cid: 'BeaconFreqReq';
  /** 0 restores the region's default beacon frequency (plan). */
  frequencyHz: number;
}
export interface DeviceModeConf {
  cid: 'DeviceModeConf';
  class: DeviceModeClass;
}

export type UplinkMacCommand =
  | ResetInd
  | LinkCheckReq
  | LinkADRAns
  | DutyCycleAns
  | RXParamSetupAns
  | DevStatusAns
  | NewChannelAns
  | RXTimingSetupAns
  | TxParamSetupAns
  | DlChannelAns
  | RekeyInd
  | ADRParamSetupAns
  | DeviceTimeReq
  | RejoinParamSetupAns
  | PingSlotInfoReq
  | PingSlotChannelAns
  | BeaconTimingReq
  | BeaconFreqAns
  | DeviceModeInd;

export type DownlinkMacCommand =
  | ResetConf
  | LinkCheckAns
  | LinkADRReq
  | DutyCycleReq
  | RXParamSetupReq
  | DevStatusReq
  | NewChannelReq
  | RXTimingSetupReq
  | TxParamSetupReq
  | DlChannelReq
  | RekeyConf
  | ADRParamSetupReq
  | DeviceTimeAns
  | ForceRejoinReq
  | RejoinParamSetupReq
  | PingSlotInfoAns
  | PingSlotChannelReq
  | BeaconTimingAns
  | BeaconFreqReq
  | DeviceModeConf;

export type MacCommand = UplinkMacCommand | DownlinkMacCommand;
export type MacCommandName = MacCommand['cid'];
export type MacCommandOf<N extends MacCommandName> = Extract<MacCommand, { cid: N }>;

// ---------------------------------------------------------------------------------------------
// The table.

interface MacCommandCodec<C extends MacCommand> {
  readonly cid: number;
  readonly direction: C extends UplinkMacCommand ? 'uplink' : 'downlink';
  /** Payload length in bytes, not counting the CID byte. */
  readonly length: number;
  /** Reads the payload that starts at `at` (the CID byte is at `at - 1`); length is checked. */
  readonly decode: (bytes: Uint8Array, at: number) => C;
  /** Validates the fields and writes the payload at `at`. */
  readonly encode: (command: C, out: Uint8Array, at: number) => void;
}

type CodecTable = { readonly [N in MacCommandName]: MacCommandCodec<MacCommandOf<N>> };

const nothing = (): void => {};

const CODECS: CodecTable = {
  // 0x01, LoRaWAN 1.1. Dev/Serv LoRaWAN version: RFU 7:4, Minor 3:0.
  ResetInd: {
    cid: 0x01,
    direction: 'uplink',
    length: 1,
    decode: (b, at) => ({ cid: 'ResetInd', minorVersion: b[at]! & 0x0f }),
    encode: (c, out, at) => {
      assertUint(c.minorVersion, 4, 'ResetInd.minorVersion');
      out[at] = c.minorVersion;
    },
  },
  ResetConf: {
    cid: 0x01,
    direction: 'downlink',
    length: 1,
    decode: (b, at) => ({ cid: 'ResetConf', minorVersion: b[at]! & 0x0f }),
    encode: (c, out, at) => {
      assertUint(c.minorVersion, 4, 'ResetConf.minorVersion');
      out[at] = c.minorVersion;
    },
  },

  // 0x02
  LinkCheckReq: {
    cid: 0x02,
    direction: 'uplink',
    length: 0,
    decode: () => ({ cid: 'LinkCheckReq' }),
    encode: nothing,
  },
  LinkCheckAns: {
    cid: 0x02,
    direction: 'downlink',
    length: 2,
    decode: (b, at) => ({ cid: 'LinkCheckAns', margin: b[at]!, gatewayCount: b[at + 1]! }),
    encode: (c, out, at) => {
      assertUint(c.margin, 8, 'LinkCheckAns.margin');
      assertUint(c.gatewayCount, 8, 'LinkCheckAns.gatewayCount');
      out[at] = c.margin;
      out[at + 1] = c.gatewayCount;
    },
  },

  // 0x03. DataRate_TXPower | ChMask (16 bits LE) | Redundancy: RFU 7, ChMaskCntl 6:4, NbTrans 3:0.
  LinkADRReq: {
    cid: 0x03,
    direction: 'downlink',
    length: 4,
    decode: (b, at) => ({
      cid: 'LinkADRReq',
      dataRate: b[at]! >>> 4,
      txPower: b[at]! & 0x0f,
      chMask: readUint16LE(b, at + 1),
      chMaskCntl: (b[at + 3]! >>> 4) & 0x07,
      nbTrans: b[at + 3]! & 0x0f,
    }),
    encode: (c, out, at) => {
      assertUint(c.dataRate, 4, 'LinkADRReq.dataRate');
      assertUint(c.txPower, 4, 'LinkADRReq.txPower');
      assertUint(c.chMask, 16, 'LinkADRReq.chMask');
      assertUint(c.chMaskCntl, 3, 'LinkADRReq.chMaskCntl');
      assertUint(c.nbTrans, 4, 'LinkADRReq.nbTrans');
      out[at] = (c.dataRate << 4) | c.txPower;
      writeUint16LE(out, at + 1, c.chMask);
      out[at + 3] = (c.chMaskCntl << 4) | c.nbTrans;
    },
  },
  LinkADRAns: {
    cid: 0x03,
    direction: 'uplink',
    length: 1,
    decode: (b, at) => ({
      cid: 'LinkADRAns',
      powerAck: (b[at]! & 0x04) !== 0,
      dataRateAck: (b[at]! & 0x02) !== 0,
      channelMaskAck: (b[at]! & 0x01) !== 0,
    }),
    encode: (c, out, at) => {
      out[at] =
        bit(c.powerAck, 2, 'LinkADRAns.powerAck') |
        bit(c.dataRateAck, 1, 'LinkADRAns.dataRateAck') |
        bit(c.channelMaskAck, 0, 'LinkADRAns.channelMaskAck');
    },
  },

  // 0x04. DutyCyclePL: RFU 7:4, MaxDutyCycle 3:0.
  DutyCycleReq: {
    cid: 0x04,
    direction: 'downlink',
    length: 1,
    decode: (b, at) => ({ cid: 'DutyCycleReq', maxDutyCycle: b[at]! & 0x0f }),
    encode: (c, out, at) => {
      assertUint(c.maxDutyCycle, 4, 'DutyCycleReq.maxDutyCycle');
      out[at] = c.maxDutyCycle;
    },
  },
  DutyCycleAns: {
    cid: 0x04,
    direction: 'uplink',
    length: 0,
    decode: () => ({ cid: 'DutyCycleAns' }),
    encode: nothing,
  },

  // 0x05. DLsettings: RFU 7, RX1DROffset 6:4, RX2DataRate 3:0 | Frequency (24 bits LE).
  RXParamSetupReq: {
    cid: 0x05,
    direction: 'downlink',
    length: 4,
    decode: (b, at) => ({
      cid: 'RXParamSetupReq',
      rx1DrOffset: (b[at]! >>> 4) & 0x07,
      rx2DataRate: b[at]! & 0x0f,
      frequencyHz: readUint24LE(b, at + 1) * 100,
    }),
    encode: (c, out, at) => {
      assertUint(c.rx1DrOffset, 3, 'RXParamSetupReq.rx1DrOffset');
      assertUint(c.rx2DataRate, 4, 'RXParamSetupReq.rx2DataRate');
      const frequency = frequencyField(c.frequencyHz, 'RXParamSetupReq.frequencyHz');
      out[at] = (c.rx1DrOffset << 4) | c.rx2DataRate;
      writeUint24LE(out, at + 1, frequency);
    },
  },
  RXParamSetupAns: {
    cid: 0x05,
    direction: 'uplink',
    length: 1,
    decode: (b, at) => ({
      cid: 'RXParamSetupAns',
      rx1DrOffsetAck: (b[at]! & 0x04) !== 0,
      rx2DataRateAck: (b[at]! & 0x02) !== 0,
      channelAck: (b[at]! & 0x01) !== 0,
    }),
    encode: (c, out, at) => {
      out[at] =
        bit(c.rx1DrOffsetAck, 2, 'RXParamSetupAns.rx1DrOffsetAck') |
        bit(c.rx2DataRateAck, 1, 'RXParamSetupAns.rx2DataRateAck') |
        bit(c.channelAck, 0, 'RXParamSetupAns.channelAck');
    },
  },

  // 0x06
  DevStatusReq: {
    cid: 0x06,
    direction: 'downlink',
    length: 0,
    decode: () => ({ cid: 'DevStatusReq' }),
    encode: nothing,
  },
  // Battery | Radio status: RFU 7:6, Margin 5:0. LoRaWAN 1.1 §5.6: the margin is a signed 6-bit
  // integer (two's complement, as LoRaMac-node and brocaar/lorawan write it).
  DevStatusAns: {
    cid: 0x06,
    direction: 'uplink',
    length: 2,
    decode: (b, at) => ({
      cid: 'DevStatusAns',
      battery: b[at]!,
      margin: ((b[at + 1]! & 0x3f) ^ 0x20) - 0x20,
    }),
    encode: (c, out, at) => {
      assertUint(c.battery, 8, 'DevStatusAns.battery');
      if (!Number.isInteger(c.margin) || c.margin < -32 || c.margin > 31) {
        throw new LorawanError(
          'INVALID_FIELD',
          `DevStatusAns.margin must be an integer from -32 to 31, got ${c.margin}`,
        );
      }
      out[at] = c.battery;
      out[at + 1] = c.margin & 0x3f;
    },
  },

  // 0x07. ChIndex | Freq (24 bits LE) | DrRange: MaxDR 7:4, MinDR 3:0.
  NewChannelReq: {
    cid: 0x07,
    direction: 'downlink',
    length: 5,
    decode: (b, at) => ({
      cid: 'NewChannelReq',
      chIndex: b[at]!,
      frequencyHz: readUint24LE(b, at + 1) * 100,
      minDr: b[at + 4]! & 0x0f,
      maxDr: b[at + 4]! >>> 4,
    }),
    encode: (c, out, at) => {
      assertUint(c.chIndex, 8, 'NewChannelReq.chIndex');
      const frequency = frequencyField(c.frequencyHz, 'NewChannelReq.frequencyHz');
      assertUint(c.minDr, 4, 'NewChannelReq.minDr');
      assertUint(c.maxDr, 4, 'NewChannelReq.maxDr');
      out[at] = c.chIndex;
      writeUint24LE(out, at + 1, frequency);
      out[at + 4] = (c.maxDr << 4) | c.minDr;
    },
  },
  NewChannelAns: {
    cid: 0x07,
    direction: 'uplink',
    length: 1,
    decode: (b, at) => ({
      cid: 'NewChannelAns',
      dataRateRangeOk: (b[at]! & 0x02) !== 0,
      channelFrequencyOk: (b[at]! & 0x01) !== 0,
    }),
    encode: (c, out, at) => {
      out[at] =
        bit(c.dataRateRangeOk, 1, 'NewChannelAns.dataRateRangeOk') |
        bit(c.channelFrequencyOk, 0, 'NewChannelAns.channelFrequencyOk');
    },
  },

  // 0x08. Settings: RFU 7:4, Del 3:0; Del 0 means 1 s like Del 1.
  RXTimingSetupReq: {
    cid: 0x08,
    direction: 'downlink',
    length: 1,
    decode: (b, at) => ({ cid: 'RXTimingSetupReq', delaySeconds: b[at]! & 0x0f || 1 }),
    encode: (c, out, at) => {
      if (!Number.isInteger(c.delaySeconds) || c.delaySeconds < 1 || c.delaySeconds > 15) {
        throw new LorawanError(
          'INVALID_FIELD',
          `RXTimingSetupReq.delaySeconds must be an integer from 1 to 15, got ${c.delaySeconds}`,
        );
      }
      out[at] = c.delaySeconds;
    },
  },
  RXTimingSetupAns: {
    cid: 0x08,
    direction: 'uplink',
    length: 0,
    decode: () => ({ cid: 'RXTimingSetupAns' }),
    encode: nothing,
  },

  // 0x09. EIRP_DwellTime: RFU 7:6, DownlinkDwellTime 5, UplinkDwellTime 4, MaxEIRP 3:0.
  TxParamSetupReq: {
    cid: 0x09,
    direction: 'downlink',
    length: 1,
    decode: (b, at) => ({
      cid: 'TxParamSetupReq',
      downlinkDwellTime: (b[at]! & 0x20) !== 0,
      uplinkDwellTime: (b[at]! & 0x10) !== 0,
      maxEirpIndex: b[at]! & 0x0f,
    }),
    encode: (c, out, at) => {
      assertUint(c.maxEirpIndex, 4, 'TxParamSetupReq.maxEirpIndex');
      out[at] =
        bit(c.downlinkDwellTime, 5, 'TxParamSetupReq.downlinkDwellTime') |
        bit(c.uplinkDwellTime, 4, 'TxParamSetupReq.uplinkDwellTime') |
        c.maxEirpIndex;
    },
  },
  TxParamSetupAns: {
    cid: 0x09,
    direction: 'uplink',
    length: 0,
    decode: () => ({ cid: 'TxParamSetupAns' }),
    encode: nothing,
  },

  // 0x0A. ChIndex | Freq (24 bits LE).
  DlChannelReq: {
    cid: 0x0a,
    direction: 'downlink',
    length: 4,
    decode: (b, at) => ({
      cid: 'DlChannelReq',
      chIndex: b[at]!,
      frequencyHz: readUint24LE(b, at + 1) * 100,
    }),
    encode: (c, out, at) => {
      assertUint(c.chIndex, 8, 'DlChannelReq.chIndex');
      const frequency = frequencyField(c.frequencyHz, 'DlChannelReq.frequencyHz');
      out[at] = c.chIndex;
      writeUint24LE(out, at + 1, frequency);
    },
  },
  DlChannelAns: {
    cid: 0x0a,
    direction: 'uplink',
    length: 1,
    decode: (b, at) => ({
      cid: 'DlChannelAns',
      uplinkFrequencyExists: (b[at]! & 0x02) !== 0,
      channelFrequencyOk: (b[at]! & 0x01) !== 0,
    }),
    encode: (c, out, at) => {
      out[at] =
        bit(c.uplinkFrequencyExists, 1, 'DlChannelAns.uplinkFrequencyExists') |
        bit(c.channelFrequencyOk, 0, 'DlChannelAns.channelFrequencyOk');
    },
  },

  // 0x0B, LoRaWAN 1.1. Dev/Serv LoRaWAN version: RFU 7:4, Minor 3:0.
  RekeyInd: {
    cid: 0x0b,
    direction: 'uplink',
    length: 1,
    decode: (b, at) => ({ cid: 'RekeyInd', minorVersion: b[at]! & 0x0f }),
    encode: (c, out, at) => {
      assertUint(c.minorVersion, 4, 'RekeyInd.minorVersion');
      out[at] = c.minorVersion;
    },
  },
  RekeyConf: {
    cid: 0x0b,
    direction: 'downlink',
    length: 1,
    decode: (b, at) => ({ cid: 'RekeyConf', minorVersion: b[at]! & 0x0f }),
    encode: (c, out, at) => {
      assertUint(c.minorVersion, 4, 'RekeyConf.minorVersion');
      out[at] = c.minorVersion;
    },
  },

  // 0x0C, LoRaWAN 1.1. ADRparam: Limit_exp 7:4, Delay_exp 3:0.
  ADRParamSetupReq: {
    cid: 0x0c,
    direction: 'downlink',
    length: 1,
    decode: (b, at) => ({
      cid: 'ADRParamSetupReq',
      limitExp: b[at]! >>> 4,
      delayExp: b[at]! & 0x0f,
    }),
    encode: (c, out, at) => {
      assertUint(c.limitExp, 4, 'ADRParamSetupReq.limitExp');
      assertUint(c.delayExp, 4, 'ADRParamSetupReq.delayExp');
      out[at] = (c.limitExp << 4) | c.delayExp;
    },
  },
  ADRParamSetupAns: {
    cid: 0x0c,
    direction: 'uplink',
    length: 0,
    decode: () => ({ cid: 'ADRParamSetupAns' }),
    encode: nothing,
  },

  // 0x0D. Seconds since the GPS epoch (32 bits LE) | fractional second in 1/256 s.
  DeviceTimeReq: {
    cid: 0x0d,
    direction: 'uplink',
    length: 0,
    decode: () => ({ cid: 'DeviceTimeReq' }),
    encode: nothing,
  },
  DeviceTimeAns: {
    cid: 0x0d,
    direction: 'downlink',
    length: 5,
    decode: (b, at) => ({
      cid: 'DeviceTimeAns',
      gpsEpochSeconds: readUint32LE(b, at),
      fractionalSecond: b[at + 4]!,
    }),
    encode: (c, out, at) => {
      assertUint(c.gpsEpochSeconds, 32, 'DeviceTimeAns.gpsEpochSeconds');
      assertUint(c.fractionalSecond, 8, 'DeviceTimeAns.fractionalSecond');
      writeUint32LE(out, at, c.gpsEpochSeconds);
      out[at + 4] = c.fractionalSecond;
    },
  },

  // 0x0E, LoRaWAN 1.1 §5.13, downlink only. One 16-bit field, little-endian like every
  // multi-octet field: bits 15:14 RFU, 13:11 Period, 10:8 Max_Retries, 7 RFU, 6:4 RejoinType,
  // 3:0 DR; so the first byte carries RejoinType and DR. brocaar/lorawan and ChirpStack agree;
  // LoRaMac-node and The Things Stack put Period and Max_Retries in the first byte instead.
  ForceRejoinReq: {
    cid: 0x0e,
    direction: 'downlink',
    length: 2,
    decode: (b, at) => ({
      cid: 'ForceRejoinReq',
      period: (b[at + 1]! >>> 3) & 0x07,
      maxRetries: b[at + 1]! & 0x07,
      rejoinType: (b[at]! >>> 4) & 0x07,
      dataRate: b[at]! & 0x0f,
    }),
    encode: (c, out, at) => {
      assertUint(c.period, 3, 'ForceRejoinReq.period');
      assertUint(c.maxRetries, 3, 'ForceRejoinReq.maxRetries');
      assertUint(c.rejoinType, 3, 'ForceRejoinReq.rejoinType');
      assertUint(c.dataRate, 4, 'ForceRejoinReq.dataRate');
      out[at] = (c.rejoinType << 4) | c.dataRate;
      out[at + 1] = (c.period << 3) | c.maxRetries;
    },
  },

  // 0x0F, LoRaWAN 1.1. Req: MaxTimeN 7:4, MaxCountN 3:0. Ans: RFU 7:1, TimeOK 0.
  RejoinParamSetupReq: {
    cid: 0x0f,
    direction: 'downlink',
    length: 1,
    decode: (b, at) => ({
      cid: 'RejoinParamSetupReq',
      maxTimeN: b[at]! >>> 4,
      maxCountN: b[at]! & 0x0f,
    }),
    encode: (c, out, at) => {
      assertUint(c.maxTimeN, 4, 'RejoinParamSetupReq.maxTimeN');
      assertUint(c.maxCountN, 4, 'RejoinParamSetupReq.maxCountN');
      out[at] = (c.maxTimeN << 4) | c.maxCountN;
    },
  },
  RejoinParamSetupAns: {
    cid: 0x0f,
    direction: 'uplink',
    length: 1,
    decode: (b, at) => ({ cid: 'RejoinParamSetupAns', timeOk: (b[at]! & 0x01) !== 0 }),
    encode: (c, out, at) => {
      out[at] = bit(c.timeOk, 0, 'RejoinParamSetupAns.timeOk');
    },
  },

  // 0x10, class B. PingSlotParam: RFU 7:3, Periodicity 2:0.
  PingSlotInfoReq: {
    cid: 0x10,
    direction: 'uplink',
    length: 1,
    decode: (b, at) => ({ cid: 'PingSlotInfoReq', periodicity: b[at]! & 0x07 }),
    encode: (c, out, at) => {
      assertUint(c.periodicity, 3, 'PingSlotInfoReq.periodicity');
      out[at] = c.periodicity;
    },
  },
  PingSlotInfoAns: {
    cid: 0x10,
    direction: 'downlink',
    length: 0,
    decode: () => ({ cid: 'PingSlotInfoAns' }),
    encode: nothing,
  },

  // 0x11, class B. Frequency (24 bits LE) | DR: RFU 7:4, DataRate 3:0.
  PingSlotChannelReq: {
    cid: 0x11,
    direction: 'downlink',
    length: 4,
    decode: (b, at) => ({
      cid: 'PingSlotChannelReq',
      frequencyHz: readUint24LE(b, at) * 100,
      dataRate: b[at + 3]! & 0x0f,
    }),
    encode: (c, out, at) => {
      const frequency = frequencyField(c.frequencyHz, 'PingSlotChannelReq.frequencyHz');
      assertUint(c.dataRate, 4, 'PingSlotChannelReq.dataRate');
      writeUint24LE(out, at, frequency);
      out[at + 3] = c.dataRate;
    },
  },
  PingSlotChannelAns: {
    cid: 0x11,
    direction: 'uplink',
    length: 1,
    decode: (b, at) => ({
      cid: 'PingSlotChannelAns',
      dataRateOk: (b[at]! & 0x02) !== 0,
      channelFrequencyOk: (b[at]! & 0x01) !== 0,
    }),
    encode: (c, out, at) => {
      out[at] =
        bit(c.dataRateOk, 1, 'PingSlotChannelAns.dataRateOk') |
        bit(c.channelFrequencyOk, 0, 'PingSlotChannelAns.channelFrequencyOk');
    },
  },

  // 0x12, class B, deprecated. Ans: Delay (16 bits LE, 30 ms steps) | Channel.
  BeaconTimingReq: {
    cid: 0x12,
    direction: 'uplink',
    length: 0,
    decode: () => ({ cid: 'BeaconTimingReq' }),
    encode: nothing,
  },
  BeaconTimingAns: {
    cid: 0x12,
    direction: 'downlink',
    length: 3,
    decode: (b, at) => ({
      cid: 'BeaconTimingAns',
      delay: readUint16LE(b, at),
      channel: b[at + 2]!,
    }),
    encode: (c, out, at) => {
      assertUint(c.delay, 16, 'BeaconTimingAns.delay');
      assertUint(c.channel, 8, 'BeaconTimingAns.channel');
      writeUint16LE(out, at, c.delay);
      out[at + 2] = c.channel;
    },
  },

  // 0x13, class B. Req: Frequency (24 bits LE). Ans: RFU 7:1, Beacon frequency ok 0.
  BeaconFreqReq: {
    cid: 0x13,
    direction: 'downlink',
    length: 3,
    decode: (b, at) => ({ cid: 'BeaconFreqReq', frequencyHz: readUint24LE(b, at) * 100 }),
    encode: (c, out, at) => {
      writeUint24LE(out, at, frequencyField(c.frequencyHz, 'BeaconFreqReq.frequencyHz'));
    },
  },
  BeaconFreqAns: {
    cid: 0x13,
    direction: 'uplink',
    length: 1,
    decode: (b, at) => ({ cid: 'BeaconFreqAns', beaconFrequencyOk: (b[at]! & 0x01) !== 0 }),
    encode: (c, out, at) => {
      out[at] = bit(c.beaconFrequencyOk, 0, 'BeaconFreqAns.beaconFrequencyOk');
    },
  },

  // 0x20, LoRaWAN 1.1 class C. Class: 0x00 class A, 0x01 RFU, 0x02 class C, others RFU.
  DeviceModeInd: {
    cid: 0x20,
    direction: 'uplink',
    length: 1,
    decode: (b, at) => ({
      cid: 'DeviceModeInd',
      class: deviceModeClass(b[at]!, 'DeviceModeInd', 'uplink', at - 1),
    }),
    encode: (c, out, at) => {
      out[at] = deviceModeClassByte(c.class, 'DeviceModeInd');
    },
  },
  DeviceModeConf: {
    cid: 0x20,
    direction: 'downlink',
    length: 1,
    decode: (b, at) => ({
      cid: 'DeviceModeConf',
      class: deviceModeClass(b[at]!, 'DeviceModeConf', 'downlink', at - 1),
    }),
    encode: (c, out, at) => {
      out[at] = deviceModeClassByte(c.class, 'DeviceModeConf');
    },
  },
};

// ---------------------------------------------------------------------------------------------
// Field helpers.

function bit(value: boolean, position: number, what: string): number {
  if (typeof value !== 'boolean') {
    throw new LorawanError('INVALID_FIELD', `${what} must be true or false, got ${String(value)}`);
  }
  return value ? 1 << position : 0;
}

const MAX_FREQUENCY_HZ = 0xffffff * 100;

/** Frequencies travel as 24-bit counts of 100 Hz. */
function frequencyField(frequencyHz: number, what: string): number {
  if (
    !Number.isInteger(frequencyHz) ||
    frequencyHz < 0 ||
    frequencyHz > MAX_FREQUENCY_HZ ||
    frequencyHz % 100 !== 0
  ) {
    throw new LorawanError(
      'INVALID_FIELD',
      `${what} must be a multiple of 100 Hz from 0 to ${MAX_FREQUENCY_HZ}, got ${frequencyHz}`,
    );
  }
  return frequencyHz / 100;
}

function deviceModeClass(
  value: number,
  name: 'DeviceModeInd' | 'DeviceModeConf',
  direction: MacDirection,
  offset: number,
): DeviceModeClass {
  if (value === 0x00) return 'A';
  if (value === 0x02) return 'C';
  throw new LorawanError(
    'INVALID_FIELD',
    `MAC command CID 0x20 (${name}) in ${direction} at byte ${offset} has class ${hexByte(value)}: ` +
      'only 0x00 (class A) and 0x02 (class C) are defined',
  );
}

function deviceModeClassByte(value: DeviceModeClass, name: string): number {
  if (value === 'A') return 0x00;
  if (value === 'C') return 0x02;
  throw new LorawanError('INVALID_FIELD', `${name}.class must be 'A' or 'C', got ${String(value)}`);
}

function hexByte(value: number): string {
  return `0x${value.toString(16).padStart(2, '0')}`;
}

// ---------------------------------------------------------------------------------------------
// Lookups derived from the table.

type AnyCodec = MacCommandCodec<MacCommand>;

/** Every command name, uplink and downlink. */
export const MAC_COMMAND_NAMES: readonly MacCommandName[] = Object.keys(CODECS) as MacCommandName[];

const UPLINK_CODECS: (AnyCodec | undefined)[] = new Array(256).fill(undefined);
const DOWNLINK_CODECS: (AnyCodec | undefined)[] = new Array(256).fill(undefined);
const NAME_BY_CODEC = new Map<AnyCodec, MacCommandName>();
const cids: Partial<Record<MacCommandName, number>> = {};
const directions: Partial<Record<MacCommandName, MacDirection>> = {};
for (const name of MAC_COMMAND_NAMES) {
  const codec = CODECS[name] as AnyCodec;
  (codec.direction === 'uplink' ? UPLINK_CODECS : DOWNLINK_CODECS)[codec.cid] = codec;
  NAME_BY_CODEC.set(codec, name);
  cids[name] = codec.cid;
  directions[name] = codec.direction;
}

/** The numeric CID of each command name (a Req and its Ans share one). */
export const MAC_COMMAND_CIDS: Readonly<Record<MacCommandName, number>> = Object.freeze(
  cids as Record<MacCommandName, number>,
);

export const UPLINK_MAC_COMMAND_NAMES: readonly UplinkMacCommand['cid'][] =
  MAC_COMMAND_NAMES.filter((name) => directions[name] === 'uplink') as UplinkMacCommand['cid'][];

export const DOWNLINK_MAC_COMMAND_NAMES: readonly DownlinkMacCommand['cid'][] =
  MAC_COMMAND_NAMES.filter(
    (name) => directions[name] === 'downlink',
  ) as DownlinkMacCommand['cid'][];

/** The direction a command travels in: uplink for device-sent commands, downlink otherwise. */
export function macCommandDirection(name: MacCommandName): MacDirection {
  const direction = Object.hasOwn(directions, name) ? directions[name] : undefined;
  if (direction === undefined) throw unknownName(name);
  return direction;
}

/** The command a CID stands for in a direction, or undefined if LoRaWAN defines none. */
export function macCommandName(cid: number, direction: MacDirection): MacCommandName | undefined {
  const codec = codecTable(direction)[cid];
  return codec === undefined ? undefined : nameOf(codec);
}

/**
 * Payload length in bytes (not counting the CID byte) of the command with this CID in this
 * direction, or undefined if LoRaWAN defines no such command (including proprietary 0x80-0xFF).
 */
export function macCommandPayloadLength(cid: number, direction: MacDirection): number | undefined {
  return codecTable(direction)[cid]?.length;
}

function nameOf(codec: AnyCodec): MacCommandName {
  return NAME_BY_CODEC.get(codec)!;
}

function codecTable(direction: MacDirection): readonly (AnyCodec | undefined)[] {
  return direction === 'uplink' ? UPLINK_CODECS : DOWNLINK_CODECS;
}

// ---------------------------------------------------------------------------------------------
// Stream codec.

/**
 * Decodes a FOpts field or an FPort-0 FRMPayload (both already decrypted) into its commands,
 * in order. Throws LorawanError UNKNOWN_MAC_COMMAND at the first CID without a defined length
 * in this direction (nothing after it can be delimited), MAC_COMMAND_TRUNCATED when a payload
 * runs past the end, INVALID_FIELD for a DeviceModeInd/Conf class that is not A or C.
 */
export function decodeMacCommands(bytes: Uint8Array, direction: MacDirection): MacCommand[] {
  const table = direction === 'uplink' ? UPLINK_CODECS : DOWNLINK_CODECS;
  const commands: MacCommand[] = [];
  const end = bytes.length;
  let offset = 0;
  while (offset < end) {
    const cid = bytes[offset]!;
    const codec = table[cid];
    if (codec === undefined) throw unknownCid(cid, direction, offset);
    const next = offset + 1 + codec.length;
    if (next > end) {
      throw new LorawanError(
        'MAC_COMMAND_TRUNCATED',
        `MAC command CID ${hexByte(cid)} (${nameOf(codec)}) in ${direction} at byte ${offset} ` +
          `is truncated: its payload needs ${codec.length} bytes, ${end - offset - 1} left`,
      );
    }
    commands.push(codec.decode(bytes, offset + 1));
    offset = next;
  }
  return commands;
}

/** Encodes one command, CID byte first. */
export function encodeMacCommand(command: MacCommand): Uint8Array {
  return encodeMacCommands([command]);
}

/**
 * Encodes commands back to back, each CID byte followed by its payload. The direction of each
 * follows from its name; mixing directions in one list is the caller's mistake, not checked.
 */
export function encodeMacCommands(commands: readonly MacCommand[]): Uint8Array {
  let length = 0;
  for (const command of commands) length += 1 + codecOf(command).length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const command of commands) {
    const codec = codecOf(command);
    out[offset] = codec.cid;
    codec.encode(command, out, offset + 1);
    offset += 1 + codec.length;
  }
  return out;
}

function codecOf(command: MacCommand): AnyCodec {
  const name = command.cid;
  if (!Object.hasOwn(CODECS, name)) throw unknownName(name);
  // The table pairs each name with the codec of that very command type.
  return CODECS[name] as AnyCodec;
}

function unknownName(name: unknown): LorawanError {
  return new LorawanError(
    'UNKNOWN_MAC_COMMAND',
    `unknown MAC command name ${JSON.stringify(name)}`,
  );
}

function unknownCid(cid: number, direction: MacDirection, offset: number): LorawanError {
  const where = `unknown MAC command CID ${hexByte(cid)} in ${direction} at byte ${offset}`;
  let reason: string;
  if (cid >= 0x80) {
    reason = 'proprietary CID (0x80-0xff) of unknown length';
  } else {
    const other = codecTable(direction === 'uplink' ? 'downlink' : 'uplink')[cid];
    reason =
      other === undefined
        ? 'not defined by LoRaWAN 1.0.4 or 1.1'
        : `only ${nameOf(other)} uses this CID, and it travels ${other.direction}`;
  }
  return new LorawanError(
    'UNKNOWN_MAC_COMMAND',
    `${where}: ${reason}; the rest of the stream cannot be delimited`,
  );
}
