import type {
  GatewayDownlink,
  GatewayLocation,
  GatewayStats,
  GatewayUplink,
  Modulation,
  TxAckStatus,
} from '../types.js';
import { SemtechUdpError } from './errors.js';
import type { Rxpk, Stat, Txpk, TxpkAck } from './json-objects.js';

/**
 * Semtech JSON objects <-> Galet's normalised gateway types. Frequencies become integer Hz,
 * data rates a Modulation, coding rates ChirpStack's names ('4/5' <-> 'CR_4_5').
 */

/** MHz as the forwarder writes it (6 decimals) to integer Hz: 868.1 -> 868100000, not ...99. */
export function megahertzToHz(megahertz: number): number {
  return Math.round(megahertz * 1e6);
}

/**
 * Integer Hz to MHz. Hz / 1e6 is the double nearest to the exact decimal, so JSON.stringify
 * writes at most 6 decimals and the forwarder reads the frequency back to the Hz.
 */
export function hzToMegahertz(frequencyHz: number): number {
  return frequencyHz / 1e6;
}

const LORA_DATR = /^SF(\d{1,2})BW(\d{1,4}(?:\.\d{1,3})?)$/;
const CODR = /^(\d)\/(\d)(LI)?$/;
const CODE_RATE = /^CR_(\d)_(\d)(_LI)?$/;

function codeRateFromCodr(codr: string | undefined): string {
  const match = CODR.exec(codr ?? '');
  if (match === null) {
    throw new SemtechUdpError(
      'INVALID_FIELD',
      `codr ${JSON.stringify(codr)} is not a coding rate such as "4/5"`,
    );
  }
  return `CR_${match[1]}_${match[2]}${match[3] === undefined ? '' : '_LI'}`;
}

function codrFromCodeRate(codeRate: string): string {
  const match = CODE_RATE.exec(codeRate);
  if (match === null) {
    throw new SemtechUdpError(
      'INVALID_FIELD',
      `code rate ${JSON.stringify(codeRate)} is not a name such as "CR_4_5"`,
    );
  }
  return `${match[1]}/${match[2]}${match[3] === undefined ? '' : 'LI'}`;
}

/** The modulation an rxpk or txpk names (validated by json-objects.ts). */
export function modulationOf(frame: Pick<Rxpk, 'modu' | 'datr' | 'codr'>): Modulation {
  if (frame.modu === 'FSK') {
    if (typeof frame.datr !== 'number') {
      throw new SemtechUdpError('INVALID_FIELD', 'an FSK datr must be a bit rate (a number)');
    }
    return { fsk: { datarate: frame.datr } };
  }
  const match = typeof frame.datr === 'string' ? LORA_DATR.exec(frame.datr) : null;
  if (match === null) {
    throw new SemtechUdpError(
      'INVALID_FIELD',
      `datr ${JSON.stringify(frame.datr)} is not a LoRa data rate such as "SF7BW125"`,
    );
  }
  return {
    lora: {
      spreadingFactor: Number(match[1]),
      bandwidthHz: Math.round(Number(match[2]) * 1000),
      codeRate: codeRateFromCodr(frame.codr),
    },
  };
}

function datrOf(modulation: Modulation): {
  modu: 'LORA' | 'FSK';
  datr: string | number;
  codr?: string;
} {
  if ('lora' in modulation) {
    const { spreadingFactor, bandwidthHz, codeRate } = modulation.lora;
    if (!Number.isInteger(spreadingFactor) || spreadingFactor < 5 || spreadingFactor > 12) {
      throw new SemtechUdpError('INVALID_FIELD', `spreading factor ${spreadingFactor} is not 5-12`);
    }
    if (!(bandwidthHz > 0 && bandwidthHz < 10_000_000)) {
      throw new SemtechUdpError('INVALID_FIELD', `bandwidth ${bandwidthHz} Hz is not valid`);
    }
    return {
      modu: 'LORA',
      datr: `SF${spreadingFactor}BW${bandwidthHz / 1000}`,
      codr: codrFromCodeRate(codeRate),
    };
  }
  const { datarate } = modulation.fsk;
  if (!Number.isInteger(datarate) || datarate <= 0) {
    throw new SemtechUdpError('INVALID_FIELD', `FSK bit rate ${datarate} is not valid`);
  }
  return { modu: 'FSK', datr: datarate };
}

function crcStatusOf(stat: Rxpk['stat']): GatewayUplink['rxInfo']['crcStatus'] {
  return stat === 1 ? 'ok' : stat === -1 ? 'bad' : 'none';
}

