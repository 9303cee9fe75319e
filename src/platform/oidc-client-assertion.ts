import { createPrivateKey, createPublicKey, type KeyObject, randomBytes, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';

/**
 * `private_key_jwt` (OpenID Connect Core §9, RFC 7523 §2.2): Galet authenticates at the token
 * endpoint with a short JWT signed by its own private key instead of a client secret. The
 * provider checks it with the public key registered for the client (pasted, or fetched from
 * `GET /api/v1/auth/oidc/jwks.json`).
 *
 * The key is read once, at start, from a PEM file (PKCS#8, or PKCS#1 for RSA, SEC 1 for EC);
 * RSA of at least 2048 bits signs RS256, EC P-256 signs ES256. `node:crypto` only. No message
 * here holds the key or the file's text.
 */

export type OidcClientAssertionAlgorithm = 'RS256' | 'ES256';
export const OIDC_CLIENT_ASSERTION_ALGORITHMS: readonly OidcClientAssertionAlgorithm[] = [
  'RS256',
  'ES256',
];

/** RFC 7523 §2.2: the value of `client_assertion_type`. */
export const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

/** Life of one assertion: it is sent at once, and used once. */
export const CLIENT_ASSERTION_LIFETIME_MS = 60_000;

const MIN_RSA_BITS = 2048;
/** A PEM private key is a few KB; anything much larger is not one. */
const MAX_KEY_FILE_BYTES = 65_536;

export interface ClientAssertionKey {
  algorithm: OidcClientAssertionAlgorithm;
  /** The JWS header's `kid`, when the settings give one. */
  keyId: string | undefined;
  privateKey: KeyObject;
  /** The public half as a JWK (RFC 7517), with `kid`, `alg` and `use: "sig"`: for registration. */
  publicJwk: Record<string, unknown>;
}

/**
 * The signing key of the settings' file, checked: readable, a private key, of a type that
 * signs `algorithm` (when given; else the algorithm is the key's). Throws a RangeError that
 * names the file and the reason, never its content.
 */
export function loadClientAssertionKey(
  settings: {
    privateKeyFile: string;
    privateKeyId?: string | undefined;
    clientAssertionAlgorithm?: OidcClientAssertionAlgorithm | undefined;
  },
  readFile: (path: string) => Buffer = (path) => readFileSync(path),
): ClientAssertionKey {
  const path = settings.privateKeyFile;
  let text: Buffer;
  try {
    text = readFile(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new RangeError(
      `cannot read the OIDC private key file ${path}${code === undefined ? '' : ` (${code})`}`,
    );
  }
  if (text.length > MAX_KEY_FILE_BYTES) {
    throw new RangeError(
      `the OIDC private key file ${path} holds ${text.length} bytes: not a PEM private key`,
    );
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: text, format: 'pem' });
  } catch {
    throw new RangeError(
      `the OIDC private key file ${path} holds no unencrypted PEM private key (-----BEGIN PRIVATE KEY-----, RSA or EC)`,
    );
  } finally {
    text.fill(0);
  }
  const algorithm = algorithmOf(privateKey, path);
  const wanted = settings.clientAssertionAlgorithm;
  if (wanted !== undefined && wanted !== algorithm) {
    throw new RangeError(
      `the OIDC private key in ${path} signs ${algorithm}, not ${wanted} as configured: ${wanted === 'RS256' ? 'RS256 needs an RSA key' : 'ES256 needs an EC P-256 key'}`,
    );
  }
  const keyId = settings.privateKeyId === '' ? undefined : settings.privateKeyId;
  const publicJwk = {
    ...createPublicKey(privateKey).export({ format: 'jwk' }),
    ...(keyId === undefined ? {} : { kid: keyId }),
    alg: algorithm,
    use: 'sig',
  };
  return { algorithm, keyId, privateKey, publicJwk };
}

function algorithmOf(key: KeyObject, path: string): OidcClientAssertionAlgorithm {
  const details = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'rsa') {
    const bits = details.modulusLength ?? 0;
    if (bits < MIN_RSA_BITS) {
      throw new RangeError(
        `the OIDC private key in ${path} is RSA of ${bits} bits: at least ${MIN_RSA_BITS}`,
      );
    }
    return 'RS256';
  }
  if (key.asymmetricKeyType === 'ec') {
    if (details.namedCurve !== 'prime256v1') {
      throw new RangeError(
        `the OIDC private key in ${path} is EC on ${String(details.namedCurve)}: ES256 needs P-256 (prime256v1)`,
      );
    }
    return 'ES256';
  }
  throw new RangeError(
    `the OIDC private key in ${path} is ${String(key.asymmetricKeyType)}: Galet signs with RSA (RS256) or EC P-256 (ES256)`,
  );
}

/**
 * A client assertion for one request to the token endpoint: `iss` = `sub` = the client id,
 * `aud` the given audience, a random `jti`, `iat` now and `exp` a minute on.
 */
export function clientAssertion(
  key: ClientAssertionKey,
  claims: { clientId: string; audience: string; nowMs: number },
): string {
  const iat = Math.floor(claims.nowMs / 1000);
  const header = {
    alg: key.algorithm,
    typ: 'JWT',
    ...(key.keyId === undefined ? {} : { kid: key.keyId }),
  };
  const payload = {
    iss: claims.clientId,
    sub: claims.clientId,
    aud: claims.audience,
    jti: randomBytes(18).toString('base64url'),
    iat,
    exp: iat + CLIENT_ASSERTION_LIFETIME_MS / 1000,
  };
  const part = (value: unknown) => Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
  const input = Buffer.from(`${part(header)}.${part(payload)}`, 'ascii');
  // RFC 7518 §3.4: ES256 signatures are R || S (64 bytes), not DER.
  const signature =
    key.algorithm === 'ES256'
      ? sign('sha256', input, { key: key.privateKey, dsaEncoding: 'ieee-p1363' })
      : sign('sha256', input, key.privateKey);
  return `${input.toString('ascii')}.${signature.toString('base64url')}`;
}

/** The secret the flow cookie's key derives from when there is no client secret: the key's DER. */
export function sealingSecretOf(key: ClientAssertionKey): Buffer {
  return key.privateKey.export({ format: 'der', type: 'pkcs8' });
}
