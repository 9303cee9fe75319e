import { euiToWire, writeUint16LE, writeUint24LE } from '../bytes.js';
import { asAesKey, type KeyInput } from './aes.js';

export interface SessionKeys10 {
  nwkSKey: Uint8Array;
  appSKey: Uint8Array;
}

export interface SessionKeys11 {
  fNwkSIntKey: Uint8Array;
  sNwkSIntKey: Uint8Array;
  nwkSEncKey: Uint8Array;
  appSKey: Uint8Array;
}

export interface JoinServerKeys {
  jsIntKey: Uint8Array;
  jsEncKey: Uint8Array;
}

function deriveKey(key: KeyInput, block: Uint8Array, type: number): Uint8Array {
  block[0] = type;
  return Uint8Array.from(asAesKey(key).encryptBlocks(block));
}

/**
 * LoRaWAN 1.0.x session keys (§6.2.5): AES(AppKey, 0x01|0x02 | JoinNonce | NetID | DevNonce | pad).
 * A 1.1 device that joined without OptNeg derives the same way with its NwkKey as the root key,
 * and uses the one network key as FNwkSIntKey, SNwkSIntKey and NwkSEncKey.
 */
export function deriveSessionKeys10(
  appKey: KeyInput,
  joinNonce: number,
  netId: number,
  devNonce: number,
): SessionKeys10 {
  const block = new Uint8Array(16);
  writeUint24LE(block, 1, joinNonce);
  writeUint24LE(block, 4, netId);
  writeUint16LE(block, 7, devNonce);
  return { nwkSKey: deriveKey(appKey, block, 0x01), appSKey: deriveKey(appKey, block, 0x02) };
}

/**
 * LoRaWAN 1.1 session keys with OptNeg (§6.2.5.2): network keys from the NwkKey, the AppSKey from
 * the AppKey, each AES(root, type | JoinNonce | JoinEUI | DevNonce | pad). After a
 * RejoinRequest, `devNonce` is its RJcount0 (types 0, 2) or RJcount1 (type 1).
 */
export function deriveSessionKeys11(
  nwkKey: KeyInput,
  appKey: KeyInput,
  joinNonce: number,
  joinEui: string,
  devNonce: number,
): SessionKeys11 {
  const block = new Uint8Array(16);
  writeUint24LE(block, 1, joinNonce);
  euiToWire(joinEui, block, 4, 'JoinEUI');
  writeUint16LE(block, 12, devNonce);
  return {
    fNwkSIntKey: deriveKey(nwkKey, block, 0x01),
    appSKey: deriveKey(appKey, block, 0x02),
    sNwkSIntKey: deriveKey(nwkKey, block, 0x03),
    nwkSEncKey: deriveKey(nwkKey, block, 0x04),
  };
}

/** JSIntKey and JSEncKey (LoRaWAN 1.1 §6.1.1.3): AES(NwkKey, 0x06|0x05 | DevEUI | pad). */
export function deriveJoinServerKeys(nwkKey: KeyInput, devEui: string): JoinServerKeys {
  const block = new Uint8Array(16);
  euiToWire(devEui, block, 1, 'DevEUI');
  return { jsIntKey: deriveKey(nwkKey, block, 0x06), jsEncKey: deriveKey(nwkKey, block, 0x05) };
}
