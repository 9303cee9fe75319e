import { readUint16LE, readUint24LE, writeUint16LE, writeUint24LE } from './bytes.js';
import { LorawanError } from './errors.js';

/**
 * CFList: the optional 16-byte tail of a JoinAccept (LoRaWAN 1.0.4 §6.2.4, RP002 §2.x.4).
 * The last byte is the CFListType; the 15 bytes before it are:
 * - type 0 (EU868, AS923, IN865, KR920, ...): five 24-bit little-endian frequencies in units of
 *   100 Hz for channels 3 to 7, 0 = no channel;
 * - type 1 (US915, AU915, CN470): 16-bit little-endian ChMask words, ChMask0 for channels 0-15,
 *   ChMask1 for 16-31, and so on; US915/AU915 use five words (the fifth covers channels
 *   64-71), CN470 six; the bytes after the last word the region uses are RFU (zero).
 *
 * Shape, kept simple so a round trip is the identity:
 * - decoding always yields the full-length list: 5 frequencies (0 where a slot is empty),
 *   7 ChMask words (the most that fit before the RFU byte 14; unused words are 0);
 * - encoding accepts a shorter list and fills the rest with 0.
 * So `decodeCfList(encodeCfList(x))` is `x` padded with zeros, and
 * `encodeCfList(decodeCfList(bytes))` is `bytes` (except RFU byte 14 of a type 1 list,
 * which is ignored on decoding and written as 0).
 */
export type CfList =
  | { readonly type: 'frequencies'; readonly frequenciesHz: number[] }
  | { readonly type: 'channelMask'; readonly channelMasks: number[] };

export const CFLIST_LENGTH = 16;
export const CFLIST_FREQUENCY_COUNT = 5;
export const CFLIST_CHANNEL_MASK_COUNT = 7;

const CFLIST_TYPE_FREQUENCIES = 0x00;
const CFLIST_TYPE_CHANNEL_MASK = 0x01;
/** RP002: values below 100 MHz are reserved for future use. */
const MIN_FREQUENCY_HZ = 100_000_000;
const MAX_FREQUENCY_HZ = 0xff_ffff * 100;

export function encodeCfList(cfList: CfList): Uint8Array {
  const out = new Uint8Array(CFLIST_LENGTH);
  switch (cfList.type) {
    case 'frequencies': {
      const { frequenciesHz } = cfList;
      if (frequenciesHz.length > CFLIST_FREQUENCY_COUNT) {
        throw new LorawanError(
          'INVALID_FIELD',
          `a CFList holds at most ${CFLIST_FREQUENCY_COUNT} frequencies, got ${frequenciesHz.length}`,
        );
      }
      frequenciesHz.forEach((frequencyHz, i) => {
        assertCfListFrequency(frequencyHz, i);
        writeUint24LE(out, 3 * i, frequencyHz / 100);
      });
      out[15] = CFLIST_TYPE_FREQUENCIES;
      return out;
    }
    case 'channelMask': {
      const { channelMasks } = cfList;
      if (channelMasks.length > CFLIST_CHANNEL_MASK_COUNT) {
        throw new LorawanError(
          'INVALID_FIELD',
          `a CFList holds at most ${CFLIST_CHANNEL_MASK_COUNT} ChMask words, got ${channelMasks.length}`,
        );
      }
      channelMasks.forEach((mask, i) => {
        if (!Number.isInteger(mask) || mask < 0 || mask > 0xffff) {
          throw new LorawanError(
            'INVALID_FIELD',
            `CFList ChMask${i} must be an integer from 0 to 65535, got ${mask}`,
          );
        }
        writeUint16LE(out, 2 * i, mask);
      });
      out[15] = CFLIST_TYPE_CHANNEL_MASK;
      return out;
    }
    default:
      return assertNever(cfList);
  }
}

export function decodeCfList(bytes: Uint8Array): CfList {
  if (bytes.length !== CFLIST_LENGTH) {
    throw new LorawanError(
      'INVALID_LENGTH',
      `a CFList is ${CFLIST_LENGTH} bytes, got ${bytes.length}`,
    );
  }
  const type = bytes[15]!;
  switch (type) {
    case CFLIST_TYPE_FREQUENCIES: {
      const frequenciesHz: number[] = [];
      for (let i = 0; i < CFLIST_FREQUENCY_COUNT; i++) {
        const frequencyHz = readUint24LE(bytes, 3 * i) * 100;
        if (frequencyHz !== 0 && frequencyHz < MIN_FREQUENCY_HZ) {
          throw new LorawanError(
            'INVALID_FIELD',
            `CFList frequency ${i} is ${frequencyHz} Hz; values below 100 MHz are reserved`,
          );
        }
        frequenciesHz.push(frequencyHz);
      }
      return { type: 'frequencies', frequenciesHz };
    }
    case CFLIST_TYPE_CHANNEL_MASK: {
      const channelMasks: number[] = [];
      for (let i = 0; i < CFLIST_CHANNEL_MASK_COUNT; i++) {
        channelMasks.push(readUint16LE(bytes, 2 * i));
      }
      return { type: 'channelMask', channelMasks };
    }
    default:
      throw new LorawanError(
        'INVALID_FIELD',
        `unknown CFListType ${type}: 0 (frequencies) and 1 (channel masks) are defined`,
      );
  }
}

function assertCfListFrequency(frequencyHz: number, index: number): void {
  if (frequencyHz === 0) return;
  if (
    !Number.isInteger(frequencyHz) ||
    frequencyHz % 100 !== 0 ||
    frequencyHz < MIN_FREQUENCY_HZ ||
    frequencyHz > MAX_FREQUENCY_HZ
  ) {
    throw new LorawanError(
      'INVALID_FIELD',
      `CFList frequency ${index} must be 0 (no channel) or a multiple of 100 Hz from 100 MHz to ${MAX_FREQUENCY_HZ} Hz, got ${frequencyHz}`,
    );
  }
}

function assertNever(value: never): never {
  throw new LorawanError('INVALID_FIELD', `unknown CFList type ${JSON.stringify(value)}`);
}
