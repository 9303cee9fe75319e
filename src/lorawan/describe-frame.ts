import { bytesToHex, uint24ToHex, uint32ToHex } from './bytes.js';
import { decodeCfList } from './cflist.js';
import type { KeyInput } from './crypto/aes.js';
import { constantTimeEqual } from './crypto/constant-time.js';
import { encryptFOpts, encryptFrmPayload } from './crypto/frm-payload.js';
import { joinRequestMic } from './crypto/join.js';
import { deriveJoinServerKeys } from './crypto/session-keys.js';
import { countsWithAFCntDown, type DataSessionKeys, verifyDataMic } from './data-frame.js';
import { isLorawanError, LorawanError } from './errors.js';
import {
  type JoinAcceptMicKeys,
  type OpenedJoinAccept,
  openJoinAccept,
  verifyJoinAcceptMic,
} from './join-accept.js';
import { decodeMacCommands, type MacCommand } from './mac-commands.js';
import { isUplinkMType } from './mhdr.js';
import {
  type DataFrame,
  decodePhyPayloadWithMicInput,
  type EncryptedJoinAccept,
  type JoinRequest,
  type RejoinRequest,
} from './phy-payload.js';

/** Whatever the caller knows about the frame; every field is optional. */
export interface FrameDescriptionInputs {
  nwkSKey?: KeyInput;
  appSKey?: KeyInput;
  appKey?: KeyInput;
  nwkKey?: KeyInput;
  fNwkSIntKey?: KeyInput;
  sNwkSIntKey?: KeyInput;
  nwkSEncKey?: KeyInput;
  /** 1.1 uplink MIC inputs. */
  txDr?: number;
  txCh?: number;
  confFCnt?: number;
  /** The full 32-bit frame counter when it is above 65535 (the wire carries 16 bits). */
  fCnt32?: number;
  /** 1.1 JoinAccept with OptNeg: the request it answers. */
  joinEui?: string;
  devEui?: string;
  devNonce?: number;
}

export type JsonValue =
  | string
  | number
  | boolean
  | null
  | JsonValue[]
  | { [key: string]: JsonValue };
export type FrameDescription = { [key: string]: JsonValue };

/**
 * Decodes a PHYPayload into the JSON object `galet frame decode` prints: display-order hex for
 * addresses, EUIs and MIC; decrypted FOpts/FRMPayload where a key allows; `micValid` true/false,
 * or null when no key to check it was given. Throws LorawanError for a frame that does not parse.
 */
export function describeFrame(
  phy: Uint8Array,
  inputs: FrameDescriptionInputs = {},
): FrameDescription {
  const { payload, micInput } = decodePhyPayloadWithMicInput(phy);
  switch (payload.mType) {
    case 'UnconfirmedDataUp':
    case 'UnconfirmedDataDown':
    case 'ConfirmedDataUp':
    case 'ConfirmedDataDown':
      return describeDataFrame(payload, micInput, inputs);
    case 'JoinRequest':
      return describeJoinRequest(payload, micInput, inputs);
    case 'RejoinRequest':
      return describeRejoinRequest(payload, micInput, inputs);
    case 'JoinAccept':
      return describeJoinAccept(payload, phy, inputs);
    case 'Proprietary':
      return { mType: payload.mType, payload: bytesToHex(payload.payload), micValid: null };
  }
}

/**
 * The keys a MIC check needs, when they were given: 1.0 the NwkSKey; 1.1 uplinks both
 * integrity keys, 1.1 downlinks the SNwkSIntKey only (the other two are not read for them).
 */
function micKeys(inputs: FrameDescriptionInputs, uplink: boolean): DataSessionKeys | undefined {
  const { fNwkSIntKey, sNwkSIntKey, nwkSKey } = inputs;
  if (isLorawan11(inputs)) {
    if (sNwkSIntKey === undefined) return undefined;
    if (uplink && fNwkSIntKey === undefined) return undefined;
    return {
      lorawan: '1.1',
      fNwkSIntKey: fNwkSIntKey ?? sNwkSIntKey,
      sNwkSIntKey,
      nwkSEncKey: inputs.nwkSEncKey ?? sNwkSIntKey,
    };
  }
  return nwkSKey === undefined ? undefined : { lorawan: '1.0', nwkSKey };
}

