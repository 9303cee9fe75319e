import { constantTimeEqual } from '../lorawan/crypto/constant-time.js';
import { type JoinRequestType, joinRequestMic } from '../lorawan/crypto/join.js';
import {
  deriveJoinServerKeys,
  deriveSessionKeys10,
  deriveSessionKeys11,
} from '../lorawan/crypto/session-keys.js';
import { buildJoinAccept, type DlSettings, type JoinAcceptFields } from '../lorawan/join-accept.js';
import { decodePhyPayloadWithMicInput } from '../lorawan/phy-payload.js';
import {
  joinRequestTypeOfRejoin,
  optNegJoinAcceptKeys,
  type RejoinType,
  rejoinCounter,
  verifyRejoinRequestMic,
} from '../lorawan/rejoin-request.js';
import type { MacVersion, SessionKeys } from '../network/session.js';

/**
 * What the network server sends the join server, after LoRaWAN Backend Interfaces 1.0 JoinReq:
 * the JoinRequest as received and the parameters the network chose for the new session.
 */
export interface JoinRequestMessage {
  phyPayload: Uint8Array;
  netId: number;
  devAddr: number;
  /** RX1DROffset and RX2DR; the join server sets OptNeg from the device's MAC version. */
  dlSettings: Omit<DlSettings, 'optNeg'>;
  rxDelay: number;
  cfList?: Uint8Array;
}

/**
 * What the network server sends the join server for a LoRaWAN 1.1 RejoinRequest (after Backend
 * Interfaces 1.0 RejoinReq): the frame as received and the parameters of the new session.
 * Types 0 and 2 are signed with the SNwkSIntKey, which the join server does not hold: the network
 * server checks their MIC and RJcount0 itself and forwards only a request that passed. Type 1 is
 * signed with the JSIntKey and checked here, with its RJcount1.
 */
export type RejoinRequestMessage = JoinRequestMessage;

/** Backend Interfaces result codes the join server can answer with. */
export type JoinFailure = 'UnknownDevEUI' | 'MICFailed' | 'JoinReqFailed' | 'MalformedRequest';

export type JoinAnswer =
  | {
      result: 'Success';
      devEui: string;
      joinEui: string;
      macVersion: MacVersion;
      /** The encrypted JoinAccept to transmit. */
      phyPayload: Uint8Array;
      /**
       * Session keys. In this all-in-one build the AppSKey travels in process; the operator-blind
       * split moves it to the application role, wrapped.
       */
      sessionKeys: SessionKeys;
      joinNonce: number;
      /** Set when answering a RejoinRequest: its type (type 2 keeps the radio parameters). */
      rejoinType?: RejoinType;
    }
  | { result: JoinFailure; message: string; devEui?: string };

export interface JoinServer {
  handleJoinRequest(request: JoinRequestMessage): Promise<JoinAnswer>;
  /** LoRaWAN 1.1 RejoinRequest of any type (see RejoinRequestMessage for who checks what). */
  handleRejoinRequest(request: RejoinRequestMessage): Promise<JoinAnswer>;
}

export interface JoinDevice {
  devEui: string;
  joinEui: string;
  macVersion: MacVersion;
}

/** The storage the join server needs; the join role owns these records and root keys. */
export interface JoinServerStore {
  getDevice(devEui: string): Promise<JoinDevice | undefined>;
  getRootKeys(devEui: string): Promise<{ appKey: Uint8Array; nwkKey?: Uint8Array | undefined }>;
  nextJoinNonce(devEui: string): Promise<number>;
  recordDevNonce(devEui: string, devNonce: number): Promise<'new' | 'replayed'>;
  maxDevNonce(devEui: string): Promise<number | null>;
  /**
   * LoRaWAN 1.1 §6.2.4: RJcount1 of the last accepted type-1 RejoinRequest, null when none.
   * Optional, with recordRjCount1: a store without the pair makes the join server refuse type-1
   * rejoins, since it could not tell a replay.
   */
  lastRjCount1?(devEui: string): Promise<number | null>;
  /**
   * Keeps the RJcount1 of an accepted type-1 RejoinRequest; 'replayed' when it is not above the
   * last one kept. A compare-and-set: two copies of one request can race here.
   */
  recordRjCount1?(devEui: string, rjCount1: number): Promise<'new' | 'replayed'>;
}

/**
 * DevNonce rules per MAC version: LoRaWAN 1.0.4 and 1.1 devices count DevNonce up from 0, so a
 * value not above the last one is a replay; earlier devices send random values, so only a value
 * seen before is one.
 */
