import { createHash, hkdfSync, randomBytes } from 'node:crypto';

/**
 * Provider link tokens: `galet_link_<16 hex id>_<43 base64url characters>`. The network keeps
 * the token's SHA-256 (to authenticate the link) and the link KEK; the provider keeps the token.
 * Both derive the same KEK from it (HKDF-SHA-256), which wraps the network session keys that a
 * provider's join server sends over the link: no second secret to hand over.
 */
export const LINK_TOKEN_PREFIX = 'galet_link_';
const TOKEN = /^galet_link_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

export interface NewLinkToken {
  id: string;
  token: string;
  /** SHA-256 of the token, hex. */
  tokenHash: string;
  kek: Uint8Array;
}

export function generateLinkToken(): NewLinkToken {
  const id = randomBytes(8).toString('hex');
  const token = `${LINK_TOKEN_PREFIX}${id}_${randomBytes(32).toString('base64url')}`;
  return { id, token, tokenHash: linkTokenHash(token), kek: linkKek(token) };
}

/** The token's id, or undefined when it is not a link token. */
export function parseLinkToken(token: string): { id: string } | undefined {
  const match = TOKEN.exec(token);
  return match === null ? undefined : { id: match[1]! };
}

export function linkTokenHash(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** The KEK (AES-128) both ends of a link derive from its token. */
export function linkKek(token: string): Uint8Array {
  const parsed = parseLinkToken(token);
  if (parsed === undefined) throw new RangeError('not a Galet link token');
  return new Uint8Array(hkdfSync('sha256', token, parsed.id, 'galet link network-key KEK', 16));
}

/** The KEKLabel under which a link's KEK wraps keys (Backend Interfaces KeyEnvelope). */
export function linkKekLabel(linkTokenId: string): string {
  return `galet-link:${linkTokenId}`;
}
