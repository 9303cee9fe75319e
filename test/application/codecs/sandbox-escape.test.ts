// Codecs that try to leave the sandbox: reach Node (process, require, import, timers, fetch),
// climb constructor chains, look at their caller, abuse stack traces, Proxy and Symbol tricks,
// and pollute prototypes. Each attempt must see only the isolate's own JavaScript built-ins.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { CodecEngine, type DecodeOutcome } from '../../../src/application/codecs/index.js';
import { assertData, assertFailure, hex } from './helpers.js';

const engine = new CodecEngine({ timeoutMs: 100 });
after(() => engine.dispose());

/** Runs `body` (the inside of a decodeUplink returning {data: ...}) on one uplink. */
function probe(body: string, bytes = '01'): DecodeOutcome {
  const codec = engine.load(`function decodeUplink(input) {\n${body}\n}`);
  return codec.decodeUplink({ bytes: hex(bytes), fPort: 1 });
}

function dataOf(outcome: DecodeOutcome): unknown {
  assert.ok(outcome.ok, JSON.stringify(outcome));
  return outcome.data;
}

describe('a codec sees no Node.js and no host object', () => {
  it('has no process, require, module loader, Buffer, timers, fetch or I/O globals', () => {
    const names = [
      'process',
      'require',
      'Buffer',
      'setTimeout',
      'setInterval',
      'setImmediate',
      'queueMicrotask',
      'fetch',
      'XMLHttpRequest',
      'WebSocket',
      'global',
      '__dirname',
      '__filename',
      'importScripts',
      'Deno',
      'Bun',
      'structuredClone',
      'SharedArrayBuffer',
      'Atomics',
      'WebAssembly',
      'WeakRef',
      'FinalizationRegistry',
      '_ivm',
      'ivm',
    ];
    const data = dataOf(
      probe(`
        var names = ${JSON.stringify(names)};
        var found = {};
        for (var i = 0; i < names.length; i++) found[names[i]] = typeof globalThis[names[i]];
        return { data: found };`),
    );
    assert.deepEqual(data, Object.fromEntries(names.map((name) => [name, 'undefined'])));
  });

  it('lists only JavaScript built-ins (and the module shim) on its global object', () => {
    const data = dataOf(
      probe('return { data: Object.getOwnPropertyNames(globalThis).sort() };'),
    ) as string[];
    const builtins = new Set([
      ...Object.getOwnPropertyNames(globalThis).filter(
        (name) => name in Object.getPrototypeOf({}) === false,
      ),
    ]);
    for (const name of data) {
      assert.ok(
        name === 'module' ||
          name === 'exports' ||
          name === 'console' ||
          name === 'decodeUplink' ||
          (builtins.has(name) && !['process', 'Buffer', 'global', 'require'].includes(name)),
        `unexpected global ${name}`,
      );
    }
  });

  it('cannot reach process through constructor chains', () => {
    const attempts = [
      "globalThis.constructor.constructor('return typeof process')()",
      "this.constructor.constructor('return typeof process')()",
      "(function(){}).constructor('return typeof process')()",
      "(() => 0).constructor('return typeof require')()",
      "input.constructor.constructor('return typeof process')()",
      "input.bytes.constructor.constructor('return typeof process')()",
      "Object.getPrototypeOf(async function(){}).constructor.constructor('return typeof process')()",
      "Object.getPrototypeOf(function*(){}).constructor.constructor('return typeof process')()",
      "Function('return typeof this.process')()",
      "eval('typeof process')",
      "(0, eval)('typeof require')",
      "new Function('return typeof Buffer')()",
      "[].constructor.constructor('return typeof setTimeout')()",
      "Reflect.construct(Function, ['return typeof fetch'])()",
    ];
    const data = dataOf(
      probe(
        `return { data: [${attempts.map((a) => `(function () { try { return ${a}; } catch (e) { return 'threw ' + e.name; } })()`).join(',')}] };`,
      ),
    ) as string[];
    for (const [i, result] of data.entries()) {
      assert.ok(
        result === 'undefined' || result.startsWith('threw '),
        `${attempts[i]} gave ${result}`,
      );
    }
  });

  it('gets null for its caller, whatever way it asks (the harness is strict mode)', () => {
    const data = dataOf(
      probe(`
        var viaCallee = null;
        try { viaCallee = arguments.callee.caller; } catch (e) { viaCallee = 'threw'; }
        return { data: {
          caller: decodeUplink.caller === null,
          callee: viaCallee === null,
          thisIsGlobal: this === globalThis,
        } };`),
    );
    assert.deepEqual(data, { caller: true, callee: true, thisIsGlobal: true });
  });

  it('finds no host function in stack frames (Error.prepareStackTrace)', () => {
    const data = dataOf(
      probe(`
        Error.prepareStackTrace = function (error, frames) { return frames; };
        var frames = new Error('x').stack;
        var found = [];
        for (var i = 0; i < frames.length; i++) {
          var fn = frames[i].getFunction();
          var self = frames[i].getThis();
          found.push({
            name: String(frames[i].getFunctionName()),
            file: String(frames[i].getScriptNameOrSourceURL()),
            fn: typeof fn,
            self: self === undefined ? 'undefined' : self === globalThis ? 'global' : typeof self,
            processFromFn: fn ? fn.constructor('return typeof process')() : 'none',
          });
        }
        Error.prepareStackTrace = undefined;
        return { data: found };`),
    ) as Array<Record<string, string>>;
    assert.ok(data.length >= 1);
    for (const frame of data) {
      assert.ok(['codec.js', 'galet-prelude.js'].includes(frame['file']!), JSON.stringify(frame));
      if (frame['file'] === 'galet-prelude.js') {
        // strict-mode frames hide their function and receiver
        assert.equal(frame['fn'], 'undefined');
        assert.equal(frame['self'], 'undefined');
      }
      assert.ok(['none', 'undefined'].includes(frame['processFromFn']!));
    }
  });

  it('cannot load modules with import() or import.meta', () => {
    const codec = engine.load(`
      function decodeUplink() {
        var outcome = 'none';
        try {
          var p = import('node:fs');
          outcome = typeof p;
          p.then(function () { globalThis.loaded = true; }, function () { globalThis.rejected = true; });
        } catch (e) { outcome = 'threw ' + e.name; }
        return { data: { outcome: outcome, loaded: globalThis.loaded === true } };
      }`);
    const first = codec.decodeUplink({ bytes: hex('01'), fPort: 1 });
    assert.ok(first.ok, JSON.stringify(first));
    assert.equal((first.data as Record<string, unknown>)['loaded'], false);
    const second = codec.decodeUplink({ bytes: hex('01'), fPort: 1 });
    assert.ok(second.ok);
    assert.equal((second.data as Record<string, unknown>)['loaded'], false);
    assert.throws(() => engine.load('const fs = import.meta; function decodeUplink() {}'), {
      code: 'CODEC_COMPILE_ERROR',
    });
  });

  it('cannot block a thread with Atomics.wait or grow memory through WebAssembly', () => {
    const data = dataOf(
      probe(`return { data: [typeof Atomics, typeof SharedArrayBuffer, typeof WebAssembly] };`),
    );
    assert.deepEqual(data, ['undefined', 'undefined', 'undefined']);
  });

  it('can call console.log without effect (vendor codecs do)', () => {
    assertData(
      probe('console.log("debug", input.bytes); console.error("x"); return { data: 1 };'),
      1,
    );
  });
});

