import { SemtechUdpError } from './errors.js';

/**
 * The JSON objects GWMP carries (Semtech packet forwarder PROTOCOL.TXT §4 and §6): their types
 * as they are on the wire, and validation of untrusted JSON into them. Units stay the wire's
 * (MHz, dBm, base64); convert.ts turns them into Galet's normalised gateway types.
 */

/** CRC status of a received frame: 1 CRC ok, -1 CRC failed, 0 no CRC. */
export type RxpkCrcStatus = 1 | -1 | 0;

/** One received frame (`rxpk` array element). */
export interface Rxpk {
  /** UTC time of reception, ISO 8601 compact ("2013-03-31T16:21:17.528002Z"), GPS or NTP. */
  time?: string;
  /** GPS time of reception in ms since the GPS epoch. */
  tmms?: number;
  /** Gateway's 32-bit microsecond counter at the end of reception. */
  tmst: number;
  /** Centre frequency in MHz, 6 decimals (Hz precision). */
  freq: number;
  chan: number;
  rfch: number;
  stat: RxpkCrcStatus;
  modu: 'LORA' | 'FSK';
  /** LoRa: "SF7BW125"; FSK: bit rate as a number. */
  datr: string | number;
  /** LoRa coding rate, "4/5". */
  codr?: string;
  /** Channel RSSI in dBm. */
  rssi: number;
  /** LoRa SNR in dB. */
  lsnr?: number;
  /** Signal RSSI in dBm (SX1302 forwarders). */
  rssis?: number;
  /** Frequency offset in Hz (SX1302 forwarders). */
  foff?: number;
  size: number;
  /** PHYPayload, base64. */
  data: string;
}

/** Gateway status (`stat` object), sent every `stat_interval` (30 s by default). */
export interface Stat {
  /** "2014-01-12 08:59:28 GMT" (not ISO 8601). */
  time?: string;
  lati?: number;
  long?: number;
  /** Altitude in metres. */
  alti?: number;
  /** Frames received (CRC ok, bad or none). */
  rxnb?: number;
  /** Frames received with CRC ok. */
  rxok?: number;
  /** Frames forwarded. */
  rxfw?: number;
  /** Percentage of upstream datagrams acknowledged. */
  ackr?: number;
  /** Downlink datagrams received. */
  dwnb?: number;
  /** Frames emitted. */
  txnb?: number;
}

/** A frame to transmit (`txpk` object of PULL_RESP). One of imme, tmst or tmms is set. */
export interface Txpk {
  imme?: boolean;
  tmst?: number;
  tmms?: number;
  /** MHz. */
  freq: number;
  rfch: number;
  /** dBm, integer. */
  powe: number;
  modu: 'LORA' | 'FSK';
  datr: string | number;
  codr?: string;
  /** FSK frequency deviation in Hz. */
  fdev?: number;
  /** Inverted polarity: true for downlinks to end devices. */
  ipol?: boolean;
  /** Preamble length in symbols (LoRa) or bytes (FSK). */
  prea?: number;
  size: number;
  data: string;
  /** No CRC: LoRaWAN downlinks carry none. */
  ncrc?: boolean;
}

/** TX_ACK JSON (`txpk_ack`): no error, or error "NONE", means the gateway took the frame. */
export interface TxpkAck {
  error?: string;
  /** Newer forwarders: the frame is sent with a correction, e.g. "TX_POWER" with `value`. */
  warn?: string;
  value?: number;
}

export type JsonObject = Record<string, unknown>;

export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const MAX_UINT32 = 0xffff_ffff;
const MAX_PHY_PAYLOAD_SIZE = 255;
/** Padded or unpadded base64; the packet forwarder pads, some others do not. */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}(?:==)?|[A-Za-z0-9+/]{3}=?)?$/;
const LORA_DATR = /^SF([5-9]|1[0-2])BW(\d{1,4}(?:\.\d{1,3})?)$/;
const LORA_CODR = /^4\/[5-8](?:LI)?$/;

function field(object: JsonObject, key: string): unknown {
  return Object.hasOwn(object, key) ? object[key] : undefined;
}

function describe(value: unknown): string {
  const text = JSON.stringify(value);
  if (text === undefined) return String(value);
  return text.length > 40 ? `${text.slice(0, 40)}...` : text;
}

function missing(path: string): SemtechUdpError {
  return new SemtechUdpError('MISSING_FIELD', `${path} is missing`);
}

function invalid(path: string, wanted: string, value: unknown): SemtechUdpError {
  return new SemtechUdpError('INVALID_FIELD', `${path} must be ${wanted}, got ${describe(value)}`);
}

interface NumberRule {
  integer?: boolean;
  min?: number;
  max?: number;
  wanted: string;
}

