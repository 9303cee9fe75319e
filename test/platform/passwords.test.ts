import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseOptions } from '@node-rs/argon2';
import {
  ARGON2_PARAMETERS,
  hashPassword,
  needsRehash,
  PASSWORD_MAX_LENGTH,
  PASSWORD_MIN_LENGTH,
  passwordPolicyViolation,
  verifyDummyPassword,
  verifyPassword,
} from '../../src/platform/passwords.js';

const GOOD = 'correct horse battery staple';

describe('password policy', () => {
  it('takes 12 to 1024 characters, counted as Unicode code points', () => {
    assert.equal(PASSWORD_MIN_LENGTH, 12);
    assert.equal(PASSWORD_MAX_LENGTH, 1024);
    assert.equal(passwordPolicyViolation('a'.repeat(12)), undefined);
    assert.equal(passwordPolicyViolation('a'.repeat(1024)), undefined);
    assert.match(passwordPolicyViolation('a'.repeat(11)) ?? '', /at least 12 characters, got 11/);
    assert.match(passwordPolicyViolation('a'.repeat(1025)) ?? '', /at most 1024 characters/);
    // 12 emoji are 24 UTF-16 units but 12 characters; 6 are too few.
    assert.equal(passwordPolicyViolation('🔑'.repeat(12)), undefined);
    assert.match(passwordPolicyViolation('🔑'.repeat(6)) ?? '', /got 6/);
  });

  it('refuses an empty password, only spaces, or something that is not a text', () => {
    assert.match(passwordPolicyViolation('') ?? '', /at least 12/);
    assert.match(passwordPolicyViolation(' '.repeat(12)) ?? '', /only spaces/);
    assert.match(passwordPolicyViolation(undefined) ?? '', /text/);
    assert.match(passwordPolicyViolation(123456789012) ?? '', /text/);
  });
});

describe('password hashing (argon2id)', () => {
  it('hashes with argon2id and the recommended parameters, salted', async () => {
    const hash = await hashPassword(GOOD);
    assert.match(hash, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
    const options = parseOptions(hash);
    assert.equal(options.memoryCost, ARGON2_PARAMETERS.memoryCost);
    assert.equal(options.timeCost, ARGON2_PARAMETERS.timeCost);
    assert.equal(options.parallelism, ARGON2_PARAMETERS.parallelism);
    assert.notEqual(await hashPassword(GOOD), hash, 'a new salt each time');
    assert.equal(needsRehash(hash), false);
  });

  it('verifies the right password and refuses a wrong one', async () => {
    const hash = await hashPassword(GOOD);
    assert.equal(await verifyPassword(hash, GOOD), true);
    assert.equal(await verifyPassword(hash, `${GOOD} `), false);
    assert.equal(await verifyPassword(hash, ''), false);
    assert.equal(await verifyPassword(hash, 'x'.repeat(10_000)), false);
  });

  it('treats composed and decomposed accents as the same password (NFC)', async () => {
    const composed = 'mot de passe été\u00e9';
    const decomposed = 'mot de passe été\u0065\u0301';
    const hash = await hashPassword(composed);
    assert.equal(await verifyPassword(hash, decomposed), true);
  });

  it('refuses to hash a password the policy refuses', async () => {
    await assert.rejects(hashPassword('short'), RangeError);
  });

  it('answers false, without throwing, for a malformed hash', async () => {
    assert.equal(await verifyPassword('not a hash', GOOD), false);
    assert.equal(await verifyPassword('$argon2id$v=19$m=19456,t=2,p=1$broken', GOOD), false);
    assert.equal(needsRehash('not a hash'), true);
  });

  it('says when a hash was made with weaker parameters', async () => {
    const weak = await hashPassword(GOOD, { memoryCost: 8192, timeCost: 1, parallelism: 1 });
    assert.equal(needsRehash(weak), true);
    assert.equal(await verifyPassword(weak, GOOD), true);
  });

  it('spends about the time of a real verification for an unknown user', async () => {
    const hash = await hashPassword(GOOD);
    await verifyDummyPassword(GOOD); // makes the dummy hash once
    const median = async (work: () => Promise<unknown>) => {
      const times: number[] = [];
      for (let i = 0; i < 5; i += 1) {
        const start = process.hrtime.bigint();
        await work();
        times.push(Number(process.hrtime.bigint() - start) / 1e6);
      }
      return times.sort((a, b) => a - b)[2]!;
    };
    const real = await median(() => verifyPassword(hash, 'wrong password here'));
    const dummy = await median(() => verifyDummyPassword('wrong password here'));
    assert.equal(await verifyDummyPassword(GOOD), false);
    // Loose bounds: the point is that the dummy runs argon2 with the same parameters.
    assert.ok(dummy > real / 4 && dummy < real * 4, `real ${real} ms, dummy ${dummy} ms`);
  });
});
