import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createSecretKey,
  hkdfSync,
  type KeyObject,
  randomBytes,
} from 'node:crypto';

/**
 * One OIDC login under way in a browser: `state` (against login CSRF, RFC 6749 §10.12), `nonce`
 * (binds the ID token to this login, OpenID Connect Core §3.1.2.1) and the PKCE code verifier
 * (RFC 7636, S256), each 256 random bits.
 *
 * They travel in a short-lived HttpOnly cookie, sealed with AES-256-GCM: nothing is kept on the
 * server between the start and the callback, so any instance behind a load balancer finishes a
 * login another one started, as long as they share the client secret (or private key) the key
 * is derived from.
 * The browser cannot read the verifier nor change the expiry. A flow is used once: the
 * callback remembers the states it finished until they expire (in memory, per process).
 */

export interface OidcFlow {
  state: string;
  nonce: string;
  codeVerifier: string;
  /** ms since the epoch. */
  expiresAtMs: number;
}

const RANDOM_BYTES = 32;
const NONCE_LENGTH = 12;
const TAG_LENGTH = 16;
const VERSION = 1;
const ASSOCIATED_DATA = Buffer.from('galet oidc flow v1', 'ascii');

export function newFlow(nowMs: number, ttlMs: number): OidcFlow {
  const random = () => randomBytes(RANDOM_BYTES).toString('base64url');
  return { state: random(), nonce: random(), codeVerifier: random(), expiresAtMs: nowMs + ttlMs };
}

/** RFC 7636 §4.2: `BASE64URL(SHA256(ASCII(code_verifier)))`. */
export function codeChallengeS256(codeVerifier: string): string {
  return createHash('sha256').update(codeVerifier, 'ascii').digest('base64url');
}

/** Seals flows into cookie values and opens them; a value that does not open is undefined. */
export class FlowSealer {
  readonly #key: KeyObject;

  /**
   * The key is derived (HKDF-SHA-256) from the client secret (with `private_key_jwt`, from the
   * client's private key, DER), under a label of its own, bound to the issuer and client id:
   * instances configured alike share it, and it protects nothing but flows of this client.
   */
  constructor(secret: string | Uint8Array, binding: { issuer: string; clientId: string }) {
    const key = Buffer.from(
      hkdfSync(
        'sha256',
        typeof secret === 'string' ? Buffer.from(secret, 'utf8') : secret,
        Buffer.from('galet-oidc-flow-cookie', 'ascii'),
        Buffer.from(`${binding.issuer}\n${binding.clientId}`, 'utf8'),
        32,
      ),
    );
    this.#key = createSecretKey(key);
    key.fill(0);
  }

  seal(flow: OidcFlow): string {
    const nonce = randomBytes(NONCE_LENGTH);
    const cipher = createCipheriv('aes-256-gcm', this.#key, nonce);
    cipher.setAAD(ASSOCIATED_DATA);
    const plain = Buffer.from(
      JSON.stringify([flow.state, flow.nonce, flow.codeVerifier, flow.expiresAtMs]),
      'utf8',
    );
    const sealed = Buffer.concat([cipher.update(plain), cipher.final()]);
    return Buffer.concat([Buffer.of(VERSION), nonce, sealed, cipher.getAuthTag()]).toString(
      'base64url',
    );
  }

  open(value: string | undefined): OidcFlow | undefined {
    if (value === undefined || value.length > 1024 || !/^[A-Za-z0-9_-]+$/.test(value)) {
      return undefined;
    }
    const bytes = Buffer.from(value, 'base64url');
    if (bytes.length < 1 + NONCE_LENGTH + TAG_LENGTH || bytes[0] !== VERSION) return undefined;
    try {
      const decipher = createDecipheriv(
        'aes-256-gcm',
        this.#key,
        bytes.subarray(1, 1 + NONCE_LENGTH),
      );
      decipher.setAAD(ASSOCIATED_DATA);
      decipher.setAuthTag(bytes.subarray(bytes.length - TAG_LENGTH));
      const plain = Buffer.concat([
        decipher.update(bytes.subarray(1 + NONCE_LENGTH, bytes.length - TAG_LENGTH)),
        decipher.final(),
      ]);
      const [state, nonce, codeVerifier, expiresAtMs] = JSON.parse(plain.toString('utf8'));
      if (
        typeof state !== 'string' ||
        typeof nonce !== 'string' ||
        typeof codeVerifier !== 'string' ||
        typeof expiresAtMs !== 'number'
      ) {
        return undefined;
      }
      return { state, nonce, codeVerifier, expiresAtMs };
    } catch {
      return undefined;
    }
  }
}

/**
 * The states of finished flows, until they expire: a callback replayed with the same cookie and
 * URL is refused even before the provider refuses the code. Bounded: when full, expired entries
 * go first, then the oldest.
 */
export class FinishedFlows {
  readonly #expiries = new Map<string, number>();
  readonly #maxEntries: number;

  constructor(maxEntries = 10_000) {
    this.#maxEntries = maxEntries;
  }

  /** Marks the flow finished; false when it already was. */
  finish(flow: OidcFlow, nowMs: number): boolean {
    const id = createHash('sha256').update(flow.state, 'utf8').digest('base64url');
    const known = this.#expiries.get(id);
    if (known !== undefined && known > nowMs) return false;
    if (this.#expiries.size >= this.#maxEntries) {
      for (const [key, expiresAtMs] of this.#expiries) {
        if (expiresAtMs <= nowMs) this.#expiries.delete(key);
      }
      if (this.#expiries.size >= this.#maxEntries) {
        const oldest = this.#expiries.keys().next().value;
        if (oldest !== undefined) this.#expiries.delete(oldest);
      }
    }
    this.#expiries.set(id, flow.expiresAtMs);
    return true;
  }
}
