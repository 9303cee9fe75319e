import { hexToFixedBytes } from '../lorawan/bytes.js';
import { type AesKey, asAesKey } from '../lorawan/crypto/aes.js';
import type { FrameDescriptionInputs } from '../lorawan/describe-frame.js';
import { CliInputError } from './fail.js';

const KEY_NAMES = [
  'nwkSKey',
  'appSKey',
  'appKey',
  'nwkKey',
  'fNwkSIntKey',
  'sNwkSIntKey',
  'nwkSEncKey',
] as const;

const INTEGER_NAMES = ['txDr', 'txCh', 'confFCnt', 'fCnt32', 'devNonce'] as const;
const INTEGER_BITS: Record<(typeof INTEGER_NAMES)[number], number> = {
  txDr: 8,
  txCh: 8,
  confFCnt: 32,
  fCnt32: 32,
  devNonce: 16,
};
const EUI_NAMES = ['joinEui', 'devEui'] as const;

/** Names as the user typed them: flags in kebab case, batch JSON keys in camel case. */
export type NameStyle = 'flag' | 'json';

function displayName(name: string, style: NameStyle): string {
  if (style === 'json') return name;
  return `--${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`).replace('f-cnt', 'fcnt')}`;
}

/**
 * Reads key and context options from parsed flags or from a batch line. Keys are prepared once per
 * distinct value through `keyCache`, so a batch of frames under the same keys pays the AES key
 * schedule once.
 */
export function readFrameInputs(
  source: Record<string, unknown>,
  style: NameStyle,
  keyCache?: Map<string, AesKey>,
): FrameDescriptionInputs {
  const inputs: FrameDescriptionInputs = {};
  for (const name of KEY_NAMES) {
    const value = source[name];
    if (value === undefined) continue;
    const what = displayName(name, style);
    if (typeof value !== 'string') throw new CliInputError(`${what} must be a hex string`);
    inputs[name] = prepareKey(value, what, keyCache);
  }
  for (const name of INTEGER_NAMES) {
    // commander turns --conf-fcnt into confFcnt; accept both spellings.
    const value = source[name] ?? source[name.replace('FCnt', 'Fcnt')];
    if (value === undefined) continue;
    inputs[name] = readInteger(value, INTEGER_BITS[name], displayName(name, style));
  }
  for (const name of EUI_NAMES) {
    const value = source[name];
    if (value === undefined) continue;
    const what = displayName(name, style);
    if (typeof value !== 'string') throw new CliInputError(`${what} must be a hex string`);
    hexToFixedBytes(value, 8, what);
    inputs[name] = value.toLowerCase();
  }
  return inputs;
}

function prepareKey(hex: string, what: string, cache: Map<string, AesKey> | undefined): AesKey {
  const cached = cache?.get(hex);
  if (cached !== undefined) return cached;
  const key = asAesKey(hexToFixedBytes(hex, 16, what));
  if (cache !== undefined) {
    if (cache.size >= 4096) cache.clear();
    cache.set(hex, key);
  }
  return key;
}

export function readInteger(value: unknown, bits: number, what: string): number {
  const n = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n >= 2 ** bits) {
    throw new CliInputError(
      `${what} must be an integer from 0 to ${2 ** bits - 1}, got ${String(value)}`,
    );
  }
  return n;
}
