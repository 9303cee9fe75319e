/**
 * Sealing and opening the KeyEnvelope of a session key (Backend Interfaces `{KEKLabel, AESKey}`).
 *
 * A session key crosses from one role to another wrapped with RFC 3394 AES key wrap under a
 * key-encryption key (KEK) the two parties share, named by its KEKLabel. An empty KEKLabel means
 * the key travels in clear: only acceptable inside one process (all-in-one mode), so both sides
 * refuse it unless the caller says `allowClear: true`. The AppSKey is never sent in clear to the
 * network role: the join role wraps it with the application role's KEK.
 *
 * The wrap itself is the protocol core's (`lorawan/crypto/key-wrap.ts`); this file adds labels,
 * the clear-key policy and typed errors.
 */
import { unwrapKey, wrapKey } from '../../lorawan/crypto/key-wrap.js';
import { isLorawanError } from '../../lorawan/errors.js';
import { BackendInterfacesError, type KeyEnvelope, MAX_KEK_LABEL_LENGTH } from './messages.js';

/** A key-encryption key and the label peers know it by. */
export interface Kek {
  label: string;
  /** 16 bytes (AES-128), or 24/32. */
  key: Uint8Array;
}

/** Where the KEK of a label is found: a map, or a lookup function. */
export type KekRing =
  | ReadonlyMap<string, Uint8Array>
  | ((kekLabel: string) => Uint8Array | undefined);

export interface ClearKeyPolicy {
  /** True only when both ends live in one process: a key may then travel unwrapped. */
  allowClear: boolean;
}

const REFUSE_CLEAR: ClearKeyPolicy = { allowClear: false };
const SESSION_KEY_BYTES = 16;
const WRAPPED_SESSION_KEY_BYTES = 24;

function checkSessionKey(key: unknown, what: string): asserts key is Uint8Array {
  if (!(key instanceof Uint8Array) || key.length !== SESSION_KEY_BYTES) {
    const got = key instanceof Uint8Array ? `${key.length} bytes` : typeof key;
    throw new BackendInterfacesError('InvalidKey', `${what} must be 16 bytes, got ${got}`);
  }
}

function checkKek(kek: unknown, label: string): asserts kek is Uint8Array {
  if (!(kek instanceof Uint8Array) || ![16, 24, 32].includes(kek.length)) {
    const got = kek instanceof Uint8Array ? `${kek.length} bytes` : typeof kek;
    throw new BackendInterfacesError(
      'InvalidKey',
      `KEK ${JSON.stringify(label)} must be 16, 24 or 32 bytes, got ${got}`,
    );
  }
}

function checkLabel(label: unknown): asserts label is string {
  if (typeof label !== 'string' || label.length === 0 || label.length > MAX_KEK_LABEL_LENGTH) {
    throw new BackendInterfacesError(
      'InvalidKey',
      `a KEK label must be 1 to ${MAX_KEK_LABEL_LENGTH} characters`,
    );
  }
}

function clearKeyRefused(): never {
  throw new BackendInterfacesError(
    'ClearKeyRefused',
    'KeyEnvelope with an empty KEKLabel carries its key in clear, which is only allowed ' +
      'between roles of one process',
  );
}

/**
 * Seals a 16-byte session key: wrapped with `kek`, or in clear when `kek` is null and the policy
 * allows it.
 */
export function wrapKeyEnvelope(
  key: Uint8Array,
  kek: Kek | null,
  policy: ClearKeyPolicy = REFUSE_CLEAR,
): KeyEnvelope {
  checkSessionKey(key, 'session key to wrap');
  if (kek === null) {
    if (policy.allowClear !== true) clearKeyRefused();
    return { kekLabel: '', aesKey: Uint8Array.from(key) };
  }
  checkLabel(kek.label);
  checkKek(kek.key, kek.label);
  return { kekLabel: kek.label, aesKey: wrapKey(kek.key, key) };
}

function lookup(keks: KekRing, label: string): Uint8Array | undefined {
  return typeof keks === 'function' ? keks(label) : keks.get(label);
}

/**
 * Opens an envelope: the KEK is found by the envelope's KEKLabel. A wrong KEK or an altered
 * envelope fails RFC 3394's integrity check (`KeyUnwrapFailed`); no partial key comes out.
 */
export function unwrapKeyEnvelope(
  envelope: KeyEnvelope,
  keks: KekRing,
  policy: ClearKeyPolicy = REFUSE_CLEAR,
): Uint8Array {
  const { kekLabel, aesKey } = envelope;
  if (typeof kekLabel !== 'string' || !(aesKey instanceof Uint8Array)) {
    throw new BackendInterfacesError('InvalidKey', 'KeyEnvelope must have a kekLabel and aesKey');
  }
  if (kekLabel === '') {
    if (policy.allowClear !== true) clearKeyRefused();
    checkSessionKey(aesKey, 'key in a clear KeyEnvelope');
    return Uint8Array.from(aesKey);
  }
  checkLabel(kekLabel);
  if (aesKey.length !== WRAPPED_SESSION_KEY_BYTES) {
    throw new BackendInterfacesError(
      'InvalidKey',
      `a wrapped session key must be ${WRAPPED_SESSION_KEY_BYTES} bytes, got ${aesKey.length}`,
    );
  }
  const kek = lookup(keks, kekLabel);
  if (kek === undefined) {
    throw new BackendInterfacesError(
      'UnknownKEK',
      `no KEK is known under the label ${JSON.stringify(kekLabel)}`,
    );
  }
  checkKek(kek, kekLabel);
  try {
    return unwrapKey(kek, aesKey);
  } catch (error) {
    if (isLorawanError(error) && error.code === 'KEY_UNWRAP_FAILED') {
      throw new BackendInterfacesError(
        'KeyUnwrapFailed',
        `KeyEnvelope under KEK ${JSON.stringify(kekLabel)} failed its integrity check: ` +
          'wrong KEK or altered envelope',
      );
    }
    throw error;
  }
}
