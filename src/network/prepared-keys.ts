import { AesKey } from '../lorawan/crypto/aes.js';
import type { DataSessionKeys } from '../lorawan/data-frame.js';
import type { DeviceSession } from './store.js';

/**
 * Prepared AES keys (each holds OpenSSL cipher contexts of about 1.2 KB) in two tiers:
 * - `hot`: sessions seen more than once recently, up to 20,000; a device that sends again
 *   finds its keys ready (preparing costs about 10 µs);
 * - `fresh`: the last few hundred first-time sessions, enough for the several uses of one
 *   uplink. A device seen once (a join, a burst of devices after a restart, the benchmark's
 *   100,000 devices sending once each) leaves nothing long-lived behind: keys kept for
 *   seconds were promoted to the old generation and paid for in major GC pauses.
 * `seen` remembers which sessions were met, without keeping anything of their own.
 */
const MAX_HOT_SESSIONS = 20_000;
const MAX_FRESH_SESSIONS = 256;
const MAX_SEEN_SESSIONS = 200_000;

/** What preparing needs of a session's keys (the gateway worker's copies hold no envelope). */
export type PreparableKeys =
  | { lorawan: '1.0'; nwkSKey: Uint8Array; appSKey?: Uint8Array | undefined }
  | {
      lorawan: '1.1';
      fNwkSIntKey: Uint8Array;
      sNwkSIntKey: Uint8Array;
      nwkSEncKey: Uint8Array;
      appSKey?: Uint8Array | undefined;
    };

/** Without an AppSKey (operator-blind), FRMPayloads on FPort > 0 stay as they are: encrypted. */
export function prepareKeys(keys: PreparableKeys): DataSessionKeys {
  const app = keys.appSKey === undefined ? {} : { appSKey: new AesKey(keys.appSKey) };
  return keys.lorawan === '1.0'
    ? { lorawan: '1.0', nwkSKey: new AesKey(keys.nwkSKey), ...app }
    : {
        lorawan: '1.1',
        fNwkSIntKey: new AesKey(keys.fNwkSIntKey),
        sNwkSIntKey: new AesKey(keys.sNwkSIntKey),
        nwkSEncKey: new AesKey(keys.nwkSEncKey),
        ...app,
      };
}

/** Makes room for one more entry by dropping the oldest (insertion order) at the bound. */
function evictOldest<K>(collection: Map<K, unknown> | Set<K>, max: number): void {
  if (collection.size < max) return;
  const oldest = collection.keys().next().value;
  if (oldest !== undefined) collection.delete(oldest);
}

/** The two tiers above, keyed by whatever names a session's keys (an object, a table slot). */
export class PreparedKeysCache<K> {
  readonly #hot = new Map<K, DataSessionKeys>();
  readonly #fresh = new Map<K, DataSessionKeys>();
  readonly #seen = new Set<K>();

  /** The prepared keys named by `key`; `keysOf` gives the raw keys when they must be prepared. */
  get(key: K, keysOf: (key: K) => PreparableKeys): DataSessionKeys {
    const hot = this.#hot.get(key);
    if (hot !== undefined) return hot;
    const fresh = this.#fresh.get(key);
    if (fresh !== undefined) return fresh;
    const prepared = prepareKeys(keysOf(key));
    if (this.#seen.has(key)) {
      evictOldest(this.#hot, MAX_HOT_SESSIONS);
      this.#hot.set(key, prepared);
    } else {
      evictOldest(this.#seen, MAX_SEEN_SESSIONS);
      this.#seen.add(key);
      evictOldest(this.#fresh, MAX_FRESH_SESSIONS);
      this.#fresh.set(key, prepared);
    }
    return prepared;
  }

  /** Forgets a key (its slot now names another session). */
  delete(key: K): void {
    this.#hot.delete(key);
    this.#fresh.delete(key);
    this.#seen.delete(key);
  }
}

const byKeysObject = new PreparedKeysCache<PreparableKeys>();

/**
 * A session's keys as prepared AES keys. Sessions are copied on some updates but share their
 * `keys` object, which is what the caches are keyed on.
 */
export function dataSessionKeys(session: DeviceSession): DataSessionKeys {
  return preparedSessionKeys(session.keys);
}

/** The same, from the keys object itself (the gateway worker's session copies). */
export function preparedSessionKeys(keys: PreparableKeys): DataSessionKeys {
  return byKeysObject.get(keys, sameKeys);
}

function sameKeys(keys: PreparableKeys): PreparableKeys {
  return keys;
}
