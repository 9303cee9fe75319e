/**
 * LoRaWAN 1.1 RejoinRequest (§6.2.4): signing and checking one, and the keys of the
 * JoinAccept that answers it (§6.2.3). The frame layout itself is in phy-payload.ts.
 *
 * - Types 0 and 2 carry NetID | DevEUI | RJcount0 and are signed with SNwkSIntKey: only the
 *   network server that holds the session can check them. Type 1 carries JoinEUI | DevEUI |
 *   RJcount1 and is signed with JSIntKey: the join server checks it.
 * - The JoinAccept answering a rejoin is signed with JSIntKey over JoinReqType (the rejoin
 *   type) | JoinEUI | RJcount | MHDR..CFList, and encrypted with JSEncKey instead of NwkKey.
 * - The session keys derive as after a join (deriveSessionKeys11), with the RJcount of the
 *   RejoinRequest in the place of the DevNonce.
 */
import { asAesKey, type KeyInput } from './crypto/aes.js';
import { constantTimeEqual } from './crypto/constant-time.js';
import { type JoinRequestType, joinRequestMic } from './crypto/join.js';
import { deriveJoinServerKeys } from './crypto/session-keys.js';
import type { JoinAcceptMicKeys } from './join-accept.js';
import {
  encodeMicInput,
  encodePhyPayload,
  type RejoinRequest,
  type RejoinRequest1,
  type RejoinRequest02,
} from './phy-payload.js';

export type RejoinType = RejoinRequest['rejoinType'];

/** A RejoinRequest before it is signed. */
export type UnsignedRejoinRequest = Omit<RejoinRequest02, 'mic'> | Omit<RejoinRequest1, 'mic'>;

/** The JoinReqType a JoinAccept answering this rejoin type puts in its MIC (0x00, 0x01, 0x02). */
export function joinRequestTypeOfRejoin(rejoinType: RejoinType): JoinRequestType {
  switch (rejoinType) {
    case 0:
      return 'rejoin0';
    case 1:
      return 'rejoin1';
    case 2:
      return 'rejoin2';
  }
}

/** RJcount0 (types 0, 2) or RJcount1 (type 1): the DevNonce of the JoinAccept MIC and new keys. */
export function rejoinCounter(request: UnsignedRejoinRequest): number {
  return request.rejoinType === 1 ? request.rjCount1 : request.rjCount0;
}

/**
 * MIC of a RejoinRequest (1.1 §6.2.4.4): CMAC(key, MHDR | RejoinType | NetID or JoinEUI |
 * DevEUI | RJcount)[0..3]. `key`: SNwkSIntKey for types 0 and 2, JSIntKey for type 1.
 */
export function computeRejoinRequestMic(request: UnsignedRejoinRequest, key: KeyInput): Uint8Array {
  const micInput = encodeMicInput({ ...request, mic: new Uint8Array(4) } as RejoinRequest);
  return joinRequestMic(key, micInput);
}

/** Signs and encodes a RejoinRequest (key as for computeRejoinRequestMic). */
export function buildRejoinRequest(request: UnsignedRejoinRequest, key: KeyInput): Uint8Array {
  const mic = computeRejoinRequestMic(request, key);
  return encodePhyPayload({ ...request, mic } as RejoinRequest);
}

/**
 * Whether a decoded RejoinRequest carries the MIC `key` gives it (constant-time compare).
 * `micInput`: the bytes before the MIC as received (decodePhyPayloadWithMicInput), so that RFU
 * bits the decoder ignores stay covered; default: the fields re-encoded.
 */
export function verifyRejoinRequestMic(
  request: RejoinRequest,
  key: KeyInput,
  micInput: Uint8Array = encodeMicInput(request),
): boolean {
  return constantTimeEqual(joinRequestMic(key, micInput), request.mic);
}

/** The key that signs a RejoinRequest of this type, picked from what the caller holds. */
export function rejoinRequestMicKey(
  rejoinType: RejoinType,
  keys: { sNwkSIntKey?: KeyInput | undefined; jsIntKey?: KeyInput | undefined },
): KeyInput | undefined {
  return rejoinType === 1 ? keys.jsIntKey : keys.sNwkSIntKey;
}

/** The MIC keys and the encryption key of a LoRaWAN 1.1 (OptNeg) JoinAccept. */
export interface OptNegJoinAcceptKeys {
  micKeys: JoinAcceptMicKeys & { optNeg: true };
  /** NwkKey when answering a JoinRequest, JSEncKey when answering a RejoinRequest (§6.2.3). */
  encryptionKey: Uint8Array;
}

/**
 * Everything needed to build (join server) or open (device) a 1.1 JoinAccept with OptNeg:
 * JSIntKey/JSEncKey come from the NwkKey and DevEUI; `devNonce` is the DevNonce of a
 * JoinRequest or the RJcount0/RJcount1 of a RejoinRequest.
 */
export function optNegJoinAcceptKeys(
  nwkKey: KeyInput,
  devEui: string,
  joinEui: string,
  joinRequestType: JoinRequestType,
  devNonce: number,
): OptNegJoinAcceptKeys {
  const { jsIntKey, jsEncKey } = deriveJoinServerKeys(nwkKey, devEui);
  return {
    micKeys: { optNeg: true, jsIntKey, joinRequestType, joinEui, devNonce },
    encryptionKey: joinRequestType === 'join' ? asAesKey(nwkKey).bytes() : jsEncKey,
  };
}
