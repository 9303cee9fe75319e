// The engine: warm isolates bounded by an LRU, one codec per source, counters, options.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CodecEngine, type UplinkInput } from '../../../src/application/codecs/index.js';
import { assertData } from './helpers.js';

const one = (byte: number): UplinkInput => ({ bytes: Uint8Array.of(byte), fPort: 1 });

/** A codec that counts its calls in a global: the count restarts with its isolate. */
const counting = (name: string) => `
  var calls = 0;
  function decodeUplink(input) { calls++; return { data: { codec: '${name}', calls: calls } }; }`;

describe('CodecEngine', () => {
  it('keeps a codec warm between calls (its isolate and global state survive)', () => {
    const engine = new CodecEngine();
    try {
      const codec = engine.load(counting('a'));
      assertData(codec.decodeUplink(one(0)), { codec: 'a', calls: 1 });
      assertData(codec.decodeUplink(one(0)), { codec: 'a', calls: 2 });
      codec.decodeMany([one(0), one(0)]);
      assertData(codec.decodeUplink(one(0)), { codec: 'a', calls: 5 });
      assert.equal(engine.stats().isolatesCreated, 1);
    } finally {
      engine.dispose();
    }
  });

  it('gives the same codec for the same source, and a short id of its content', () => {
    const engine = new CodecEngine();
    try {
      const a = engine.load(counting('a'));
      assert.equal(engine.load(counting('a')), a);
      assert.notEqual(engine.load(counting('b')), a);
      assert.match(a.id, /^[0-9a-f]{16}$/);
      assert.equal(engine.stats().codecs, 2);
    } finally {
      engine.dispose();
    }
  });

  it('bounds the live isolates, least recently used first out, and recreates on use', () => {
    const engine = new CodecEngine({ maxIsolates: 2 });
    try {
      const [a, b, c] = ['a', 'b', 'c'].map((name) => engine.load(counting(name)));
      assert.equal(engine.stats().liveIsolates, 2);
      assert.equal(a!.isLive, false, 'a, the least recently used, was evicted');
      assert.equal(b!.isLive && c!.isLive, true);
      assertData(b!.decodeUplink(one(0)), { codec: 'b', calls: 1 });
      assertData(a!.decodeUplink(one(0)), { codec: 'a', calls: 1 });
      assert.equal(c!.isLive, false, 'c is now the least recently used');
      assertData(b!.decodeUplink(one(0)), { codec: 'b', calls: 2 }, []);
      const stats = engine.stats();
      assert.equal(stats.liveIsolates, 2);
      assert.equal(stats.isolatesEvicted, 2);
      assert.equal(stats.isolatesCreated, 4);
    } finally {
      engine.dispose();
    }
  });

  it('does not evict a codec while an async batch runs in it', async () => {
    const engine = new CodecEngine({ maxIsolates: 1 });
    try {
      const slow = engine.load(`
        function decodeUplink(input) {
          var until = Date.now() + 20;
          while (Date.now() < until) {}
          return { data: input.bytes[0] };
        }`);
      const running = slow.decodeManyAsync([one(1), one(2)]);
      const other = engine.load(counting('other'));
      assertData(other.decodeUplink(one(0)), { codec: 'other', calls: 1 });
      const outcomes = await running;
      assert.deepEqual(
        outcomes.map((o) => (o.ok ? o.data : o.error.code)),
        [1, 2],
      );
    } finally {
      engine.dispose();
    }
  });

  it('frees isolates on unload and dispose', () => {
    const engine = new CodecEngine();
    const a = engine.load(counting('a'));
    engine.load(counting('b'));
    engine.unload(a);
    assert.equal(a.isLive, false);
    assert.equal(engine.stats().codecs, 1);
    assert.notEqual(engine.load(counting('a')), a);
    engine.dispose();
    assert.deepEqual([engine.stats().liveIsolates, engine.stats().codecs], [0, 0]);
  });

  it('counts timeouts and batch fallbacks', () => {
    const engine = new CodecEngine({ timeoutMs: 20 });
    try {
      const codec = engine.load(
        'function decodeUplink(input) { while (input.bytes[0]) {} return { data: 0 }; }',
      );
      codec.decodeMany([one(0), one(1)]);
      const stats = engine.stats();
      assert.equal(stats.timeouts, 2, 'the batch, then the guilty frame alone');
      assert.equal(stats.batchFallbacks, 1);
    } finally {
      engine.dispose();
    }
  });

  it('splits large batches by maxBatchSize and keeps the order', () => {
    const engine = new CodecEngine({ maxBatchSize: 7 });
    try {
      const codec = engine.load(
        'function decodeUplink(input) { var b = input.bytes; return { data: b.length ? b[0] + b.length : null }; }',
      );
      const inputs = Array.from({ length: 50 }, (_, i) => ({
        bytes: Uint8Array.from({ length: i % 5 }, () => i),
        fPort: 1,
      }));
      const outcomes = codec.decodeMany(inputs);
      outcomes.forEach((outcome, i) => {
        assertData(outcome, i % 5 === 0 ? null : i + (i % 5));
      });
      assert.deepEqual(codec.decodeMany([]), []);
    } finally {
      engine.dispose();
    }
  });

  it('refuses bad options', () => {
    assert.throws(() => new CodecEngine({ timeoutMs: 0 }), RangeError);
    assert.throws(() => new CodecEngine({ maxIsolates: 1.5 }), RangeError);
    assert.throws(() => new CodecEngine({ maxOutputChars: -1 }), RangeError);
    const engine = new CodecEngine();
    assert.deepEqual(engine.limits, {
      timeoutMs: 100,
      memoryLimitMiB: 32,
      maxOutputChars: 65536,
      maxBatchSize: 256,
    });
    assert.equal(engine.maxIsolates, 32);
  });

  it('offers the built-in Cayenne LPP codec', () => {
    const engine = new CodecEngine();
    const lpp = engine.cayenneLpp();
    assert.equal(lpp.kind, 'cayenne-lpp');
    assertData(lpp.decodeUplink({ bytes: Uint8Array.from([1, 0x67, 0, 0xff]), fPort: 1 }), {
      temperatureSensor: { '1': 25.5 },
    });
  });
});
