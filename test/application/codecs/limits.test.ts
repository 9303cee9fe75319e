// The time and memory caps of the in-process engine: a runaway or greedy codec gets a typed
// failure, its isolate is disposed and recreated, and neither the process nor the other codecs
// notice. (Some allocations make V8 abort the whole process instead: those are tested through
// CodecProcess, in codec-process.test.ts.)
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { CodecEngine, type UplinkInput } from '../../../src/application/codecs/index.js';
import { assertData, assertFailure, hex } from './helpers.js';

const engine = new CodecEngine({ timeoutMs: 50 });
after(() => engine.dispose());

const one = (byte: number): UplinkInput => ({ bytes: Uint8Array.of(byte), fPort: 1 });

const RUNAWAY = `
  var calls = 0;
  function decodeUplink(input) {
    calls++;
    if (input.bytes[0] === 0xff) { while (true) {} }
    if (input.bytes[0] === 0xfe) { for (;;) { Math.sqrt(calls); } }
    if (input.bytes[0] === 0xfd) { (function spin() { while (true) { try { spin(); } catch (e) {} } })(); }
    return { data: { value: input.bytes[0], calls: calls } };
  }`;

const GREEDY = `
  function decodeUplink(input) {
    var kind = input.bytes[0];
    var hoard = [];
    if (kind === 1) { while (true) hoard.push(new Array(100000).fill(1.5)); }
    if (kind === 2) { var s = 'x'; while (true) { s = s + s; hoard.push(s); } }
    if (kind === 3) { while (true) hoard.push({ a: hoard.length, b: [hoard.length] }); }
    if (kind === 4) { while (true) hoard.push(new Uint8Array(4 * 1024 * 1024)); }
    return { data: kind };
  }`;

describe('the time cap', () => {
  it('stops an infinite loop with a typed timeout and recreates the isolate', () => {
    const codec = engine.load(RUNAWAY);
    assertData(codec.decodeUplink(one(1)), { value: 1, calls: 1 });
    const started = performance.now();
    assertFailure(
      codec.decodeUplink(one(0xff)),
      'CODEC_TIMEOUT',
      'the codec ran longer than 50 ms and was stopped',
    );
    assert.ok(performance.now() - started < 1000, 'stopped promptly');
    assert.equal(codec.isLive, false, 'the isolate was disposed');
    // A fresh isolate: the codec's global state starts again.
    assertData(codec.decodeUplink(one(2)), { value: 2, calls: 1 });
    assert.equal(codec.isLive, true);
  });

  it('stops a busy for(;;) loop and a loop that swallows stack overflows', () => {
    const codec = engine.load(RUNAWAY);
    assertFailure(codec.decodeUplink(one(0xfe)), 'CODEC_TIMEOUT');
    assertFailure(codec.decodeUplink(one(0xfd)), 'CODEC_TIMEOUT');
    assertData(codec.decodeUplink(one(3)), { value: 3, calls: 1 });
  });

  it('honours the default cap of 100 ms', () => {
    const defaults = new CodecEngine();
    try {
      assert.equal(defaults.limits.timeoutMs, 100);
      const codec = defaults.load(RUNAWAY);
      const started = performance.now();
      assertFailure(codec.decodeUplink(one(0xff)), 'CODEC_TIMEOUT', /100 ms/);
      const elapsed = performance.now() - started;
      assert.ok(elapsed >= 95 && elapsed < 1500, `stopped after ${elapsed} ms`);
    } finally {
      defaults.dispose();
    }
  });

  it('fails only the runaway frame of a batch, and keeps the batch size', () => {
    const codec = engine.load(RUNAWAY);
    const outcomes = codec.decodeMany([one(1), one(0xff), one(3)]);
    assert.equal(outcomes[0]!.ok, true);
    assertFailure(outcomes[1]!, 'CODEC_TIMEOUT');
    assert.equal(outcomes[2]!.ok, true);
    assert.equal(codec.batchSize, engine.limits.maxBatchSize);
  });

  it('fails only the runaway frame of an async batch', async () => {
    const codec = engine.load(RUNAWAY);
    const outcomes = await codec.decodeManyAsync([one(0xff), one(2), one(0xfe), one(4)]);
    assert.deepEqual(
      outcomes.map((o) => (o.ok ? 'ok' : o.error.code)),
      ['CODEC_TIMEOUT', 'ok', 'CODEC_TIMEOUT', 'ok'],
    );
  });

  it('keeps the event loop free while an async batch runs away', async () => {
    const codec = engine.load(RUNAWAY);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    try {
      const outcomes = await codec.decodeManyAsync([one(0xff)]);
      assertFailure(outcomes[0]!, 'CODEC_TIMEOUT');
    } finally {
      clearInterval(timer);
    }
    assert.ok(ticks >= 3, `the event loop ran ${ticks} timers during the runaway batch`);
  });

  it('halves the batch size when a batch of a slow but honest codec runs out of time', () => {
    const slow = new CodecEngine({ timeoutMs: 40, maxBatchSize: 64 });
    try {
      const codec = slow.load(`
        function decodeUplink(input) {
          var until = Date.now() + 2;
          while (Date.now() < until) {}
          return { data: input.bytes[0] };
        }`);
      const outcomes = codec.decodeMany(Array.from({ length: 64 }, (_, i) => one(i)));
      assert.ok(outcomes.every((o, i) => o.ok && o.data === i));
      assert.ok(codec.batchSize < 64, `batch size now ${codec.batchSize}`);
      assert.ok(slow.stats().batchFallbacks >= 1);
    } finally {
      slow.dispose();
    }
  });

  it('refuses a codec whose top-level code never ends', () => {
    assert.throws(() => engine.load('while (true) {} function decodeUplink() {}'), {
      name: 'CodecError',
      code: 'CODEC_TIMEOUT',
      message: /top-level code failed: the codec ran longer than 50 ms/,
    });
  });

  it('does not let one runaway codec delay another codec', () => {
    const runaway = engine.load(RUNAWAY);
    const honest = engine.load(
      'function decodeUplink(input) { return { data: input.bytes.length }; }',
    );
    for (let i = 0; i < 3; i++) {
      assertFailure(runaway.decodeUplink(one(0xff)), 'CODEC_TIMEOUT');
      const started = performance.now();
      assertData(honest.decodeUplink({ bytes: hex('010203'), fPort: 1 }), 3);
      assert.ok(performance.now() - started < 50);
    }
  });
});

