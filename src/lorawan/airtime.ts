import { LorawanError } from './errors.js';

/**
 * Time on air of a LoRa or FSK frame, after Semtech AN1200.13 ("LoRa modem designer's guide")
 * and the SX127x data sheet. Pure arithmetic: the network uses it for duty-cycle accounting
 * and for checking that a downlink fits before the next receive window.
 */

/** Coding rate as the packet forwarder writes it ('4/5') or as the CR term of AN1200.13 (1). */
export type CodingRate = 1 | 2 | 3 | 4 | '4/5' | '4/6' | '4/7' | '4/8';

export interface LoraTimeOnAirParams {
  /** 6 to 12. (SF6 needs an implicit header on SX127x radios; that is not checked here.) */
  readonly spreadingFactor: number;
  /** 125, 250 or 500 for LoRaWAN; any positive value is accepted. */
  readonly bandwidthKhz: number;
  /** PHYPayload length in bytes, 0 to 255. */
  readonly payloadSize: number;
  /** Default 4/5, the only rate LoRaWAN uses. */
  readonly codingRate?: CodingRate;
  /** Default true: LoRaWAN uplinks carry a payload CRC, downlinks do not. */
  readonly crc?: boolean;
  /** Programmed preamble length in symbols, default 8 (LoRaWAN). */
  readonly preambleSymbols?: number;
  /** Default true: LoRaWAN always uses the explicit header. */
  readonly explicitHeader?: boolean;
  /** Default: on when the symbol time exceeds 16 ms (SF11 and SF12 at 125 kHz, SF12 at 250 kHz). */
  readonly lowDataRateOptimize?: boolean;
}

const CODING_RATES: Readonly<Record<string, number>> = {
  '1': 1,
  '2': 2,
  '3': 3,
  '4': 4,
  '4/5': 1,
  '4/6': 2,
  '4/7': 3,
  '4/8': 4,
};

/** Symbol duration in microseconds: 2^SF / BW. Exact (an integer) for 125, 250 and 500 kHz. */
export function loraSymbolTimeUs(spreadingFactor: number, bandwidthKhz: number): number {
  assertSpreadingFactor(spreadingFactor);
  assertBandwidth(bandwidthKhz);
  return (2 ** spreadingFactor * 1000) / bandwidthKhz;
}

/**
 * LoRa time on air in milliseconds (AN1200.13 §4):
 * Tsym = 2^SF / BW; Tpreamble = (Npreamble + 4.25) · Tsym;
 * Npayload = 8 + max(ceil((8·PL − 4·SF + 28 + 16·CRC − 20·IH) / (4·(SF − 2·DE))) · (CR + 4), 0).
 * Computed in whole microseconds where the inputs allow it, so the usual LoRaWAN cases are
 * exact: SF7BW125 with 13 bytes is 46.336 ms, SF12BW125 with 51 bytes is 2465.792 ms.
 */
export function loraTimeOnAirMs(params: LoraTimeOnAirParams): number {
  const {
    spreadingFactor: sf,
    bandwidthKhz,
    payloadSize,
    codingRate = '4/5',
    crc = true,
    preambleSymbols = 8,
    explicitHeader = true,
  } = params;
  const symbolUs = loraSymbolTimeUs(sf, bandwidthKhz);
  assertPayloadSize(payloadSize);
  const cr = codingRateIndex(codingRate);
  if (!Number.isInteger(preambleSymbols) || preambleSymbols < 0 || preambleSymbols > 0xffff) {
    throw new LorawanError(
      'INVALID_FIELD',
      `preamble length must be an integer from 0 to 65535 symbols, got ${preambleSymbols}`,
    );
  }
  const lowDataRateOptimize = params.lowDataRateOptimize ?? symbolUs > 16_000;
  const de = lowDataRateOptimize ? 1 : 0;
  const ih = explicitHeader ? 0 : 1;
  const numerator = 8 * payloadSize - 4 * sf + 28 + 16 * (crc ? 1 : 0) - 20 * ih;
  const payloadSymbols = 8 + Math.max(Math.ceil(numerator / (4 * (sf - 2 * de))) * (cr + 4), 0);
  // (Npreamble + 4.25 + Npayload) · Tsym, kept as (4·(Npreamble + Npayload) + 17) · Tsym / 4
  // so that no fraction is rounded before the final division.
  const totalUs = ((4 * (preambleSymbols + payloadSymbols) + 17) * symbolUs) / 4;
  return totalUs / 1000;
}

/**
 * FSK time on air in milliseconds (EU868 DR7, 50 kbps): preamble 5 bytes, sync word 3 bytes,
 * length byte, payload, CRC 2 bytes, at `bitRate` bits per second. RP002 fixes the FSK
 * preamble at 5 bytes and the sync word at 3 bytes (0xC194C1).
 */
export function fskTimeOnAirMs(payloadSize: number, bitRate = 50_000): number {
  assertPayloadSize(payloadSize);
  if (!Number.isFinite(bitRate) || bitRate <= 0) {
    throw new LorawanError(
      'INVALID_FIELD',
      `FSK bit rate must be a positive number of bits per second, got ${bitRate}`,
    );
  }
  const bytes = 5 + 3 + 1 + payloadSize + 2;
  return (bytes * 8 * 1000) / bitRate;
}

function codingRateIndex(codingRate: CodingRate): number {
  const cr = CODING_RATES[String(codingRate)];
  if (cr === undefined) {
    throw new LorawanError(
      'INVALID_FIELD',
      `coding rate must be one of 4/5, 4/6, 4/7, 4/8 (or 1 to 4), got ${String(codingRate)}`,
    );
  }
  return cr;
}

function assertSpreadingFactor(sf: number): void {
  if (!Number.isInteger(sf) || sf < 6 || sf > 12) {
    throw new LorawanError(
      'INVALID_FIELD',
      `spreading factor must be an integer from 6 to 12, got ${sf}`,
    );
  }
}

function assertBandwidth(bandwidthKhz: number): void {
  if (!Number.isFinite(bandwidthKhz) || bandwidthKhz <= 0) {
    throw new LorawanError(
      'INVALID_FIELD',
      `bandwidth must be a positive number of kHz (125, 250 or 500), got ${bandwidthKhz}`,
    );
  }
}

function assertPayloadSize(payloadSize: number): void {
  if (!Number.isInteger(payloadSize) || payloadSize < 0 || payloadSize > 255) {
    throw new LorawanError(
      'INVALID_FIELD',
      `payload size must be an integer from 0 to 255 bytes, got ${payloadSize}`,
    );
  }
}
