/**
 * LoRaWAN Backend Interfaces (TS002 1.0 and 1.1) messages between the network and join roles
 * (JoinReq/JoinAns, RejoinReq/RejoinAns, HomeNSReq/HomeNSAns) and between the application and
 * join roles (AppSKeyReq/AppSKeyAns), as a pure JSON codec.
 *
 * The wire uses the specification's field names (`PHYPayload`, `DevEUI`, `SNwkSIntKey`, ...);
 * the typed values use Galet's names for the same things (`phyPayload`, `devEui`,
 * `sNwkSIntKey`, ...), each documented with its wire name. Inside: EUIs and NSIDs are lower-case
 * big-endian hex strings, DevAddr and NetID numbers (as in `lorawan/`), opaque bytes
 * `Uint8Array`. SenderID and ReceiverID stay strings: they carry a NetID, a JoinEUI or an AS-ID
 * depending on who is talking.
 *
 * `decode` reads untrusted JSON: whatever it is given, it returns a valid message or throws a
 * `BackendInterfacesError`, nothing else. `encode` accepts exactly the values `decode` produces
 * (canonical: lower-case hex, no empty optional fields) and throws the same error otherwise, so
 * `decode(encode(x))` deep-equals `x` for every `x` that `encode` accepts.
 */
import { bytesToHex } from '../../lorawan/bytes.js';
import type { DlSettings } from '../../lorawan/join-accept.js';

// ---------------------------------------------------------------------------------------------
// Vocabulary

export type ProtocolVersion = '1.0' | '1.1';
export const PROTOCOL_VERSIONS: readonly ProtocolVersion[] = ['1.0', '1.1'];

export type RequestType = 'JoinReq' | 'RejoinReq' | 'AppSKeyReq' | 'HomeNSReq';
export type AnswerType = 'JoinAns' | 'RejoinAns' | 'AppSKeyAns' | 'HomeNSAns';
/** The Backend Interfaces message types this codec handles (roaming and profiles are not here). */
export type MessageType = RequestType | AnswerType;
export const MESSAGE_TYPES: readonly MessageType[] = [
  'JoinReq',
  'JoinAns',
  'RejoinReq',
  'RejoinAns',
  'AppSKeyReq',
  'AppSKeyAns',
  'HomeNSReq',
  'HomeNSAns',
];

/** The answer type of each request type. */
export interface AnswerTypes {
  JoinReq: 'JoinAns';
  RejoinReq: 'RejoinAns';
  AppSKeyReq: 'AppSKeyAns';
  HomeNSReq: 'HomeNSAns';
}
const ANSWER_TYPES: AnswerTypes = {
  JoinReq: 'JoinAns',
  RejoinReq: 'RejoinAns',
  AppSKeyReq: 'AppSKeyAns',
  HomeNSReq: 'HomeNSAns',
};

/** `Result.ResultCode` values, as the specification spells them. */
export type ResultCode =
  | 'Success'
  | 'MICFailed'
  | 'JoinReqFailed'
  | 'NoRoamingAgreement'
  | 'DevRoamingDisallowed'
  | 'RoamingActDisallowed'
  | 'ActivationDisallowed'
  | 'UnknownDevEUI'
  | 'UnknownDevAddr'
  | 'UnknownSender'
  | 'UnknownReceiver'
  /** The specification's own spelling of UnknownReceiver; peers send it, so it is accepted. */
  | 'UnkownReceiver'
  | 'Deferred'
  | 'XmitFailed'
  | 'InvalidFPort'
  | 'InvalidProtocolVersion'
  | 'StaleDeviceProfile'
  | 'MalformedRequest'
  | 'FrameSizeError'
  | 'Other';
export type FailureResultCode = Exclude<ResultCode, 'Success'>;
export const RESULT_CODES: readonly ResultCode[] = [
  'Success',
  'MICFailed',
  'JoinReqFailed',
  'NoRoamingAgreement',
  'DevRoamingDisallowed',
  'RoamingActDisallowed',
  'ActivationDisallowed',
  'UnknownDevEUI',
  'UnknownDevAddr',
  'UnknownSender',
  'UnknownReceiver',
  'UnkownReceiver',
  'Deferred',
  'XmitFailed',
  'InvalidFPort',
  'InvalidProtocolVersion',
  'StaleDeviceProfile',
  'MalformedRequest',
  'FrameSizeError',
  'Other',
];

/**
 * `MACVersion` of the end device as peers write it: some write "1.1", others "1.1.0" (and "1.0"
 * or "1.0.0"). Kept verbatim so an answer can echo what the request said.
 */
export type BackendMacVersion =
  | '1.0'
  | '1.0.0'
  | '1.0.1'
  | '1.0.2'
  | '1.0.3'
  | '1.0.4'
  | '1.1'
  | '1.1.0';
export const BACKEND_MAC_VERSIONS: readonly BackendMacVersion[] = [
  '1.0',
  '1.0.0',
  '1.0.1',
  '1.0.2',
  '1.0.3',
  '1.0.4',
  '1.1',
  '1.1.0',
];

// ---------------------------------------------------------------------------------------------
// Errors