describe('prototype pollution stays inside the codec’s isolate', () => {
  it('leaves the host’s prototypes untouched', () => {
    const outcome = probe(`
      Object.prototype.polluted = 'yes';
      Array.prototype.polluted = 'yes';
      Object.prototype.toString = function () { return 'hijacked'; };
      JSON.parse = function () { return { hijacked: true }; };
      return { data: { inside: ({}).polluted } };`);
    assertData(outcome, { inside: 'yes' });
    assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
    assert.equal(([] as unknown as Record<string, unknown>)['polluted'], undefined);
    assert.equal(Object.prototype.toString.call({}), '[object Object]');
    assert.deepEqual(JSON.parse('{"a":1}'), { a: 1 });
  });

  it('refuses a __proto__ key in the data', () => {
    const outcome = probe('return { data: JSON.parse(\'{"a":1,"__proto__":{"isAdmin":true}}\') };');
    assertFailure(outcome, 'CODEC_INVALID_RESULT', /__proto__/);
    assert.equal(({} as Record<string, unknown>)['isAdmin'], undefined);
  });

  it('refuses a __proto__ key nested deep in the data', () => {
    const outcome = probe(
      'return { data: { list: [{ ok: 1 }, JSON.parse(\'{"__proto__":{"x":1}}\')] } };',
    );
    assertFailure(outcome, 'CODEC_INVALID_RESULT', /data\.list\[1\]\.__proto__/);
  });

  it('gives constructor/prototype keys back as plain data, without touching prototypes', () => {
    const outcome = probe('return { data: { constructor: { prototype: { injected: 1 } } } };');
    assertData(outcome, { constructor: { prototype: { injected: 1 } } });
    assert.equal(({} as Record<string, unknown>)['injected'], undefined);
  });

  it('does not leak one codec’s pollution into another codec', () => {
    probe('Object.prototype.leak = 42; Array.prototype.map = null; return { data: 1 };', '02');
    const other = engine.load(
      'function decodeUplink(input) { return { data: { leak: ({}).leak === undefined, map: typeof [].map } }; }',
    );
    assertData(other.decodeUplink({ bytes: hex('00'), fPort: 1 }), { leak: true, map: 'function' });
  });

  it('cannot change how its own results are checked by replacing built-ins', () => {
    const codec = engine.load(`
      JSON.stringify = function () { return '[0,{"__proto__":{"x":1}},[]]'; };
      Object.keys = function () { return []; };
      Array.isArray = function () { return false; };
      Object.getPrototypeOf = function () { return Object.prototype; };
      function decodeUplink() { return { data: { value: new Map() } }; }
    `);
    assertFailure(
      codec.decodeUplink({ bytes: hex('00'), fPort: 1 }),
      'CODEC_INVALID_RESULT',
      /data\.value is a Map/,
    );
  });

  it('gets a fresh copy of its input on every call', () => {
    const codec = engine.load(`
      function decodeUplink(input) {
        var seen = input.bytes.join(',');
        input.bytes[0] = 99;
        input.bytes.push(7);
        return { data: seen };
      }`);
    assertData(codec.decodeUplink({ bytes: hex('0102'), fPort: 1 }), '1,2');
    assertData(codec.decodeUplink({ bytes: hex('0102'), fPort: 1 }), '1,2');
  });

  it('sees only its own bytes when given a view into a larger buffer', () => {
    const pool = Buffer.from('secret-of-another-tenant:0102:more-secrets', 'latin1');
    const view = pool.subarray(25, 29);
    const codec = engine.load('function decodeUplink(input) { return { data: input.bytes }; }');
    assertData(codec.decodeUplink({ bytes: view, fPort: 1 }), [48, 49, 48, 50]);
    const [batched] = codec.decodeMany([{ bytes: view, fPort: 1 }]);
    assertData(batched!, [48, 49, 48, 50]);
  });
});