export function devNonceIsCounter(macVersion: MacVersion): boolean {
  return macVersion === '1.0.4' || macVersion === '1.1.0';
}

export class LocalJoinServer implements JoinServer {
  constructor(private readonly store: JoinServerStore) {}

  async handleJoinRequest(request: JoinRequestMessage): Promise<JoinAnswer> {
    let decoded: ReturnType<typeof decodePhyPayloadWithMicInput>;
    try {
      decoded = decodePhyPayloadWithMicInput(request.phyPayload);
    } catch (error) {
      return { result: 'MalformedRequest', message: (error as Error).message };
    }
    const { payload, micInput } = decoded;
    if (payload.mType !== 'JoinRequest') {
      return {
        result: 'MalformedRequest',
        message: `expected a JoinRequest, got ${payload.mType}`,
      };
    }
    const { devEui, joinEui, devNonce } = payload;
    const device = await this.store.getDevice(devEui);
    if (device === undefined || device.joinEui !== joinEui) {
      return {
        result: 'UnknownDevEUI',
        message: `no OTAA device ${devEui} with JoinEUI ${joinEui}`,
        devEui,
      };
    }
    const rootKeys = await this.store.getRootKeys(devEui);
    const is11 = device.macVersion === '1.1.0';
    if (is11 && rootKeys.nwkKey === undefined) {
      return {
        result: 'JoinReqFailed',
        message: `LoRaWAN 1.1 device ${devEui} has no NwkKey`,
        devEui,
      };
    }
    // 1.1 devices sign the JoinRequest with the NwkKey, 1.0 devices with the AppKey.
    const micKey = is11 ? rootKeys.nwkKey! : rootKeys.appKey;
    if (!constantTimeEqual(joinRequestMic(micKey, micInput), payload.mic)) {
      return { result: 'MICFailed', message: `JoinRequest MIC check failed for ${devEui}`, devEui };
    }
    if (devNonceIsCounter(device.macVersion)) {
      const last = await this.store.maxDevNonce(devEui);
      if (last !== null && devNonce <= last) {
        return {
          result: 'JoinReqFailed',
          message: `DevNonce ${devNonce} of ${devEui} is not above the last one (${last}): replay`,
          devEui,
        };
      }
    }
    if ((await this.store.recordDevNonce(devEui, devNonce)) === 'replayed') {
      return {
        result: 'JoinReqFailed',
        message: `DevNonce ${devNonce} of ${devEui} was already used: replay`,
        devEui,
      };
    }

    if (is11) {
      return this.#acceptOptNeg(request, device, rootKeys, 'join', devNonce);
    }
    const joinNonce = await this.store.nextJoinNonce(devEui);
    const fields = acceptFields(request, joinNonce, false);
    const keys = deriveSessionKeys10(rootKeys.appKey, joinNonce, request.netId, devNonce);
    return {
      result: 'Success',
      devEui,
      joinEui,
      macVersion: device.macVersion,
      phyPayload: buildJoinAccept(fields, { optNeg: false, key: rootKeys.appKey }, rootKeys.appKey),
      sessionKeys: { lorawan: '1.0', ...keys },
      joinNonce,
    };
  }