export type BackendInterfacesErrorCode =
  /** Not JSON, not an object, a required field missing, or a field of the wrong JSON type. */
  | 'MalformedRequest'
  /** A field present with the right JSON type but a value that is not valid. */
  | 'InvalidField'
  /** ProtocolVersion is neither "1.0" nor "1.1". */
  | 'UnsupportedVersion'
  /** MessageType is not one this codec handles. */
  | 'UnsupportedMessageType'
  /** A valid message, but not of the type the caller expected here. */
  | 'UnexpectedMessageType'
  /** KeyEnvelope: no KEK is known under the envelope's KEKLabel. */
  | 'UnknownKEK'
  /** KeyEnvelope: the RFC 3394 integrity check failed (wrong KEK or altered envelope). */
  | 'KeyUnwrapFailed'
  /** KeyEnvelope: a key in clear (empty KEKLabel) where the caller did not allow one. */
  | 'ClearKeyRefused'
  /** KeyEnvelope: a key or KEK of the wrong length, or an unusable KEKLabel. */
  | 'InvalidKey';

/**
 * The one error this module throws for bad input. `field` names the wire field at fault
 * (`JoinAns.SNwkSIntKey.AESKey`) when there is one; messages never contain key material.
 */
export class BackendInterfacesError extends Error {
  override readonly name = 'BackendInterfacesError';
  constructor(
    readonly code: BackendInterfacesErrorCode,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }

  /** The ResultCode a receiver answers with when this error rejected a request. */
  get resultCode(): FailureResultCode {
    return RESULT_CODE_OF_ERROR[this.code];
  }
}

const RESULT_CODE_OF_ERROR: Record<BackendInterfacesErrorCode, FailureResultCode> = {
  MalformedRequest: 'MalformedRequest',
  InvalidField: 'MalformedRequest',
  UnsupportedMessageType: 'MalformedRequest',
  UnexpectedMessageType: 'MalformedRequest',
  UnsupportedVersion: 'InvalidProtocolVersion',
  UnknownKEK: 'Other',
  KeyUnwrapFailed: 'Other',
  ClearKeyRefused: 'Other',
  InvalidKey: 'Other',
};

export function isBackendInterfacesError(error: unknown): error is BackendInterfacesError {
  return error instanceof BackendInterfacesError;
}

// ---------------------------------------------------------------------------------------------
// Typed messages

/**
 * A session key as it travels between roles (wire: `{KEKLabel, AESKey}`). With a KEKLabel,
 * `aesKey` is the 24-byte RFC 3394 wrap of the 16-byte key under the KEK of that label; with an
 * empty KEKLabel it is the key itself, in clear. See key-envelope.ts to seal and open one.
 */
export interface KeyEnvelope {
  /** KEKLabel */
  kekLabel: string;
  /** AESKey */
  aesKey: Uint8Array;
}

export interface Result<C extends ResultCode = ResultCode> {
  /** ResultCode */
  resultCode: C;
  /** Description (never empty when present). */
  description?: string;
}
export type SuccessResult = Result<'Success'>;
export type FailureResult = Result<FailureResultCode>;

/** Header fields every message carries. */
export interface MessageHeader {
  /** ProtocolVersion */
  protocolVersion: ProtocolVersion;
  /** SenderID: a NetID (6 hex digits), a JoinEUI (16) or an AS-ID, by role. */
  senderId: string;
  /** ReceiverID, same forms as senderId. */
  receiverId: string;
  /** TransactionID: 32-bit, chosen by the requester, echoed by the answer. */
  transactionId: number;
  /** SenderToken: opaque, echoed as the answer's ReceiverToken. */
  senderToken?: Uint8Array;
  /** ReceiverToken */
  receiverToken?: Uint8Array;
}

/** Network server to join server: SenderID is the NetID, ReceiverID the JoinEUI. */
export interface NsRequestHeader extends MessageHeader {
  /** SenderNSID (Backend Interfaces 1.1 only): the network server's NSID, an EUI-64. */
  senderNsId?: string;
}

/** Join server to network server: SenderID is the JoinEUI, ReceiverID the NetID. */
export interface NsAnswerHeader extends MessageHeader {
  /** ReceiverNSID (Backend Interfaces 1.1 only): the requesting network server's NSID. */
  receiverNsId?: string;
}

/** JoinReq and RejoinReq carry the same fields. */
export interface ActivationRequestFields {
  /** MACVersion of the end device. */
  macVersion: BackendMacVersion;
  /** PHYPayload: the JoinRequest or RejoinRequest as received. */
  phyPayload: Uint8Array;
  /** DevEUI */
  devEui: string;
  /** DevAddr the network assigned for the new session (wire: 8 hex digits). */
  devAddr: number;
  /** DLSettings (wire: one byte in hex). */
  dlSettings: DlSettings;
  /** RxDelay, 0-15, as in the JoinAccept. */
  rxDelay: number;
  /** CFList (16 bytes), when the network sends one. */
  cfList?: Uint8Array;
}

export interface JoinReq extends NsRequestHeader, ActivationRequestFields {
  messageType: 'JoinReq';
}

export interface RejoinReq extends NsRequestHeader, ActivationRequestFields {
  messageType: 'RejoinReq';
}

/**
 * What a successful JoinAns or RejoinAns carries: either NwkSKey (LoRaWAN 1.0.x device) or all
 * three of SNwkSIntKey, FNwkSIntKey and NwkSEncKey (1.1), and AppSKey, SessionKeyID or both.
 */
