// Property tests (fast-check): random bytes into real codecs never break the engine, batches
// agree with single calls, and any JSON value a codec returns arrives unchanged.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import {
  CodecEngine,
  type CodecErrorCode,
  type DecodeOutcome,
} from '../../../src/application/codecs/index.js';
import { vendorCodec } from './helpers.js';

const engine = new CodecEngine();
after(() => engine.dispose());

const CODES = new Set<CodecErrorCode>([
  'CODEC_THREW',
  'CODEC_REPORTED_ERRORS',
  'CODEC_INVALID_RESULT',
  'CODEC_OUTPUT_TOO_LARGE',
  'CODEC_FUNCTION_MISSING',
  'CODEC_TIMEOUT',
]);

function assertWellFormed(outcome: DecodeOutcome): void {
  assert.equal(typeof outcome.ok, 'boolean');
  assert.ok(Array.isArray(outcome.warnings));
  assert.ok(outcome.warnings.every((w) => typeof w === 'string'));
  if (outcome.ok) {
    // JSON in, JSON out: the data survives a JSON round trip unchanged.
    assert.deepEqual(JSON.parse(JSON.stringify(outcome.data)), outcome.data);
  } else {
    assert.ok(CODES.has(outcome.error.code), outcome.error.code);
    assert.equal(typeof outcome.error.message, 'string');
  }
}

const VENDOR_FILES = readdirSync(new URL('./vendor/', import.meta.url)).filter((f) =>
  f.endsWith('.js'),
);

describe('random bytes into vendor codecs', () => {
  for (const file of VENDOR_FILES) {
    it(`never breaks the engine: ${file}`, () => {
      const codec = engine.load(vendorCodec(file));
      if (codec.signatures.uplinkDecoder === null) return;
      const frame = fc.record({
        bytes: fc.uint8Array({ maxLength: 48 }),
        fPort: fc.oneof(fc.integer({ min: 1, max: 12 }), fc.integer({ min: 0, max: 255 })),
      });
      fc.assert(
        fc.property(fc.array(frame, { minLength: 1, maxLength: 8 }), (frames) => {
          const singles = frames.map((f) => codec.decodeUplink(f));
          singles.forEach(assertWellFormed);
          assert.deepEqual(codec.decodeMany(frames), singles);
        }),
        { numRuns: 150 },
      );
    });
  }
});

describe('values a codec returns', () => {
  // About fidelity, not time: a generous cap, so that a busy machine does not fail a large value.
  const patientEngine = new CodecEngine({ timeoutMs: 5000 });
  after(() => patientEngine.dispose());
  const echo = patientEngine.load(
    'function decodeUplink(input) { return { data: JSON.parse(input.variables.json) }; }',
  );

  it('arrive unchanged for any JSON value (fast-check)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const json = JSON.stringify(value);
        const outcome = echo.decodeUplink({
          bytes: new Uint8Array(),
          fPort: 1,
          variables: { json },
        });
        if (hasProtoKey(JSON.parse(json))) {
          // Refused on purpose (prototype pollution downstream).
          assert.ok(!outcome.ok && outcome.error.code === 'CODEC_INVALID_RESULT');
          return;
        }
        assert.ok(outcome.ok, JSON.stringify(outcome));
        assert.deepEqual(outcome.data, JSON.parse(json));
      }),
      {
        numRuns: 300,
        // A value "__proto__" is data; a key "__proto__" is refused (both once found by a run).
        examples: [[{ '': '__proto__' }], [JSON.parse('{"a":{"__proto__":1}}')]],
      },
    );
  });

  it('arrive unchanged through a batch (fast-check)', () => {
    fc.assert(
      fc.property(fc.array(fc.jsonValue({ maxDepth: 4 }), { maxLength: 20 }), (values) => {
        const inputs = values.map((value) => ({
          bytes: new Uint8Array(),
          fPort: 1,
          variables: { json: JSON.stringify(value) },
        }));
        const outcomes = echo.decodeMany(inputs);
        outcomes.forEach((outcome, i) => {
          const json = inputs[i]!.variables.json;
          if (hasProtoKey(JSON.parse(json))) assert.equal(outcome.ok, false);
          else assert.deepEqual(outcome.ok && outcome.data, JSON.parse(json));
        });
      }),
      { numRuns: 100 },
    );
  });

  it('are refused, never crash, for arbitrary JavaScript values (fast-check)', () => {
    const values = engine.load(`
      function decodeUplink(input) {
        var kinds = [NaN, Infinity, -Infinity, 1n, Symbol('s'), function () {}, new Map(), new Set(),
          /re/, new Error('e'), Promise.resolve(1), new WeakMap(), new ArrayBuffer(1), undefined, null, 0];
        var data = {};
        var node = data;
        for (var i = 0; i < input.bytes.length; i++) {
          var b = input.bytes[i];
          if (b % 3 === 0) { node.child = {}; node = node.child; }
          else if (b % 3 === 1) { node.list = [kinds[b % kinds.length]]; }
          else { node['k' + b] = kinds[b % kinds.length]; }
        }
        return { data: data };
      }`);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), (bytes) => {
        assertWellFormed(values.decodeUplink({ bytes, fPort: 1 }));
      }),
      { numRuns: 300 },
    );
  });
});

/** Whether a parsed JSON value has a `__proto__` key anywhere (a value "__proto__" is fine). */
function hasProtoKey(value: unknown): boolean {
  if (Array.isArray(value)) return value.some(hasProtoKey);
  if (typeof value !== 'object' || value === null) return false;
  return Object.keys(value).some(
    (key) => key === '__proto__' || hasProtoKey((value as Record<string, unknown>)[key]),
  );
}
