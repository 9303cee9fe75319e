import { SemtechUdpError } from './errors.js';
import {
  isJsonObject,
  type JsonObject,
  parseRxpk,
  parseStat,
  parseTxpk,
  parseTxpkAck,
  type Rxpk,
  type Stat,
  type Txpk,
  type TxpkAck,
} from './json-objects.js';

/**
 * GWMP datagrams (Semtech packet forwarder PROTOCOL.TXT, protocol versions 1 and 2): byte 0 the
 * protocol version, bytes 1-2 a token, byte 3 the packet type, then per type an 8-byte gateway
 * EUI and/or a JSON object. Pure codec: `parsePacket` throws only SemtechUdpError.
 *
 * This module is the codec's one entry point: it re-exports the JSON object types
 * (json-objects.ts), the conversions to normalised gateway types (convert.ts) and the error.
 */

export * from './convert.js';
export * from './errors.js';
export * from './json-objects.js';

export type ProtocolVersion = 1 | 2;

export const PACKET_TYPES = Object.freeze({
  PUSH_DATA: 0x00,
  PUSH_ACK: 0x01,
  PULL_DATA: 0x02,
  PULL_RESP: 0x03,
  PULL_ACK: 0x04,
  TX_ACK: 0x05,
} as const);

export type PacketType = keyof typeof PACKET_TYPES;

export const PACKET_TYPE_NAMES: readonly PacketType[] = Object.freeze(
  Object.keys(PACKET_TYPES) as PacketType[],
);

interface Header {
  version: ProtocolVersion;
  /** 16-bit token, bytes 1-2 read big-endian; an ACK echoes the bytes as they came. */
  token: number;
}

/** Gateway -> server: received frames and/or status. */
export interface PushData extends Header {
  type: 'PUSH_DATA';
  /** Gateway EUI, lower-case hex (the wire carries it most significant byte first). */
  gatewayId: string;
  /** The valid rxpk entries (empty when there are none). */
  rxpk: Rxpk[];
  stat?: Stat;
  /**
   * Why each invalid rxpk entry was refused; absent when every entry is valid. One bad frame
   * does not cost the others of the same datagram.
   */
  invalidRxpk?: SemtechUdpError[];
}

export interface PushAck extends Header {
  type: 'PUSH_ACK';
}

/** Gateway -> server keep-alive; its source address is where downlinks go. */
export interface PullData extends Header {
  type: 'PULL_DATA';
  gatewayId: string;
}

/** Server -> gateway: a frame to transmit. */
export interface PullResp extends Header {
  type: 'PULL_RESP';
  txpk: Txpk;
}

export interface PullAck extends Header {
  type: 'PULL_ACK';
}

/** Gateway -> server (protocol 2): the fate of the PULL_RESP with the same token. */
export interface TxAck extends Header {
  type: 'TX_ACK';
  gatewayId: string;
  /** Absent when the datagram has no JSON, which means the frame was accepted. */
  txpkAck?: TxpkAck;
}

export type SemtechPacket = PushData | PushAck | PullData | PullResp | PullAck | TxAck;

const HEADER_LENGTH = 4;
const EUI_LENGTH = 8;
const HEADER_WITH_EUI_LENGTH = HEADER_LENGTH + EUI_LENGTH;
const TYPE_BY_ID: readonly (PacketType | undefined)[] = (() => {
  const table: (PacketType | undefined)[] = new Array(256).fill(undefined);
  for (const name of PACKET_TYPE_NAMES) table[PACKET_TYPES[name]] = name;
  return table;
})();

const utf8 = new TextDecoder('utf-8', { fatal: true });

function readGatewayId(datagram: Uint8Array): string {
  return Buffer.from(datagram.buffer, datagram.byteOffset + HEADER_LENGTH, EUI_LENGTH).toString(
    'hex',
  );
}

/**
 * The JSON object of a datagram, or undefined when there is none. Trailing NUL bytes (and
 * whitespace) are ignored: some forwarders send the C string terminator along.
 */