function isLorawan11(inputs: FrameDescriptionInputs): boolean {
  return (
    inputs.fNwkSIntKey !== undefined ||
    inputs.sNwkSIntKey !== undefined ||
    inputs.nwkSEncKey !== undefined
  );
}

function describeDataFrame(
  frame: DataFrame,
  micInput: Uint8Array,
  inputs: FrameDescriptionInputs,
): FrameDescription {
  const uplink = isUplinkMType(frame.mType);
  const fCnt32 = fullFCnt(frame.fCnt, inputs.fCnt32);
  const context = {
    confFCnt: inputs.confFCnt ?? 0,
    txDr: inputs.txDr ?? 0,
    txCh: inputs.txCh ?? 0,
  };
  const is11 = isLorawan11(inputs);
  const direction = uplink ? 'uplink' : 'downlink';

  const keys = micKeys(inputs, uplink);
  const micValid =
    keys === undefined ? null : verifyDataMic(frame, micInput, keys, fCnt32, context);

  // FOpts: plaintext in 1.0; in 1.1 encrypted, readable with the NwkSEncKey only.
  let fOpts: Uint8Array | undefined = frame.fOpts;
  if (is11 && frame.fOpts.length > 0) {
    fOpts =
      inputs.nwkSEncKey === undefined
        ? undefined
        : encryptFOpts(
            inputs.nwkSEncKey,
            direction,
            frame.devAddr,
            fCnt32,
            frame.fOpts,
            countsWithAFCntDown(frame.mType, frame.fPort),
          );
  }

  // FRMPayload: the AppSKey for FPort > 0, the network encryption key for FPort 0.
  let frmPayload = frame.frmPayload;
  let frmPayloadDecrypted = frame.fPort === undefined;
  if (frame.fPort !== undefined) {
    const key = frame.fPort > 0 ? inputs.appSKey : is11 ? inputs.nwkSEncKey : inputs.nwkSKey;
    if (key !== undefined) {
      frmPayload = encryptFrmPayload(key, direction, frame.devAddr, fCnt32, frame.frmPayload);
      frmPayloadDecrypted = true;
    }
  }

  const out: FrameDescription = {
    mType: frame.mType,
    devAddr: uint32ToHex(frame.devAddr),
    fCtrl: { ...frame.fCtrl },
    ack: frame.fCtrl.ack,
    adr: frame.fCtrl.adr,
    fCnt: frame.fCnt,
    fOpts: fOpts === undefined ? bytesToHex(frame.fOpts) : bytesToHex(fOpts),
    fOptsDecrypted: !is11 || frame.fOpts.length === 0 || fOpts !== undefined,
    fPort: frame.fPort ?? null,
    frmPayload: bytesToHex(frmPayload),
    frmPayloadDecrypted,
    mic: bytesToHex(frame.mic),
    micValid,
  };
  if (fCnt32 !== frame.fCnt) out['fCnt32'] = fCnt32;

  // MAC commands, wherever they could be read: FOpts, or a decrypted FPort-0 payload.
  let macBytes: Uint8Array | undefined;
  if (frame.fOpts.length > 0 && fOpts !== undefined) {
    macBytes = fOpts;
  } else if (frame.fPort === 0 && frmPayloadDecrypted) {
    macBytes = frmPayload;
  }
  if (macBytes !== undefined && macBytes.length > 0) {
    try {
      out['macCommands'] = decodeMacCommands(macBytes, direction).map(macCommandToJson);
    } catch (error) {
      if (!isLorawanError(error)) throw error;
      out['macCommandsError'] = error.message;
    }
  }
  return out;
}

function macCommandToJson(command: MacCommand): { [key: string]: JsonValue } {
  return { ...command } as { [key: string]: JsonValue };
}

function fullFCnt(wire16: number, fCnt32: number | undefined): number {
  if (fCnt32 === undefined) return wire16;
  if ((fCnt32 & 0xffff) !== wire16) {
    throw new LorawanError(
      'INVALID_FIELD',
      `the 32-bit FCnt ${fCnt32} does not end with the frame's 16-bit FCnt ${wire16}`,
    );
  }
  return fCnt32;
}