export interface ActivationAnswerFields {
  /** PHYPayload: the encrypted JoinAccept to transmit. */
  phyPayload: Uint8Array;
  /** Lifetime of the session, in seconds. */
  lifetimeSeconds: number;
  /** SNwkSIntKey */
  sNwkSIntKey?: KeyEnvelope;
  /** FNwkSIntKey */
  fNwkSIntKey?: KeyEnvelope;
  /** NwkSEncKey */
  nwkSEncKey?: KeyEnvelope;
  /** NwkSKey */
  nwkSKey?: KeyEnvelope;
  /** AppSKey, wrapped for the application server. */
  appSKey?: KeyEnvelope;
  /** SessionKeyID: lets the application server fetch the AppSKey (AppSKeyReq). */
  sessionKeyId?: Uint8Array;
}

export interface JoinAnsSuccess extends NsAnswerHeader, ActivationAnswerFields {
  messageType: 'JoinAns';
  result: SuccessResult;
}
/** A failed answer carries only its header and Result. */
export interface JoinAnsFailure extends NsAnswerHeader {
  messageType: 'JoinAns';
  result: FailureResult;
}
export type JoinAns = JoinAnsSuccess | JoinAnsFailure;

export interface RejoinAnsSuccess extends NsAnswerHeader, ActivationAnswerFields {
  messageType: 'RejoinAns';
  result: SuccessResult;
}
export interface RejoinAnsFailure extends NsAnswerHeader {
  messageType: 'RejoinAns';
  result: FailureResult;
}
export type RejoinAns = RejoinAnsSuccess | RejoinAnsFailure;

/** Application server to join server: SenderID is the AS-ID, ReceiverID the JoinEUI. */
export interface AppSKeyReq extends MessageHeader {
  messageType: 'AppSKeyReq';
  /** DevEUI */
  devEui: string;
  /** SessionKeyID from the JoinAns. */
  sessionKeyId: Uint8Array;
}

export interface AppSKeyAnsSuccess extends MessageHeader {
  messageType: 'AppSKeyAns';
  result: SuccessResult;
  /** DevEUI */
  devEui: string;
  /** AppSKey, wrapped with the application server's KEK. */
  appSKey: KeyEnvelope;
  /** SessionKeyID */
  sessionKeyId: Uint8Array;
}
export interface AppSKeyAnsFailure extends MessageHeader {
  messageType: 'AppSKeyAns';
  result: FailureResult;
}
export type AppSKeyAns = AppSKeyAnsSuccess | AppSKeyAnsFailure;

/** Which network is the device's home network (asked of the join server by DevEUI). */
export interface HomeNSReq extends NsRequestHeader {
  messageType: 'HomeNSReq';
  /** DevEUI */
  devEui: string;
}

export interface HomeNSAnsSuccess extends NsAnswerHeader {
  messageType: 'HomeNSAns';
  result: SuccessResult;
  /** HNetID: NetID of the home network (wire: 6 hex digits). */
  hNetId: number;
  /** HNSID (Backend Interfaces 1.1 only): NSID of the home network server, an EUI-64. */
  hNsId?: string;
}
export interface HomeNSAnsFailure extends NsAnswerHeader {
  messageType: 'HomeNSAns';
  result: FailureResult;
}
export type HomeNSAns = HomeNSAnsSuccess | HomeNSAnsFailure;

export type BackendRequest = JoinReq | RejoinReq | AppSKeyReq | HomeNSReq;
export type BackendAnswer = JoinAns | RejoinAns | AppSKeyAns | HomeNSAns;
export type BackendMessage = BackendRequest | BackendAnswer;
export type MessageOf<T extends MessageType> = Extract<BackendMessage, { messageType: T }>;
export type FailedAnswerOf<T extends AnswerType> = Extract<MessageOf<T>, { result: FailureResult }>;

// ---------------------------------------------------------------------------------------------
// Limits: a hostile peer cannot make the decoder hold more than this.

/** Longest message text `decode` reads (characters). */
export const MAX_MESSAGE_LENGTH = 64 * 1024;
const MAX_PHY_PAYLOAD_BYTES = 255;
const MAX_SESSION_KEY_ID_BYTES = 2048;
const MAX_TOKEN_BYTES = 1024;
const MAX_ID_LENGTH = 256;
export const MAX_KEK_LABEL_LENGTH = 256;
const MAX_DESCRIPTION_LENGTH = 4096;
const CFLIST_BYTES = 16;
const SESSION_KEY_BYTES = 16;
/** RFC 3394 output for a 16-byte key: the key plus an 8-byte integrity block. */
const WRAPPED_SESSION_KEY_BYTES = 24;

// ---------------------------------------------------------------------------------------------
// Field codecs. `read` takes a wire value (decode side: a wrong JSON type is MalformedRequest);
// `write` takes a typed value (encode side: anything not canonical is InvalidField).

interface Codec<T> {
  read(wire: unknown, name: string): T;
  write(value: unknown, name: string): unknown;
}

type Side = 'decode' | 'encode';

function malformed(name: string, reason: string): never {
  throw new BackendInterfacesError('MalformedRequest', `${name} ${reason}`, name);
}

function invalid(name: string, reason: string): never {
  throw new BackendInterfacesError('InvalidField', `${name} ${reason}`, name);
}

function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (value instanceof Uint8Array) return 'bytes';
  return `a ${typeof value}`;
}

function wrongType(side: Side, name: string, expected: string, value: unknown): never {
  const reason = `must be ${expected}, got ${describeType(value)}`;
  return side === 'decode' ? malformed(name, reason) : invalid(name, reason);
}

type WireObject = Record<string, unknown>;

