import { show } from './json-values.js';

/**
 * Where two JSON values differ, as `path: expected X, got Y` lines (at most `limit`).
 *
 * The rule: both sides go through a JSON round trip first (so `-0` equals `0`, `undefined`
 * properties vanish, a `Date` becomes its ISO string), then numbers compare exactly (`1` and
 * `1.0` are the same number; `0.30000000000000004` is not `0.3`: the repository's examples are
 * meant to be produced by the codec itself), object keys compare as sets whatever their order,
 * arrays element by element. An expected `null` also matches a property the actual side lacks:
 * TTN's harness exports a property the codec left `undefined` as `null` (so the repository's
 * examples say `null`), while the sandbox's JSON drops it.
 */
export function jsonDifferences(
  expected: unknown,
  actual: unknown,
  root: string,
  limit = 3,
): string[] {
  const found: string[] = [];
  compare(roundTrip(expected), roundTrip(actual), root, found, limit);
  return found;
}

function roundTrip(value: unknown): unknown {
  if (value === undefined) return undefined;
  return JSON.parse(JSON.stringify(value)) as unknown;
}

function compare(
  expected: unknown,
  actual: unknown,
  path: string,
  found: string[],
  limit: number,
): void {
  if (found.length >= limit) return;
  if (Array.isArray(expected) && Array.isArray(actual)) {
    if (expected.length !== actual.length) {
      found.push(`${path}: expected ${expected.length} items, got ${actual.length}`);
    }
    const common = Math.min(expected.length, actual.length);
    for (let i = 0; i < common; i++) compare(expected[i], actual[i], `${path}[${i}]`, found, limit);
    return;
  }
  if (isPlainObject(expected) && isPlainObject(actual)) {
    for (const key of Object.keys(expected)) {
      const where = path === '' ? key : `${path}.${key}`;
      if (Object.hasOwn(actual, key)) compare(expected[key], actual[key], where, found, limit);
      else if (expected[key] !== null) {
        found.push(`${where}: expected ${show(expected[key])}, got nothing`);
      }
      if (found.length >= limit) return;
    }
    for (const key of Object.keys(actual)) {
      if (found.length >= limit) return;
      if (!Object.hasOwn(expected, key)) {
        found.push(`${path === '' ? key : `${path}.${key}`}: unexpected ${show(actual[key])}`);
      }
    }
    return;
  }
  if (expected !== actual) found.push(`${path}: expected ${show(expected)}, got ${show(actual)}`);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
