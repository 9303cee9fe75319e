import {
  assertUint,
  euiFromWire,
  euiToWire,
  readUint16LE,
  readUint24LE,
  readUint32LE,
  writeUint16LE,
  writeUint24LE,
  writeUint32LE,
} from './bytes.js';
import { LorawanError } from './errors.js';
import { decodeFCtrl, encodeFCtrl, type FCtrl } from './fctrl.js';
import { type DataMType, decodeMhdr, encodeMhdr, isUplinkMType, type MType } from './mhdr.js';

/** LoRa's PHY payload is at most 255 bytes. */
export const MAX_PHY_PAYLOAD_LENGTH = 255;
const MIC_LENGTH = 4;
/** MHDR + DevAddr + FCtrl + FCnt + MIC. */
const MIN_DATA_FRAME_LENGTH = 12;
const JOIN_REQUEST_LENGTH = 23;
const REJOIN_0_2_LENGTH = 19;
const REJOIN_1_LENGTH = 24;

/**
 * A data frame as it is on the wire: FOpts (encrypted in 1.1) and FRMPayload (encrypted) are raw.
 * `fCnt` is the 16-bit wire value; `bytes` is the whole PHYPayload it was decoded from.
 */
export interface DataFrame {
  mType: DataMType;
  devAddr: number;
  fCtrl: FCtrl;
  fCnt: number;
  fOpts: Uint8Array;
  /** undefined when the frame has no FPort (no FRMPayload). */
  fPort: number | undefined;
  frmPayload: Uint8Array;
  mic: Uint8Array;
}

export interface JoinRequest {
  mType: 'JoinRequest';
  joinEui: string;
  devEui: string;
  devNonce: number;
  mic: Uint8Array;
}

/** RejoinRequest type 0 (reset context) or 2 (rekey): LoRaWAN 1.1 §6.2.4.4. */
export interface RejoinRequest02 {
  mType: 'RejoinRequest';
  rejoinType: 0 | 2;
  netId: number;
  devEui: string;
  rjCount0: number;
  mic: Uint8Array;
}

/** RejoinRequest type 1 (restore a lost session through the join server). */
export interface RejoinRequest1 {
  mType: 'RejoinRequest';
  rejoinType: 1;
  joinEui: string;
  devEui: string;
  rjCount1: number;
  mic: Uint8Array;
}

export type RejoinRequest = RejoinRequest02 | RejoinRequest1;

/** A JoinAccept as it travels: everything after MHDR is encrypted (see join-accept.ts). */
export interface EncryptedJoinAccept {
  mType: 'JoinAccept';
  encrypted: Uint8Array;
}

/** Proprietary frames have no defined layout: every byte after MHDR is kept as it is. */
export interface Proprietary {
  mType: 'Proprietary';
  payload: Uint8Array;
}

export type PhyPayload =
  | DataFrame
  | JoinRequest
  | RejoinRequest
  | EncryptedJoinAccept
  | Proprietary;

export interface DecodedPhyPayload {
  payload: PhyPayload;
  /** MHDR..last field: what the MIC is computed over (empty for JoinAccept and Proprietary). */
  micInput: Uint8Array;
}

/** Decodes the structure of a PHYPayload; no key is needed and nothing is verified. */
export function decodePhyPayload(bytes: Uint8Array): PhyPayload {
  return decodePhyPayloadWithMicInput(bytes).payload;
}

export function decodePhyPayloadWithMicInput(bytes: Uint8Array): DecodedPhyPayload {
  if (bytes.length === 0) throw new LorawanError('FRAME_TOO_SHORT', 'PHYPayload is empty');
  if (bytes.length > MAX_PHY_PAYLOAD_LENGTH) {
    throw new LorawanError(
      'FRAME_TOO_LONG',
      `PHYPayload is ${bytes.length} bytes, the maximum is ${MAX_PHY_PAYLOAD_LENGTH}`,
    );
  }
  const { mType } = decodeMhdr(bytes[0]!);
  switch (mType) {
    case 'UnconfirmedDataUp':
    case 'UnconfirmedDataDown':
    case 'ConfirmedDataUp':
    case 'ConfirmedDataDown':
      return decodeDataFrame(bytes, mType);
    case 'JoinRequest':
      return decodeJoinRequest(bytes);
    case 'RejoinRequest':
      return decodeRejoinRequest(bytes);
    case 'JoinAccept':
      if (bytes.length !== 17 && bytes.length !== 33) {
        throw new LorawanError(
          'INVALID_LENGTH',
          `a JoinAccept is 17 or 33 bytes (without or with CFList), got ${bytes.length}`,
        );
      }
      return {
        payload: { mType, encrypted: bytes.slice(1) },
        micInput: new Uint8Array(0),
      };
    case 'Proprietary':
      return { payload: { mType, payload: bytes.slice(1) }, micInput: new Uint8Array(0) };
  }
}