function isObject(value: unknown): value is WireObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** An own property only: an inherited one (a crafted prototype) is never read. */
function own(object: WireObject, key: string): unknown {
  return Object.hasOwn(object, key) ? object[key] : undefined;
}

/** A short, quoted sample of a non-secret value for an error message. */
function sample(value: string): string {
  return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
}

const HEX = /^[0-9a-fA-F]*$/;

function stringCodec(options: {
  what: string;
  minLength: number;
  maxLength: number;
  pattern?: RegExp;
}): Codec<string> {
  const check = (side: Side, value: unknown, name: string): string => {
    if (typeof value !== 'string') return wrongType(side, name, 'a string', value);
    if (value.length < options.minLength || value.length > options.maxLength) {
      invalid(
        name,
        `must be ${options.minLength} to ${options.maxLength} characters, got ${value.length}`,
      );
    }
    if (options.pattern !== undefined && !options.pattern.test(value)) {
      invalid(name, `must be ${options.what}`);
    }
    return value;
  };
  return {
    read: (wire, name) => check('decode', wire, name),
    write: (value, name) => check('encode', value, name),
  };
}

/** Opaque bytes as hex (either case on the wire; lower case written). */
function bytesCodec(minBytes: number, maxBytes: number): Codec<Uint8Array> {
  const range = minBytes === maxBytes ? `${minBytes} bytes` : `${minBytes} to ${maxBytes} bytes`;
  return {
    read(wire, name) {
      if (typeof wire !== 'string') return wrongType('decode', name, 'a hex string', wire);
      if (wire.length > maxBytes * 2 || wire.length < minBytes * 2) {
        invalid(name, `must be ${range} (${wire.length} hex digits)`);
      }
      if (wire.length % 2 !== 0) invalid(name, 'has an odd number of hex digits');
      if (!HEX.test(wire)) invalid(name, 'contains a character that is not a hex digit');
      return new Uint8Array(Buffer.from(wire, 'hex'));
    },
    write(value, name) {
      if (!(value instanceof Uint8Array)) return wrongType('encode', name, 'a Uint8Array', value);
      if (value.length < minBytes || value.length > maxBytes) {
        invalid(name, `must be ${range}, got ${value.length}`);
      }
      return bytesToHex(value);
    },
  };
}

/** A fixed-length identifier as hex text (EUI-64, NetID): lower case inside. */
function hexIdCodec(bytes: number, what: string): Codec<string> {
  const wirePattern = new RegExp(`^[0-9a-fA-F]{${bytes * 2}}$`);
  const canonical = new RegExp(`^[0-9a-f]{${bytes * 2}}$`);
  return {
    read(wire, name) {
      if (typeof wire !== 'string') return wrongType('decode', name, `${what} as hex`, wire);
      if (!wirePattern.test(wire)) invalid(name, `must be ${what}: ${bytes * 2} hex digits`);
      return wire.toLowerCase();
    },
    write(value, name) {
      if (typeof value !== 'string') return wrongType('encode', name, `${what} as hex`, value);
      if (!canonical.test(value)) {
        invalid(name, `must be ${what}: ${bytes * 2} lower-case hex digits`);
      }
      return value;
    },
  };
}

/** A number carried as fixed-width big-endian hex (DevAddr, NetID). */
function hexNumberCodec(bytes: number, what: string): Codec<number> {
  const wirePattern = new RegExp(`^[0-9a-fA-F]{${bytes * 2}}$`);
  const max = 2 ** (bytes * 8) - 1;
  return {
    read(wire, name) {
      if (typeof wire !== 'string') return wrongType('decode', name, `${what} as hex`, wire);
      if (!wirePattern.test(wire)) invalid(name, `must be ${what}: ${bytes * 2} hex digits`);
      return Number.parseInt(wire, 16);
    },
    write(value, name) {
      if (typeof value !== 'number') return wrongType('encode', name, 'a number', value);
      if (!Number.isInteger(value) || value < 0 || value > max) {
        invalid(name, `must be an integer from 0 to ${max}`);
      }
      return value.toString(16).padStart(bytes * 2, '0');
    },
  };
}

function uintCodec(max: number): Codec<number> {
  const check = (side: Side, value: unknown, name: string): number => {
    if (typeof value !== 'number') return wrongType(side, name, 'a number', value);
    if (!Number.isInteger(value) || value < 0 || value > max) {
      invalid(name, `must be an integer from 0 to ${max}`);
    }
    return value;
  };
  return {
    read: (wire, name) => check('decode', wire, name),
    write: (value, name) => check('encode', value, name),
  };
}

function enumCodec<T extends string>(values: readonly T[]): Codec<T> {
  const allowed = new Set<string>(values);
  const check = (side: Side, value: unknown, name: string): T => {
    if (typeof value !== 'string') return wrongType(side, name, 'a string', value);
    if (!allowed.has(value)) invalid(name, `is not a known value: ${sample(value)}`);
    return value as T;
  };
  return {
    read: (wire, name) => check('decode', wire, name),
    write: (value, name) => check('encode', value, name),
  };
}

function checkKeys(value: WireObject, allowed: ReadonlySet<string>, name: string): void {
  for (const key of Object.keys(value)) {
    if (!allowed.has(key) && value[key] !== undefined) {
      invalid(name, `has no field ${sample(key)}`);
    }
  }
}

