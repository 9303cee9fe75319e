import assert from 'node:assert/strict';
import { createCipheriv } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { bytesToHex, hexToBytes } from '../../src/lorawan/bytes.js';
import { AesKey } from '../../src/lorawan/crypto/aes.js';
import { aesCmac } from '../../src/lorawan/crypto/cmac.js';
import { constantTimeEqual } from '../../src/lorawan/crypto/constant-time.js';
import { unwrapKey, wrapKey } from '../../src/lorawan/crypto/key-wrap.js';
import { isLorawanError } from '../../src/lorawan/errors.js';

// RFC 4493 §4 test vectors (AES-128 key 2b7e1516...).
const RFC4493_KEY = '2b7e151628aed2a6abf7158809cf4f3c';
const RFC4493_MESSAGE =
  '6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51' +
  '30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710';
const RFC4493_EXAMPLES: Array<[number, string]> = [
  [0, 'bb1d6929e95937287fa37d129b756746'],
  [16, '070a16b46b4d4144f79bdd9dd04a287c'],
  [40, 'dfa66747de9ae63030ca32611497c827'],
  [64, '51f0bebf7e3b9d92fc49741779363cfe'],
];

/** A textbook CMAC with a fresh cipher per call, to check the chained-cipher version against. */
function referenceCmac(key: Uint8Array, message: Uint8Array): string {
  const aes = (block: Uint8Array): Uint8Array => {
    const cipher = createCipheriv('aes-128-ecb', key, null);
    cipher.setAutoPadding(false);
    return cipher.update(block);
  };
  const double = (b: Uint8Array): Uint8Array => {
    const out = new Uint8Array(16);
    for (let i = 0; i < 16; i++) out[i] = ((b[i]! << 1) | ((b[i + 1] ?? 0) >>> 7)) & 0xff;
    if (b[0]! & 0x80) out[15]! ^= 0x87;
    return out;
  };
  const k1 = double(aes(new Uint8Array(16)));
  const k2 = double(k1);
  const n = Math.max(1, Math.ceil(message.length / 16));
  const complete = message.length > 0 && message.length % 16 === 0;
  const last = new Uint8Array(16);
  last.set(message.subarray((n - 1) * 16));
  if (!complete) last[message.length - (n - 1) * 16] = 0x80;
  const subkey = complete ? k1 : k2;
  for (let i = 0; i < 16; i++) last[i]! ^= subkey[i]!;
  let x: Uint8Array = new Uint8Array(16);
  for (let block = 0; block < n; block++) {
    const input = block === n - 1 ? last : message.subarray(block * 16, block * 16 + 16);
    const y = new Uint8Array(16);
    for (let i = 0; i < 16; i++) y[i] = x[i]! ^ input[i]!;
    x = aes(y);
  }
  return bytesToHex(x);
}

describe('AES-CMAC', () => {
  it('matches the RFC 4493 examples, in any order, with one prepared key', () => {
    const key = new AesKey(hexToBytes(RFC4493_KEY));
    const message = hexToBytes(RFC4493_MESSAGE);
    for (const order of [
      [0, 1, 2, 3],
      [3, 2, 1, 0],
      [2, 0, 3, 1, 2],
    ]) {
      for (const index of order) {
        const [length, expected] = RFC4493_EXAMPLES[index]!;
        assert.equal(bytesToHex(aesCmac(key, message.subarray(0, length))), expected);
      }
    }
  });

  it('derives the RFC 4493 subkeys', () => {
    const [k1, k2] = new AesKey(hexToBytes(RFC4493_KEY)).cmacSubkeys();
    assert.equal(bytesToHex(k1), 'fbeed618357133667c85e08f7236a8de');
    assert.equal(bytesToHex(k2), 'f7ddac306ae266ccf90bc11ee46d513b');
  });

  it('agrees with a fresh-cipher reference over interleaved keys, prefixes and lengths', () => {
    const keys = [new AesKey(hexToBytes(RFC4493_KEY)), new AesKey(new Uint8Array(16).fill(7))];
    fc.assert(
      fc.property(
        fc.nat(1),
        fc.uint8Array({ maxLength: 16 }),
        fc.uint8Array({ maxLength: 300 }),
        (keyIndex, prefix, message) => {
          const key = keys[keyIndex]!;
          const joined = new Uint8Array(prefix.length + message.length);
          joined.set(prefix);
          joined.set(message, prefix.length);
          assert.equal(
            bytesToHex(aesCmac(key, message, prefix)),
            referenceCmac(key.bytes(), joined),
          );
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('prepared AES keys', () => {
  it('refuses a key that is not 16 bytes', () => {
    assert.throws(
      () => new AesKey(new Uint8Array(15), 'NwkSKey'),
      (error: unknown) => isLorawanError(error) && error.code === 'INVALID_LENGTH',
    );
  });

  it('decrypts what it encrypts', () => {
    const key = new AesKey(new Uint8Array(16).fill(1));
    const blocks = new Uint8Array(32).map((_, i) => i);
    assert.deepEqual(new Uint8Array(key.decryptBlocks(key.encryptBlocks(blocks))), blocks);
  });
});

describe('constant-time comparison', () => {
  it('tells equal from different values of any length', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.nat(63), (a, at) => {
        assert.equal(constantTimeEqual(a, Uint8Array.from(a)), true);
        if (a.length > 0) {
          const b = Uint8Array.from(a);
          b[at % a.length]! ^= 1;
          assert.equal(constantTimeEqual(a, b), false);
        }
        assert.equal(constantTimeEqual(a, new Uint8Array(a.length + 1)), false);
      }),
    );
  });
});

describe('RFC 3394 key wrap', () => {
  it('round-trips keys of 16 and 32 bytes under 16-, 24- and 32-byte KEKs', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(16, 24, 32).chain((n) => fc.uint8Array({ minLength: n, maxLength: n })),
        fc.constantFrom(16, 32).chain((n) => fc.uint8Array({ minLength: n, maxLength: n })),
        (kek, key) => {
          const wrapped = wrapKey(kek, key);
          assert.equal(wrapped.length, key.length + 8);
          assert.deepEqual(unwrapKey(kek, wrapped), key);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('fails the integrity check with a wrong KEK or an altered envelope', () => {
    const kek = new Uint8Array(16).fill(9);
    const wrapped = wrapKey(kek, new Uint8Array(16).fill(3));
    const isUnwrapFailure = (error: unknown) =>
      isLorawanError(error) && error.code === 'KEY_UNWRAP_FAILED';
    assert.throws(() => unwrapKey(new Uint8Array(16).fill(8), wrapped), isUnwrapFailure);
    for (let i = 0; i < wrapped.length; i++) {
      const altered = Uint8Array.from(wrapped);
      altered[i]! ^= 0x10;
      assert.throws(() => unwrapKey(kek, altered), isUnwrapFailure);
    }
  });

  it('rejects a KEK or key of the wrong size with a typed error', () => {
    const isLength = (error: unknown) => isLorawanError(error) && error.code === 'INVALID_LENGTH';
    assert.throws(() => wrapKey(new Uint8Array(15), new Uint8Array(16)), isLength);
    assert.throws(() => wrapKey(new Uint8Array(16), new Uint8Array(12)), isLength);
    assert.throws(() => unwrapKey(new Uint8Array(16), new Uint8Array(20)), isLength);
  });
});
