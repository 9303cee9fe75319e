/**
 * The bodies of the link's downlink messages (operator-blind downlinks, issue 5), each with a
 * reader that takes untrusted JSON and returns a checked value or throws:
 * a request body that is off → `LinkAnswerError('INVALID_INPUT')` (the peer gets it as its
 * answer); an answer or a delivery that is off → `LinkProtocolError('INVALID_FIELD')`.
 *
 *   downlinkSession    provider → network  {devEui}
 *                      ← {devAddr, sessionKeyId, fCntDown, appSKey, queuedIds}
 *   queueDownlink      provider → network  {devEui, id, fPort, confirmed, sessionKeyId, fCntDown, frmPayload}
 *                      ← {queued}
 *   reencryptDownlink  network → provider  {devEui, id, devAddr, sessionKeyId, fCntDown, appSKey,
 *                                           laterFCntDownAccepted?}
 *                      ← {frmPayload, fCntDown?}
 *   withdrawDownlinks  provider → network  {devEui, ids}
 *                      ← {items: [{id, status: 'withdrawn' | 'unknown' | 'sent', fCntDown?}]}
 *   downlinkEvent      delivery, network → provider  {type: 'txack' | 'ack', devEui, time, body}
 *
 * Counters are the session's next application downlink counter (1.0.x: the shared FCntDown,
 * 1.1: AFCntDown); the AppSKey only ever travels wrapped. Bytes are base64, keys and EUIs hex.
 */
import { LinkAnswerError, LinkProtocolError } from './errors.js';

export const DOWNLINK_SESSION_METHOD = 'downlinkSession';
export const QUEUE_DOWNLINK_METHOD = 'queueDownlink';
export const REENCRYPT_DOWNLINK_METHOD = 'reencryptDownlink';
export const WITHDRAW_DOWNLINKS_METHOD = 'withdrawDownlinks';
export const DOWNLINK_EVENT_TOPIC = 'downlinkEvent';

/** The largest FRMPayload any region allows (MACPayload 250 − FHDR 7 − FPort 1). */
const MAX_FRM_PAYLOAD_BYTES = 242;
/** A queue holds a few items per device; more ids than this is not an answer to trust. */
const MAX_QUEUED_IDS = 1000;

/** The AppSKey wrapped (RFC 3394) under the provider's application KEK: 24 bytes in hex. */
export interface WrappedAppSKey {
  kekLabel: string;
  aesKey: string;
}

export interface DownlinkSessionRequest {
  devEui: string;
}

export interface DownlinkSessionAnswer {
  /** 8 hex digits. */
  devAddr: string;
  sessionKeyId: string;
  /** The counter to encrypt the first new item for; the next ones take the following ones. */
  fCntDown: number;
  appSKey: WrappedAppSKey;
  /** Ids of this device's items the network holds already (pending): not to send again. */
  queuedIds: string[];
}

export interface QueueDownlinkRequest {
  devEui: string;
  /** The provider's item id (a UUID): both sides name the item alike, in events too. */
  id: string;
  fPort: number;
  confirmed: boolean;
  sessionKeyId: string;
  fCntDown: number;
  /** base64 of the encrypted FRMPayload. */
  frmPayload: string;
}

export interface QueueDownlinkAnswer {
  /** false: the network held this id already (its payload was replaced while pending). */
  queued: boolean;
}

export interface ReencryptDownlinkRequest {
  devEui: string;
  id: string;
  devAddr: string;
  sessionKeyId: string;
  fCntDown: number;
  appSKey: WrappedAppSKey;
  /**
   * The network sends an item encrypted for a later counter, skipping the ones before: when
   * `fCntDown` encrypted another item, the provider may answer for the next free counter
   * instead (and says which). Absent: only `fCntDown` will do.
   */
  laterFCntDownAccepted?: boolean;
}

export interface ReencryptDownlinkAnswer {
  frmPayload: string;
  /** The counter it is encrypted for, when not the one asked (only if the request accepted it). */
  fCntDown?: number;
}

export interface WithdrawDownlinksRequest {
  devEui: string;
  /** The provider's item ids (1 to 1000, each once) it deleted or is deleting. */
  ids: string[];
}

/** What became of one item the provider withdrew, on the network's side. */
export type WithdrawnDownlink =
  /** The network held it pending: it never goes out (failed, "withdrawn by the provider"). */
  | { id: string; status: 'withdrawn' }
  /** The network does not hold it (it was never handed over): nothing to take back. */
  | { id: string; status: 'unknown' }
  /**
   * Transmitted already (at least once, with `fCntDown`, null when unknown): it is left as it
   * is (a confirmed one keeps waiting for its ACK, and its txack/ack events still come).
   */
  | { id: string; status: 'sent'; fCntDown: number | null };

