import { randomBytes, randomInt } from 'node:crypto';
import { decodePhyPayloadWithMicInput } from '../lorawan/phy-payload.js';
import type { MacVersion, SessionKeys } from '../network/session.js';
import {
  type BackendMacVersion,
  decodeValue,
  encodeValue,
  failedAnswer,
  isBackendInterfacesError,
  type JoinAns,
  type JoinReq,
  type KekRing,
  type KeyEnvelope,
  unwrapKeyEnvelope,
  wrapKeyEnvelope,
} from './backend-interfaces/index.js';
import type {
  JoinAnswer,
  JoinFailure,
  JoinRequestMessage,
  JoinServer,
  RejoinRequestMessage,
} from './join-server.js';

/** How a JoinReq reaches a join server in another process (the provider link, HTTP, ...). */
export type SendJoinReq = (message: Record<string, unknown>) => Promise<unknown>;

const SESSION_LIFETIME_SECONDS = 0;

function hexNetId(netId: number): string {
  return netId.toString(16).padStart(6, '0');
}

/**
 * The network side of a join server in another process: sends Backend Interfaces JoinReq and
 * reads the JoinAns. Network session keys arrive wrapped under a KEK the network shares with
 * that join server (`networkKeks`) and are unwrapped here; the AppSKey stays an envelope the
 * network cannot open (it is the application role's).
 */
export class BackendJoinServerClient implements JoinServer {
  constructor(
    private readonly options: {
      send: SendJoinReq;
      networkKeks: KekRing;
      /** The device's MAC version and JoinEUI, which the JoinRequest alone does not tell. */
      device: (devEui: string) => Promise<{ macVersion: MacVersion; joinEui: string } | undefined>;
    },
  ) {}

  async handleJoinRequest(request: JoinRequestMessage): Promise<JoinAnswer> {
    let devEui: string;
    try {
      const { payload } = decodePhyPayloadWithMicInput(request.phyPayload);
      if (payload.mType !== 'JoinRequest') {
        return {
          result: 'MalformedRequest',
          message: `expected a JoinRequest, got ${payload.mType}`,
        };
      }
      devEui = payload.devEui;
    } catch (error) {
      return { result: 'MalformedRequest', message: (error as Error).message };
    }
    const device = await this.options.device(devEui);
    if (device === undefined) {
      return { result: 'UnknownDevEUI', message: `no device ${devEui}`, devEui };
    }
    const joinReq: JoinReq = {
      protocolVersion: '1.1',
      messageType: 'JoinReq',
      senderId: hexNetId(request.netId),
      receiverId: device.joinEui,
      transactionId: randomInt(0, 2 ** 32),
      macVersion: device.macVersion as BackendMacVersion,
      phyPayload: request.phyPayload,
      devEui,
      devAddr: request.devAddr,
      dlSettings: { optNeg: false, ...request.dlSettings },
      rxDelay: request.rxDelay,
      ...(request.cfList === undefined ? {} : { cfList: request.cfList }),
    };
    let answer: JoinAns;
    try {
      answer = decodeValue(await this.options.send(encodeValue(joinReq)), 'JoinAns') as JoinAns;
    } catch (error) {
      return {
        result: 'JoinReqFailed',
        message: `join server unreachable or its answer is invalid: ${(error as Error).message}`,
        devEui,
      };
    }
    if (answer.transactionId !== joinReq.transactionId) {
      return { result: 'JoinReqFailed', message: 'JoinAns answers another transaction', devEui };
    }
    if (answer.result.resultCode !== 'Success' || !('phyPayload' in answer)) {
      return {
        result: joinFailureOf(answer.result.resultCode),
        message: answer.result.description ?? answer.result.resultCode,
        devEui,
      };
    }
    try {
      return {
        result: 'Success',
        devEui,
        joinEui: device.joinEui,
        macVersion: device.macVersion,
        phyPayload: answer.phyPayload,
        sessionKeys: this.#sessionKeys(answer, device.macVersion),
        // Not carried by JoinAns: the network only uses it in logs and events.
        joinNonce: -1,
      };
    } catch (error) {
      return {
        result: 'JoinReqFailed',
        message: isBackendInterfacesError(error)
          ? `JoinAns keys refused (${error.code}): ${error.message}`
          : (error as Error).message,
        devEui,
      };
    }
  }

  async handleRejoinRequest(_request: RejoinRequestMessage): Promise<JoinAnswer> {
    return {
      result: 'JoinReqFailed',
      message: 'RejoinRequests through a join server in another process are not supported yet',
    };
  }