function decodeDataFrame(bytes: Uint8Array, mType: DataMType): DecodedPhyPayload {
  if (bytes.length < MIN_DATA_FRAME_LENGTH) {
    throw new LorawanError(
      'FRAME_TOO_SHORT',
      `frame too short: ${bytes.length} bytes, a data frame needs at least ${MIN_DATA_FRAME_LENGTH}`,
    );
  }
  const uplink = isUplinkMType(mType);
  const { fCtrl, fOptsLength } = decodeFCtrl(bytes[5]!, uplink);
  const micOffset = bytes.length - MIC_LENGTH;
  const fhdrEnd = 8 + fOptsLength;
  if (fhdrEnd > micOffset) {
    throw new LorawanError(
      'FRAME_TOO_SHORT',
      `FOptsLen is ${fOptsLength} but only ${micOffset - 8} bytes remain before the MIC`,
    );
  }
  let fPort: number | undefined;
  let frmPayload: Uint8Array;
  if (fhdrEnd < micOffset) {
    fPort = bytes[fhdrEnd]!;
    frmPayload = bytes.subarray(fhdrEnd + 1, micOffset);
    if (fPort === 0 && fOptsLength > 0) {
      throw new LorawanError(
        'INVALID_FIELD',
        'a frame with FPort 0 carries its MAC commands in FRMPayload and must have empty FOpts',
      );
    }
  } else {
    fPort = undefined;
    frmPayload = bytes.subarray(micOffset, micOffset);
  }
  return {
    payload: {
      mType,
      devAddr: readUint32LE(bytes, 1),
      fCtrl,
      fCnt: readUint16LE(bytes, 6),
      fOpts: bytes.subarray(8, fhdrEnd),
      fPort,
      frmPayload,
      mic: bytes.subarray(micOffset),
    },
    micInput: bytes.subarray(0, micOffset),
  };
}

function decodeJoinRequest(bytes: Uint8Array): DecodedPhyPayload {
  if (bytes.length !== JOIN_REQUEST_LENGTH) {
    throw new LorawanError(
      'INVALID_LENGTH',
      `a JoinRequest is ${JOIN_REQUEST_LENGTH} bytes, got ${bytes.length}`,
    );
  }
  return {
    payload: {
      mType: 'JoinRequest',
      joinEui: euiFromWire(bytes, 1),
      devEui: euiFromWire(bytes, 9),
      devNonce: readUint16LE(bytes, 17),
      mic: bytes.slice(19),
    },
    micInput: bytes.subarray(0, 19),
  };
}

function decodeRejoinRequest(bytes: Uint8Array): DecodedPhyPayload {
  if (bytes.length < 2) {
    throw new LorawanError('FRAME_TOO_SHORT', 'a RejoinRequest needs at least its type byte');
  }
  const rejoinType = bytes[1]!;
  if (rejoinType === 0 || rejoinType === 2) {
    if (bytes.length !== REJOIN_0_2_LENGTH) {
      throw new LorawanError(
        'INVALID_LENGTH',
        `a RejoinRequest of type ${rejoinType} is ${REJOIN_0_2_LENGTH} bytes, got ${bytes.length}`,
      );
    }
    return {
      payload: {
        mType: 'RejoinRequest',
        rejoinType,
        netId: readUint24LE(bytes, 2),
        devEui: euiFromWire(bytes, 5),
        rjCount0: readUint16LE(bytes, 13),
        mic: bytes.slice(15),
      },
      micInput: bytes.subarray(0, 15),
    };
  }
  if (rejoinType === 1) {
    if (bytes.length !== REJOIN_1_LENGTH) {
      throw new LorawanError(
        'INVALID_LENGTH',
        `a RejoinRequest of type 1 is ${REJOIN_1_LENGTH} bytes, got ${bytes.length}`,
      );
    }
    return {
      payload: {
        mType: 'RejoinRequest',
        rejoinType: 1,
        joinEui: euiFromWire(bytes, 2),
        devEui: euiFromWire(bytes, 10),
        rjCount1: readUint16LE(bytes, 18),
        mic: bytes.slice(20),
      },
      micInput: bytes.subarray(0, 20),
    };
  }
  throw new LorawanError('INVALID_FIELD', `RejoinRequest type ${rejoinType} is not 0, 1 or 2`);
}

function checkMic(mic: Uint8Array): void {
  if (mic.length !== MIC_LENGTH) {
    throw new LorawanError('INVALID_LENGTH', `MIC must be 4 bytes, got ${mic.length}`);
  }
}

/**
 * Encodes a PHYPayload from its fields as they go on the wire (encrypted FRMPayload, MIC given).
 * `encodeMicInput` gives the same bytes without the MIC, to compute the MIC over.
 */
