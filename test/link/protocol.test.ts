import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isLinkProtocolError, type LinkProtocolErrorCode } from '../../src/link/errors.js';
import {
  DEFAULT_MAX_FRAME_BYTES,
  decodeFrame,
  deliveryFrameBytes,
  encodeDelivery,
  encodeFrame,
  type LinkFrame,
  toBodyJson,
} from '../../src/link/protocol.js';

function refusedWith(input: string | Uint8Array, code: LinkProtocolErrorCode, max?: number): void {
  assert.throws(
    () => decodeFrame(input, max),
    (error: unknown) => {
      assert.ok(isLinkProtocolError(error), `expected a LinkProtocolError, got ${String(error)}`);
      assert.equal(error.code, code, error.message);
      return true;
    },
  );
}

describe('link frames', () => {
  it('decodes each frame type', () => {
    assert.deepEqual(decodeFrame('{"type":"request","id":"1","method":"JoinReq","body":{"a":1}}'), {
      type: 'request',
      id: '1',
      method: 'JoinReq',
      body: { a: 1 },
    });
    assert.deepEqual(decodeFrame('{"type":"answer","id":"1","ok":true,"body":null}'), {
      type: 'answer',
      id: '1',
      ok: true,
      body: null,
    });
    assert.deepEqual(
      decodeFrame('{"type":"answer","id":"1","ok":false,"error":{"code":"X","message":"m"}}'),
      { type: 'answer', id: '1', ok: false, error: { code: 'X', message: 'm' } },
    );
    assert.deepEqual(decodeFrame('{"type":"deliver","seq":7,"topic":"uplink","body":[1]}'), {
      type: 'deliver',
      seq: 7,
      topic: 'uplink',
      body: [1],
    });
    assert.deepEqual(decodeFrame('{"type":"ack","seq":7}'), { type: 'ack', seq: 7 });
    assert.deepEqual(decodeFrame(Buffer.from('{"type":"nack","seq":3}')), { type: 'nack', seq: 3 });
  });

  it('ignores fields it does not know', () => {
    assert.deepEqual(decodeFrame('{"type":"ack","seq":2,"extra":{"x":1}}'), {
      type: 'ack',
      seq: 2,
    });
  });

  it('refuses malformed frames with the reason as a code', () => {
    refusedWith('{"type":"ack"', 'BAD_JSON');
    refusedWith(new Uint8Array([0x7b, 0xff, 0x7d]), 'BAD_JSON');
    refusedWith('[1,2]', 'NOT_AN_OBJECT');
    refusedWith('null', 'NOT_AN_OBJECT');
    refusedWith('"ack"', 'NOT_AN_OBJECT');
    refusedWith('{}', 'UNKNOWN_TYPE');
    refusedWith('{"type":"hello"}', 'UNKNOWN_TYPE');
    refusedWith('{"type":5}', 'UNKNOWN_TYPE');
    refusedWith('{"type":"ack"}', 'MISSING_FIELD');
    refusedWith('{"type":"request","id":"1","method":"m"}', 'MISSING_FIELD');
    refusedWith('{"type":"answer","id":"1","body":1}', 'MISSING_FIELD');
    refusedWith('{"type":"answer","id":"1","ok":false}', 'MISSING_FIELD');
    refusedWith('{"type":"ack","seq":0}', 'INVALID_FIELD');
    refusedWith('{"type":"ack","seq":1.5}', 'INVALID_FIELD');
    refusedWith('{"type":"ack","seq":"1"}', 'INVALID_FIELD');
    refusedWith('{"type":"ack","seq":9007199254740992}', 'INVALID_FIELD');
    refusedWith('{"type":"request","id":"","method":"m","body":1}', 'INVALID_FIELD');
    refusedWith('{"type":"request","id":"a b","method":"m","body":1}', 'INVALID_FIELD');
    refusedWith(
      `{"type":"request","id":"${'x'.repeat(65)}","method":"m","body":1}`,
      'INVALID_FIELD',
    );
    refusedWith('{"type":"request","id":1,"method":"m","body":1}', 'INVALID_FIELD');
    refusedWith('{"type":"answer","id":"1","ok":"yes","body":1}', 'INVALID_FIELD');
    refusedWith('{"type":"answer","id":"1","ok":false,"error":"bad"}', 'INVALID_FIELD');
    refusedWith('{"type":"answer","id":"1","ok":false,"error":{"code":"X"}}', 'INVALID_FIELD');
    refusedWith('{"type":"deliver","seq":1,"topic":"","body":1}', 'INVALID_FIELD');
  });

  it('refuses a frame beyond the maximum size before parsing it', () => {
    const big = `{"type":"deliver","seq":1,"topic":"t","body":"${'x'.repeat(2000)}"}`;
    refusedWith(big, 'FRAME_TOO_LARGE', 1024);
    refusedWith(Buffer.from(big), 'FRAME_TOO_LARGE', 1024);
    // Multi-byte characters count in bytes, not in UTF-16 units.
    refusedWith(`{"type":"ack","seq":1,"x":"${'é'.repeat(600)}"}`, 'FRAME_TOO_LARGE', 1024);
    assert.equal(decodeFrame(big, 4096).type, 'deliver');
  });

  it('writes a delivery around JSON text as encodeFrame would', () => {
    const body = { devEui: '0102030405060708', data: 'AQID', nested: [1, 'é', null] };
    const text = encodeDelivery(42, 'uplink "x"', toBodyJson(body));
    assert.equal(text, encodeFrame({ type: 'deliver', seq: 42, topic: 'uplink "x"', body }));
    assert.ok(deliveryFrameBytes('uplink "x"', toBodyJson(body)) >= Buffer.byteLength(text));
  });

  it('sends an undefined body as null', () => {
    const frame = decodeFrame(
      encodeFrame({ type: 'request', id: '1', method: 'm', body: undefined }),
    );
    assert.deepEqual(frame, { type: 'request', id: '1', method: 'm', body: null });
  });
});