// DLSettings (LoRaWAN §6.2.3): bit 7 OptNeg (1.1; RFU in 1.0), bits 6-4 RX1DRoffset,
// bits 3-0 RX2DataRate. Every byte value reads back to itself.
const DL_SETTINGS_KEYS = new Set(['optNeg', 'rx1DrOffset', 'rx2Dr']);
const dlSettingsCodec: Codec<DlSettings> = {
  read(wire, name) {
    const byte = bytesCodec(1, 1).read(wire, name)[0]!;
    return { optNeg: (byte & 0x80) !== 0, rx1DrOffset: (byte >>> 4) & 0x07, rx2Dr: byte & 0x0f };
  },
  write(value, name) {
    if (!isObject(value)) return wrongType('encode', name, 'an object', value);
    checkKeys(value, DL_SETTINGS_KEYS, name);
    const { optNeg, rx1DrOffset, rx2Dr } = value;
    if (typeof optNeg !== 'boolean') invalid(`${name}.optNeg`, 'must be a boolean');
    uintCodec(7).write(rx1DrOffset, `${name}.rx1DrOffset`);
    uintCodec(15).write(rx2Dr, `${name}.rx2Dr`);
    const byte = (optNeg ? 0x80 : 0) | ((rx1DrOffset as number) << 4) | (rx2Dr as number);
    return byte.toString(16).padStart(2, '0');
  },
};

const KEK_LABEL_CODEC = stringCodec({
  what: 'a KEK label',
  minLength: 0,
  maxLength: MAX_KEK_LABEL_LENGTH,
});
const CLEAR_KEY_CODEC = bytesCodec(SESSION_KEY_BYTES, SESSION_KEY_BYTES);
const WRAPPED_KEY_CODEC = bytesCodec(WRAPPED_SESSION_KEY_BYTES, WRAPPED_SESSION_KEY_BYTES);
const ENVELOPE_KEYS = new Set(['kekLabel', 'aesKey']);

const keyEnvelopeCodec: Codec<KeyEnvelope> = {
  read(wire, name) {
    if (!isObject(wire)) return wrongType('decode', name, 'a KeyEnvelope object', wire);
    // Some peers leave KEKLabel out (or null) for a key in clear.
    const label = own(wire, 'KEKLabel');
    const kekLabel =
      label === undefined || label === null ? '' : KEK_LABEL_CODEC.read(label, `${name}.KEKLabel`);
    const aesKey = own(wire, 'AESKey');
    if (aesKey === undefined || aesKey === null) malformed(`${name}.AESKey`, 'is missing');
    const keyCodec = kekLabel === '' ? CLEAR_KEY_CODEC : WRAPPED_KEY_CODEC;
    return { kekLabel, aesKey: keyCodec.read(aesKey, `${name}.AESKey`) };
  },
  write(value, name) {
    if (!isObject(value)) return wrongType('encode', name, 'a KeyEnvelope', value);
    checkKeys(value, ENVELOPE_KEYS, name);
    const kekLabel = KEK_LABEL_CODEC.write(value.kekLabel, `${name}.KEKLabel`) as string;
    const keyCodec = kekLabel === '' ? CLEAR_KEY_CODEC : WRAPPED_KEY_CODEC;
    return { KEKLabel: kekLabel, AESKey: keyCodec.write(value.aesKey, `${name}.AESKey`) };
  },
};

const RESULT_CODE_CODEC = enumCodec(RESULT_CODES);
const DESCRIPTION_CODEC = stringCodec({
  what: 'a description',
  minLength: 1,
  maxLength: MAX_DESCRIPTION_LENGTH,
});
const RESULT_KEYS = new Set(['resultCode', 'description']);

const resultCodec: Codec<Result> = {
  read(wire, name) {
    if (!isObject(wire)) return wrongType('decode', name, 'a Result object', wire);
    const code = own(wire, 'ResultCode');
    if (code === undefined || code === null) malformed(`${name}.ResultCode`, 'is missing');
    const result: Result = { resultCode: RESULT_CODE_CODEC.read(code, `${name}.ResultCode`) };
    const description = own(wire, 'Description');
    if (description !== undefined && description !== null && description !== '') {
      result.description = DESCRIPTION_CODEC.read(description, `${name}.Description`);
    }
    return result;
  },
  write(value, name) {
    if (!isObject(value)) return wrongType('encode', name, 'a Result', value);
    checkKeys(value, RESULT_KEYS, name);
    const out: WireObject = {
      ResultCode: RESULT_CODE_CODEC.write(value.resultCode, `${name}.ResultCode`),
    };
    if (value.description !== undefined) {
      out.Description = DESCRIPTION_CODEC.write(value.description, `${name}.Description`);
    }
    return out;
  },
};

const EUI64 = hexIdCodec(8, 'an EUI-64');
const NET_ID = hexIdCodec(3, 'a NetID');
const NET_ID_NUMBER = hexNumberCodec(3, 'a NetID');
const DEV_ADDR = hexNumberCodec(4, 'a DevAddr');
const UINT32 = uintCodec(0xffff_ffff);
/** An AS-ID: free text, kept to printable ASCII so it cannot smuggle control characters. */
const AS_ID = stringCodec({
  what: 'printable ASCII',
  minLength: 1,
  maxLength: MAX_ID_LENGTH,
  pattern: /^[\x20-\x7e]*$/,
});
/** SenderID/ReceiverID of a failed answer: whatever the peer could make of our request. */
const ANY_ID = stringCodec({
  what: 'printable ASCII',
  minLength: 0,
  maxLength: MAX_ID_LENGTH,
  pattern: /^[\x20-\x7e]*$/,
});
const TOKEN = bytesCodec(1, MAX_TOKEN_BYTES);
const SESSION_KEY_ID = bytesCodec(1, MAX_SESSION_KEY_ID_BYTES);