function numberField(object: JsonObject, key: string, path: string, rule: NumberRule) {
  const value = field(object, key);
  if (value === undefined) return undefined;
  if (
    typeof value !== 'number' ||
    !Number.isFinite(value) ||
    (rule.integer === true && !Number.isInteger(value)) ||
    (rule.min !== undefined && value < rule.min) ||
    (rule.max !== undefined && value > rule.max)
  ) {
    throw invalid(`${path}.${key}`, rule.wanted, value);
  }
  return value;
}

function requiredNumber(object: JsonObject, key: string, path: string, rule: NumberRule): number {
  const value = numberField(object, key, path, rule);
  if (value === undefined) throw missing(`${path}.${key}`);
  return value;
}

function stringField(object: JsonObject, key: string, path: string): string | undefined {
  const value = field(object, key);
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw invalid(`${path}.${key}`, 'a string', value);
  return value;
}

function booleanField(object: JsonObject, key: string, path: string): boolean | undefined {
  const value = field(object, key);
  if (value === undefined) return undefined;
  if (typeof value !== 'boolean') throw invalid(`${path}.${key}`, 'true or false', value);
  return value;
}

const COUNTER: NumberRule = {
  integer: true,
  min: 0,
  max: MAX_UINT32,
  wanted: 'an integer from 0 to 4294967295',
};
const SMALL_INDEX: NumberRule = {
  integer: true,
  min: 0,
  max: 255,
  wanted: 'an integer from 0 to 255',
};
const FREQUENCY_MHZ: NumberRule = { min: 1e-6, max: 10_000, wanted: 'a frequency in MHz' };
const DECIBELS: NumberRule = { min: -500, max: 500, wanted: 'a number of dB' };
const ANY_NUMBER: NumberRule = { wanted: 'a number' };
const SIZE: NumberRule = {
  integer: true,
  min: 0,
  max: MAX_PHY_PAYLOAD_SIZE,
  wanted: 'an integer from 0 to 255',
};
const GPS_TIME_MS: NumberRule = {
  integer: true,
  min: 0,
  max: Number.MAX_SAFE_INTEGER,
  wanted: 'a number of ms since the GPS epoch',
};
const BIT_RATE: NumberRule = { integer: true, min: 1, max: 1_000_000, wanted: 'an FSK bit rate' };

/** Checks `data` against `size`; the decoded bytes are dropped (convert.ts decodes again). */
function payloadFields(object: JsonObject, path: string): { size: number; data: string } {
  const size = requiredNumber(object, 'size', path, SIZE);
  const data = stringField(object, 'data', path);
  if (data === undefined) throw missing(`${path}.data`);
  if (!BASE64.test(data)) {
    throw new SemtechUdpError('BAD_BASE64', `${path}.data is not base64`);
  }
  const decodedLength = Buffer.byteLength(data, 'base64');
  if (decodedLength !== size) {
    throw new SemtechUdpError(
      'SIZE_MISMATCH',
      `${path}.size is ${size} but ${path}.data holds ${decodedLength} bytes`,
    );
  }
  return { size, data };
}

function modulationFields(
  object: JsonObject,
  path: string,
): { modu: 'LORA' | 'FSK'; datr: string | number; codr?: string } {
  const modu = field(object, 'modu');
  const datr = field(object, 'datr');
  if (modu === undefined) throw missing(`${path}.modu`);
  if (datr === undefined) throw missing(`${path}.datr`);
  if (modu === 'LORA') {
    if (typeof datr !== 'string' || !LORA_DATR.test(datr)) {
      throw invalid(`${path}.datr`, 'a LoRa data rate such as "SF7BW125"', datr);
    }
    const codr = stringField(object, 'codr', path);
    if (codr === undefined) throw missing(`${path}.codr`);
    if (!LORA_CODR.test(codr)) throw invalid(`${path}.codr`, 'a coding rate such as "4/5"', codr);
    return { modu, datr, codr };
  }
  if (modu === 'FSK') {
    return { modu, datr: requiredNumber(object, 'datr', path, BIT_RATE) };
  }
  throw invalid(`${path}.modu`, '"LORA" or "FSK"', modu);
}

/** Assigns only the defined values, so that an absent field stays absent (round trips). */
function withOptional<T extends object>(base: T, optional: Partial<T>): T {
  for (const [key, value] of Object.entries(optional)) {
    if (value !== undefined) (base as Record<string, unknown>)[key] = value;
  }
  return base;
}

/**
 * The best antenna of a multi-antenna gateway (`rsig` of SX1301 v2 forwarders such as Kerlink
 * iBTS), used when the top-level rssi/lsnr are absent.
 */
function bestAntennaSignal(object: JsonObject, path: string) {
  const rsig = field(object, 'rsig');
  if (!Array.isArray(rsig)) return undefined;
  let best: { rssi: number; lsnr: number | undefined } | undefined;
  rsig.forEach((entry, i) => {
    const entryPath = `${path}.rsig[${i}]`;
    if (!isJsonObject(entry)) throw invalid(entryPath, 'an object', entry);
    const rssi = numberField(entry, 'rssic', entryPath, DECIBELS);
    if (rssi === undefined) return;
    const lsnr = numberField(entry, 'lsnr', entryPath, DECIBELS);
    if (best === undefined || (lsnr ?? -Infinity) > (best.lsnr ?? -Infinity)) best = { rssi, lsnr };
  });
  return best;
}

