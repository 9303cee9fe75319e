// Which functions a codec defines and how they are called (TS013 / TTN, ChirpStack v4 and v3,
// TTN v2 legacy), and what a codec may return: plain JSON, checked with a clear message.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { CodecEngine, type DecodeOutcome } from '../../../src/application/codecs/index.js';
import { assertData, assertEncoded, assertFailure, assertReportedErrors, hex } from './helpers.js';

const engine = new CodecEngine();
after(() => engine.dispose());

const RECV = Date.UTC(2025, 5, 1, 12, 0, 0);

function decode(source: string, bytes = '0102', fPort = 5): DecodeOutcome {
  return engine.load(source).decodeUplink({ bytes: hex(bytes), fPort, recvTime: RECV });
}

/** Decodes with a codec whose data is the value of `expression` (a JavaScript expression). */
function returning(expression: string): DecodeOutcome {
  return decode(`function decodeUplink(input) { return { data: ${expression} }; }`);
}

describe('signature detection and inputs', () => {
  it('passes TS013 input: bytes as a plain array, fPort, recvTime as a Date, variables', () => {
    assertData(
      decode(`
        function decodeUplink(input) {
          return { data: {
            isArray: Array.isArray(input.bytes),
            bytes: input.bytes,
            fPort: input.fPort,
            recvTime: input.recvTime instanceof Date ? input.recvTime.toISOString() : 'not a date',
            variables: input.variables,
            keys: Object.keys(input).sort(),
          } };
        }`),
      {
        isArray: true,
        bytes: [1, 2],
        fPort: 5,
        recvTime: '2025-06-01T12:00:00.000Z',
        variables: {},
        keys: ['bytes', 'fPort', 'recvTime', 'variables'],
      },
    );
  });

  it('takes recvTime from the engine clock when the input has none', () => {
    const clocked = new CodecEngine({ now: () => RECV + 1000 });
    try {
      const codec = clocked.load(
        'function decodeUplink(input) { return { data: input.recvTime.getTime() }; }',
      );
      assertData(codec.decodeUplink({ bytes: hex('00'), fPort: 1 }), RECV + 1000);
      assertData(codec.decodeUplink({ bytes: hex('00'), fPort: 1, recvTime: new Date(5) }), 5);
    } finally {
      clocked.dispose();
    }
  });

  it('finds functions declared with const, let, class fields and arrow functions', () => {
    const codec = engine.load(`
      const helpers = { double: (x) => x * 2 };
      let encodeDownlink = ({ data }) => ({ bytes: [data.value], fPort: 7 });
      const decodeUplink = (input) => ({ data: helpers.double(input.bytes[0]) });`);
    assert.equal(codec.signatures.uplinkDecoder, 'decodeUplink');
    assert.equal(codec.signatures.downlinkEncoder, 'encodeDownlink');
    assertData(codec.decodeUplink({ bytes: hex('15'), fPort: 1 }), 42);
    assertEncoded(codec.encodeDownlink({ data: { value: 9 } }), '09', 7);
  });

  it('finds functions exported with module.exports (vendor test harnesses)', () => {
    const codec = engine.load(`
      function decode(input) { return { data: input.bytes.length }; }
      module.exports = { decodeUplink: decode };`);
    assertData(codec.decodeUplink({ bytes: hex('010203'), fPort: 1 }), 3);
  });

  it('prefers decodeUplink over the legacy functions when a file has both', () => {
    const codec = engine.load(`
      function Decoder(bytes) { return { legacy: true }; }
      function decodeUplink(input) { return { data: { legacy: false } }; }`);
    assert.equal(codec.signatures.uplinkDecoder, 'decodeUplink');
    assertData(codec.decodeUplink({ bytes: hex('00'), fPort: 1 }), { legacy: false });
  });

  it('calls ChirpStack v3 Decode(fPort, bytes, variables)', () => {
    const codec = engine.load(
      'function Decode(fPort, bytes, variables) { return { fPort: fPort, n: bytes.length, v: variables.k }; }',
    );
    assertData(codec.decodeUplink({ bytes: hex('0000'), fPort: 3, variables: { k: 'x' } }), {
      fPort: 3,
      n: 2,
      v: 'x',
    });
  });

  it('reports a missing function for the call asked', () => {
    const codec = engine.load('function decodeUplink() { return { data: 1 }; }');
    assertFailure(
      codec.encodeDownlink({ data: {}, fPort: 1 }),
      'CODEC_FUNCTION_MISSING',
      /encodeDownlink/,
    );
    assertFailure(codec.decodeDownlink({ bytes: hex('00'), fPort: 1 }), 'CODEC_FUNCTION_MISSING');
    assertFailure(codec.normalizeUplink({ data: {} }), 'CODEC_FUNCTION_MISSING');
    const encoderOnly = engine.load('function Encoder(o) { return [1]; }');
    assertFailure(
      encoderOnly.decodeUplink({ bytes: hex('00'), fPort: 1 }),
      'CODEC_FUNCTION_MISSING',
    );
  });

  it('refuses a source without any codec function', () => {
    assert.throws(() => engine.load('var decoder = function () {};'), {
      code: 'CODEC_FUNCTION_MISSING',
      message: /defines none of decodeUplink/,
    });
  });

  it('refuses a source that does not compile, with the line and column', () => {
    assert.throws(() => engine.load('function decodeUplink(input) {\n  return { data: 1 ;\n}'), {
      code: 'CODEC_COMPILE_ERROR',
      message: /the codec does not compile: SyntaxError: .*\[codec\.js:2:\d+\]/,
    });
  });

  it('explains that ES module syntax is not supported', () => {
    assert.throws(() => engine.load('export function decodeUplink() { return { data: 1 }; }'), {
      code: 'CODEC_COMPILE_ERROR',
      message: /ES module syntax is not supported/,
    });
  });

  it('refuses a source over the size limit', () => {
    const small = new CodecEngine({ maxSourceChars: 100 });
    try {
      assert.throws(() => small.load(`// ${'x'.repeat(200)}\nfunction decodeUplink() {}`), {
        code: 'CODEC_COMPILE_ERROR',
        message: /more than the limit of 100/,
      });
    } finally {
      small.dispose();
    }
  });

  it('refuses a codec whose top-level code throws, with its message and line', () => {
    assert.throws(() => engine.load('function decodeUplink() {}\nnull.boom;'), {
      code: 'CODEC_THREW',
      message:
        /top-level code threw: TypeError: Cannot read properties of null .*\(at codec\.js:2:\d+\)/,
    });
  });

  it('refuses invalid inputs before running the codec', () => {
    const codec = engine.load('function decodeUplink() { return { data: 1 }; }');
    assertFailure(codec.decodeUplink({ bytes: hex('00'), fPort: 256 }), 'CODEC_INVALID_INPUT');
    assertFailure(
      codec.decodeUplink({ bytes: [1, 2] as unknown as Uint8Array, fPort: 1 }),
      'CODEC_INVALID_INPUT',
      'bytes must be a Uint8Array',
    );
    const outcomes = codec.decodeMany([
      { bytes: hex('00'), fPort: 1 },
      { bytes: hex('00'), fPort: -1 },
      { bytes: hex('00'), fPort: 2 },
    ]);
    assert.deepEqual(
      outcomes.map((o) => (o.ok ? 'ok' : o.error.code)),
      ['ok', 'CODEC_INVALID_INPUT', 'ok'],
    );
  });
});