  /**
   * LoRaWAN 1.1 §6.2.4: answers a RejoinRequest with a JoinAccept signed with JSIntKey over
   * JoinReqType | JoinEUI | RJcount and encrypted with JSEncKey, and new session keys derived with
   * the RJcount in the place of the DevNonce. Type 1 is checked here (JSIntKey MIC, RJcount1 above
   * the last one); types 0 and 2 come checked by the network server.
   */
  async handleRejoinRequest(request: RejoinRequestMessage): Promise<JoinAnswer> {
    let decoded: ReturnType<typeof decodePhyPayloadWithMicInput>;
    try {
      decoded = decodePhyPayloadWithMicInput(request.phyPayload);
    } catch (error) {
      return { result: 'MalformedRequest', message: (error as Error).message };
    }
    const { payload, micInput } = decoded;
    if (payload.mType !== 'RejoinRequest') {
      return {
        result: 'MalformedRequest',
        message: `expected a RejoinRequest, got ${payload.mType}`,
      };
    }
    const { devEui, rejoinType } = payload;
    const device = await this.store.getDevice(devEui);
    // Types 0 and 2 carry the NetID instead of the JoinEUI: the DevEUI alone names the device.
    if (device === undefined || (payload.rejoinType === 1 && device.joinEui !== payload.joinEui)) {
      const joinEui = payload.rejoinType === 1 ? ` with JoinEUI ${payload.joinEui}` : '';
      return { result: 'UnknownDevEUI', message: `no OTAA device ${devEui}${joinEui}`, devEui };
    }
    if (device.macVersion !== '1.1.0') {
      return {
        result: 'JoinReqFailed',
        message: `device ${devEui} is LoRaWAN ${device.macVersion}: RejoinRequest is LoRaWAN 1.1 only`,
        devEui,
      };
    }
    const rootKeys = await this.store.getRootKeys(devEui);
    if (rootKeys.nwkKey === undefined) {
      return {
        result: 'JoinReqFailed',
        message: `LoRaWAN 1.1 device ${devEui} has no NwkKey`,
        devEui,
      };
    }
    const rjCount = rejoinCounter(payload);
    if (payload.rejoinType === 1) {
      const refused = await this.#checkRejoin1(payload.rjCount1, devEui, () => {
        const { jsIntKey } = deriveJoinServerKeys(rootKeys.nwkKey!, devEui);
        return verifyRejoinRequestMic(payload, jsIntKey, micInput);
      });
      if (refused !== undefined) return refused;
    }
    const answer = await this.#acceptOptNeg(
      request,
      device,
      rootKeys,
      joinRequestTypeOfRejoin(rejoinType),
      rjCount,
    );
    return answer.result === 'Success' ? { ...answer, rejoinType } : answer;
  }

  /** Type-1 rejoin: the JSIntKey MIC, then RJcount1 strictly above the last one kept. */
  async #checkRejoin1(
    rjCount1: number,
    devEui: string,
    micVerifies: () => boolean,
  ): Promise<JoinAnswer | undefined> {
    const store = this.store;
    if (store.lastRjCount1 === undefined || store.recordRjCount1 === undefined) {
      return {
        result: 'JoinReqFailed',
        message: `type-1 RejoinRequest of ${devEui} refused: this join store keeps no RJcount1, so a replay could not be told`,
        devEui,
      };
    }
    if (!micVerifies()) {
      return {
        result: 'MICFailed',
        message: `RejoinRequest type 1 MIC check failed for ${devEui}`,
        devEui,
      };
    }
    const last = await store.lastRjCount1(devEui);
    if (last !== null && rjCount1 <= last) {
      return {
        result: 'JoinReqFailed',
        message: `RJcount1 ${rjCount1} of ${devEui} is not above the last one (${last}): replay`,
        devEui,
      };
    }
    if ((await store.recordRjCount1(devEui, rjCount1)) === 'replayed') {
      return {
        result: 'JoinReqFailed',
        message: `RJcount1 ${rjCount1} of ${devEui} was already used: replay`,
        devEui,
      };
    }
    return undefined;
  }

  /**
   * The LoRaWAN 1.1 (OptNeg) answer to a JoinRequest or a RejoinRequest: a new JoinNonce, the
   * JoinAccept keyed for the request type, and the session keys (`devNonce`: the DevNonce, or the
   * RJcount of a rejoin).
   */
  async #acceptOptNeg(
    request: JoinRequestMessage,
    device: JoinDevice,
    rootKeys: { appKey: Uint8Array; nwkKey?: Uint8Array | undefined },
    joinRequestType: JoinRequestType,
    devNonce: number,
  ): Promise<JoinAnswer> {
    const { devEui, joinEui } = device;
    const nwkKey = rootKeys.nwkKey!;
    const joinNonce = await this.store.nextJoinNonce(devEui);
    const fields = acceptFields(request, joinNonce, true);
    const { micKeys, encryptionKey } = optNegJoinAcceptKeys(
      nwkKey,
      devEui,
      joinEui,
      joinRequestType,
      devNonce,
    );
    const keys = deriveSessionKeys11(nwkKey, rootKeys.appKey, joinNonce, joinEui, devNonce);
    return {
      result: 'Success',
      devEui,
      joinEui,
      macVersion: device.macVersion,
      phyPayload: buildJoinAccept(fields, micKeys, encryptionKey),
      sessionKeys: { lorawan: '1.1', ...keys },
      joinNonce,
    };
  }
}

function acceptFields(
  request: JoinRequestMessage,
  joinNonce: number,
  optNeg: boolean,
): JoinAcceptFields {
  return {
    joinNonce,
    netId: request.netId,
    devAddr: request.devAddr,
    dlSettings: { ...request.dlSettings, optNeg },
    rxDelay: request.rxDelay,
    cfList: request.cfList,
  };
}
