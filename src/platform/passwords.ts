import { randomBytes } from 'node:crypto';
import { hash, type Options, parseOptions, verify } from '@node-rs/argon2';

/**
 * Console passwords: argon2id (RFC 9106) with OWASP's recommended minimum parameters
 * (19 MiB, 2 passes, 1 lane: about 30 ms on a small server), stored as a PHC string that
 * carries its own parameters and salt, so they can be raised later (`needsRehash`).
 *
 * Passwords are NFC-normalised first: the same password typed on two keyboards that compose
 * accents differently is the same password.
 */

export const PASSWORD_MIN_LENGTH = 12;
export const PASSWORD_MAX_LENGTH = 1024;

export interface Argon2Parameters {
  /** KiB. */
  memoryCost: number;
  timeCost: number;
  parallelism: number;
}

export const ARGON2_PARAMETERS: Readonly<Argon2Parameters> = {
  memoryCost: 19_456,
  timeCost: 2,
  parallelism: 1,
};

// @node-rs/argon2 declares Algorithm as a const enum, which isolatedModules cannot read: 2 is
// Argon2id.
const ARGON2ID = 2 as NonNullable<Options['algorithm']>;

/**
 * Why a password is refused, or undefined when it is acceptable: 12 to 1024 characters (Unicode
 * code points, after NFC), not only spaces. Length is what makes a password strong (NIST SP
 * 800-63B §5.1.1.2); no composition rules.
 */
export function passwordPolicyViolation(password: unknown): string | undefined {
  if (typeof password !== 'string') return 'a password must be a text';
  const length = [...password.normalize('NFC')].length;
  if (length < PASSWORD_MIN_LENGTH) {
    return `a password must have at least ${PASSWORD_MIN_LENGTH} characters, got ${length}`;
  }
  if (length > PASSWORD_MAX_LENGTH) {
    return `a password must have at most ${PASSWORD_MAX_LENGTH} characters, got ${length}`;
  }
  if (password.trim() === '') return 'a password must not be only spaces';
  return undefined;
}

/** The argon2id PHC string of a password; refuses one the policy refuses. */
export async function hashPassword(
  password: string,
  parameters: Argon2Parameters = ARGON2_PARAMETERS,
): Promise<string> {
  const violation = passwordPolicyViolation(password);
  if (violation !== undefined) throw new RangeError(violation);
  return hash(password.normalize('NFC'), { ...parameters, algorithm: ARGON2ID });
}

/**
 * Whether `password` matches `passwordHash`. A malformed hash or an absurd input answers false
 * rather than throwing. argon2's own comparison is constant-time.
 */
export async function verifyPassword(passwordHash: string, password: string): Promise<boolean> {
  if (typeof password !== 'string' || password.length > PASSWORD_MAX_LENGTH * 4) return false;
  try {
    return await verify(passwordHash, password.normalize('NFC'));
  } catch {
    return false;
  }
}

let dummyHash: Promise<string> | undefined;

/**
 * Spends the time of a real verification and answers false: a login for an unknown e-mail
 * address takes as long as one with a wrong password, so timing does not tell which addresses
 * have an account.
 */
export async function verifyDummyPassword(password: string): Promise<false> {
  dummyHash ??= hash(randomBytes(24).toString('base64url'), {
    ...ARGON2_PARAMETERS,
    algorithm: ARGON2ID,
  });
  await verifyPassword(await dummyHash, typeof password === 'string' ? password : '');
  return false;
}

/** Whether a stored hash was made with other (older) parameters than the current ones. */
export function needsRehash(
  passwordHash: string,
  parameters: Argon2Parameters = ARGON2_PARAMETERS,
): boolean {
  try {
    const stored = parseOptions(passwordHash);
    return (
      stored.algorithm !== ARGON2ID ||
      stored.memoryCost !== parameters.memoryCost ||
      stored.timeCost !== parameters.timeCost ||
      stored.parallelism !== parameters.parallelism
    );
  } catch {
    return true;
  }
}