describe('modern JavaScript in codecs', () => {
  it('runs ES2020-ES2023 syntax and built-ins', () => {
    assertData(
      decode(
        `
        class Frame {
          static #count = 0;
          #bytes;
          constructor(bytes) { this.#bytes = bytes; Frame.#count++; }
          get first() { return this.#bytes.at(0) ?? null; }
          get last() { return this.#bytes.at(-1); }
          static get count() { return Frame.#count; }
        }
        function decodeUplink({ bytes, fPort }) {
          const frame = new Frame(bytes);
          let flags = null;
          flags ??= { a: 1 };
          flags.b ||= 2;
          const big = (BigInt(bytes[0]) << 40n) | BigInt(bytes[1]);
          const grouped = Object.groupBy
            ? 'native'
            : 'polyfill';
          return {
            data: {
              first: frame.first,
              last: frame.last,
              optional: flags?.missing?.deep ?? 'none',
              sum: bytes.reduce((a, b) => a + b, 0),
              spread: [...bytes, ...[9]],
              entries: Object.fromEntries(bytes.map((b, i) => ['b' + i, b])),
              big: Number(big),
              separators: 1_000_000,
              exp: 2 ** 10,
              hasOwn: Object.hasOwn(flags, 'b'),
              replaced: 'a-b-c'.replaceAll('-', '+'),
              sorted: [3, 1, 2].toSorted ? [3, 1, 2].toSorted() : [1, 2, 3],
              found: [5, 6, 7].findLast((x) => x < 7),
              text: \`\${fPort}:\${bytes.length}\`,
              count: Frame.count,
              grouped: typeof grouped,
            },
          };
        }`,
        '0102',
        9,
      ),
      {
        first: 1,
        last: 2,
        optional: 'none',
        sum: 3,
        spread: [1, 2, 9],
        entries: { b0: 1, b1: 2 },
        big: 1099511627778,
        separators: 1000000,
        exp: 1024,
        hasOwn: true,
        replaced: 'a+b+c',
        sorted: [1, 2, 3],
        found: 6,
        text: '9:2',
        count: 1,
        grouped: 'string',
      },
    );
  });

  it('has Intl, Math, Date, JSON, typed arrays and DataView', () => {
    assertData(
      decode(`
        function decodeUplink(input) {
          const view = new DataView(new Uint8Array([0x40, 0x20, 0x00, 0x00]).buffer);
          return { data: {
            float: view.getFloat32(0),
            date: new Date(0).toISOString(),
            formatted: new Intl.NumberFormat('en-US').format(1234.5),
            json: JSON.parse('{"a":[1]}').a[0],
          } };
        }`),
      { float: 2.5, date: '1970-01-01T00:00:00.000Z', formatted: '1,234.5', json: 1 },
    );
  });
});

