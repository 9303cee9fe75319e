import { euiToWire, writeUint16LE } from '../bytes.js';
import { LorawanError } from '../errors.js';
import { asAesKey, type KeyInput } from './aes.js';
import { aesCmac } from './cmac.js';

/**
 * MIC of a JoinRequest (key: AppKey in 1.0, NwkKey in 1.1) or RejoinRequest (types 0 and 2:
 * SNwkSIntKey; type 1: JSIntKey): CMAC(key, MHDR..last field)[0..3] (§6.2.4, 1.1 §6.2.4.4).
 */
export function joinRequestMic(key: KeyInput, msg: Uint8Array): Uint8Array {
  return aesCmac(asAesKey(key), msg).slice(0, 4);
}

/** JoinAccept MIC, LoRaWAN 1.0.x and 1.1 without OptNeg: CMAC(AppKey|NwkKey, MHDR..CFList)[0..3]. */
export function joinAcceptMic10(key: KeyInput, msg: Uint8Array): Uint8Array {
  return aesCmac(asAesKey(key), msg).slice(0, 4);
}

/** The request a JoinAccept answers, as its MIC encodes it: 0xFF for a JoinRequest. */
export type JoinRequestType = 'join' | 'rejoin0' | 'rejoin1' | 'rejoin2';

export function joinRequestTypeCode(type: JoinRequestType): number {
  switch (type) {
    case 'join':
      return 0xff;
    case 'rejoin0':
      return 0x00;
    case 'rejoin1':
      return 0x01;
    case 'rejoin2':
      return 0x02;
  }
}

/**
 * JoinAccept MIC with OptNeg set (LoRaWAN 1.1 §6.2.3):
 * CMAC(JSIntKey, JoinReqType | JoinEUI | DevNonce | MHDR..CFList)[0..3]. For a rejoin,
 * `devNonce` is the RJcount0 or RJcount1 of the RejoinRequest.
 */
export function joinAcceptMic11(
  jsIntKey: KeyInput,
  joinRequestType: JoinRequestType,
  joinEui: string,
  devNonce: number,
  msg: Uint8Array,
): Uint8Array {
  const prefix = new Uint8Array(11);
  prefix[0] = joinRequestTypeCode(joinRequestType);
  euiToWire(joinEui, prefix, 1, 'JoinEUI');
  writeUint16LE(prefix, 9, devNonce);
  const input = new Uint8Array(prefix.length + msg.length);
  input.set(prefix, 0);
  input.set(msg, prefix.length);
  return aesCmac(asAesKey(jsIntKey), input).slice(0, 4);
}

function checkJoinAcceptLength(length: number): void {
  if (length !== 17 && length !== 33) {
    throw new LorawanError(
      'INVALID_LENGTH',
      `a JoinAccept is 17 or 33 bytes (without or with CFList), got ${length}`,
    );
  }
}

/**
 * Network side of the JoinAccept "encryption" (§6.2.3): the bytes after MHDR (fields and MIC)
 * go through AES-ECB *decryption*, so that the device only needs AES encryption to read them.
 * Key: AppKey in 1.0, NwkKey in 1.1 for a JoinRequest, JSEncKey for a RejoinRequest.
 */
export function encryptJoinAccept(key: KeyInput, plaintextPhy: Uint8Array): Uint8Array {
  checkJoinAcceptLength(plaintextPhy.length);
  const out = new Uint8Array(plaintextPhy.length);
  out[0] = plaintextPhy[0]!;
  out.set(asAesKey(key).decryptBlocks(plaintextPhy.subarray(1)), 1);
  return out;
}

/** Device side: AES-ECB encryption of the bytes after MHDR gives back the plaintext fields. */
export function decryptJoinAccept(key: KeyInput, encryptedPhy: Uint8Array): Uint8Array {
  checkJoinAcceptLength(encryptedPhy.length);
  const out = new Uint8Array(encryptedPhy.length);
  out[0] = encryptedPhy[0]!;
  out.set(asAesKey(key).encryptBlocks(encryptedPhy.subarray(1)), 1);
  return out;
}
