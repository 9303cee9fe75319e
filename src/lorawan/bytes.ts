import { LorawanError } from './errors.js';

const HEX_PATTERN = /^(?:[0-9a-fA-F]{2})*$/;

/** Strict hex decoding: odd length or a non-hex character is a typed error, never a silent cut. */
export function hexToBytes(hex: string, what = 'hex string'): Uint8Array {
  if (hex.length % 2 !== 0) {
    throw new LorawanError(
      'INVALID_HEX',
      `${what} has an odd number of hex digits (${hex.length})`,
    );
  }
  if (!HEX_PATTERN.test(hex)) {
    throw new LorawanError('INVALID_HEX', `${what} contains a character that is not a hex digit`);
  }
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

/** Hex of exactly `length` bytes (keys, EUIs). */
export function hexToFixedBytes(hex: string, length: number, what: string): Uint8Array {
  const bytes = hexToBytes(hex, what);
  if (bytes.length !== length) {
    throw new LorawanError(
      'INVALID_LENGTH',
      `${what} must be ${length} bytes (${length * 2} hex digits), got ${bytes.length}`,
    );
  }
  return bytes;
}

export function bytesToHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/** Wire order (little-endian) to display order (big-endian), as a new array. */
export function reversed(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) out[i] = bytes[bytes.length - 1 - i]!;
  return out;
}

/** An EUI-64 read from the wire (little-endian) as display hex (big-endian, lower case). */
export function euiFromWire(bytes: Uint8Array, offset: number): string {
  let hex = '';
  for (let i = offset + 7; i >= offset; i--) hex += HEX_BYTE[bytes[i]!]!;
  return hex;
}

/** Writes a display-order EUI-64 hex string to the wire (little-endian). */
export function euiToWire(eui: string, out: Uint8Array, offset: number, what = 'EUI'): void {
  const bytes = hexToFixedBytes(eui, 8, what);
  for (let i = 0; i < 8; i++) out[offset + i] = bytes[7 - i]!;
}

export function readUint16LE(bytes: Uint8Array, offset: number): number {
  return bytes[offset]! | (bytes[offset + 1]! << 8);
}

export function readUint24LE(bytes: Uint8Array, offset: number): number {
  return bytes[offset]! | (bytes[offset + 1]! << 8) | (bytes[offset + 2]! << 16);
}

export function readUint32LE(bytes: Uint8Array, offset: number): number {
  return (
    (bytes[offset]! | (bytes[offset + 1]! << 8) | (bytes[offset + 2]! << 16)) +
    bytes[offset + 3]! * 0x1000000
  );
}

export function writeUint16LE(out: Uint8Array, offset: number, value: number): void {
  out[offset] = value & 0xff;
  out[offset + 1] = (value >>> 8) & 0xff;
}

export function writeUint24LE(out: Uint8Array, offset: number, value: number): void {
  out[offset] = value & 0xff;
  out[offset + 1] = (value >>> 8) & 0xff;
  out[offset + 2] = (value >>> 16) & 0xff;
}

export function writeUint32LE(out: Uint8Array, offset: number, value: number): void {
  out[offset] = value & 0xff;
  out[offset + 1] = (value >>> 8) & 0xff;
  out[offset + 2] = (value >>> 16) & 0xff;
  out[offset + 3] = (value >>> 24) & 0xff;
}

/** A 32-bit value as 8 lower-case hex digits (DevAddr, MIC in display order). */
export function uint32ToHex(value: number): string {
  return (value >>> 0).toString(16).padStart(8, '0');
}

/** A 24-bit value as 6 lower-case hex digits (NetID). */
export function uint24ToHex(value: number): string {
  return (value & 0xffffff).toString(16).padStart(6, '0');
}

export function parseHexUint(hex: string, bytes: number, what: string): number {
  const value = hexToFixedBytes(hex, bytes, what);
  let n = 0;
  for (const b of value) n = n * 256 + b;
  return n;
}

export function assertUint(value: number, bits: number, what: string): void {
  if (!Number.isInteger(value) || value < 0 || value >= 2 ** bits) {
    throw new LorawanError(
      'INVALID_FIELD',
      `${what} must be an integer from 0 to ${2 ** bits - 1}, got ${value}`,
    );
  }
}

const HEX_BYTE: readonly string[] = Array.from({ length: 256 }, (_, i) =>
  i.toString(16).padStart(2, '0'),
);
