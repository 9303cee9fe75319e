import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isLorawanError } from '../../src/lorawan/errors.js';
import {
  checkFCnt,
  DEFAULT_MAX_FCNT_GAP,
  isFCntAcceptable,
  reconstructFCnt,
} from '../../src/lorawan/fcnt.js';

const UINT32_MAX = 0xffff_ffff;

function invalidField(error: unknown): boolean {
  return isLorawanError(error) && error.code === 'INVALID_FIELD';
}

describe('reconstructFCnt', () => {
  it('returns the wire value for a fresh session', () => {
    assert.equal(reconstructFCnt(0, undefined), 0);
    assert.equal(reconstructFCnt(0xffff, undefined), 0xffff);
  });

  it('keeps the high bits when the low bits move forward', () => {
    assert.equal(reconstructFCnt(11, 10), 11);
    assert.equal(reconstructFCnt(0x0005, 0x0003_0001), 0x0003_0005);
  });

  it('carries into the high bits across a 16-bit roll-over', () => {
    assert.equal(reconstructFCnt(0x0000, 0xffff), 0x1_0000);
    assert.equal(reconstructFCnt(0x0002, 0x0001_fffe), 0x0002_0002);
  });

  it('maps the last counter to itself, so a retransmission is recognisable', () => {
    assert.equal(reconstructFCnt(0x1234, 0x0007_1234), 0x0007_1234);
  });

  it('treats a counter just behind the last one as 65535 frames ahead', () => {
    assert.equal(reconstructFCnt(9, 10), 10 + 0xffff);
  });

  it('ends the session instead of wrapping past 2^32 - 1', () => {
    assert.equal(reconstructFCnt(0xffff, UINT32_MAX), UINT32_MAX);
    assert.equal(reconstructFCnt(0x0000, UINT32_MAX), undefined);
    assert.equal(reconstructFCnt(0xfffe, UINT32_MAX - 2), UINT32_MAX - 1);
    assert.equal(reconstructFCnt(0x0001, UINT32_MAX - 2), undefined);
  });

  it('recovers last + gap for any 32-bit last counter and any gap 0..65535', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: UINT32_MAX }),
        fc.integer({ min: 0, max: 0xffff }),
        (last, gap) => {
          const full = last + gap;
          const got = reconstructFCnt(full % 0x1_0000, last);
          assert.equal(got, full > UINT32_MAX ? undefined : full);
        },
      ),
    );
  });

  it('recovers last + gap near the 16-bit and 32-bit boundaries', () => {
    const nearBoundary = fc.oneof(
      fc.integer({ min: 0, max: 3 }).map((k) => k * 0x1_0000 + 0xfff0),
      fc.integer({ min: UINT32_MAX - 0x2_0000, max: UINT32_MAX }),
    );
    fc.assert(
      fc.property(nearBoundary, fc.integer({ min: 0, max: 0xffff }), (last, gap) => {
        const full = last + gap;
        assert.equal(reconstructFCnt(full % 0x1_0000, last), full > UINT32_MAX ? undefined : full);
      }),
    );
  });

  it('always returns a counter with the wire low bits, at or after the last one, within 65535', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xffff }),
        fc.integer({ min: 0, max: UINT32_MAX }),
        (wire, last) => {
          const got = reconstructFCnt(wire, last);
          if (got === undefined) {
            assert.ok(last - (last % 0x1_0000) + 0x1_0000 + wire > UINT32_MAX);
            return;
          }
          assert.equal(got % 0x1_0000, wire);
          assert.ok(got >= last && got - last <= 0xffff);
          assert.ok(got <= UINT32_MAX);
        },
      ),
    );
  });

  it('refuses a wire value or last counter out of range', () => {
    assert.throws(() => reconstructFCnt(0x1_0000, 0), invalidField);
    assert.throws(() => reconstructFCnt(-1, 0), invalidField);
    assert.throws(() => reconstructFCnt(1.5, 0), invalidField);
    assert.throws(() => reconstructFCnt(1, 2 ** 32), invalidField);
    assert.throws(() => reconstructFCnt(1, -1), invalidField);
  });
});