export interface WithdrawDownlinksAnswer {
  /** One per requested id, in the request's order. */
  items: WithdrawnDownlink[];
}

export interface DownlinkEventDelivery {
  type: 'txack' | 'ack';
  devEui: string;
  time: string;
  body: Record<string, unknown>;
}

const EUI = /^[0-9a-f]{16}$/;
const DEV_ADDR = /^[0-9a-f]{8}$/;
const ITEM_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const SESSION_KEY_ID = /^[0-9a-f]{32}$/;
const WRAPPED_KEY = /^[0-9a-f]{48}$/;
const KEK_LABEL = /^[\x21-\x7e]{1,128}$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const UINT32_MAX = 0xffff_ffff;

type Refuse = (message: string) => never;

const refuseRequest: Refuse = (message) => {
  throw new LinkAnswerError('INVALID_INPUT', message);
};
const refuseAnswer: Refuse = (message) => {
  throw new LinkProtocolError('INVALID_FIELD', message);
};

/** Reads the fields of one message, refusing the first that is off. */
class Fields {
  readonly #value: Record<string, unknown>;
  constructor(
    readonly what: string,
    body: unknown,
    readonly refuse: Refuse,
  ) {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      refuse(`${what}: the body must be an object`);
    }
    this.#value = body as Record<string, unknown>;
  }

  text(name: string, pattern: RegExp): string {
    const value = this.#value[name];
    if (typeof value !== 'string' || !pattern.test(value)) {
      this.refuse(`${this.what}: ${name} is missing or malformed`);
    }
    return value as string;
  }

  integer(name: string, min: number, max: number): number {
    const value = this.#value[name];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      this.refuse(`${this.what}: ${name} must be an integer from ${min} to ${max}`);
    }
    return value as number;
  }

  boolean(name: string): boolean {
    const value = this.#value[name];
    if (typeof value !== 'boolean') this.refuse(`${this.what}: ${name} must be true or false`);
    return value as boolean;
  }

  payload(name: string): string {
    const value = this.text(name, BASE64);
    if (value.length % 4 !== 0 || Buffer.from(value, 'base64').length > MAX_FRM_PAYLOAD_BYTES) {
      this.refuse(`${this.what}: ${name} must be base64 of at most ${MAX_FRM_PAYLOAD_BYTES} bytes`);
    }
    return value;
  }

  wrappedKey(name: string): WrappedAppSKey {
    const inner = new Fields(`${this.what}.${name}`, this.#value[name], this.refuse);
    return {
      kekLabel: inner.text('kekLabel', KEK_LABEL),
      aesKey: inner.text('aesKey', WRAPPED_KEY),
    };
  }

  ids(name: string): string[] {
    const value = this.#value[name];
    if (
      !Array.isArray(value) ||
      value.length > MAX_QUEUED_IDS ||
      !value.every((id) => typeof id === 'string' && ITEM_ID.test(id))
    ) {
      this.refuse(`${this.what}: ${name} must be a list of item ids`);
    }
    return value as string[];
  }

  /** true or false, or undefined when absent. */
  optionalBoolean(name: string): boolean | undefined {
    return this.#value[name] === undefined ? undefined : this.boolean(name);
  }

  /** An integer in range, or null when absent or null. */
  optionalInteger(name: string, min: number, max: number): number | null {
    const value = this.#value[name];
    return value === undefined || value === null ? null : this.integer(name, min, max);
  }

  list(name: string): unknown[] {
    const value = this.#value[name];
    if (!Array.isArray(value) || value.length > MAX_QUEUED_IDS) {
      this.refuse(`${this.what}: ${name} must be a list of at most ${MAX_QUEUED_IDS} entries`);
    }
    return value as unknown[];
  }

  object(name: string): Record<string, unknown> {
    const value = this.#value[name];
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      this.refuse(`${this.what}: ${name} must be an object`);
    }
    return value as Record<string, unknown>;
  }
}

export function readDownlinkSessionRequest(body: unknown): DownlinkSessionRequest {
  return { devEui: new Fields(DOWNLINK_SESSION_METHOD, body, refuseRequest).text('devEui', EUI) };
}

export function readDownlinkSessionAnswer(body: unknown): DownlinkSessionAnswer {
  const f = new Fields(`${DOWNLINK_SESSION_METHOD} answer`, body, refuseAnswer);
  return {
    devAddr: f.text('devAddr', DEV_ADDR),
    sessionKeyId: f.text('sessionKeyId', SESSION_KEY_ID),
    fCntDown: f.integer('fCntDown', 0, UINT32_MAX),
    appSKey: f.wrappedKey('appSKey'),
    queuedIds: f.ids('queuedIds'),
  };
}