describe('what a codec may return', () => {
  it('accepts plain JSON values, including null data and arrays', () => {
    assertData(returning('null'), null);
    assertData(returning('[1, "a", true, null, { x: [] }]'), [1, 'a', true, null, { x: [] }]);
    assertData(returning('"text"'), 'text');
    assertData(returning('Object.create(null)'), {});
  });

  it('drops undefined properties and turns undefined array items into null, as JSON does', () => {
    assertData(returning('{ a: undefined, b: 1, c: [undefined] }'), { b: 1, c: [null] });
  });

  it('serialises a Date as its ISO string and a typed array as an array', () => {
    assertData(
      returning('{ at: new Date(0), raw: new Uint8Array([1, 2]), f: new Float32Array([0.5]) }'),
      {
        at: '1970-01-01T00:00:00.000Z',
        raw: [1, 2],
        f: [0.5],
      },
    );
    assertData(returning('new Uint8Array([7, 8])'), [7, 8]);
  });

  it('serialises class instances by their own enumerable properties', () => {
    assertData(
      decode(
        'class Reading { constructor() { this.value = 1; } get twice() { return 2; } }\nfunction decodeUplink() { return { data: new Reading() }; }',
      ),
      { value: 1 },
    );
  });

  for (const [expression, message] of [
    ['{ t: NaN }', /data\.t is NaN, which JSON cannot represent/],
    ['{ t: [1, Infinity] }', /data\.t\[1\] is Infinity/],
    ['{ n: 10n }', /data\.n is a BigInt/],
    ['{ f: function () {} }', /data\.f is a function/],
    ['{ m: new Map([[1, 2]]) }', /data\.m is a Map, which JSON cannot represent/],
    ['{ s: new Set() }', /data\.s is a Set/],
    ['{ r: /x/ }', /data\.r is a RegExp/],
    ['{ e: new Error("x") }', /data\.e is a Error/],
    ['{ w: new WeakMap() }', /data\.w is a WeakMap/],
    ['{ b: new ArrayBuffer(2) }', /data\.b is a ArrayBuffer/],
    ['{ d: new DataView(new ArrayBuffer(2)) }', /data\.d is a DataView/],
    ['{ "odd key": { n: NaN } }', /data\["odd key"\]\.n is NaN/],
    ['{ boxed: new Number(1) }', /data\.boxed is a Number/],
  ] as const) {
    it(`refuses ${expression} with a path to the bad value`, () => {
      assertFailure(returning(expression), 'CODEC_INVALID_RESULT', message);
    });
  }

  it('refuses cyclic and too deeply nested data', () => {
    assertFailure(
      decode('function decodeUplink() { var a = {}; a.self = a; return { data: a }; }'),
      'CODEC_INVALID_RESULT',
      /nested more than 32 levels deep \(or is cyclic\)/,
    );
    assertFailure(
      decode(
        'function decodeUplink() { var d = {}; var o = d; for (var i = 0; i < 40; i++) { o.n = {}; o = o.n; } return { data: d }; }',
      ),
      'CODEC_INVALID_RESULT',
      /nested more than 32 levels/,
    );
  });

  it('refuses results of the wrong shape', () => {
    assertFailure(
      decode('function decodeUplink() { return 5; }'),
      'CODEC_INVALID_RESULT',
      'decodeUplink must return an object {data, warnings, errors}, got a number',
    );
    assertFailure(
      decode('function decodeUplink() { return {}; }'),
      'CODEC_INVALID_RESULT',
      'decodeUplink returned no data and no errors',
    );
    assertFailure(
      decode('function decodeUplink() { return { data: 1, warnings: "careful" }; }'),
      'CODEC_INVALID_RESULT',
      /warnings that are not an array/,
    );
    assertFailure(
      decode('function decodeUplink() { return { data: 1, errors: {} }; }'),
      'CODEC_INVALID_RESULT',
      /errors that are not an array/,
    );
    assertFailure(
      decode('function Decoder() {}'),
      'CODEC_INVALID_RESULT',
      'Decoder returned nothing',
    );
  });

  it('turns warnings and errors into strings', () => {
    assertData(
      decode(
        'function decodeUplink() { return { data: 1, warnings: [1, { toString() { return "w"; } }] }; }',
      ),
      1,
      ['1', 'w'],
    );
    assertReportedErrors(decode('function decodeUplink() { return { errors: [404, "bad"] }; }'), [
      '404',
      'bad',
    ]);
  });

  it('reports the codec’s errors with its warnings, whatever data it also returned', () => {
    const outcome = decode(
      'function decodeUplink() { return { data: { partial: 1 }, warnings: ["w"], errors: ["e1", "e2"] }; }',
    );
    assertReportedErrors(outcome, ['e1', 'e2'], ['w']);
    assert.ok(!outcome.ok);
    assert.equal(outcome.error.message, 'the codec reported errors: e1; e2');
  });
});