describe('checkFCnt', () => {
  it('accepts the next counter with nothing lost', () => {
    assert.deepEqual(checkFCnt(11, 10), { status: 'new', fCnt: 11, lost: 0 });
  });

  it('counts the frames skipped since the last accepted one', () => {
    assert.deepEqual(checkFCnt(15, 10), { status: 'new', fCnt: 15, lost: 4 });
  });

  it('accepts the first frame of a fresh session, counting from 0', () => {
    assert.deepEqual(checkFCnt(0, undefined), { status: 'new', fCnt: 0, lost: 0 });
    assert.deepEqual(checkFCnt(3, undefined), { status: 'new', fCnt: 3, lost: 3 });
  });

  it('reports the last counter again as a retransmission', () => {
    assert.deepEqual(checkFCnt(10, 10), { status: 'retransmission', fCnt: 10 });
  });

  it('refuses a gap beyond MAX_FCNT_GAP (16384 by default)', () => {
    assert.equal(DEFAULT_MAX_FCNT_GAP, 16_384);
    assert.deepEqual(checkFCnt(10 + 16_384, 10), { status: 'new', fCnt: 16_394, lost: 16_383 });
    assert.deepEqual(checkFCnt(10 + 16_385, 10), {
      status: 'gapTooLarge',
      fCnt: 16_395,
      gap: 16_385,
      maxGap: 16_384,
    });
  });

  it('refuses a replayed older counter: it reads as far ahead, beyond the gap', () => {
    const result = checkFCnt(5, 10);
    assert.equal(result.status, 'gapTooLarge');
  });

  it('applies the gap to a fresh session as counted from 0', () => {
    assert.equal(checkFCnt(16_385, undefined).status, 'gapTooLarge');
    assert.equal(checkFCnt(16_384, undefined).status, 'new');
  });

  it('accepts any 16-bit gap when maxGap is Infinity (LoRaWAN 1.0.4 and 1.1)', () => {
    const options = { maxGap: Number.POSITIVE_INFINITY };
    assert.deepEqual(checkFCnt(9, 10, options), { status: 'new', fCnt: 10 + 0xffff, lost: 0xfffe });
    assert.deepEqual(checkFCnt(0xffff, undefined, options), {
      status: 'new',
      fCnt: 0xffff,
      lost: 0xffff,
    });
  });

  it('reports the end of the counter space as sessionExhausted', () => {
    assert.deepEqual(checkFCnt(0, UINT32_MAX), { status: 'sessionExhausted' });
    assert.deepEqual(checkFCnt(0xffff, UINT32_MAX), { status: 'retransmission', fCnt: UINT32_MAX });
    assert.deepEqual(checkFCnt(0xffff, UINT32_MAX - 1), {
      status: 'new',
      fCnt: UINT32_MAX,
      lost: 0,
    });
  });

  it('refuses a maxGap that is not a positive integer', () => {
    assert.throws(() => checkFCnt(1, 0, { maxGap: 0 }), invalidField);
    assert.throws(() => checkFCnt(1, 0, { maxGap: 1.5 }), invalidField);
    assert.throws(() => checkFCnt(1, 0, { maxGap: Number.NaN }), invalidField);
  });

  it('says new exactly when the counter advances by 1..maxGap', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: UINT32_MAX - 0xffff }),
        fc.integer({ min: 0, max: 0xffff }),
        fc.integer({ min: 1, max: 0xffff }),
        (last, gap, maxGap) => {
          const result = checkFCnt((last + gap) % 0x1_0000, last, { maxGap });
          const expected = gap === 0 ? 'retransmission' : gap <= maxGap ? 'new' : 'gapTooLarge';
          assert.equal(result.status, expected);
          assert.equal(
            isFCntAcceptable((last + gap) % 0x1_0000, last, { maxGap }),
            expected === 'new',
          );
        },
      ),
    );
  });
});

describe('isFCntAcceptable', () => {
  it('is true for a new counter and false for a retransmission or a large gap', () => {
    assert.equal(isFCntAcceptable(11, 10), true);
    assert.equal(isFCntAcceptable(10, 10), false);
    assert.equal(isFCntAcceptable(9, 10), false);
    assert.equal(isFCntAcceptable(0, UINT32_MAX), false);
  });
});