describe('the memory cap', () => {
  for (const [kind, what] of [
    [1, 'arrays of doubles'],
    [2, 'a string doubled until it breaks'],
    [3, 'millions of small objects'],
    [4, 'typed arrays (memory outside the JavaScript heap)'],
  ] as const) {
    it(`stops a codec that hoards ${what}, without crashing the process`, () => {
      const greedy = new CodecEngine({ timeoutMs: 2000, memoryLimitMiB: 16 });
      try {
        const codec = greedy.load(GREEDY);
        const outcome = codec.decodeUplink(one(kind));
        assert.equal(outcome.ok, false);
        if (!outcome.ok) {
          // V8 throws a RangeError for a string or a buffer it cannot allocate, which the
          // codec could catch; the heap limit itself disposes the isolate.
          assert.ok(
            ['CODEC_MEMORY_LIMIT', 'CODEC_THREW'].includes(outcome.error.code),
            JSON.stringify(outcome.error),
          );
          if (outcome.error.code === 'CODEC_MEMORY_LIMIT') {
            assert.match(outcome.error.message, /more than its 16 MiB/);
          } else {
            assert.match(outcome.error.message, /RangeError/);
          }
        }
        assertData(codec.decodeUplink(one(0)), 0);
      } finally {
        greedy.dispose();
      }
    });
  }

  it('fails only the greedy frame of a batch', () => {
    const greedy = new CodecEngine({ timeoutMs: 2000, memoryLimitMiB: 16 });
    try {
      const codec = greedy.load(GREEDY);
      const outcomes = codec.decodeMany([one(0), one(1), one(0)]);
      assert.deepEqual(
        outcomes.map((o) => (o.ok ? 'ok' : o.error.code)),
        ['ok', 'CODEC_MEMORY_LIMIT', 'ok'],
      );
      assert.equal(greedy.stats().memoryLimitHits, 2, 'the batch, then the frame alone');
    } finally {
      greedy.dispose();
    }
  });

  it('refuses a codec whose top-level code exhausts memory', () => {
    const greedy = new CodecEngine({ memoryLimitMiB: 16, timeoutMs: 2000 });
    try {
      assert.throws(
        () =>
          greedy.load(
            'var a = []; while (true) a.push(new Array(1e5).fill(0.5)); function decodeUplink() {}',
          ),
        { code: 'CODEC_MEMORY_LIMIT' },
      );
    } finally {
      greedy.dispose();
    }
  });

  it('refuses a memory cap below what V8 accepts', () => {
    assert.throws(() => new CodecEngine({ memoryLimitMiB: 4 }), RangeError);
  });
});

describe('the output cap', () => {
  const small = new CodecEngine({ maxOutputChars: 1000 });
  after(() => small.dispose());

  it('refuses data whose JSON is larger than the cap', () => {
    const codec = small.load(
      'function decodeUplink(input) { return { data: { text: "x".repeat(input.bytes[0] * 100) } }; }',
    );
    assert.ok(codec.decodeUplink(one(5)).ok);
    assertFailure(
      codec.decodeUplink(one(20)),
      'CODEC_OUTPUT_TOO_LARGE',
      /returned 2011 characters of JSON, more than the limit of 1000/,
    );
  });

  it('refuses a huge array of numbers and a huge number of warnings', () => {
    const codec = small.load(`
      function decodeUplink(input) {
        if (input.bytes[0] === 1) return { data: new Array(100000).fill(1) };
        var warnings = [];
        for (var i = 0; i < 1000; i++) warnings.push('warning ' + i);
        return { data: 1, warnings: warnings };
      }`);
    assertFailure(codec.decodeUplink(one(1)), 'CODEC_OUTPUT_TOO_LARGE');
    assertFailure(codec.decodeUplink(one(2)), 'CODEC_OUTPUT_TOO_LARGE', /warnings/);
  });

  it('refuses an encoded downlink longer than the cap', () => {
    const codec = small.load(
      'function encodeDownlink() { return { bytes: new Array(5000).fill(0), fPort: 1 }; }',
    );
    assertFailure(codec.encodeDownlink({ data: {} }), 'CODEC_OUTPUT_TOO_LARGE', /5000 bytes/);
  });

  it('handles a result too big for the isolate itself', () => {
    const codec = engine.load(
      'function decodeUplink() { return { data: "x".repeat(200 * 1024 * 1024) }; }',
    );
    const outcome = codec.decodeUplink(one(1));
    assert.equal(outcome.ok, false);
    assertData(
      engine
        .load('function decodeUplink() { return { data: "still fine" }; }')
        .decodeUplink(one(1)),
      'still fine',
    );
  });
});
