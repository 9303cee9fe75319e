// CodecProcess: codecs run in a child process, so that a codec that makes V8 abort (isolated-vm's
// memory limit is best effort) or a sandbox that hangs costs a restart of the child, never the
// server. Outcomes are the same as in-process.
//
// CodecProcess comes from the built JavaScript (test/cli/built-cli.ts), as in production: each
// child (and each restart, which this file causes a dozen of) then starts without tsx's loader.
// The source's own child entry through tsx stays covered by the other tests that use it.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type * as Codecs from '../../../src/application/codecs/index.js';
import { CodecEngine, type UplinkInput } from '../../../src/application/codecs/index.js';
import { builtModule } from '../../cli/built-cli.js';
import { assertData, assertFailure, hex, vendorCodec } from './helpers.js';

const { CodecProcess } = (await import(
  builtModule('application/codecs/index.ts')
)) as typeof Codecs;
type CodecProcess = Codecs.CodecProcess;

const LIMITS = { timeoutMs: 1000, memoryLimitMiB: 16, watchdogMs: 2000 };

/** Runs `test` with a CodecProcess of its own, closed afterwards. */
async function withHost(
  options: Codecs.CodecProcessOptions,
  test: (host: CodecProcess) => Promise<void>,
): Promise<void> {
  const host = await CodecProcess.start(options);
  try {
    await test(host);
  } finally {
    await host.close();
  }
}

const one = (byte: number): UplinkInput => ({ bytes: Uint8Array.of(byte), fPort: 1, recvTime: 0 });

// Allocations that V8 cannot satisfy inside the isolate's limit abort the whole process
// (isolated-vm issues #527, #457): here only the child.
const BOMBS = `
  function decodeUplink(input) {
    switch (input.bytes[0]) {
      case 1: var m = new Map(); for (var i = 0; ; i++) m.set(i, i);
      case 2: var s = new Set(); for (var j = 0; ; j++) s.add('k' + j);
      case 3: var o = {}; for (var k = 0; ; k++) o['k' + k] = k;
      case 4: return { data: new Array(1e8).fill(0).length };
      case 5: while (true) {}
    }
    return { data: input.bytes[0] };
  }`;

