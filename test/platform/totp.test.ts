import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  fromBase32,
  generateTotpSecret,
  hotp,
  type TotpAlgorithm,
  toBase32,
  totp,
  totpStep,
  totpUri,
  verifyTotp,
} from '../../src/platform/totp.js';

const ascii = (text: string) => new Uint8Array(Buffer.from(text, 'ascii'));

/** RFC 6238 Appendix B: the seeds are ASCII digits, 20, 32 and 64 bytes long. */
const SEEDS: Record<TotpAlgorithm, Uint8Array> = {
  sha1: ascii('12345678901234567890'),
  sha256: ascii('12345678901234567890123456789012'),
  sha512: ascii('1234567890123456789012345678901234567890123456789012345678901234'),
};

/** RFC 6238 Appendix B: time (s), then the 8-digit TOTP of SHA-1, SHA-256, SHA-512. */
const RFC6238_VECTORS: [number, string, string, string][] = [
  [59, '94287082', '46119246', '90693936'],
  [1111111109, '07081804', '68084774', '25091201'],
  [1111111111, '14050471', '67062674', '99943326'],
  [1234567890, '89005924', '91819424', '93441116'],
  [2000000000, '69279037', '90698825', '38618901'],
  [20000000000, '65353130', '77737706', '47863826'],
];

/** RFC 4226 Appendix D: HOTP of counters 0 to 9 with the SHA-1 seed, 6 digits. */
const RFC4226_VECTORS = [
  '755224',
  '287082',
  '359152',
  '969429',
  '338314',
  '254676',
  '287922',
  '162583',
  '399871',
  '520489',
];

describe('TOTP (RFC 6238)', () => {
  it('computes the RFC 4226 HOTP test values', () => {
    RFC4226_VECTORS.forEach((code, counter) => {
      assert.equal(hotp(SEEDS.sha1, counter), code, `counter ${counter}`);
    });
  });

  for (const [seconds, sha1, sha256, sha512] of RFC6238_VECTORS) {
    it(`computes the RFC 6238 test values at T = ${seconds} s`, () => {
      const timeMs = seconds * 1000;
      assert.equal(totp(SEEDS.sha1, timeMs, { digits: 8 }), sha1);
      assert.equal(totp(SEEDS.sha256, timeMs, { digits: 8, algorithm: 'sha256' }), sha256);
      assert.equal(totp(SEEDS.sha512, timeMs, { digits: 8, algorithm: 'sha512' }), sha512);
      // And the 6-digit code an app shows is the last 6 digits.
      assert.equal(totp(SEEDS.sha1, timeMs), sha1.slice(2));
    });
  }

  it('counts 30-second steps from the epoch', () => {
    assert.equal(totpStep(0), 0);
    assert.equal(totpStep(29_999), 0);
    assert.equal(totpStep(30_000), 1);
    assert.equal(totpStep(59_000), 1);
    assert.equal(totpStep(1_111_111_109_000), 37_037_036);
  });

  it('accepts the current step and one on each side, not two', () => {
    const secret = SEEDS.sha1;
    const now = 1_234_567_890_000;
    const step = totpStep(now);
    for (const offset of [-1, 0, 1]) {
      const code = hotp(secret, step + offset);
      assert.deepEqual(verifyTotp(secret, code, { timeMs: now }), {
        valid: true,
        step: step + offset,
      });
    }
    for (const offset of [-2, 2]) {
      const code = hotp(secret, step + offset);
      assert.deepEqual(verifyTotp(secret, code, { timeMs: now }), {
        valid: false,
        reason: 'wrong',
      });
    }
    assert.deepEqual(verifyTotp(secret, hotp(secret, step - 2), { timeMs: now, window: 2 }), {
      valid: true,
      step: step - 2,
    });
  });

  it('refuses a code of a step used already, or an earlier one (replay)', () => {
    const secret = SEEDS.sha1;
    const now = 1_234_567_890_000;
    const step = totpStep(now);
    const code = hotp(secret, step);
    assert.deepEqual(verifyTotp(secret, code, { timeMs: now, lastUsedStep: step }), {
      valid: false,
      reason: 'replayed',
    });
    assert.deepEqual(
      verifyTotp(secret, hotp(secret, step - 1), { timeMs: now, lastUsedStep: step }),
      {
        valid: false,
        reason: 'replayed',
      },
    );
    assert.deepEqual(
      verifyTotp(secret, hotp(secret, step + 1), { timeMs: now, lastUsedStep: step }),
      {
        valid: true,
        step: step + 1,
      },
    );
    assert.deepEqual(verifyTotp(secret, code, { timeMs: now, lastUsedStep: null }), {
      valid: true,
      step,
    });
  });

  it('refuses malformed codes before computing anything', () => {
    const secret = generateTotpSecret();
    for (const code of ['', '12345', '1234567', '12a456', ' 123456', '１２３４５６', 42 as never]) {
      assert.deepEqual(verifyTotp(secret, code, { timeMs: Date.now() }), {
        valid: false,
        reason: 'malformed',
      });
    }
  });

  it('makes 160-bit random secrets', () => {
    const a = generateTotpSecret();
    const b = generateTotpSecret();
    assert.equal(a.length, 20);
    assert.notDeepEqual(a, b);
  });

  it('refuses a negative counter or an odd number of digits', () => {
    assert.throws(() => hotp(SEEDS.sha1, -1), RangeError);
    assert.throws(() => hotp(SEEDS.sha1, 0, 4), RangeError);
  });
});

describe('base32 (RFC 4648) and otpauth URIs', () => {
  const vectors: [string, string][] = [
    ['', ''],
    ['f', 'MY'],
    ['fo', 'MZXQ'],
    ['foo', 'MZXW6'],
    ['foob', 'MZXW6YQ'],
    ['fooba', 'MZXW6YTB'],
    ['foobar', 'MZXW6YTBOI'],
  ];
  for (const [plain, encoded] of vectors) {
    it(`encodes and decodes "${plain}"`, () => {
      assert.equal(toBase32(ascii(plain)), encoded);
      assert.deepEqual(fromBase32(encoded), ascii(plain));
    });
  }

  it('decodes any case, with spaces and padding, and refuses other characters', () => {
    assert.deepEqual(fromBase32('mzxw 6ytb oi======'), ascii('foobar'));
    assert.equal(fromBase32('MZXW1'), undefined);
    const secret = generateTotpSecret();
    assert.deepEqual(fromBase32(toBase32(secret)), secret);
  });

  it('builds the URI an authenticator app scans', () => {
    const uri = totpUri(ascii('12345678901234567890'), 'agent@saint-galmier.fr');
    assert.equal(
      uri,
      'otpauth://totp/Galet:agent%40saint-galmier.fr?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Galet&algorithm=SHA1&digits=6&period=30',
    );
  });
});
