import { assertUint } from './bytes.js';
import type { KeyInput } from './crypto/aes.js';
import { constantTimeEqual } from './crypto/constant-time.js';
import { dataMic10, downlinkMic11, uplinkMic11 } from './crypto/data-mic.js';
import { encryptFOpts, encryptFrmPayload } from './crypto/frm-payload.js';
import { LorawanError } from './errors.js';
import type { FCtrl } from './fctrl.js';
import { type DataMType, isUplinkMType } from './mhdr.js';
import { type DataFrame, encodeMicInput } from './phy-payload.js';

/**
 * Session keys as a data frame needs them. `appSKey` is optional: the network role never holds
 * it, and then an FRMPayload on FPort > 0 is taken as already encrypted by the application role.
 */
export type DataSessionKeys =
  | { lorawan: '1.0'; nwkSKey: KeyInput; appSKey?: KeyInput }
  | {
      lorawan: '1.1';
      fNwkSIntKey: KeyInput;
      sNwkSIntKey: KeyInput;
      nwkSEncKey: KeyInput;
      appSKey?: KeyInput;
    };

/**
 * The per-frame inputs of 1.1 MICs; all default to 0. ConfFCnt only enters the MIC when the
 * frame's ACK bit is set (LoRaWAN 1.1 §4.4): otherwise 0 is used, whatever is given here.
 */
export interface FrameMicContext {
  /** Uplink: FCntDown of the acknowledged confirmed downlink; downlink: FCntUp acknowledged. */
  confFCnt?: number;
  txDr?: number;
  txCh?: number;
}

/**
 * LoRaWAN 1.1 (errata): a downlink with FPort > 0 counts with AFCntDown, and its FOpts are
 * encrypted with the block type that says so.
 */
export function countsWithAFCntDown(mType: DataMType, fPort: number | undefined): boolean {
  return !isUplinkMType(mType) && fPort !== undefined && fPort > 0;
}

function checkMicContext(fCnt: number, context: FrameMicContext): void {
  assertUint(fCnt, 32, 'FCnt (32-bit)');
  if (context.confFCnt !== undefined) assertUint(context.confFCnt, 32, 'ConfFCnt');
  if (context.txDr !== undefined) assertUint(context.txDr, 8, 'TxDr');
  if (context.txCh !== undefined) assertUint(context.txCh, 8, 'TxCh');
}

export interface DataFrameToBuild {
  mType: DataMType;
  devAddr: number;
  fCtrl: FCtrl;
  /** The full 32-bit counter; its low 16 bits go on the wire. */
  fCnt: number;
  /** Plaintext MAC commands to piggy-back (encrypted for 1.1). */
  fOpts?: Uint8Array;
  fPort?: number;
  /** Plaintext, except on FPort > 0 when `keys.appSKey` is absent (already encrypted). */
  frmPayload?: Uint8Array;
}

function direction(mType: DataMType): 'uplink' | 'downlink' {
  return isUplinkMType(mType) ? 'uplink' : 'downlink';
}

function frmPayloadKey(keys: DataSessionKeys, fPort: number): KeyInput | undefined {
  if (fPort > 0) return keys.appSKey;
  return keys.lorawan === '1.0' ? keys.nwkSKey : keys.nwkSEncKey;
}

/** Encrypts, computes the MIC and encodes a data frame. */
export function buildDataFrame(
  frame: DataFrameToBuild,
  keys: DataSessionKeys,
  context: FrameMicContext = {},
): Uint8Array {
  checkMicContext(frame.fCnt, context);
  const dir = direction(frame.mType);
  let fOpts = frame.fOpts ?? new Uint8Array(0);
  if (keys.lorawan === '1.1' && fOpts.length > 0) {
    fOpts = encryptFOpts(
      keys.nwkSEncKey,
      dir,
      frame.devAddr,
      frame.fCnt,
      fOpts,
      countsWithAFCntDown(frame.mType, frame.fPort),
    );
  }
  let frmPayload = frame.frmPayload ?? new Uint8Array(0);
  if (frame.fPort === undefined && frmPayload.length > 0) {
    throw new LorawanError('INVALID_FIELD', 'a frame with FRMPayload needs an FPort');
  }
  if (frame.fPort !== undefined && frmPayload.length > 0) {
    const key = frmPayloadKey(keys, frame.fPort);
    if (key !== undefined)
      frmPayload = encryptFrmPayload(key, dir, frame.devAddr, frame.fCnt, frmPayload);
  }
  const wire: DataFrame = {
    mType: frame.mType,
    devAddr: frame.devAddr,
    fCtrl: frame.fCtrl,
    fCnt: frame.fCnt & 0xffff,
    fOpts,
    fPort: frame.fPort,
    frmPayload,
    mic: new Uint8Array(4),
  };
  const micInput = encodeMicInput(wire);
  const mic = computeDataMic(keys, dir, frame.devAddr, frame.fCnt, micInput, context);
  const out = new Uint8Array(micInput.length + 4);
  out.set(micInput, 0);
  out.set(mic, micInput.length);
  return out;
}