function describeJoinRequest(
  request: JoinRequest,
  micInput: Uint8Array,
  inputs: FrameDescriptionInputs,
): FrameDescription {
  // 1.1 devices sign with the NwkKey, 1.0 devices with the AppKey.
  const key = inputs.nwkKey ?? inputs.appKey;
  return {
    mType: request.mType,
    joinEui: request.joinEui,
    devEui: request.devEui,
    devNonce: request.devNonce,
    mic: bytesToHex(request.mic),
    micValid:
      key === undefined ? null : constantTimeEqual(joinRequestMic(key, micInput), request.mic),
  };
}

function describeRejoinRequest(
  request: RejoinRequest,
  micInput: Uint8Array,
  inputs: FrameDescriptionInputs,
): FrameDescription {
  let micValid: boolean | null = null;
  if (request.rejoinType === 1) {
    if (inputs.nwkKey !== undefined) {
      const { jsIntKey } = deriveJoinServerKeys(inputs.nwkKey, request.devEui);
      micValid = constantTimeEqual(joinRequestMic(jsIntKey, micInput), request.mic);
    }
    return {
      mType: request.mType,
      rejoinType: 1,
      joinEui: request.joinEui,
      devEui: request.devEui,
      rjCount1: request.rjCount1,
      mic: bytesToHex(request.mic),
      micValid,
    };
  }
  if (inputs.sNwkSIntKey !== undefined) {
    micValid = constantTimeEqual(joinRequestMic(inputs.sNwkSIntKey, micInput), request.mic);
  }
  return {
    mType: request.mType,
    rejoinType: request.rejoinType,
    netId: uint24ToHex(request.netId),
    devEui: request.devEui,
    rjCount0: request.rjCount0,
    mic: bytesToHex(request.mic),
    micValid,
  };
}

function describeJoinAccept(
  accept: EncryptedJoinAccept,
  phy: Uint8Array,
  inputs: FrameDescriptionInputs,
): FrameDescription {
  // 1.1 devices: NwkKey decrypts (answer to a JoinRequest); 1.0 devices: AppKey.
  const key = inputs.nwkKey ?? inputs.appKey;
  if (key === undefined) {
    return { mType: accept.mType, encrypted: bytesToHex(accept.encrypted), micValid: null };
  }
  const opened = openJoinAccept(phy, key);
  const { fields } = opened;
  return {
    mType: accept.mType,
    joinNonce: fields.joinNonce,
    netId: uint24ToHex(fields.netId),
    devAddr: uint32ToHex(fields.devAddr),
    dlSettings: { ...fields.dlSettings },
    rxDelay: fields.rxDelay,
    cfList: fields.cfList === undefined ? null : describeCfList(fields.cfList),
    mic: bytesToHex(opened.mic),
    micValid: joinAcceptMicValid(opened, key, inputs),
  };
}

function describeCfList(cfList: Uint8Array): JsonValue {
  try {
    const decoded = decodeCfList(cfList);
    return { ...decoded, hex: bytesToHex(cfList) } as JsonValue;
  } catch (error) {
    if (!isLorawanError(error)) throw error;
    return { hex: bytesToHex(cfList), error: error.message };
  }
}

function joinAcceptMicValid(
  opened: OpenedJoinAccept,
  key: KeyInput,
  inputs: FrameDescriptionInputs,
): boolean | null {
  let micKeys: JoinAcceptMicKeys;
  if (!opened.fields.dlSettings.optNeg) {
    micKeys = { optNeg: false, key };
  } else {
    if (
      inputs.nwkKey === undefined ||
      inputs.devEui === undefined ||
      inputs.joinEui === undefined ||
      inputs.devNonce === undefined
    ) {
      return null;
    }
    micKeys = {
      optNeg: true,
      jsIntKey: deriveJoinServerKeys(inputs.nwkKey, inputs.devEui).jsIntKey,
      joinRequestType: 'join',
      joinEui: inputs.joinEui,
      devNonce: inputs.devNonce,
    };
  }
  return verifyJoinAcceptMic(opened, micKeys);
}
