import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * TOTP second factor: RFC 6238 over RFC 4226 HOTP. Defaults are what every authenticator app
 * does: HMAC-SHA-1, 6 digits, 30-second steps; a code is accepted one step early or late
 * (clock drift, typing time).
 *
 * Replay protection: `verifyTotp` returns the time step of the code it accepted and refuses a
 * step at or below `lastUsedStep`. The caller stores that step atomically
 * (`storage.users.useTotpStep`), so one code opens one session only, even when two logins race.
 */

export type TotpAlgorithm = 'sha1' | 'sha256' | 'sha512';

export interface TotpOptions {
  /** Default 6. */
  digits?: number;
  /** Default 30. */
  periodSeconds?: number;
  /** Default 'sha1'. */
  algorithm?: TotpAlgorithm;
}

export interface TotpVerifyOptions extends TotpOptions {
  /** The current time in ms since the epoch. */
  timeMs: number;
  /** Steps accepted on each side of the current one. Default 1. */
  window?: number;
  /** The last step the user already used: that step and earlier ones are refused. */
  lastUsedStep?: number | null;
}

export type TotpCheck =
  | { valid: true; step: number }
  | { valid: false; reason: 'malformed' | 'wrong' | 'replayed' };

export const TOTP_SECRET_BYTES = 20;

/** A new secret: 160 random bits, as RFC 4226 §4 recommends for HMAC-SHA-1. */
export function generateTotpSecret(): Uint8Array {
  return new Uint8Array(randomBytes(TOTP_SECRET_BYTES));
}

/** RFC 4226 §5.3: HOTP value of `counter`, zero-padded to `digits`. */
export function hotp(
  secret: Uint8Array,
  counter: number,
  digits = 6,
  algorithm: TotpAlgorithm = 'sha1',
): string {
  if (!Number.isSafeInteger(counter) || counter < 0) {
    throw new RangeError(`HOTP counter must be a non-negative safe integer, got ${counter}`);
  }
  if (!Number.isInteger(digits) || digits < 6 || digits > 10) {
    throw new RangeError(`HOTP digits must be 6 to 10, got ${digits}`);
  }
  const message = Buffer.alloc(8);
  message.writeBigUInt64BE(BigInt(counter));
  const mac = createHmac(algorithm, secret).update(message).digest();
  // Dynamic truncation (§5.3): the low nibble of the last byte picks 4 bytes.
  const offset = mac[mac.length - 1]! & 0x0f;
  const binary = mac.readUInt32BE(offset) & 0x7fff_ffff;
  return (binary % 10 ** digits).toString().padStart(digits, '0');
}

/** RFC 6238 §4.2: T = floor((now - T0) / X), T0 = 0. */
export function totpStep(timeMs: number, periodSeconds = 30): number {
  return Math.floor(timeMs / 1000 / periodSeconds);
}

/** The code at `timeMs`. */
export function totp(secret: Uint8Array, timeMs: number, options?: TotpOptions): string {
  return hotp(
    secret,
    totpStep(timeMs, options?.periodSeconds ?? 30),
    options?.digits ?? 6,
    options?.algorithm ?? 'sha1',
  );
}

/**
 * Checks a code against the steps around `timeMs`. Every candidate is compared in constant
 * time, and all of them are, so the time taken does not say which step matched.
 */
export function verifyTotp(
  secret: Uint8Array,
  code: string,
  options: TotpVerifyOptions,
): TotpCheck {
  const digits = options.digits ?? 6;
  if (typeof code !== 'string' || code.length !== digits || !/^[0-9]+$/.test(code)) {
    return { valid: false, reason: 'malformed' };
  }
  const window = options.window ?? 1;
  const current = totpStep(options.timeMs, options.periodSeconds ?? 30);
  const presented = Buffer.from(code, 'ascii');
  let matched: number | undefined;
  for (let step = current - window; step <= current + window; step += 1) {
    if (step < 0) continue;
    const expected = Buffer.from(hotp(secret, step, digits, options.algorithm ?? 'sha1'), 'ascii');
    if (timingSafeEqual(expected, presented) && matched === undefined) matched = step;
  }
  if (matched === undefined) return { valid: false, reason: 'wrong' };
  const lastUsed = options.lastUsedStep;
  if (lastUsed !== undefined && lastUsed !== null && matched <= lastUsed) {
    return { valid: false, reason: 'replayed' };
  }
  return { valid: true, step: matched };
}

const BASE32_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** RFC 4648 base32 without padding, as authenticator apps take a secret. */
export function toBase32(bytes: Uint8Array): string {
  let output = '';
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      output += BASE32_ALPHABET[(buffer >>> (bits - 5)) & 31];
      bits -= 5;
    }
    buffer &= (1 << bits) - 1;
  }
  if (bits > 0) output += BASE32_ALPHABET[(buffer << (5 - bits)) & 31];
  return output;
}

/** Base32 (any case, spaces and padding ignored); undefined for another character. */
export function fromBase32(text: string): Uint8Array | undefined {
  const clean = text.replace(/[\s=]/g, '').toUpperCase();
  const bytes: number[] = [];
  let buffer = 0;
  let bits = 0;
  for (const char of clean) {
    const value = BASE32_ALPHABET.indexOf(char);
    if (value < 0) return undefined;
    buffer = (buffer << 5) | value;
    bits += 5;
    if (bits >= 8) {
      bytes.push((buffer >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
    buffer &= (1 << bits) - 1;
  }
  return new Uint8Array(bytes);
}

/** The `otpauth://` URI an authenticator app scans (Key Uri Format, Google Authenticator). */
export function totpUri(secret: Uint8Array, account: string, issuer = 'Galet'): string {
  const label = `${encodeURIComponent(issuer)}:${encodeURIComponent(account)}`;
  const query = new URLSearchParams({
    secret: toBase32(secret),
    issuer,
    algorithm: 'SHA1',
    digits: '6',
    period: '30',
  });
  return `otpauth://totp/${label}?${query.toString()}`;
}