/** The MIC of a data frame given its bytes up to the MIC and the full 32-bit counter. */
export function computeDataMic(
  keys: DataSessionKeys,
  dir: 'uplink' | 'downlink',
  devAddr: number,
  fCnt: number,
  micInput: Uint8Array,
  context: FrameMicContext = {},
  out: Uint8Array = new Uint8Array(4),
): Uint8Array {
  checkMicContext(fCnt, context);
  if (keys.lorawan === '1.0') return dataMic10(keys.nwkSKey, dir, devAddr, fCnt, micInput, out);
  // FCtrl is byte 5 of every data frame; bit 5 is ACK.
  const confFCnt = (micInput[5]! & 0x20) !== 0 ? (context.confFCnt ?? 0) : 0;
  if (dir === 'downlink') {
    return downlinkMic11(keys.sNwkSIntKey, devAddr, fCnt, confFCnt, micInput, out);
  }
  return uplinkMic11(
    {
      fNwkSIntKey: keys.fNwkSIntKey,
      sNwkSIntKey: keys.sNwkSIntKey,
      devAddr,
      fCnt,
      confFCnt,
      txDr: context.txDr ?? 0,
      txCh: context.txCh ?? 0,
    },
    micInput,
    out,
  );
}

const expectedMic = new Uint8Array(4);

/** Checks a decoded frame's MIC in constant time. */
export function verifyDataMic(
  frame: DataFrame,
  micInput: Uint8Array,
  keys: DataSessionKeys,
  fCnt: number,
  context: FrameMicContext = {},
): boolean {
  const expected = computeDataMic(
    keys,
    direction(frame.mType),
    frame.devAddr,
    fCnt,
    micInput,
    context,
    expectedMic,
  );
  return constantTimeEqual(expected, frame.mic);
}

/**
 * LoRaWAN 1.1 uplinks: only the FNwkSIntKey half of the MIC can be checked by a forwarding
 * network server (§4.4). Exposed so that a roaming or split deployment can use it.
 */
export function verifyUplinkMicFNwkHalf(
  frame: DataFrame,
  micInput: Uint8Array,
  keys: Extract<DataSessionKeys, { lorawan: '1.1' }>,
  fCnt: number,
): boolean {
  // cmacF is CMAC(FNwkSIntKey, B0 | msg) with the same B0 as a 1.0 uplink MIC.
  const cmacF = dataMic10(keys.fNwkSIntKey, 'uplink', frame.devAddr, fCnt, micInput);
  return constantTimeEqual(cmacF.subarray(0, 2), frame.mic.subarray(2));
}

export interface DecryptedDataFrame {
  fOpts: Uint8Array;
  /** undefined when the key for this FPort was not given. */
  frmPayload: Uint8Array | undefined;
}

/** Decrypts FOpts (1.1) and FRMPayload with whatever keys are given. */
export function decryptDataFrame(
  frame: DataFrame,
  keys: DataSessionKeys,
  fCnt: number,
): DecryptedDataFrame {
  assertUint(fCnt, 32, 'FCnt (32-bit)');
  const dir = direction(frame.mType);
  const fOpts =
    keys.lorawan === '1.1' && frame.fOpts.length > 0
      ? encryptFOpts(
          keys.nwkSEncKey,
          dir,
          frame.devAddr,
          fCnt,
          frame.fOpts,
          countsWithAFCntDown(frame.mType, frame.fPort),
        )
      : frame.fOpts;
  if (frame.fPort === undefined) return { fOpts, frmPayload: new Uint8Array(0) };
  const key = frmPayloadKey(keys, frame.fPort);
  return {
    fOpts,
    frmPayload:
      key === undefined
        ? undefined
        : encryptFrmPayload(key, dir, frame.devAddr, fCnt, frame.frmPayload),
  };
}