// Children side by side: the tests that count the restarts of theirs run one after another
// on one child; the time cap and the watchdog (which stops its child) each have their own.
describe('CodecProcess', { concurrency: true }, () => {
  describe('one child for every codec', { concurrency: 1 }, () => {
    let host: CodecProcess;
    before(async () => {
      host = await CodecProcess.start(LIMITS);
    });
    after(() => host.close());

    it('gives the same outcomes as the in-process engine', async () => {
      const source = vendorCodec('th-sensor-ttn.js');
      const remote = await host.load(source);
      const engine = new CodecEngine();
      try {
        const local = engine.load(source);
        assert.deepEqual(remote.signatures, local.signatures);
        const inputs: UplinkInput[] = [
          { bytes: hex('010ce409297b00'), fPort: 1, recvTime: 0 },
          { bytes: hex('010b'), fPort: 1, recvTime: 0 },
          { bytes: hex('02000f1ef603'), fPort: 2, recvTime: 0 },
        ];
        assert.deepEqual(await remote.decodeMany(inputs), local.decodeMany(inputs));
        assert.deepEqual(await remote.decodeUplink(inputs[0]!), local.decodeUplink(inputs[0]!));
        const encode = { data: { intervalMinutes: 15 } };
        assert.deepEqual(await remote.encodeDownlink(encode), local.encodeDownlink(encode));
        const downlink = { bytes: hex('01000f'), fPort: 10 };
        assert.deepEqual(await remote.decodeDownlink(downlink), local.decodeDownlink(downlink));
      } finally {
        engine.dispose();
      }
    });

    it('turns load failures into CodecErrors', async () => {
      await assert.rejects(host.load('function decodeUplink( {'), { code: 'CODEC_COMPILE_ERROR' });
      await assert.rejects(host.load('throw new TypeError("nope")'), {
        code: 'CODEC_THREW',
        message: /TypeError: nope/,
      });
      await assert.rejects(host.load('var nothing = 1;'), { code: 'CODEC_FUNCTION_MISSING' });
    });

    it('batches the uplinks asked for in one turn of the event loop, in order', async () => {
      const codec = await host.load(
        'function decodeUplink(input) { return { data: input.bytes[0] }; }',
      );
      const outcomes = await Promise.all(
        Array.from({ length: 300 }, (_, i) => codec.decodeUplink(one(i % 256))),
      );
      outcomes.forEach((outcome, i) => {
        assertData(outcome, i % 256);
      });
    });

    for (const [byte, what] of [
      [1, 'a Map grown past the limit'],
      [2, 'a Set grown past the limit'],
      [3, 'an object with millions of keys'],
      [4, 'an array of 100 million numbers'],
    ] as const) {
      it(`survives ${what}: a typed failure, the child restarted, other codecs unharmed`, async () => {
        const codec = await host.load(BOMBS);
        const other = await host.load('function decodeUplink() { return { data: "other" }; }');
        const restarts = host.stats().restarts;
        const outcome = await codec.decodeUplink(one(byte));
        assert.equal(outcome.ok, false);
        if (!outcome.ok) {
          assert.ok(
            ['CODEC_MEMORY_LIMIT', 'CODEC_TIMEOUT'].includes(outcome.error.code),
            JSON.stringify(outcome.error),
          );
          // V8 either stops the isolate (no restart) or aborts the child (a restart), and the
          // failure says which.
          assert.equal(
            /restarted/.test(outcome.error.message),
            host.stats().restarts > restarts,
            JSON.stringify(outcome.error),
          );
        }
        assertData(await codec.decodeUplink(one(9)), 9);
        assertData(await other.decodeUplink(one(0)), 'other');
      });
    }

    it('fails only the frames that abort the child, in a batch', async () => {
      const codec = await host.load(BOMBS);
      const restarts = host.stats().restarts;
      const outcomes = await codec.decodeMany([one(7), one(4), one(8), one(9)]);
      assert.deepEqual(
        outcomes.map((o) => (o.ok ? o.data : 'failed')),
        [7, 'failed', 8, 9],
      );
      assert.ok(host.stats().restarts > restarts, 'the child was restarted');
    });

    it('answers the other requests sent while a child died', async () => {
      const codec = await host.load(BOMBS);
      const results = await Promise.all([
        codec.decodeMany([one(1)]),
        codec.decodeMany([one(10)]),
        codec.decodeMany([one(11), one(12)]),
      ]);
      assert.equal(results[0]![0]!.ok, false);
      assertData(results[1]![0]!, 10);
      assertData(results[2]![0]!, 11);
      assertData(results[2]![1]!, 12);
    });
  });

  it('keeps runaway loops inside the child (time cap, no restart)', () =>
    // A shorter time cap than the other tests' 1000 ms: what is checked is that the cap, not the
    // watchdog or a restart, ends the loop.
    withHost({ ...LIMITS, timeoutMs: 100 }, async (host) => {
      const codec = await host.load(BOMBS);
      const restarts = host.stats().restarts;
      assertFailure(await codec.decodeUplink(one(5)), 'CODEC_TIMEOUT', /longer than 100 ms/);
      assert.equal(host.stats().restarts, restarts);
    }));

  it('kills and replaces a child that stops answering (watchdog)', () =>
    withHost(LIMITS, async (host) => {
      const codec = await host.load(
        'function decodeUplink(input) { return { data: input.bytes[0] }; }',
      );
      assertData(await codec.decodeUplink(one(1)), 1);
      const pid = host.pid!;
      process.kill(pid, 'SIGSTOP');
      const outcome = await codec.decodeUplink(one(2));
      assertFailure(outcome, 'CODEC_TIMEOUT', /did not answer for 2000 ms/);
      assert.equal(host.stats().watchdogKills, 1);
      assert.notEqual(host.pid, pid);
      assertData(await codec.decodeUplink(one(3)), 3);
    }));

  it('answers requests after close with a sandbox error', async () => {
    const host = await CodecProcess.start();
    const codec = await host.load('function decodeUplink() { return { data: 1 }; }');
    await host.close();
    assertFailure(await codec.decodeUplink(one(1)), 'CODEC_SANDBOX_ERROR', /closed/);
    await assert.rejects(host.load('function decodeUplink() {}'), { code: 'CODEC_SANDBOX_ERROR' });
  });
});