describe('codecs that throw', () => {
  for (const [body, message] of [
    ['throw new Error("bad frame")', /^Error: bad frame \(at codec\.js:1:\d+\)$/],
    ['throw new RangeError("too short")', /^RangeError: too short/],
    ['throw "a string"', /^threw a string: a string$/],
    ['throw 42', /^threw a number: 42$/],
    ['throw null', /^threw null: null$/],
    ['throw { code: 7 }', /^threw an object: \{"code":7\}$/],
    [
      'throw { toJSON() { throw 1; }, toString() { throw new Error("nested"); } }',
      /^threw a value that cannot be described$/,
    ],
    ['input.bytes.nope.deeper', /^TypeError: Cannot read properties of undefined/],
    ['undefinedFunction()', /^ReferenceError: undefinedFunction is not defined/],
    ['(function f() { f(); })()', /^RangeError: Maximum call stack size exceeded/],
    [`throw new Error("${'long '.repeat(200)}")`, /\.\.\.$/],
  ] as const) {
    it(`reports ${body.slice(0, 50)} as CODEC_THREW`, () => {
      assertFailure(decode(`function decodeUplink(input) { ${body}; }`), 'CODEC_THREW', message);
    });
  }

  it('keeps working after a throw', () => {
    const codec = engine.load(
      'function decodeUplink(input) { if (input.bytes[0]) throw new Error("x"); return { data: 0 }; }',
    );
    assertFailure(codec.decodeUplink({ bytes: hex('01'), fPort: 1 }), 'CODEC_THREW');
    assertData(codec.decodeUplink({ bytes: hex('00'), fPort: 1 }), 0);
  });
});

