import { randomBytes, randomInt } from 'node:crypto';
import { decodePhyPayloadWithMicInput } from '../lorawan/phy-payload.js';
import type { RejoinType } from '../lorawan/rejoin-request.js';
import type { MacVersion, SessionKeys } from '../network/session.js';
import {
  type ActivationAnswerFields,
  answerHeader,
  type BackendMacVersion,
  decodeValue,
  encodeValue,
  type FailureResultCode,
  failedAnswer,
  isBackendInterfacesError,
  type JoinAns,
  type JoinReq,
  type KekRing,
  type KeyEnvelope,
  type NsAnswerHeader,
  type RejoinAns,
  type RejoinReq,
  type ResultCode,
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
      /** Whether RejoinRequests go out as RejoinReq (default false: refused here). */
      rejoins?: boolean;
    },
  ) {}

  handleJoinRequest(request: JoinRequestMessage): Promise<JoinAnswer> {
    return this.#activate(request, 'JoinReq');
  }

  /**
   * A RejoinRequest as a Backend Interfaces RejoinReq (answered by a RejoinAns), when the
   * transport carries them (`rejoins`); else refused. Types 0 and 2 arrive here checked by the
   * network (their MIC is under the SNwkSIntKey, which the join server does not hold).
   */
  async handleRejoinRequest(request: RejoinRequestMessage): Promise<JoinAnswer> {
    if (this.options.rejoins !== true) {
      return {
        result: 'JoinReqFailed',
        message: 'RejoinRequests through a join server in another process are not supported yet',
      };
    }
    return this.#activate(request, 'RejoinReq');
  }

  async #activate(
    request: JoinRequestMessage,
    messageType: 'JoinReq' | 'RejoinReq',
  ): Promise<JoinAnswer> {
    const frameType = messageType === 'JoinReq' ? 'JoinRequest' : 'RejoinRequest';
    let devEui: string;
    let rejoinType: RejoinType | undefined;
    try {
      const { payload } = decodePhyPayloadWithMicInput(request.phyPayload);
      if (payload.mType !== frameType) {
        return {
          result: 'MalformedRequest',
          message: `expected a ${frameType}, got ${payload.mType}`,
        };
      }
      devEui = payload.devEui;
      if (payload.mType === 'RejoinRequest') rejoinType = payload.rejoinType;
    } catch (error) {
      return { result: 'MalformedRequest', message: (error as Error).message };
    }
    const device = await this.options.device(devEui);
    if (device === undefined) {
      return { result: 'UnknownDevEUI', message: `no device ${devEui}`, devEui };
    }
    const activation: JoinReq | RejoinReq = {
      protocolVersion: '1.1',
      messageType,
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
    let answer: JoinAns | RejoinAns;
    try {
      answer = decodeValue(
        await this.options.send(encodeValue(activation)),
        messageType === 'JoinReq' ? 'JoinAns' : 'RejoinAns',
      );
    } catch (error) {
      return {
        result: 'JoinReqFailed',
        message: `join server unreachable or its answer is invalid: ${(error as Error).message}`,
        devEui,
      };
    }
    if (answer.transactionId !== activation.transactionId) {
      return {
        result: 'JoinReqFailed',
        message: `${answer.messageType} answers another transaction`,
        devEui,
      };
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
        ...(rejoinType === undefined ? {} : { rejoinType }),
      };
    } catch (error) {
      return {
        result: 'JoinReqFailed',
        message: isBackendInterfacesError(error)
          ? `${answer.messageType} keys refused (${error.code}): ${error.message}`
          : (error as Error).message,
        devEui,
      };
    }
  }

  #sessionKeys(answer: ActivationAnswerFields & NsAnswerHeader, macVersion: MacVersion) {
    const open = (envelope: KeyEnvelope | undefined, name: string) => {
      if (envelope === undefined) throw new Error(`the answer has no ${name}`);
      return unwrapKeyEnvelope(envelope, this.options.networkKeks);
    };
    if (answer.appSKey === undefined) throw new Error('the answer has no AppSKey envelope');
    if (answer.appSKey.kekLabel === '') {
      throw new Error(
        'the answer carries the AppSKey in clear: refused, the network must not hold it',
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
 * The join server side: answers a Backend Interfaces JoinReq (or RejoinReq: a JoinAns or
 * RejoinAns) decoded from untrusted JSON, with the local join server, the network keys wrapped
 * for the network and the AppSKey wrapped for the application role. Always returns an answer to
 * send back (failures included) and its ResultCode.
 */
export async function answerJoinReq(
  joinServer: JoinServer,
  message: unknown,
  keks: JoinAnsKeks,
): Promise<{
  answer: Record<string, unknown>;
  resultCode: ResultCode;
  accepted?: { devEui: string; sessionKeyId: string; appSKey: Uint8Array };
}> {
  let request: JoinReq | RejoinReq;
  try {
    request = decodeValue(message, ['JoinReq', 'RejoinReq']);
  } catch (error) {
    if (!isBackendInterfacesError(error)) throw error;
    return {
      answer: unreadRequestAnswer(message, error.resultCode, error.message),
      resultCode: error.resultCode,
    };
  }
  const activation: JoinRequestMessage = {
    phyPayload: request.phyPayload,
    netId: Number.parseInt(request.senderId, 16),
    devAddr: request.devAddr,
    dlSettings: { rx1DrOffset: request.dlSettings.rx1DrOffset, rx2Dr: request.dlSettings.rx2Dr },
    rxDelay: request.rxDelay,
    ...(request.cfList === undefined ? {} : { cfList: request.cfList }),
  };
  const answer =
    request.messageType === 'RejoinReq'
      ? await joinServer.handleRejoinRequest(activation)
      : await joinServer.handleJoinRequest(activation);
  if (answer.result !== 'Success') {
    return {
      answer: encodeValue(failedAnswer(request, answer.result, answer.message)),
      resultCode: answer.result,
    };
  }
  const wrapNetwork = (key: Uint8Array) => wrapKeyEnvelope(key, keks.network);
  const keys = answer.sessionKeys;
  if (keys.appSKey === undefined) throw new Error('the local join server gave no AppSKey');
  const sessionKeyId = randomBytes(16);
  const fields: ActivationAnswerFields = {
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
  const success: JoinAns | RejoinAns = {
    ...answerHeader(request),
    result: { resultCode: 'Success' },
    ...fields,
  } as JoinAns | RejoinAns;
  return {
    answer: encodeValue(success),
    resultCode: 'Success',
    accepted: {
      devEui: answer.devEui,
      sessionKeyId: Buffer.from(sessionKeyId).toString('hex'),
      appSKey: keys.appSKey,
    },
  };
}

/**
 * The failed answer to a request that could not be read (not JSON, not a JoinReq, ...): a
 * JoinAns, or a RejoinAns when the request says it is a RejoinReq, with as much of the header
 * as is readable.
 */
export function unreadRequestAnswer(
  message: unknown,
  resultCode: FailureResultCode,
  description: string,
): Record<string, unknown> {
  const rejoin =
    typeof message === 'object' &&
    message !== null &&
    (message as Record<string, unknown>)['MessageType'] === 'RejoinReq';
  return encodeValue({
    ...joinReqHeaderOf(message),
    messageType: rejoin ? 'RejoinAns' : 'JoinAns',
    result: { resultCode, description },
  } as JoinAns | RejoinAns);
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