function readJsonBody(
  datagram: Uint8Array,
  offset: number,
  type: PacketType,
): JsonObject | undefined {
  let end = datagram.length;
  while (end > offset && (datagram[end - 1] === 0 || isJsonWhitespace(datagram[end - 1]!))) end--;
  if (end === offset) return undefined;
  let text: string;
  try {
    text = utf8.decode(datagram.subarray(offset, end));
  } catch {
    throw new SemtechUdpError('BAD_JSON', `${type} JSON is not valid UTF-8`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new SemtechUdpError(
      'BAD_JSON',
      `${type} JSON does not parse: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  if (!isJsonObject(value)) {
    throw new SemtechUdpError('JSON_NOT_OBJECT', `${type} JSON is not an object`);
  }
  return value;
}

function isJsonWhitespace(byte: number): boolean {
  return byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09;
}

function requireLength(datagram: Uint8Array, length: number, type: PacketType): void {
  if (datagram.length < length) {
    throw new SemtechUdpError(
      'SHORT_HEADER',
      `${type} is ${datagram.length} bytes, its header needs ${length}`,
    );
  }
}

function own(object: JsonObject, key: string): unknown {
  return Object.hasOwn(object, key) ? object[key] : undefined;
}

function parsePushData(datagram: Uint8Array, header: Header): PushData {
  requireLength(datagram, HEADER_WITH_EUI_LENGTH, 'PUSH_DATA');
  const gatewayId = readGatewayId(datagram);
  const body = readJsonBody(datagram, HEADER_WITH_EUI_LENGTH, 'PUSH_DATA');
  if (body === undefined) throw new SemtechUdpError('BAD_JSON', 'PUSH_DATA has no JSON');
  const packet: PushData = { type: 'PUSH_DATA', ...header, gatewayId, rxpk: [] };
  const rxpk = own(body, 'rxpk');
  if (rxpk !== undefined) {
    if (!Array.isArray(rxpk)) {
      throw new SemtechUdpError('RXPK_NOT_ARRAY', 'PUSH_DATA rxpk is not an array');
    }
    const invalid: SemtechUdpError[] = [];
    rxpk.forEach((entry, i) => {
      try {
        packet.rxpk.push(parseRxpk(entry, `rxpk[${i}]`));
      } catch (error) {
        if (!(error instanceof SemtechUdpError)) throw error;
        invalid.push(error);
      }
    });
    if (invalid.length > 0) packet.invalidRxpk = invalid;
  }
  const stat = own(body, 'stat');
  if (stat !== undefined) packet.stat = parseStat(stat);
  return packet;
}

function parsePullResp(datagram: Uint8Array, header: Header): PullResp {
  const body = readJsonBody(datagram, HEADER_LENGTH, 'PULL_RESP');
  if (body === undefined) throw new SemtechUdpError('BAD_JSON', 'PULL_RESP has no JSON');
  const txpk = own(body, 'txpk');
  if (txpk === undefined) throw new SemtechUdpError('MISSING_FIELD', 'PULL_RESP txpk is missing');
  return { type: 'PULL_RESP', ...header, txpk: parseTxpk(txpk) };
}

function parseTxAck(datagram: Uint8Array, header: Header): TxAck {
  requireLength(datagram, HEADER_WITH_EUI_LENGTH, 'TX_ACK');
  const packet: TxAck = { type: 'TX_ACK', ...header, gatewayId: readGatewayId(datagram) };
  const body = readJsonBody(datagram, HEADER_WITH_EUI_LENGTH, 'TX_ACK');
  const txpkAck = body === undefined ? undefined : own(body, 'txpk_ack');
  if (txpkAck !== undefined) packet.txpkAck = parseTxpkAck(txpkAck);
  return packet;
}

function parseBareAck<T extends 'PUSH_ACK' | 'PULL_ACK'>(
  datagram: Uint8Array,
  header: Header,
  type: T,
): Header & { type: T } {
  if (datagram.length > HEADER_LENGTH) {
    throw new SemtechUdpError(
      'TRAILING_BYTES',
      `${type} is ${HEADER_LENGTH} bytes, got ${datagram.length}`,
    );
  }
  return { type, ...header };
}

/** Parses one datagram; anything malformed is a SemtechUdpError with a reason code. */
export function parsePacket(datagram: Uint8Array): SemtechPacket {
  if (datagram.length < HEADER_LENGTH) {
    throw new SemtechUdpError(
      'SHORT_HEADER',
      `datagram is ${datagram.length} bytes, a GWMP header needs ${HEADER_LENGTH}`,
    );
  }
  const version = datagram[0]!;
  if (version !== 1 && version !== 2) {
    throw new SemtechUdpError('BAD_VERSION', `protocol version ${version} is not 1 or 2`);
  }
  const typeId = datagram[3]!;
  const type = TYPE_BY_ID[typeId];
  if (type === undefined) {
    throw new SemtechUdpError(
      'UNKNOWN_TYPE',
      `packet type 0x${typeId.toString(16).padStart(2, '0')} is not a GWMP type (0x00-0x05)`,
    );
  }
  const header: Header = { version, token: (datagram[1]! << 8) | datagram[2]! };
  switch (type) {
    case 'PUSH_DATA':
      return parsePushData(datagram, header);
    case 'PUSH_ACK':
      return parseBareAck(datagram, header, 'PUSH_ACK');
    case 'PULL_DATA':
      requireLength(datagram, HEADER_WITH_EUI_LENGTH, 'PULL_DATA');
      return { type, ...header, gatewayId: readGatewayId(datagram) };
    case 'PULL_RESP':
      return parsePullResp(datagram, header);
    case 'PULL_ACK':
      return parseBareAck(datagram, header, 'PULL_ACK');
    case 'TX_ACK':
      return parseTxAck(datagram, header);
  }
}

/** A packet to encode: what parsePacket returns, without the parser's report of invalid rxpk. */
export type SemtechPacketToEncode =
  | Omit<PushData, 'invalidRxpk'>
  | PushAck
  | PullData
  | PullResp
  | PullAck
  | TxAck;

function writeHeader(packet: SemtechPacketToEncode, length: number): Uint8Array {
  if (packet.version !== 1 && packet.version !== 2) {
    throw new SemtechUdpError('BAD_VERSION', `protocol version ${packet.version} is not 1 or 2`);
  }
  if (!Number.isInteger(packet.token) || packet.token < 0 || packet.token > 0xffff) {
    throw new SemtechUdpError(
      'INVALID_FIELD',
      `token must be an integer from 0 to 65535, got ${packet.token}`,
    );
  }
  const out = new Uint8Array(length);
  out[0] = packet.version;
  out[1] = packet.token >>> 8;
  out[2] = packet.token & 0xff;
  out[3] = PACKET_TYPES[packet.type];
  return out;
}

const GATEWAY_ID = /^[0-9a-fA-F]{16}$/;

function writeGatewayId(out: Uint8Array, gatewayId: string): void {
  if (!GATEWAY_ID.test(gatewayId)) {
    throw new SemtechUdpError(
      'INVALID_FIELD',
      `gateway EUI must be 16 hex digits, got ${JSON.stringify(gatewayId)}`,
    );
  }
  out.set(Buffer.from(gatewayId, 'hex'), HEADER_LENGTH);
}

function withJson(
  packet: SemtechPacketToEncode,
  gatewayId: string | undefined,
  json: object | undefined,
): Uint8Array {
  const body = json === undefined ? undefined : Buffer.from(JSON.stringify(json), 'utf8');
  const prefix = gatewayId === undefined ? HEADER_LENGTH : HEADER_WITH_EUI_LENGTH;
  const out = writeHeader(packet, prefix + (body?.length ?? 0));
  if (gatewayId !== undefined) writeGatewayId(out, gatewayId);
  if (body !== undefined) out.set(body, prefix);
  return out;
}

/**
 * Encodes a datagram. The JSON objects are written as given: build them with convert.ts (or
 * take them from parsePacket) so that they are valid.
 */
export function encodePacket(packet: SemtechPacketToEncode): Uint8Array {
  switch (packet.type) {
    case 'PUSH_DATA': {
      const json: { rxpk?: Rxpk[]; stat?: Stat } = {};
      if (packet.rxpk.length > 0) json.rxpk = packet.rxpk;
      if (packet.stat !== undefined) json.stat = packet.stat;
      return withJson(packet, packet.gatewayId, json);
    }
    case 'PULL_DATA':
      return withJson(packet, packet.gatewayId, undefined);
    case 'PULL_RESP':
      return withJson(packet, undefined, { txpk: packet.txpk });
    case 'TX_ACK':
      return withJson(
        packet,
        packet.gatewayId,
        packet.txpkAck === undefined ? undefined : { txpk_ack: packet.txpkAck },
      );
    case 'PUSH_ACK':
    case 'PULL_ACK':
      return writeHeader(packet, HEADER_LENGTH);
  }
}

/** The ACK a server owes for a PUSH_DATA or PULL_DATA: same version and token. */
export function ackFor(packet: PushData | PullData): Uint8Array {
  return encodePacket({
    type: packet.type === 'PUSH_DATA' ? 'PUSH_ACK' : 'PULL_ACK',
    version: packet.version,
    token: packet.token,
  });
}
