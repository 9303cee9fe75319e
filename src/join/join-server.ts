import { constantTimeEqual } from '../lorawan/crypto/constant-time.js';
import { joinRequestMic } from '../lorawan/crypto/join.js';
import {
  deriveJoinServerKeys,
  deriveSessionKeys10,
  deriveSessionKeys11,
} from '../lorawan/crypto/session-keys.js';
import { buildJoinAccept, type DlSettings } from '../lorawan/join-accept.js';
import { decodePhyPayloadWithMicInput } from '../lorawan/phy-payload.js';
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
    }
  | { result: JoinFailure; message: string; devEui?: string };

export interface JoinServer {
  handleJoinRequest(request: JoinRequestMessage): Promise<JoinAnswer>;
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

    const joinNonce = await this.store.nextJoinNonce(devEui);
    const fields = {
      joinNonce,
      netId: request.netId,
      devAddr: request.devAddr,
      dlSettings: { ...request.dlSettings, optNeg: is11 },
      rxDelay: request.rxDelay,
      cfList: request.cfList,
    };
    let sessionKeys: SessionKeys;
    let phyPayload: Uint8Array;
    if (is11) {
      const nwkKey = rootKeys.nwkKey!;
      const keys = deriveSessionKeys11(nwkKey, rootKeys.appKey, joinNonce, joinEui, devNonce);
      const { jsIntKey } = deriveJoinServerKeys(nwkKey, devEui);
      sessionKeys = { lorawan: '1.1', ...keys };
      phyPayload = buildJoinAccept(
        fields,
        { optNeg: true, jsIntKey, joinRequestType: 'join', joinEui, devNonce },
        nwkKey,
      );
    } else {
      const keys = deriveSessionKeys10(rootKeys.appKey, joinNonce, request.netId, devNonce);
      sessionKeys = { lorawan: '1.0', ...keys };
      phyPayload = buildJoinAccept(
        fields,
        { optNeg: false, key: rootKeys.appKey },
        rootKeys.appKey,
      );
    }
    return {
      result: 'Success',
      devEui,
      joinEui,
      macVersion: device.macVersion,
      phyPayload,
      sessionKeys,
      joinNonce,
    };
  }
}