// ---------------------------------------------------------------------------------------------
// Message layouts

interface FieldSpec {
  /** The JSON key, as the specification spells it. */
  wire: string;
  /** The typed property. */
  prop: string;
  codec: Codec<unknown>;
  required: boolean;
  /** A Backend Interfaces 1.1 field: refused in a 1.0 message. */
  since11: boolean;
}

function field(
  wire: string,
  prop: string,
  codec: Codec<unknown>,
  options: { optional?: boolean; since11?: boolean } = {},
): FieldSpec {
  return {
    wire,
    prop,
    codec,
    required: options.optional !== true,
    since11: options.since11 === true,
  };
}

type Role = 'ns' | 'js' | 'as' | 'any';
const ID_CODECS: Record<Role, Codec<string>> = { ns: NET_ID, js: EUI64, as: AS_ID, any: ANY_ID };

function header(
  sender: Role,
  receiver: Role,
  nsId?: { wire: 'SenderNSID' | 'ReceiverNSID'; prop: 'senderNsId' | 'receiverNsId' },
): FieldSpec[] {
  const fields = [
    field('SenderID', 'senderId', ID_CODECS[sender]),
    field('ReceiverID', 'receiverId', ID_CODECS[receiver]),
    field('TransactionID', 'transactionId', UINT32),
    field('SenderToken', 'senderToken', TOKEN, { optional: true }),
    field('ReceiverToken', 'receiverToken', TOKEN, { optional: true }),
  ];
  if (nsId !== undefined) {
    fields.push(field(nsId.wire, nsId.prop, EUI64, { optional: true, since11: true }));
  }
  return fields;
}

const SENDER_NSID = { wire: 'SenderNSID', prop: 'senderNsId' } as const;
const RECEIVER_NSID = { wire: 'ReceiverNSID', prop: 'receiverNsId' } as const;

const ACTIVATION_REQUEST: FieldSpec[] = [
  field('MACVersion', 'macVersion', enumCodec(BACKEND_MAC_VERSIONS)),
  field('PHYPayload', 'phyPayload', bytesCodec(1, MAX_PHY_PAYLOAD_BYTES)),
  field('DevEUI', 'devEui', EUI64),
  field('DevAddr', 'devAddr', DEV_ADDR),
  field('DLSettings', 'dlSettings', dlSettingsCodec),
  field('RxDelay', 'rxDelay', uintCodec(15)),
  field('CFList', 'cfList', bytesCodec(CFLIST_BYTES, CFLIST_BYTES), { optional: true }),
];

const ACTIVATION_ANSWER: FieldSpec[] = [
  field('PHYPayload', 'phyPayload', bytesCodec(1, MAX_PHY_PAYLOAD_BYTES)),
  field('Lifetime', 'lifetimeSeconds', UINT32),
  field('SNwkSIntKey', 'sNwkSIntKey', keyEnvelopeCodec, { optional: true }),
  field('FNwkSIntKey', 'fNwkSIntKey', keyEnvelopeCodec, { optional: true }),
  field('NwkSEncKey', 'nwkSEncKey', keyEnvelopeCodec, { optional: true }),
  field('NwkSKey', 'nwkSKey', keyEnvelopeCodec, { optional: true }),
  field('AppSKey', 'appSKey', keyEnvelopeCodec, { optional: true }),
  field('SessionKeyID', 'sessionKeyId', SESSION_KEY_ID, { optional: true }),
];

/** LoRaWAN 1.0.x sessions have one network key, 1.1 sessions three; the AS needs a way in. */
function checkActivationAnswer(message: WireObject, name: string): void {
  const has = (prop: string): boolean => own(message, prop) !== undefined;
  const keys11 = ['sNwkSIntKey', 'fNwkSIntKey', 'nwkSEncKey'].filter(has).length;
  if (has('nwkSKey') ? keys11 !== 0 : keys11 !== 3) {
    invalid(
      name,
      'must carry either NwkSKey (LoRaWAN 1.0.x) or all of SNwkSIntKey, FNwkSIntKey and ' +
        'NwkSEncKey (LoRaWAN 1.1)',
    );
  }
  if (!has('appSKey') && !has('sessionKeyId')) {
    invalid(name, 'must carry AppSKey, SessionKeyID or both');
  }
}

interface MessageLayout {
  answer: boolean;
  /** The header of a request, or of a successful answer. */
  header: FieldSpec[];
  /** The header of a failed answer. */
  failureHeader: FieldSpec[];
  /** The payload of a request, or of a successful answer (a failed one has none). */
  payload: FieldSpec[];
  check?: (message: WireObject, name: string) => void;
}

function request(header: FieldSpec[], payload: FieldSpec[]): MessageLayout {
  return { answer: false, header, failureHeader: [], payload };
}

function answer(
  header: FieldSpec[],
  failureHeader: FieldSpec[],
  payload: FieldSpec[],
  check?: (message: WireObject, name: string) => void,
): MessageLayout {
  return check === undefined
    ? { answer: true, header, failureHeader, payload }
    : { answer: true, header, failureHeader, payload, check };
}