export interface RxpkContext {
  gatewayId: string;
  uplinkId: number;
  receivedAtMs: number;
  /** The gateway's position, when its stat gave one. */
  location?: GatewayLocation;
}

/** One received frame as the network server sees it. */
export function rxpkToUplink(rxpk: Rxpk, context: RxpkContext): GatewayUplink {
  const uplink: GatewayUplink = {
    phyPayload: new Uint8Array(Buffer.from(rxpk.data, 'base64')),
    txInfo: { frequencyHz: megahertzToHz(rxpk.freq), modulation: modulationOf(rxpk) },
    rxInfo: {
      gatewayId: context.gatewayId,
      uplinkId: context.uplinkId,
      timestampUs: rxpk.tmst,
      rssi: rxpk.rssi,
      // FSK frames have no SNR; 0 keeps the field numeric as ChirpStack does.
      snr: rxpk.lsnr ?? 0,
      channel: rxpk.chan,
      rfChain: rxpk.rfch,
      crcStatus: crcStatusOf(rxpk.stat),
      receivedAtMs: context.receivedAtMs,
    },
  };
  if (rxpk.time !== undefined && Number.isFinite(Date.parse(rxpk.time))) {
    uplink.rxInfo.gwTime = rxpk.time;
  }
  if (rxpk.tmms !== undefined) uplink.rxInfo.timeSinceGpsEpochMs = rxpk.tmms;
  if (context.location !== undefined) uplink.rxInfo.location = context.location;
  return uplink;
}

/** The rxpk a gateway would send for this reception (the simulator's direction). */
export function uplinkToRxpk(uplink: GatewayUplink): Rxpk {
  const { rxInfo, txInfo } = uplink;
  const rxpk: Rxpk = {
    tmst: rxInfo.timestampUs >>> 0,
    freq: hzToMegahertz(txInfo.frequencyHz),
    chan: rxInfo.channel,
    rfch: rxInfo.rfChain,
    stat: rxInfo.crcStatus === 'ok' ? 1 : rxInfo.crcStatus === 'bad' ? -1 : 0,
    ...datrOf(txInfo.modulation),
    rssi: rxInfo.rssi,
    size: uplink.phyPayload.length,
    data: Buffer.from(uplink.phyPayload).toString('base64'),
  };
  if ('lora' in txInfo.modulation) rxpk.lsnr = rxInfo.snr;
  if (rxInfo.gwTime !== undefined) rxpk.time = rxInfo.gwTime;
  if (rxInfo.timeSinceGpsEpochMs !== undefined) rxpk.tmms = rxInfo.timeSinceGpsEpochMs;
  return rxpk;
}

const MAX_PHY_PAYLOAD_SIZE = 255;

/**
 * The txpk for a downlink. LoRa downlinks to devices use inverted polarity (unless the
 * modulation says otherwise) and no CRC (LoRaWAN §3.3: downlinks carry no payload CRC).
 */
export function downlinkToTxpk(downlink: GatewayDownlink): Txpk {
  const size = downlink.phyPayload.length;
  if (size === 0 || size > MAX_PHY_PAYLOAD_SIZE) {
    throw new SemtechUdpError(
      'INVALID_FIELD',
      `a downlink PHYPayload is 1 to 255 bytes, got ${size}`,
    );
  }
  if (!Number.isInteger(downlink.frequencyHz) || downlink.frequencyHz <= 0) {
    throw new SemtechUdpError('INVALID_FIELD', `frequency ${downlink.frequencyHz} Hz is not valid`);
  }
  if (!Number.isFinite(downlink.powerDbm)) {
    throw new SemtechUdpError('INVALID_FIELD', `power ${downlink.powerDbm} dBm is not valid`);
  }
  const txpk: Txpk = {
    freq: hzToMegahertz(downlink.frequencyHz),
    rfch: downlink.rfChain ?? 0,
    powe: Math.round(downlink.powerDbm),
    ...datrOf(downlink.modulation),
    size,
    data: Buffer.from(downlink.phyPayload).toString('base64'),
  };
  if (downlink.timing.kind === 'immediately') {
    txpk.imme = true;
  } else {
    const { timestampUs } = downlink.timing;
    if (!Number.isInteger(timestampUs)) {
      throw new SemtechUdpError('INVALID_FIELD', `timestamp ${timestampUs} µs is not an integer`);
    }
    txpk.tmst = timestampUs >>> 0;
  }
  const { modulation } = downlink;
  if ('lora' in modulation) {
    txpk.ipol = modulation.lora.polarizationInversion ?? true;
    txpk.ncrc = true;
  } else {
    // The forwarder needs a deviation for FSK; LoRaWAN's 50 kbps uses 25 kHz (RP002).
    txpk.fdev = modulation.fsk.frequencyDeviationHz ?? Math.round(modulation.fsk.datarate / 2);
  }
  return txpk;
}

