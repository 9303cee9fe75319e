import {
  createHash,
  createPublicKey,
  type JsonWebKey,
  type KeyObject,
  timingSafeEqual,
  verify,
} from 'node:crypto';
import { OidcError } from './oidc-settings.js';

/**
 * The ID token of an OpenID Connect login: a JWS in compact form (RFC 7515), checked as OpenID
 * Connect Core 1.0 §3.1.3.7 says, with node:crypto only. Pure: the keys and the clock come in.
 *
 * Signatures: RS256 (RSASSA-PKCS1-v1_5 with SHA-256) and ES256 (ECDSA P-256, SHA-256; the
 * signature is r || s, 64 bytes). `none`, the HMAC algorithms (keyed with the client secret,
 * which would let anyone who knows it forge tokens) and any other are refused.
 */

export type IdTokenAlgorithm = 'RS256' | 'ES256';
export const ID_TOKEN_ALGORITHMS: readonly IdTokenAlgorithm[] = ['RS256', 'ES256'];

/** Longest ID token accepted, characters: real ones are 1-4 KB. */
const MAX_TOKEN_LENGTH = 16_384;

export interface JwsHeader {
  alg: IdTokenAlgorithm;
  kid?: string;
  /** The media type of the token (RFC 7515 §4.1.9), when the header names one. */
  typ?: string;
}

export interface DecodedIdToken {
  header: JwsHeader;
  claims: Record<string, unknown>;
  /** `base64url(header) . base64url(payload)`: what the signature covers. */
  signingInput: string;
  signature: Buffer;
}

/**
 * Splits and parses a compact JWS; `malformed-token` or `unsupported-algorithm` otherwise.
 * `what` names the token in the messages (a logout token is checked the same way).
 */
export function decodeIdToken(token: unknown, what = 'ID token'): DecodedIdToken {
  if (typeof token !== 'string' || token.length > MAX_TOKEN_LENGTH) {
    throw new OidcError('malformed-token', `the ${what} is missing or too long`);
  }
  const parts = token.split('.');
  if (parts.length !== 3 || parts.some((part) => !/^[A-Za-z0-9_-]*$/.test(part))) {
    throw new OidcError(
      'malformed-token',
      `the ${what} is not a compact JWS (three base64url parts)`,
    );
  }
  const [headerPart, payloadPart, signaturePart] = parts as [string, string, string];
  const header = parseJsonObject(headerPart, `${what} header`);
  const claims = parseJsonObject(payloadPart, `${what} payload`);
  const alg = header['alg'];
  if (typeof alg !== 'string' || !(ID_TOKEN_ALGORITHMS as readonly string[]).includes(alg)) {
    throw new OidcError(
      'unsupported-algorithm',
      `the ${what} is signed with ${JSON.stringify(alg)}: Galet accepts ${ID_TOKEN_ALGORITHMS.join(' and ')}`,
    );
  }
  // RFC 7515 §4.1.11: an extension Galet does not know must make the token invalid.
  if (header['crit'] !== undefined) {
    throw new OidcError('malformed-token', `the ${what} has critical header extensions (crit)`);
  }
  const kid = header['kid'];
  if (kid !== undefined && typeof kid !== 'string') {
    throw new OidcError('malformed-token', `the ${what} header has a kid that is not a string`);
  }
  const typ = header['typ'];
  if (typ !== undefined && typeof typ !== 'string') {
    throw new OidcError('malformed-token', `the ${what} header has a typ that is not a string`);
  }
  return {
    header: {
      alg: alg as IdTokenAlgorithm,
      ...(kid === undefined ? {} : { kid }),
      ...(typ === undefined ? {} : { typ }),
    },
    claims,
    signingInput: `${headerPart}.${payloadPart}`,
    signature: Buffer.from(signaturePart, 'base64url'),
  };
}

function parseJsonObject(part: string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
  } catch {
    throw new OidcError('malformed-token', `the ${what} is not JSON`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new OidcError('malformed-token', `the ${what} is not a JSON object`);
  }
  return value as Record<string, unknown>;
}

/** A signing key of the provider's JWKS, ready for `verify`. */
export interface SigningKey {
  kid: string | undefined;
  alg: IdTokenAlgorithm;
  key: KeyObject;
}

/**
 * The keys of a JWKS document that can check ID tokens: RSA keys for RS256, P-256 keys for
 * ES256, not marked for encryption only. Others (and malformed ones) are skipped, not fatal:
 * a provider publishes keys for other uses too.
 */
export function signingKeysOf(jwks: unknown): SigningKey[] {
  const keys = (jwks as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys)) {
    throw new OidcError('provider-invalid', 'the provider JWKS has no "keys" array');
  }
  const usable: SigningKey[] = [];
  for (const jwk of keys as Record<string, unknown>[]) {
    if (typeof jwk !== 'object' || jwk === null) continue;
    if (jwk['use'] !== undefined && jwk['use'] !== 'sig') continue;
    const kid = typeof jwk['kid'] === 'string' ? jwk['kid'] : undefined;
    let alg: IdTokenAlgorithm;
    if (jwk['kty'] === 'RSA') alg = 'RS256';
    else if (jwk['kty'] === 'EC' && jwk['crv'] === 'P-256') alg = 'ES256';
    else continue;
    if (jwk['alg'] !== undefined && jwk['alg'] !== alg) continue;
    if (jwk['d'] !== undefined) continue; // a private key has no business in a JWKS
    try {
      const key = createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' });
      if (alg === 'RS256' && (key.asymmetricKeyDetails?.modulusLength ?? 0) < 2048) continue;
      usable.push({ kid, alg, key });
    } catch {
      // Not a usable key: skipped.
    }
  }
  return usable;
}