const LAYOUTS: Record<MessageType, MessageLayout> = {
  JoinReq: request(header('ns', 'js', SENDER_NSID), ACTIVATION_REQUEST),
  RejoinReq: request(header('ns', 'js', SENDER_NSID), ACTIVATION_REQUEST),
  JoinAns: answer(
    header('js', 'ns', RECEIVER_NSID),
    header('any', 'any', RECEIVER_NSID),
    ACTIVATION_ANSWER,
    checkActivationAnswer,
  ),
  RejoinAns: answer(
    header('js', 'ns', RECEIVER_NSID),
    header('any', 'any', RECEIVER_NSID),
    ACTIVATION_ANSWER,
    checkActivationAnswer,
  ),
  AppSKeyReq: request(header('as', 'js'), [
    field('DevEUI', 'devEui', EUI64),
    field('SessionKeyID', 'sessionKeyId', SESSION_KEY_ID),
  ]),
  AppSKeyAns: answer(header('js', 'as'), header('any', 'any'), [
    field('DevEUI', 'devEui', EUI64),
    field('AppSKey', 'appSKey', keyEnvelopeCodec),
    field('SessionKeyID', 'sessionKeyId', SESSION_KEY_ID),
  ]),
  HomeNSReq: request(header('ns', 'js', SENDER_NSID), [field('DevEUI', 'devEui', EUI64)]),
  HomeNSAns: answer(header('js', 'ns', RECEIVER_NSID), header('any', 'any', RECEIVER_NSID), [
    field('HNetID', 'hNetId', NET_ID_NUMBER),
    field('HNSID', 'hNsId', EUI64, { optional: true, since11: true }),
  ]),
};

const PROTOCOL_VERSION_SET = new Set<string>(PROTOCOL_VERSIONS);
const MESSAGE_TYPE_SET = new Set<string>(MESSAGE_TYPES);

// ---------------------------------------------------------------------------------------------
// Decoding

function readFields(
  wire: WireObject,
  fields: readonly FieldSpec[],
  version: ProtocolVersion,
  name: string,
  out: WireObject,
): void {
  for (const spec of fields) {
    const value = own(wire, spec.wire);
    // Absent, null and (for an optional field) "" all mean "not there": peers differ.
    if (value === undefined || value === null || (!spec.required && value === '')) {
      if (spec.required) malformed(`${name}.${spec.wire}`, 'is missing');
      continue;
    }
    if (spec.since11 && version === '1.0') {
      invalid(`${name}.${spec.wire}`, 'is a Backend Interfaces 1.1 field; this message is 1.0');
    }
    out[spec.prop] = spec.codec.read(value, `${name}.${spec.wire}`);
  }
}

function decodeObject(wire: unknown, expected: readonly MessageType[] | undefined): BackendMessage {
  if (!isObject(wire)) return wrongType('decode', 'message', 'a JSON object', wire);

  const version = own(wire, 'ProtocolVersion');
  if (version === undefined || version === null) malformed('ProtocolVersion', 'is missing');
  if (typeof version !== 'string')
    return wrongType('decode', 'ProtocolVersion', 'a string', version);
  if (!PROTOCOL_VERSION_SET.has(version)) {
    throw new BackendInterfacesError(
      'UnsupportedVersion',
      `ProtocolVersion ${sample(version)} is not supported (1.0 and 1.1 are)`,
      'ProtocolVersion',
    );
  }

  const messageType = own(wire, 'MessageType');
  if (messageType === undefined || messageType === null) malformed('MessageType', 'is missing');
  if (typeof messageType !== 'string') {
    return wrongType('decode', 'MessageType', 'a string', messageType);
  }
  if (!MESSAGE_TYPE_SET.has(messageType)) {
    throw new BackendInterfacesError(
      'UnsupportedMessageType',
      `MessageType ${sample(messageType)} is not handled here`,
      'MessageType',
    );
  }
  const type = messageType as MessageType;
  if (expected !== undefined && !expected.includes(type)) {
    throw new BackendInterfacesError(
      'UnexpectedMessageType',
      `MessageType ${type} where ${expected.join(' or ')} was expected`,
      'MessageType',
    );
  }

  const layout = LAYOUTS[type];
  const protocolVersion = version as ProtocolVersion;
  const out: WireObject = { protocolVersion, messageType: type };
  let success = true;
  if (layout.answer) {
    const result = own(wire, 'Result');
    if (result === undefined || result === null) malformed(`${type}.Result`, 'is missing');
    const decoded = resultCodec.read(result, `${type}.Result`);
    out.result = decoded;
    success = decoded.resultCode === 'Success';
  }
  if (success) {
    readFields(wire, layout.header, protocolVersion, type, out);
    readFields(wire, layout.payload, protocolVersion, type, out);
    layout.check?.(out, type);
  } else {
    readFields(wire, layout.failureHeader, protocolVersion, type, out);
  }
  return out as unknown as BackendMessage;
}

function decodeGuarded(run: () => BackendMessage): BackendMessage {
  try {
    return run();
  } catch (error) {
    if (error instanceof BackendInterfacesError) throw error;
    // Only a hostile value can get here (a throwing getter or proxy given to decodeValue).
    throw new BackendInterfacesError('MalformedRequest', 'message could not be read');
  }
}

function expectedList(expected: MessageType | readonly MessageType[] | undefined) {
  if (expected === undefined) return undefined;
  return typeof expected === 'string' ? [expected] : expected;
}

/**
 * Parses and validates a Backend Interfaces message received as JSON text. With `expected`, a
 * valid message of another type is refused (`UnexpectedMessageType`).
 */