describe('downlink encoding results', () => {
  const encode = (body: string, fPort?: number) =>
    engine
      .load(`function encodeDownlink(input) { ${body} }`)
      .encodeDownlink(fPort === undefined ? { data: { v: 1 } } : { data: { v: 1 }, fPort });

  it('accepts bytes as an array or a Uint8Array, on the codec’s fPort or the request’s', () => {
    assertEncoded(encode('return { bytes: [1, 255], fPort: 4 };'), '01ff', 4);
    assertEncoded(encode('return { bytes: new Uint8Array([2]) };', 9), '02', 9);
  });

  it('passes data, fPort and variables to encodeDownlink', () => {
    const codec = engine.load(
      'function encodeDownlink(input) { return { bytes: [input.data.v, input.fPort, input.variables.x.length] }; }',
    );
    assertEncoded(
      codec.encodeDownlink({ data: { v: 5 }, fPort: 6, variables: { x: 'abc' } }),
      '050603',
      6,
    );
  });

  for (const [body, message] of [
    ['return { bytes: [256] };', /bytes\[0\] = 256, not an integer 0-255/],
    ['return { bytes: [-1] };', /bytes\[0\] = -1/],
    ['return { bytes: [1.5] };', /bytes\[0\] = 1.5/],
    ['return { bytes: ["1"] };', /bytes\[0\] = 1, not an integer/],
    ['return { bytes: "0102" };', /must return bytes as an array of numbers 0-255, got a string/],
    ['return { bytes: [1], fPort: 0 };', /fPort 0, not an application port 1-223/],
    ['return { bytes: [1], fPort: 224 };', /fPort 224/],
    ['return { bytes: [1], fPort: "2" };', /fPort 2, not an integer 0-255/],
    ['return [1];', /bytes as an array of numbers 0-255, got undefined/],
  ] as const) {
    it(`refuses ${body}`, () => {
      assertFailure(encode(body, 1), 'CODEC_INVALID_RESULT', message);
    });
  }

  it('refuses data that is not JSON and a bad fPort before running the codec', () => {
    const codec = engine.load('function encodeDownlink() { return { bytes: [] }; }');
    assertFailure(codec.encodeDownlink({ data: { v: 1 }, fPort: 0 }), 'CODEC_INVALID_INPUT');
    assertFailure(
      codec.encodeDownlink({ data: { n: 1n } as never, fPort: 1 }),
      'CODEC_INVALID_INPUT',
    );
  });

  it('calls the legacy Encoder(object, port)', () => {
    const codec = engine.load('function Encoder(object, port) { return [object.v, port]; }');
    assertEncoded(codec.encodeDownlink({ data: { v: 3 }, fPort: 8 }), '0308', 8);
  });
});