describe('link frames (properties)', () => {
  const onlyProtocolErrors = (input: string | Uint8Array) => {
    try {
      decodeFrame(input, 4096);
    } catch (error) {
      assert.ok(isLinkProtocolError(error), `unexpected ${String(error)}`);
    }
  };

  it('never throws anything but a LinkProtocolError on random bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 5000 }), onlyProtocolErrors), {
      numRuns: 500,
    });
  });

  it('never throws anything but a LinkProtocolError on random text and JSON', () => {
    fc.assert(fc.property(fc.string({ maxLength: 300 }), onlyProtocolErrors), { numRuns: 500 });
    fc.assert(
      fc.property(fc.json({ maxDepth: 4 }), (json) => onlyProtocolErrors(json)),
      { numRuns: 500 },
    );
  });

  it('never throws anything but a LinkProtocolError on objects shaped like frames', () => {
    const anyValue = fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constant(undefined));
    const frameLike = fc.record(
      {
        type: fc.oneof(
          fc.constantFrom('request', 'answer', 'deliver', 'ack', 'nack', 'ping'),
          anyValue,
        ),
        id: anyValue,
        method: anyValue,
        body: anyValue,
        ok: fc.oneof(fc.boolean(), anyValue),
        error: fc.oneof(fc.record({ code: anyValue, message: anyValue }), anyValue),
        seq: fc.oneof(fc.integer(), fc.double(), anyValue),
        topic: anyValue,
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(frameLike, (object) => onlyProtocolErrors(JSON.stringify(object))),
      { numRuns: 1000 },
    );
  });

  const id = fc.stringMatching(/^[\x21-\x7e]{1,64}$/);
  const method = fc.stringMatching(/^[\x21-\x7e]{1,128}$/);
  const body = fc.jsonValue({ maxDepth: 3 });
  const seq = fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER });
  const frame: fc.Arbitrary<LinkFrame> = fc.oneof(
    fc.record({ type: fc.constant('request' as const), id, method, body }),
    fc.record({ type: fc.constant('answer' as const), id, ok: fc.constant(true as const), body }),
    fc.record({
      type: fc.constant('answer' as const),
      id,
      ok: fc.constant(false as const),
      error: fc.record({ code: fc.stringMatching(/^[\x21-\x7e]{1,64}$/), message: fc.string() }),
    }),
    fc.record({
      type: fc.constant('deliver' as const),
      seq,
      topic: fc.string({ minLength: 1, maxLength: 256 }),
      body,
    }),
    fc.record({ type: fc.constant('ack' as const), seq }),
    fc.record({ type: fc.constant('nack' as const), seq }),
  );

  it('decodes what it encodes', () => {
    fc.assert(
      fc.property(frame, (original) => {
        // JSON itself turns -0 into 0: compare with the JSON round trip of the frame.
        const expected = JSON.parse(JSON.stringify(original)) as unknown;
        const text = encodeFrame(original);
        assert.deepEqual(decodeFrame(text, DEFAULT_MAX_FRAME_BYTES), expected);
        assert.deepEqual(decodeFrame(Buffer.from(text), DEFAULT_MAX_FRAME_BYTES), expected);
      }),
      { numRuns: 1000 },
    );
  });
});
