import { createCipheriv, createDecipheriv } from 'node:crypto';
import { LorawanError } from '../errors.js';

// RFC 3394 §2.2.3.1 default initial value.
const DEFAULT_IV = Buffer.from('a6a6a6a6a6a6a6a6', 'hex');

function wrapAlgorithm(kek: Uint8Array): string {
  switch (kek.length) {
    case 16:
      return 'id-aes128-wrap';
    case 24:
      return 'id-aes192-wrap';
    case 32:
      return 'id-aes256-wrap';
    default:
      throw new LorawanError('INVALID_LENGTH', `KEK must be 16, 24 or 32 bytes, got ${kek.length}`);
  }
}

function checkKeyToWrap(length: number, what: string): void {
  if (length < 16 || length % 8 !== 0) {
    throw new LorawanError(
      'INVALID_LENGTH',
      `${what} must be a multiple of 8 bytes and at least 16, got ${length}`,
    );
  }
}

/** RFC 3394 AES key wrap: how a session key crosses from one role to another. */
export function wrapKey(kek: Uint8Array, key: Uint8Array): Uint8Array {
  checkKeyToWrap(key.length, 'key to wrap');
  const cipher = createCipheriv(wrapAlgorithm(kek), kek, DEFAULT_IV);
  return new Uint8Array(Buffer.concat([cipher.update(key), cipher.final()]));
}

/** RFC 3394 unwrap; a wrong KEK or a tampered envelope fails the integrity check. */
export function unwrapKey(kek: Uint8Array, wrapped: Uint8Array): Uint8Array {
  checkKeyToWrap(wrapped.length - 8, 'wrapped key minus its 8-byte integrity block');
  const decipher = createDecipheriv(wrapAlgorithm(kek), kek, DEFAULT_IV);
  try {
    return new Uint8Array(Buffer.concat([decipher.update(wrapped), decipher.final()]));
  } catch {
    throw new LorawanError(
      'KEY_UNWRAP_FAILED',
      'key unwrap failed its integrity check: wrong KEK or altered envelope',
    );
  }
}