describe('Proxy, Symbol and getter tricks in results', () => {
  it('runs Proxy traps inside the sandbox, under its time cap', () => {
    const outcome = probe(`
      var looping = new Proxy({}, { ownKeys: function () { while (true) {} } });
      return { data: looping };`);
    assertFailure(outcome, 'CODEC_TIMEOUT');
  });

  it('reports a Proxy trap that throws as the codec throwing', () => {
    const outcome = probe(`
      return { data: new Proxy({}, { ownKeys: function () { throw new TypeError('no keys'); } }) };`);
    assertFailure(outcome, 'CODEC_THREW', /TypeError: no keys/);
  });

  it('refuses a Proxy that claims a __proto__ key', () => {
    const outcome = probe(`
      var target = {};
      var p = new Proxy(target, {
        ownKeys: function () { return ['__proto__']; },
        getOwnPropertyDescriptor: function () { return { value: 1, enumerable: true, configurable: true }; },
      });
      return { data: p };`);
    assertFailure(outcome, 'CODEC_INVALID_RESULT', /__proto__/);
  });

  it('drops symbol keys and refuses symbol values', () => {
    assertData(probe('var o = { a: 1 }; o[Symbol("s")] = 2; return { data: o };'), { a: 1 });
    assertFailure(
      probe('return { data: { s: Symbol.iterator } };'),
      'CODEC_INVALID_RESULT',
      /data\.s is a symbol/,
    );
  });

  it('ignores Symbol.toPrimitive and toJSON tricks on the host side', () => {
    const outcome = probe(`
      var evil = { toJSON: function () { return { replaced: true }; } };
      evil[Symbol.toPrimitive] = function () { return 'prim'; };
      return { data: { evil: evil } };`);
    assertData(outcome, { evil: { replaced: true } });
  });

  it('runs getters inside the sandbox and reports a throwing getter', () => {
    const outcome = probe(`
      var o = {};
      Object.defineProperty(o, 'x', { enumerable: true, get: function () { throw new Error('getter'); } });
      return { data: o };`);
    assertFailure(outcome, 'CODEC_THREW', /getter/);
  });

  it('refuses a result whose data is a Promise, and one that is one', () => {
    assertFailure(probe('return { data: Promise.resolve(1) };'), 'CODEC_INVALID_RESULT', /Promise/);
    const asyncCodec = engine.load('async function decodeUplink(input) { return { data: 1 }; }');
    assertFailure(
      asyncCodec.decodeUplink({ bytes: hex('00'), fPort: 1 }),
      'CODEC_INVALID_RESULT',
      /returned a Promise/,
    );
  });

  it('is not stalled by a Promise that never settles', () => {
    const codec = engine.load(`
      function decodeUplink(input) {
        new Promise(function () {});
        (async function () { await new Promise(function () {}); globalThis.after = true; })();
        return { data: globalThis.after === true };
      }`);
    assertData(codec.decodeUplink({ bytes: hex('00'), fPort: 1 }), false);
    assertData(codec.decodeUplink({ bytes: hex('00'), fPort: 1 }), false);
  });

  it('stops a microtask that loops forever after the call returned', () => {
    const codec = engine.load(`
      function decodeUplink(input) {
        if (input.bytes[0] === 1) Promise.resolve().then(function () { while (true) {} });
        return { data: input.bytes[0] };
      }`);
    const started = Date.now();
    const outcome = codec.decodeUplink({ bytes: hex('01'), fPort: 1 });
    assert.ok(Date.now() - started < 2000);
    assertFailure(outcome, 'CODEC_TIMEOUT');
    assertData(codec.decodeUplink({ bytes: hex('02'), fPort: 1 }), 2);
  });
});

describe('stack-trace hooks', () => {
  it('stops a prepareStackTrace that loops when the codec throws', () => {
    const codec = engine.load(`
      Error.prepareStackTrace = function () { while (true) {} };
      function decodeUplink() { throw new Error('boom'); }`);
    assertFailure(codec.decodeUplink({ bytes: hex('00'), fPort: 1 }), 'CODEC_TIMEOUT');
  });

  it('stops a prepareStackTrace that loops when the top-level code throws', () => {
    assert.throws(
      () =>
        engine.load(`
          Error.prepareStackTrace = function () { while (true) {} };
          function decodeUplink() {}
          throw new Error('at load');`),
      (error: Error & { code?: string }) =>
        error.code === 'CODEC_TIMEOUT' || error.code === 'CODEC_THREW',
    );
  });
});