export function encodePhyPayload(payload: PhyPayload): Uint8Array {
  const withoutMic = encodeMicInput(payload);
  switch (payload.mType) {
    case 'JoinAccept':
    case 'Proprietary':
      return withoutMic;
    default: {
      checkMic(payload.mic);
      const out = new Uint8Array(withoutMic.length + MIC_LENGTH);
      out.set(withoutMic, 0);
      out.set(payload.mic, withoutMic.length);
      return out;
    }
  }
}

/** The frame up to (not including) the MIC; for JoinAccept and Proprietary, the whole frame. */
export function encodeMicInput(payload: PhyPayload): Uint8Array {
  const mType: MType = payload.mType;
  switch (payload.mType) {
    case 'UnconfirmedDataUp':
    case 'UnconfirmedDataDown':
    case 'ConfirmedDataUp':
    case 'ConfirmedDataDown':
      return encodeDataFrameMicInput(payload);
    case 'JoinRequest': {
      assertUint(payload.devNonce, 16, 'DevNonce');
      const out = new Uint8Array(19);
      out[0] = encodeMhdr(mType);
      euiToWire(payload.joinEui, out, 1, 'JoinEUI');
      euiToWire(payload.devEui, out, 9, 'DevEUI');
      writeUint16LE(out, 17, payload.devNonce);
      return out;
    }
    case 'RejoinRequest': {
      if (payload.rejoinType === 1) {
        assertUint(payload.rjCount1, 16, 'RJcount1');
        const out = new Uint8Array(20);
        out[0] = encodeMhdr(mType);
        out[1] = 1;
        euiToWire(payload.joinEui, out, 2, 'JoinEUI');
        euiToWire(payload.devEui, out, 10, 'DevEUI');
        writeUint16LE(out, 18, payload.rjCount1);
        return out;
      }
      assertUint(payload.netId, 24, 'NetID');
      assertUint(payload.rjCount0, 16, 'RJcount0');
      const out = new Uint8Array(15);
      out[0] = encodeMhdr(mType);
      out[1] = payload.rejoinType;
      writeUint24LE(out, 2, payload.netId);
      euiToWire(payload.devEui, out, 5, 'DevEUI');
      writeUint16LE(out, 13, payload.rjCount0);
      return out;
    }
    case 'JoinAccept': {
      if (payload.encrypted.length !== 16 && payload.encrypted.length !== 32) {
        throw new LorawanError(
          'INVALID_LENGTH',
          `an encrypted JoinAccept body is 16 or 32 bytes, got ${payload.encrypted.length}`,
        );
      }
      const out = new Uint8Array(1 + payload.encrypted.length);
      out[0] = encodeMhdr(mType);
      out.set(payload.encrypted, 1);
      return out;
    }
    case 'Proprietary': {
      if (payload.payload.length + 1 > MAX_PHY_PAYLOAD_LENGTH) {
        throw new LorawanError('FRAME_TOO_LONG', 'proprietary payload is longer than 254 bytes');
      }
      const out = new Uint8Array(1 + payload.payload.length);
      out[0] = encodeMhdr(mType);
      out.set(payload.payload, 1);
      return out;
    }
  }
}

function encodeDataFrameMicInput(frame: DataFrame): Uint8Array {
  assertUint(frame.devAddr, 32, 'DevAddr');
  assertUint(frame.fCnt, 16, 'FCnt (16-bit wire value)');
  const uplink = isUplinkMType(frame.mType);
  const fCtrl = encodeFCtrl(frame.fCtrl, frame.fOpts.length, uplink);
  if (frame.fPort === undefined) {
    if (frame.frmPayload.length > 0) {
      throw new LorawanError('INVALID_FIELD', 'a frame with FRMPayload needs an FPort');
    }
  } else {
    assertUint(frame.fPort, 8, 'FPort');
    if (frame.fPort === 0 && frame.fOpts.length > 0) {
      throw new LorawanError('INVALID_FIELD', 'a frame with FPort 0 must have empty FOpts');
    }
  }
  const portLength = frame.fPort === undefined ? 0 : 1;
  const length = 8 + frame.fOpts.length + portLength + frame.frmPayload.length;
  if (length + MIC_LENGTH > MAX_PHY_PAYLOAD_LENGTH) {
    throw new LorawanError(
      'FRAME_TOO_LONG',
      `data frame would be ${length + MIC_LENGTH} bytes, the maximum is ${MAX_PHY_PAYLOAD_LENGTH}`,
    );
  }
  const out = new Uint8Array(length);
  out[0] = encodeMhdr(frame.mType);
  writeUint32LE(out, 1, frame.devAddr);
  out[5] = fCtrl;
  writeUint16LE(out, 6, frame.fCnt);
  out.set(frame.fOpts, 8);
  if (frame.fPort !== undefined) {
    out[8 + frame.fOpts.length] = frame.fPort;
    out.set(frame.frmPayload, 9 + frame.fOpts.length);
  }
  return out;
}
