import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Bearer tokens: API keys and console sessions. Both carry 256 random bits and are stored only
 * as their SHA-256 (a random 256-bit secret needs no slow hash: nothing to guess).
 *
 * - API key: `galet_key_<id>_<secret>`. `<id>` (16 hex digits) is not secret: it is the key's
 *   id in the API and its primary key, so verifying a key is one indexed read and a
 *   constant-time compare of the hashes. `<secret>` is 32 random bytes, base64url (43 chars).
 * - Session: `galet_session_<secret>`; its id in the database is the hex SHA-256 of the token.
 *
 * The prefixes let secret scanners recognise a leaked token.
 */

export const API_KEY_TOKEN_PREFIX = 'galet_key_';
export const SESSION_TOKEN_PREFIX = 'galet_session_';

const SECRET_BYTES = 32;
const API_KEY_TOKEN = /^galet_key_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;
const SESSION_TOKEN = /^galet_session_[A-Za-z0-9_-]{43}$/;

export interface NewApiKeyToken {
  /** The key's non-secret id. */
  id: string;
  /** The whole token: shown once to its creator, never stored. */
  token: string;
  /** What is stored: SHA-256 of the token. */
  secretHash: Uint8Array;
}

export function generateApiKeyToken(): NewApiKeyToken {
  const id = randomBytes(8).toString('hex');
  const token = `${API_KEY_TOKEN_PREFIX}${id}_${randomBytes(SECRET_BYTES).toString('base64url')}`;
  return { id, token, secretHash: hashToken(token) };
}

/** The key id written in an API key token, or undefined when the text is not one. */
export function parseApiKeyToken(token: string): { id: string } | undefined {
  if (typeof token !== 'string') return undefined;
  const match = API_KEY_TOKEN.exec(token);
  return match === null ? undefined : { id: match[1]! };
}

export interface NewSessionToken {
  token: string;
  /** What is stored: hex SHA-256 of the token. */
  idHash: string;
}

export function generateSessionToken(): NewSessionToken {
  const token = `${SESSION_TOKEN_PREFIX}${randomBytes(SECRET_BYTES).toString('base64url')}`;
  return { token, idHash: sessionIdHash(token)! };
}

/** The stored id of a session token, or undefined when the text is not one. */
export function sessionIdHash(token: string): string | undefined {
  if (typeof token !== 'string' || !SESSION_TOKEN.test(token)) return undefined;
  return Buffer.from(hashToken(token)).toString('hex');
}

/** What a bearer token looks like it is; 'other' may still be the admin token. */
export function tokenKind(token: string): 'api-key' | 'session' | 'other' {
  if (parseApiKeyToken(token) !== undefined) return 'api-key';
  if (typeof token === 'string' && SESSION_TOKEN.test(token)) return 'session';
  return 'other';
}

export function hashToken(token: string): Uint8Array {
  return new Uint8Array(createHash('sha256').update(token, 'utf8').digest());
}

/** Whether `token` hashes to `storedHash`, compared in constant time. */
export function tokenMatchesHash(token: string, storedHash: Uint8Array): boolean {
  return constantTimeEqual(hashToken(token), storedHash);
}

/** Constant-time equality of two byte strings; different lengths are unequal (and say so early). */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  return timingSafeEqual(a, b);
}