/** The key that should have signed a token: by kid, or the only key of its algorithm. */
export function keyFor(keys: readonly SigningKey[], header: JwsHeader): SigningKey | undefined {
  const candidates = keys.filter((key) => key.alg === header.alg);
  if (header.kid !== undefined) return candidates.find((key) => key.kid === header.kid);
  return candidates.length === 1 ? candidates[0] : undefined;
}

/** Whether the signature of the token is the key's. */
export function signatureValid(token: DecodedIdToken, key: SigningKey): boolean {
  if (key.alg !== token.header.alg) return false;
  const data = Buffer.from(token.signingInput, 'ascii');
  try {
    if (key.alg === 'ES256') {
      // JWS (RFC 7518 §3.4) carries r || s, not DER.
      if (token.signature.length !== 64) return false;
      return verify('sha256', data, { key: key.key, dsaEncoding: 'ieee-p1363' }, token.signature);
    }
    return verify('sha256', data, key.key, token.signature);
  } catch {
    return false;
  }
}

export interface IdTokenExpectations {
  issuer: string;
  clientId: string;
  nonce: string;
  nowMs: number;
  clockSkewMs: number;
}

/**
 * Checks the claims of a token whose signature is verified (OpenID Connect Core §3.1.3.7):
 * `iss` exactly the issuer, `aud` holding the client id (and `azp` the client id when there are
 * several audiences), `exp` not passed and `iat`/`nbf` not in the future (with the clock skew),
 * `nonce` the one of this login, `sub` present.
 */
export function checkIdTokenClaims(
  claims: Readonly<Record<string, unknown>>,
  expected: IdTokenExpectations,
): void {
  checkIssuerAndAudience(claims, expected, 'ID token');
  const seconds = (name: string, required: boolean): number | undefined => {
    const value = claims[name];
    if (value === undefined && !required) return undefined;
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      throw new OidcError('malformed-token', `the ID token's ${name} is not a number of seconds`);
    }
    return value * 1000;
  };
  const exp = seconds('exp', true) as number;
  const iat = seconds('iat', true) as number;
  const nbf = seconds('nbf', false);
  const { nowMs, clockSkewMs } = expected;
  if (exp <= nowMs - clockSkewMs) {
    throw new OidcError(
      'expired',
      `the ID token expired at ${new Date(exp).toISOString()} (now ${new Date(nowMs).toISOString()})`,
    );
  }
  for (const [name, at] of [
    ['iat', iat],
    ['nbf', nbf],
  ] as const) {
    if (at !== undefined && at > nowMs + clockSkewMs) {
      throw new OidcError(
        'not-yet-valid',
        `the ID token's ${name} ${new Date(at).toISOString()} is in the future (now ${new Date(nowMs).toISOString()}): are the clocks set?`,
      );
    }
  }
  if (typeof claims['nonce'] !== 'string' || !sameText(claims['nonce'], expected.nonce)) {
    throw new OidcError('nonce-mismatch', 'the ID token does not carry the nonce of this login');
  }
  if (typeof claims['sub'] !== 'string' || claims['sub'] === '') {
    throw new OidcError('malformed-token', 'the ID token has no subject (sub)');
  }
}

/**
 * `iss` exactly the issuer, `aud` holding the client id, and `azp` the client id when there are
 * several audiences (OpenID Connect Core §3.1.3.7, items 2 to 5): `wrong-issuer` or
 * `wrong-audience` otherwise. ID tokens and logout tokens are checked alike.
 */
export function checkIssuerAndAudience(
  claims: Readonly<Record<string, unknown>>,
  expected: { issuer: string; clientId: string },
  what: string,
): void {
  if (claims['iss'] !== expected.issuer) {
    throw new OidcError(
      'wrong-issuer',
      `the ${what} was issued by ${JSON.stringify(claims['iss'])}, not by ${expected.issuer}`,
    );
  }
  const aud = claims['aud'];
  const audiences = Array.isArray(aud) ? aud : [aud];
  if (!audiences.includes(expected.clientId)) {
    throw new OidcError(
      'wrong-audience',
      `the ${what} is not meant for client ${expected.clientId}`,
    );
  }
  if (audiences.length > 1 && claims['azp'] !== expected.clientId) {
    throw new OidcError(
      'wrong-audience',
      `the ${what} has several audiences and its azp is not ${expected.clientId}`,
    );
  }
}

/** Constant-time equality of two texts: their SHA-256 digests compared, so lengths do not show. */
export function sameText(a: string, b: string): boolean {
  return timingSafeEqual(
    createHash('sha256').update(a, 'utf8').digest(),
    createHash('sha256').update(b, 'utf8').digest(),
  );
}