export function parseRxpk(value: unknown, path = 'rxpk'): Rxpk {
  if (!isJsonObject(value)) throw invalid(path, 'an object', value);
  const stat = field(value, 'stat');
  if (stat === undefined) throw missing(`${path}.stat`);
  if (stat !== 1 && stat !== -1 && stat !== 0) throw invalid(`${path}.stat`, '1, -1 or 0', stat);
  const modulation = modulationFields(value, path);
  const antenna = bestAntennaSignal(value, path);
  const rssis = numberField(value, 'rssis', path, DECIBELS);
  const rssi = numberField(value, 'rssi', path, DECIBELS) ?? rssis ?? antenna?.rssi;
  if (rssi === undefined) throw missing(`${path}.rssi`);
  const lsnr = numberField(value, 'lsnr', path, DECIBELS) ?? antenna?.lsnr;
  if (modulation.modu === 'LORA' && lsnr === undefined) throw missing(`${path}.lsnr`);
  const rxpk: Rxpk = withOptional(
    {
      tmst: requiredNumber(value, 'tmst', path, COUNTER),
      freq: requiredNumber(value, 'freq', path, FREQUENCY_MHZ),
      chan: requiredNumber(value, 'chan', path, SMALL_INDEX),
      rfch: requiredNumber(value, 'rfch', path, SMALL_INDEX),
      stat,
      modu: modulation.modu,
      datr: modulation.datr,
      rssi,
      ...payloadFields(value, path),
    } as Rxpk,
    {
      time: stringField(value, 'time', path),
      tmms: numberField(value, 'tmms', path, GPS_TIME_MS),
      codr: modulation.codr,
      lsnr,
      rssis,
      foff: numberField(value, 'foff', path, ANY_NUMBER),
    },
  );
  return rxpk;
}

export function parseStat(value: unknown, path = 'stat'): Stat {
  if (!isJsonObject(value)) throw invalid(path, 'an object', value);
  const count = (key: string) => numberField(value, key, path, COUNTER);
  return withOptional({} as Stat, {
    time: stringField(value, 'time', path),
    lati: numberField(value, 'lati', path, { min: -90, max: 90, wanted: 'a latitude in degrees' }),
    long: numberField(value, 'long', path, {
      min: -180,
      max: 180,
      wanted: 'a longitude in degrees',
    }),
    alti: numberField(value, 'alti', path, ANY_NUMBER),
    rxnb: count('rxnb'),
    rxok: count('rxok'),
    rxfw: count('rxfw'),
    ackr: numberField(value, 'ackr', path, { min: 0, max: 100, wanted: 'a percentage' }),
    dwnb: count('dwnb'),
    txnb: count('txnb'),
  });
}

export function parseTxpk(value: unknown, path = 'txpk'): Txpk {
  if (!isJsonObject(value)) throw invalid(path, 'an object', value);
  const imme = booleanField(value, 'imme', path);
  const tmst = numberField(value, 'tmst', path, COUNTER);
  const tmms = numberField(value, 'tmms', path, GPS_TIME_MS);
  if (imme !== true && tmst === undefined && tmms === undefined) {
    throw missing(`${path}.imme, ${path}.tmst or ${path}.tmms`);
  }
  const modulation = modulationFields(value, path);
  return withOptional(
    {
      freq: requiredNumber(value, 'freq', path, FREQUENCY_MHZ),
      rfch: requiredNumber(value, 'rfch', path, SMALL_INDEX),
      powe: requiredNumber(value, 'powe', path, {
        integer: true,
        min: -128,
        max: 127,
        wanted: 'an integer number of dBm',
      }),
      modu: modulation.modu,
      datr: modulation.datr,
      ...payloadFields(value, path),
    } as Txpk,
    {
      imme,
      tmst,
      tmms,
      codr: modulation.codr,
      fdev: numberField(value, 'fdev', path, {
        integer: true,
        min: 0,
        max: 1_000_000,
        wanted: 'a frequency deviation in Hz',
      }),
      ipol: booleanField(value, 'ipol', path),
      prea: numberField(value, 'prea', path, {
        integer: true,
        min: 0,
        max: 65_535,
        wanted: 'a preamble length',
      }),
      ncrc: booleanField(value, 'ncrc', path),
    },
  );
}

export function parseTxpkAck(value: unknown, path = 'txpk_ack'): TxpkAck {
  if (!isJsonObject(value)) throw invalid(path, 'an object', value);
  return withOptional({} as TxpkAck, {
    error: stringField(value, 'error', path),
    warn: stringField(value, 'warn', path),
    value: numberField(value, 'value', path, ANY_NUMBER),
  });
}
