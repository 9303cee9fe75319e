import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LoginLimiter } from '../../src/platform/login-limiter.js';

function limiter(options: ConstructorParameters<typeof LoginLimiter>[0] = {}) {
  const clock = { now: 1_000_000 };
  return { clock, limiter: new LoginLimiter({ now: () => clock.now, ...options }) };
}

describe('login limiter', () => {
  it('refuses an address from an IP after 5 failures, until the window ends', () => {
    const { clock, limiter: l } = limiter();
    for (let i = 1; i <= 4; i += 1) {
      assert.equal(l.recordFailure('a@x.fr', '192.0.2.1'), false);
      assert.deepEqual(l.check('a@x.fr', '192.0.2.1'), { allowed: true });
    }
    assert.equal(
      l.recordFailure('a@x.fr', '192.0.2.1'),
      true,
      'the fifth failure reaches the limit',
    );
    assert.deepEqual(l.check('a@x.fr', '192.0.2.1'), { allowed: false, retryAfterMs: 15 * 60_000 });
    assert.deepEqual(l.check('A@X.FR ', '192.0.2.1').allowed, false, 'the address in any case');
    assert.deepEqual(l.check('a@x.fr', '192.0.2.2'), { allowed: true }, 'another IP');
    assert.deepEqual(l.check('b@x.fr', '192.0.2.1'), { allowed: true }, 'another address');
    clock.now += 10 * 60_000;
    assert.deepEqual(l.check('a@x.fr', '192.0.2.1'), { allowed: false, retryAfterMs: 5 * 60_000 });
    clock.now += 5 * 60_000;
    assert.deepEqual(l.check('a@x.fr', '192.0.2.1'), { allowed: true });
  });

  it('starts over after a successful login', () => {
    const { limiter: l } = limiter();
    for (let i = 0; i < 4; i += 1) l.recordFailure('a@x.fr', '192.0.2.1');
    l.recordSuccess('a@x.fr', '192.0.2.1');
    for (let i = 0; i < 4; i += 1) l.recordFailure('a@x.fr', '192.0.2.1');
    assert.deepEqual(l.check('a@x.fr', '192.0.2.1'), { allowed: true });
  });

  it('also limits one IP trying many addresses', () => {
    const { limiter: l } = limiter({ maxFailuresPerIp: 10 });
    for (let i = 0; i < 10; i += 1) l.recordFailure(`user${i}@x.fr`, '192.0.2.9');
    assert.equal(l.check('new@x.fr', '192.0.2.9').allowed, false);
    assert.equal(l.check('new@x.fr', '192.0.2.10').allowed, true);
  });

  it('holds a bounded number of entries, dropping expired then least recent ones', () => {
    const { clock, limiter: l } = limiter({ maxEntries: 50, maxFailuresPerIp: 1000 });
    for (let i = 0; i < 100; i += 1) l.recordFailure(`user${i}@x.fr`, '192.0.2.1');
    assert.ok(l.size <= 50, `size ${l.size}`);
    clock.now += 16 * 60_000;
    l.recordFailure('late@x.fr', '192.0.2.2');
    assert.ok(l.size <= 3, `expired entries dropped, size ${l.size}`);
  });
});