  #sessionKeys(answer: Extract<JoinAns, { phyPayload: Uint8Array }>, macVersion: MacVersion) {
    const open = (envelope: KeyEnvelope | undefined, name: string) => {
      if (envelope === undefined) throw new Error(`JoinAns has no ${name}`);
      return unwrapKeyEnvelope(envelope, this.options.networkKeks);
    };
    if (answer.appSKey === undefined) throw new Error('JoinAns has no AppSKey envelope');
    if (answer.appSKey.kekLabel === '') {
      throw new Error(
        'JoinAns carries the AppSKey in clear: refused, the network must not hold it',
      );
    }
    const appSKeyEnvelope = { kekLabel: answer.appSKey.kekLabel, aesKey: answer.appSKey.aesKey };
    const keys: SessionKeys =
      macVersion === '1.1.0'
        ? {
            lorawan: '1.1',
            fNwkSIntKey: open(answer.fNwkSIntKey, 'FNwkSIntKey'),
            sNwkSIntKey: open(answer.sNwkSIntKey, 'SNwkSIntKey'),
            nwkSEncKey: open(answer.nwkSEncKey, 'NwkSEncKey'),
            appSKeyEnvelope,
          }
        : { lorawan: '1.0', nwkSKey: open(answer.nwkSKey, 'NwkSKey'), appSKeyEnvelope };
    return keys;
  }
}

function joinFailureOf(code: string): JoinFailure {
  switch (code) {
    case 'UnknownDevEUI':
    case 'MICFailed':
    case 'MalformedRequest':
      return code;
    default:
      return 'JoinReqFailed';
  }
}

export interface JoinAnsKeks {
  /** Wraps the network session keys for the network (a KEK both sides hold). */
  network: { label: string; key: Uint8Array };
  /** Wraps the AppSKey for the application role only. */
  application: { label: string; key: Uint8Array };
}

/**
 * The join server side: answers a Backend Interfaces JoinReq (decoded from untrusted JSON) with
 * the local join server, the network keys wrapped for the network and the AppSKey wrapped for
 * the application role. Always returns a JoinAns to send back (failures included).
 */
export async function answerJoinReq(
  joinServer: JoinServer,
  message: unknown,
  keks: JoinAnsKeks,
): Promise<{
  answer: Record<string, unknown>;
  accepted?: { devEui: string; sessionKeyId: string; appSKey: Uint8Array };
}> {
  let request: JoinReq;
  try {
    request = decodeValue(message, 'JoinReq') as JoinReq;
  } catch (error) {
    if (!isBackendInterfacesError(error)) throw error;
    const header = joinReqHeaderOf(message);
    return {
      answer: encodeValue({
        ...header,
        messageType: 'JoinAns',
        result: { resultCode: error.resultCode, description: error.message },
      } as JoinAns),
    };
  }
  const answer = await joinServer.handleJoinRequest({
    phyPayload: request.phyPayload,
    netId: Number.parseInt(request.senderId, 16),
    devAddr: request.devAddr,
    dlSettings: { rx1DrOffset: request.dlSettings.rx1DrOffset, rx2Dr: request.dlSettings.rx2Dr },
    rxDelay: request.rxDelay,
    ...(request.cfList === undefined ? {} : { cfList: request.cfList }),
  });
  if (answer.result !== 'Success') {
    return { answer: encodeValue(failedAnswer(request, answer.result, answer.message)) };
  }
  const wrapNetwork = (key: Uint8Array) => wrapKeyEnvelope(key, keks.network);
  const keys = answer.sessionKeys;
  if (keys.appSKey === undefined) throw new Error('the local join server gave no AppSKey');
  const sessionKeyId = randomBytes(16);
  const joinAns: JoinAns = {
    protocolVersion: request.protocolVersion,
    messageType: 'JoinAns',
    senderId: request.receiverId,
    receiverId: request.senderId,
    transactionId: request.transactionId,
    result: { resultCode: 'Success' },
    phyPayload: answer.phyPayload,
    lifetimeSeconds: SESSION_LIFETIME_SECONDS,
    ...(keys.lorawan === '1.0'
      ? { nwkSKey: wrapNetwork(keys.nwkSKey) }
      : {
          fNwkSIntKey: wrapNetwork(keys.fNwkSIntKey),
          sNwkSIntKey: wrapNetwork(keys.sNwkSIntKey),
          nwkSEncKey: wrapNetwork(keys.nwkSEncKey),
        }),
    appSKey: wrapKeyEnvelope(keys.appSKey, keks.application),
    sessionKeyId,
  };
  return {
    answer: encodeValue(joinAns),
    accepted: {
      devEui: answer.devEui,
      sessionKeyId: Buffer.from(sessionKeyId).toString('hex'),
      appSKey: keys.appSKey,
    },
  };
}

/** The header to answer a request the decoder refused with (as much of it as is readable). */
function joinReqHeaderOf(message: unknown): Record<string, unknown> {
  const fields =
    typeof message === 'object' && message !== null ? (message as Record<string, unknown>) : {};
  const text = (value: unknown, fallback: string) => (typeof value === 'string' ? value : fallback);
  const transactionId = fields['TransactionID'];
  return {
    protocolVersion: text(fields['ProtocolVersion'], '1.1') === '1.0' ? '1.0' : '1.1',
    senderId: text(fields['ReceiverID'], '0000000000000000'),
    receiverId: text(fields['SenderID'], '000000'),
    transactionId:
      typeof transactionId === 'number' && Number.isInteger(transactionId) && transactionId >= 0
        ? transactionId
        : 0,
  };
}
