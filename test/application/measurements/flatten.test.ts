import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { dropFields } from '../../../src/application/measurements/drop-fields.js';
import { joinFieldPath, splitFieldPath } from '../../../src/application/measurements/field-path.js';
import {
  DEFAULT_FLATTEN_LIMITS,
  flattenDecoded,
} from '../../../src/application/measurements/flatten.js';

/** The value at a path's segments, following own keys only. */
function valueAt(object: unknown, segments: readonly string[]): unknown {
  let value = object;
  for (const segment of segments) {
    if (typeof value !== 'object' || value === null || !Object.hasOwn(value, segment)) {
      return undefined;
    }
    value = (value as Record<string, unknown>)[segment];
  }
  return value;
}

/** Leaves the flattening keeps under the default limits (ignoring the depth and row caps). */
function storableLeaves(value: unknown, path = '', depth = 0): number {
  if (typeof value === 'object' && value !== null) {
    const entries = Array.isArray(value)
      ? value.map((v, i) => [String(i), v])
      : Object.entries(value);
    return entries.reduce((sum, [key, item]) => {
      const segment = String(key).replace(/[\\.]/g, (c) => `\\${c}`);
      return sum + storableLeaves(item, depth === 0 ? segment : `${path}.${segment}`, depth + 1);
    }, 0);
  }
  if (path === '' || path.length > DEFAULT_FLATTEN_LIMITS.maxFieldLength) return 0;
  if (typeof value === 'number') return Number.isFinite(value) ? 1 : 0;
  if (typeof value === 'boolean') return 1;
  if (typeof value === 'string')
    return value.length <= DEFAULT_FLATTEN_LIMITS.maxTextLength ? 1 : 0;
  return 0;
}

describe('flattenDecoded', () => {
  it('turns nested objects and arrays into dotted field paths', () => {
    const result = flattenDecoded({
      temperature: 21.5,
      valve: true,
      status: 'ok',
      battery: null,
      sensors: [{ value: 3 }, { value: -1, unit: 'bar' }],
      'a.b': { 'c\\d': 7 },
    });
    assert.deepEqual(result, {
      measurements: [
        { field: 'temperature', numberValue: 21.5, textValue: null },
        { field: 'valve', numberValue: 1, textValue: null },
        { field: 'status', numberValue: null, textValue: 'ok' },
        { field: 'sensors.0.value', numberValue: 3, textValue: null },
        { field: 'sensors.1.value', numberValue: -1, textValue: null },
        { field: 'sensors.1.unit', numberValue: null, textValue: 'bar' },
        { field: 'a\\.b.c\\\\d', numberValue: 7, textValue: null },
      ],
      skipped: 1,
      truncated: false,
    });
  });

  it('skips non-finite numbers, values beyond the depth cap and over-long texts', () => {
    const deep = { a: { b: { c: 1 } } };
    const result = flattenDecoded(
      { nan: Number.NaN, inf: Number.POSITIVE_INFINITY, deep, long: 'x'.repeat(11), ok: 2 },
      { maxDepth: 2, maxTextLength: 10 },
    );
    assert.deepEqual(
      result.measurements.map((m) => m.field),
      ['ok'],
    );
    assert.equal(result.skipped, 4);
  });

  it('caps the rows per object and says so', () => {
    const result = flattenDecoded(
      { values: Array.from({ length: 50 }, (_, i) => i) },
      { maxRows: 10 },
    );
    assert.equal(result.measurements.length, 10);
    assert.equal(result.truncated, true);
    assert.equal(result.measurements.at(-1)?.field, 'values.9');
  });

  it('gives no rows for a non-object and survives a cycle', () => {
    assert.deepEqual(flattenDecoded(42).measurements, []);
    assert.deepEqual(flattenDecoded(null).measurements, []);
    const cyclic: Record<string, unknown> = { x: 1 };
    cyclic['self'] = cyclic;
    const result = flattenDecoded(cyclic);
    assert.ok(result.measurements.length > 1);
    assert.ok(result.measurements.every((m) => m.numberValue === 1));
  });

  it('treats a __proto__ key as a plain key', () => {
    const object = JSON.parse('{"__proto__": {"polluted": 1}, "v": 2}') as unknown;
    const fields = flattenDecoded(object).measurements.map((m) => m.field);
    assert.deepEqual(fields, ['__proto__.polluted', 'v']);
    assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
  });

  it('never throws on arbitrary JSON, and every path leads back to its value', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), (value) => {
        const result = flattenDecoded(value);
        assert.ok(result.measurements.length <= DEFAULT_FLATTEN_LIMITS.maxRows);
        if (!result.truncated) {
          assert.equal(result.measurements.length, storableLeaves(value));
        }
        for (const measurement of result.measurements) {
          const original = valueAt(value, splitFieldPath(measurement.field));
          const expected = typeof original === 'boolean' ? (original ? 1 : 0) : original;
          assert.equal(measurement.numberValue ?? measurement.textValue, expected);
        }
        const fields = result.measurements.map((m) => m.field);
        assert.equal(new Set(fields).size, fields.length, 'field paths are unique');
      }),
      { numRuns: 300 },
    );
  });

  it('splits every joined path back into its segments', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: 'grapheme-ascii' }), { minLength: 1 }), (segments) => {
        assert.deepEqual(splitFieldPath(joinFieldPath(segments)), segments);
      }),
    );
  });
});

describe('dropFields', () => {
  const decoded = {
    temperature: 21,
    location: { latitude: 45.4, longitude: 4.3 },
    sensors: [
      { value: 1, serial: 'A1' },
      { value: 2, serial: 'B2' },
    ],
  };

  it('removes whole subtrees, wildcard paths and array elements without touching the input', () => {
    const before = structuredClone(decoded);
    assert.deepEqual(dropFields(decoded, ['location', 'sensors.*.serial', 'missing.path']), {
      temperature: 21,
      sensors: [{ value: 1 }, { value: 2 }],
    });
    assert.deepEqual(dropFields(decoded, ['sensors.0']), {
      ...decoded,
      sensors: [null, { value: 2, serial: 'B2' }],
    });
    assert.deepEqual(decoded, before);
  });

  it('leaves no dropped path among the flattened fields, on arbitrary JSON', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 4 }), fc.nat(), (value, pick) => {
        const fields = flattenDecoded(value).measurements.map((m) => m.field);
        if (fields.length === 0) return;
        const dropped = fields[pick % fields.length]!;
        const kept = flattenDecoded(dropFields(value, [dropped])).measurements.map((m) => m.field);
        assert.ok(!kept.includes(dropped));
        assert.ok(!kept.some((field) => field.startsWith(`${dropped}.`)));
      }),
      { numRuns: 200 },
    );
  });
});