export function readQueueDownlinkRequest(body: unknown): QueueDownlinkRequest {
  const f = new Fields(QUEUE_DOWNLINK_METHOD, body, refuseRequest);
  return {
    devEui: f.text('devEui', EUI),
    id: f.text('id', ITEM_ID),
    // LoRaWAN 1.0.4 §4.3.2: 0 carries MAC commands only, 224 is the test port.
    fPort: f.integer('fPort', 1, 223),
    confirmed: f.boolean('confirmed'),
    sessionKeyId: f.text('sessionKeyId', SESSION_KEY_ID),
    fCntDown: f.integer('fCntDown', 0, UINT32_MAX),
    frmPayload: f.payload('frmPayload'),
  };
}

export function readQueueDownlinkAnswer(body: unknown): QueueDownlinkAnswer {
  return {
    queued: new Fields(`${QUEUE_DOWNLINK_METHOD} answer`, body, refuseAnswer).boolean('queued'),
  };
}

export function readReencryptDownlinkRequest(body: unknown): ReencryptDownlinkRequest {
  const f = new Fields(REENCRYPT_DOWNLINK_METHOD, body, refuseRequest);
  return {
    devEui: f.text('devEui', EUI),
    id: f.text('id', ITEM_ID),
    devAddr: f.text('devAddr', DEV_ADDR),
    sessionKeyId: f.text('sessionKeyId', SESSION_KEY_ID),
    fCntDown: f.integer('fCntDown', 0, UINT32_MAX),
    appSKey: f.wrappedKey('appSKey'),
    ...(f.optionalBoolean('laterFCntDownAccepted') === true ? { laterFCntDownAccepted: true } : {}),
  };
}

/** The answer, checked against the request: a later counter only if the request accepted one. */
export function readReencryptDownlinkAnswer(
  body: unknown,
  request: Pick<ReencryptDownlinkRequest, 'fCntDown' | 'laterFCntDownAccepted'>,
): ReencryptDownlinkAnswer {
  const what = `${REENCRYPT_DOWNLINK_METHOD} answer`;
  const f = new Fields(what, body, refuseAnswer);
  const frmPayload = f.payload('frmPayload');
  const fCntDown = f.optionalInteger('fCntDown', 0, UINT32_MAX);
  if (fCntDown === null || fCntDown === request.fCntDown) return { frmPayload };
  if (request.laterFCntDownAccepted !== true || fCntDown < request.fCntDown) {
    refuseAnswer(`${what}: encrypted for FCntDown ${fCntDown}, ${request.fCntDown} was asked`);
  }
  return { frmPayload, fCntDown };
}

export function readWithdrawDownlinksRequest(body: unknown): WithdrawDownlinksRequest {
  const f = new Fields(WITHDRAW_DOWNLINKS_METHOD, body, refuseRequest);
  const devEui = f.text('devEui', EUI);
  const ids = f.ids('ids');
  if (ids.length === 0 || new Set(ids).size !== ids.length) {
    refuseRequest(
      `${WITHDRAW_DOWNLINKS_METHOD}: ids must name 1 to ${MAX_QUEUED_IDS} items, each once`,
    );
  }
  return { devEui, ids };
}

/** The answer, checked against the request: every id answered once, in order. */
export function readWithdrawDownlinksAnswer(
  body: unknown,
  request: WithdrawDownlinksRequest,
): WithdrawDownlinksAnswer {
  const what = `${WITHDRAW_DOWNLINKS_METHOD} answer`;
  const value = new Fields(what, body, refuseAnswer).list('items');
  if (value.length !== request.ids.length) {
    refuseAnswer(`${what}: ${value.length} items for ${request.ids.length} ids`);
  }
  const items = value.map((entry, index): WithdrawnDownlink => {
    const f = new Fields(`${what}.items[${index}]`, entry, refuseAnswer);
    const id = f.text('id', ITEM_ID);
    if (id !== request.ids[index])
      refuseAnswer(`${what}: item ${index} is not ${request.ids[index]}`);
    const status = f.text('status', /^(withdrawn|unknown|sent)$/);
    if (status !== 'sent') return { id, status: status as 'withdrawn' | 'unknown' };
    return { id, status, fCntDown: f.optionalInteger('fCntDown', 0, UINT32_MAX) };
  });
  return { items };
}

export function readDownlinkEventDelivery(body: unknown): DownlinkEventDelivery {
  const f = new Fields(DOWNLINK_EVENT_TOPIC, body, refuseAnswer);
  const type = f.text('type', /^(txack|ack)$/) as 'txack' | 'ack';
  return {
    type,
    devEui: f.text('devEui', EUI),
    time: f.text('time', /^\d{4}-\d\d-\d\dT[\d:.]+Z$/),
    body: f.object('body'),
  };
}
