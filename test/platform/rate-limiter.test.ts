import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RateLimiter } from '../../src/platform/rate-limiter.js';

describe('rate limiter (token bucket per key)', () => {
  it('allows a burst, then one request per refill interval, with the wait until the next', () => {
    let nowMs = 0;
    const limiter = new RateLimiter({ burst: 3, perSecond: 2, now: () => nowMs });
    assert.deepEqual(limiter.take('k'), { allowed: true, remaining: 2 });
    assert.deepEqual(limiter.take('k'), { allowed: true, remaining: 1 });
    assert.deepEqual(limiter.take('k'), { allowed: true, remaining: 0 });
    assert.deepEqual(limiter.take('k'), { allowed: false, retryAfterMs: 500 });
    nowMs += 250;
    assert.deepEqual(limiter.take('k'), { allowed: false, retryAfterMs: 250 });
    nowMs += 250;
    assert.equal(limiter.take('k').allowed, true);
    assert.equal(limiter.take('k').allowed, false);
    // Another key has its own bucket.
    assert.equal(limiter.take('other').allowed, true);
    // A long pause refills up to the burst, not beyond.
    nowMs += 60_000;
    for (let i = 0; i < 3; i += 1) assert.equal(limiter.take('k').allowed, true);
    assert.equal(limiter.take('k').allowed, false);
  });

  it('keeps a bounded number of buckets, forgetting full ones first', () => {
    let nowMs = 0;
    const limiter = new RateLimiter({ burst: 2, perSecond: 1, maxKeys: 10, now: () => nowMs });
    for (let i = 0; i < 10; i += 1) limiter.take(`idle-${i}`);
    nowMs += 10_000;
    limiter.take('busy');
    limiter.take('busy');
    assert.ok(limiter.size <= 10, `${limiter.size} buckets`);
    assert.equal(limiter.take('busy').allowed, false, 'the busy bucket is remembered');
    for (let i = 0; i < 100; i += 1) limiter.take(`new-${i}`);
    assert.ok(limiter.size <= 10, `${limiter.size} buckets`);
  });

  it('refuses a limit that cannot let anything through', () => {
    assert.throws(() => new RateLimiter({ burst: 0 }), RangeError);
    assert.throws(() => new RateLimiter({ perSecond: 0 }), RangeError);
  });
});
