import { assertUint, readUint24LE, readUint32LE, writeUint24LE, writeUint32LE } from './bytes.js';
import type { KeyInput } from './crypto/aes.js';
import { constantTimeEqual } from './crypto/constant-time.js';
import {
  decryptJoinAccept,
  encryptJoinAccept,
  type JoinRequestType,
  joinAcceptMic10,
  joinAcceptMic11,
} from './crypto/join.js';
import { LorawanError } from './errors.js';
import { encodeMhdr } from './mhdr.js';

export interface DlSettings {
  /** LoRaWAN 1.1: the network speaks 1.1 (RFU, so false, in 1.0). */
  optNeg: boolean;
  rx1DrOffset: number;
  rx2Dr: number;
}

/** The plaintext fields of a JoinAccept (§6.2.3). */
export interface JoinAcceptFields {
  joinNonce: number;
  netId: number;
  devAddr: number;
  dlSettings: DlSettings;
  /** RxDelay as sent: 0 and 1 both mean 1 s. */
  rxDelay: number;
  /** The 16-byte CFList, or undefined when absent (see cflist.ts to read it). */
  cfList: Uint8Array | undefined;
}

export interface OpenedJoinAccept {
  fields: JoinAcceptFields;
  mic: Uint8Array;
  /** MHDR..CFList in plaintext: what the MIC covers. */
  micInput: Uint8Array;
}

/** How the MIC of a JoinAccept is computed: 1.0 (and 1.1 without OptNeg) or 1.1 with OptNeg. */
export type JoinAcceptMicKeys =
  | { optNeg: false; key: KeyInput }
  | {
      optNeg: true;
      jsIntKey: KeyInput;
      joinRequestType: JoinRequestType;
      joinEui: string;
      devNonce: number;
    };

export function encodeJoinAcceptMicInput(fields: JoinAcceptFields): Uint8Array {
  assertUint(fields.joinNonce, 24, 'JoinNonce');
  assertUint(fields.netId, 24, 'NetID');
  assertUint(fields.devAddr, 32, 'DevAddr');
  assertUint(fields.dlSettings.rx1DrOffset, 3, 'DLSettings.rx1DrOffset');
  assertUint(fields.dlSettings.rx2Dr, 4, 'DLSettings.rx2Dr');
  assertUint(fields.rxDelay, 4, 'RxDelay');
  if (fields.cfList !== undefined && fields.cfList.length !== 16) {
    throw new LorawanError(
      'INVALID_LENGTH',
      `CFList must be 16 bytes, got ${fields.cfList.length}`,
    );
  }
  const out = new Uint8Array(fields.cfList === undefined ? 13 : 29);
  out[0] = encodeMhdr('JoinAccept');
  writeUint24LE(out, 1, fields.joinNonce);
  writeUint24LE(out, 4, fields.netId);
  writeUint32LE(out, 7, fields.devAddr);
  out[11] =
    (fields.dlSettings.optNeg ? 0x80 : 0) |
    (fields.dlSettings.rx1DrOffset << 4) |
    fields.dlSettings.rx2Dr;
  out[12] = fields.rxDelay;
  if (fields.cfList !== undefined) out.set(fields.cfList, 13);
  return out;
}

export function computeJoinAcceptMic(keys: JoinAcceptMicKeys, micInput: Uint8Array): Uint8Array {
  return keys.optNeg
    ? joinAcceptMic11(keys.jsIntKey, keys.joinRequestType, keys.joinEui, keys.devNonce, micInput)
    : joinAcceptMic10(keys.key, micInput);
}

/**
 * Builds the JoinAccept PHYPayload a gateway transmits: fields, MIC, then the encryption.
 * `encryptionKey`: AppKey (1.0), NwkKey (1.1, answering a JoinRequest), JSEncKey (1.1 rejoin).
 */
export function buildJoinAccept(
  fields: JoinAcceptFields,
  micKeys: JoinAcceptMicKeys,
  encryptionKey: KeyInput,
): Uint8Array {
  if (fields.dlSettings.optNeg !== micKeys.optNeg) {
    throw new LorawanError('INVALID_FIELD', 'DLSettings.optNeg and the MIC keys disagree');
  }
  const micInput = encodeJoinAcceptMicInput(fields);
  const plaintext = new Uint8Array(micInput.length + 4);
  plaintext.set(micInput, 0);
  plaintext.set(computeJoinAcceptMic(micKeys, micInput), micInput.length);
  return encryptJoinAccept(encryptionKey, plaintext);
}

/** Decrypts a JoinAccept PHYPayload and reads its fields; the MIC is not checked here. */
export function openJoinAccept(
  encryptedPhy: Uint8Array,
  encryptionKey: KeyInput,
): OpenedJoinAccept {
  const plaintext = decryptJoinAccept(encryptionKey, encryptedPhy);
  const micInput = plaintext.subarray(0, plaintext.length - 4);
  const dlSettings = plaintext[11]!;
  return {
    fields: {
      joinNonce: readUint24LE(plaintext, 1),
      netId: readUint24LE(plaintext, 4),
      devAddr: readUint32LE(plaintext, 7),
      dlSettings: {
        optNeg: (dlSettings & 0x80) !== 0,
        rx1DrOffset: (dlSettings >>> 4) & 0x07,
        rx2Dr: dlSettings & 0x0f,
      },
      rxDelay: plaintext[12]! & 0x0f,
      cfList: plaintext.length === 33 ? plaintext.slice(13, 29) : undefined,
    },
    mic: plaintext.slice(plaintext.length - 4),
    micInput,
  };
}

export function verifyJoinAcceptMic(opened: OpenedJoinAccept, micKeys: JoinAcceptMicKeys): boolean {
  return constantTimeEqual(computeJoinAcceptMic(micKeys, opened.micInput), opened.mic);
}