/** The downlink a txpk describes (the simulator's direction); GPS-time (tmms) timing is refused. */
export function txpkToDownlink(
  txpk: Txpk,
  ids: { gatewayId: string; downlinkId: number },
): GatewayDownlink {
  let timing: GatewayDownlink['timing'];
  if (txpk.imme === true) timing = { kind: 'immediately' };
  else if (txpk.tmst !== undefined) timing = { kind: 'counter', timestampUs: txpk.tmst };
  else
    throw new SemtechUdpError('INVALID_FIELD', 'txpk timing by GPS time (tmms) is not supported');
  const modulation = modulationOf(txpk);
  if ('lora' in modulation) modulation.lora.polarizationInversion = txpk.ipol ?? false;
  else if (txpk.fdev !== undefined) modulation.fsk.frequencyDeviationHz = txpk.fdev;
  return {
    gatewayId: ids.gatewayId,
    downlinkId: ids.downlinkId,
    phyPayload: new Uint8Array(Buffer.from(txpk.data, 'base64')),
    frequencyHz: megahertzToHz(txpk.freq),
    powerDbm: txpk.powe,
    modulation,
    timing,
    rfChain: txpk.rfch,
  };
}

const STAT_TIME = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}) (?:GMT|UTC)$/;

/** Stat time ("2014-01-12 08:59:28 GMT") as ISO 8601; undefined when it is not a time. */
export function statTimeToIso(time: string): string | undefined {
  const match = STAT_TIME.exec(time);
  const ms = Date.parse(match === null ? time : `${match[1]}T${match[2]}Z`);
  return Number.isFinite(ms) ? new Date(ms).toISOString() : undefined;
}

/**
 * The position in a stat. A gateway without a GPS fix reports 0/0 (or nothing): that is no
 * position, not a point in the Gulf of Guinea.
 */
export function statLocation(stat: Stat): GatewayLocation | undefined {
  if (stat.lati === undefined || stat.long === undefined) return undefined;
  if (stat.lati === 0 && stat.long === 0) return undefined;
  return { latitude: stat.lati, longitude: stat.long, altitude: stat.alti ?? 0 };
}

export function statToGatewayStats(
  stat: Stat,
  context: { gatewayId: string; receivedAtMs: number },
): GatewayStats {
  const stats: GatewayStats = {
    gatewayId: context.gatewayId,
    rxReceived: stat.rxnb ?? 0,
    rxReceivedOk: stat.rxok ?? 0,
    rxForwarded: stat.rxfw ?? 0,
    txReceived: stat.dwnb ?? 0,
    txEmitted: stat.txnb ?? 0,
    receivedAtMs: context.receivedAtMs,
  };
  const time = stat.time === undefined ? undefined : statTimeToIso(stat.time);
  if (time !== undefined) stats.time = time;
  const location = statLocation(stat);
  if (location !== undefined) stats.location = location;
  // ackr is a percentage on the wire; ackRatio is a fraction (0.5 = half acknowledged).
  if (stat.ackr !== undefined) stats.ackRatio = stat.ackr / 100;
  return stats;
}

const TX_ACK_STATUSES: ReadonlySet<string> = new Set<TxAckStatus>([
  'NONE',
  'TOO_LATE',
  'TOO_EARLY',
  'COLLISION_PACKET',
  'COLLISION_BEACON',
  'TX_FREQ',
  'TX_POWER',
  'GPS_UNLOCKED',
]);

/**
 * The status a TX_ACK reports. No JSON, no `error`, or only a `warn` (sent with a correction)
 * mean the frame was accepted; an error name Galet does not know is 'UNKNOWN'.
 */
export function txAckStatusOf(txpkAck: TxpkAck | undefined): TxAckStatus {
  const error = txpkAck?.error;
  if (error === undefined || error === '' || error === 'NONE') return 'NONE';
  return TX_ACK_STATUSES.has(error) ? (error as TxAckStatus) : 'UNKNOWN';
}