export function decode(text: string): BackendMessage;
export function decode<T extends MessageType>(
  text: string,
  expected: T | readonly T[],
): MessageOf<T>;
export function decode(
  text: string,
  expected?: MessageType | readonly MessageType[],
): BackendMessage {
  return decodeGuarded(() => {
    if (typeof text !== 'string') return wrongType('decode', 'message', 'JSON text', text);
    if (text.length > MAX_MESSAGE_LENGTH) {
      malformed('message', `is ${text.length} characters, more than ${MAX_MESSAGE_LENGTH}`);
    }
    let wire: unknown;
    try {
      wire = JSON.parse(text);
    } catch {
      malformed('message', 'is not valid JSON');
    }
    return decodeObject(wire, expectedList(expected));
  });
}

/** As `decode`, for a body a framework already parsed from JSON. */
export function decodeValue(value: unknown): BackendMessage;
export function decodeValue<T extends MessageType>(
  value: unknown,
  expected: T | readonly T[],
): MessageOf<T>;
export function decodeValue(
  value: unknown,
  expected?: MessageType | readonly MessageType[],
): BackendMessage {
  return decodeGuarded(() => decodeObject(value, expectedList(expected)));
}

// ---------------------------------------------------------------------------------------------
// Encoding

function writeFields(
  message: WireObject,
  fields: readonly FieldSpec[],
  version: ProtocolVersion,
  name: string,
  out: WireObject,
): void {
  for (const spec of fields) {
    const value = own(message, spec.prop);
    if (value === undefined) {
      if (spec.required) invalid(`${name}.${spec.wire}`, `is missing (${spec.prop})`);
      continue;
    }
    if (spec.since11 && version === '1.0') {
      invalid(`${name}.${spec.wire}`, 'is a Backend Interfaces 1.1 field; this message is 1.0');
    }
    out[spec.wire] = spec.codec.write(value, `${name}.${spec.wire}`);
  }
}

/** The JSON value of a message (for a framework that serialises bodies itself). */
export function encodeValue(message: BackendMessage): Record<string, unknown> {
  const value: unknown = message;
  if (!isObject(value)) return wrongType('encode', 'message', 'an object', value);
  const version = own(value, 'protocolVersion');
  if (typeof version !== 'string' || !PROTOCOL_VERSION_SET.has(version)) {
    throw new BackendInterfacesError(
      'UnsupportedVersion',
      'protocolVersion must be "1.0" or "1.1"',
      'ProtocolVersion',
    );
  }
  const type = own(value, 'messageType');
  if (typeof type !== 'string' || !MESSAGE_TYPE_SET.has(type)) {
    throw new BackendInterfacesError(
      'UnsupportedMessageType',
      'messageType is not one this codec handles',
      'MessageType',
    );
  }
  const messageType = type as MessageType;
  const protocolVersion = version as ProtocolVersion;
  const layout = LAYOUTS[messageType];

  const out: WireObject = { ProtocolVersion: protocolVersion, MessageType: messageType };
  let success = true;
  if (layout.answer) {
    const result = own(value, 'result');
    if (result === undefined) invalid(`${messageType}.Result`, 'is missing (result)');
    out.Result = resultCodec.write(result, `${messageType}.Result`);
    success = (result as Result).resultCode === 'Success';
  }
  const fields = success ? [...layout.header, ...layout.payload] : layout.failureHeader;
  const allowed = new Set(['protocolVersion', 'messageType', ...fields.map((f) => f.prop)]);
  if (layout.answer) allowed.add('result');
  checkKeys(value, allowed, messageType);
  writeFields(value, fields, protocolVersion, messageType, out);
  if (success) layout.check?.(value, messageType);
  return out;
}

/** A message as JSON text, after checking it is valid and canonical. */
export function encode(message: BackendMessage): string {
  return JSON.stringify(encodeValue(message));
}

// ---------------------------------------------------------------------------------------------
// Answers

/** The header of the answer to `request`: IDs swapped, TransactionID and tokens echoed. */
export type AnswerHeaderOf<R extends BackendRequest> = MessageHeader & {
  messageType: AnswerTypes[R['messageType']];
  receiverNsId?: string;
};

export function answerHeader<R extends BackendRequest>(request: R): AnswerHeaderOf<R> {
  const out: AnswerHeaderOf<BackendRequest> = {
    protocolVersion: request.protocolVersion,
    messageType: ANSWER_TYPES[request.messageType],
    senderId: request.receiverId,
    receiverId: request.senderId,
    transactionId: request.transactionId,
  };
  if (request.senderToken !== undefined) out.receiverToken = request.senderToken;
  if (request.messageType !== 'AppSKeyReq' && request.senderNsId !== undefined) {
    out.receiverNsId = request.senderNsId;
  }
  return out as AnswerHeaderOf<R>;
}

/** The failed answer to `request`, e.g. UnknownDevEUI for a JoinReq of an unknown device. */
export function failedAnswer<R extends BackendRequest>(
  request: R,
  resultCode: FailureResultCode,
  description?: string,
): FailedAnswerOf<AnswerTypes[R['messageType']]> {
  const result: FailureResult =
    description === undefined || description === ''
      ? { resultCode }
      : { resultCode, description: description.slice(0, MAX_DESCRIPTION_LENGTH) };
  return { ...answerHeader(request), result } as unknown as FailedAnswerOf<
    AnswerTypes[R['messageType']]
  >;
}
