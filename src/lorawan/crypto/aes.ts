import { type Cipher, createCipheriv, createDecipheriv, type Decipher } from 'node:crypto';
import { LorawanError } from '../errors.js';

const ZERO_BLOCK = new Uint8Array(16);

/**
 * An AES-128 key with its key schedule prepared once. LoRaWAN does a handful of single-block
 * operations per frame, so re-creating a cipher per operation (what most libraries do) costs more
 * than the AES itself: a session keeps its AesKey objects and reuses them.
 *
 * The CBC cipher is kept open across calls. CBC chains each call onto the last ciphertext block
 * of the previous one, so `cbcMac` xors that block into its first input block, which makes every
 * call behave as a fresh CBC with a zero IV.
 */
export class AesKey {
  readonly #key: Uint8Array;
  #ecb: Cipher | undefined;
  #ecbDecipher: Decipher | undefined;
  #cbc: Cipher | undefined;
  readonly #cbcChain = new Uint8Array(16);
  #cmacSubkeys: [Uint8Array, Uint8Array] | undefined;

  constructor(key: Uint8Array, what = 'AES key') {
    if (key.length !== 16) {
      throw new LorawanError('INVALID_LENGTH', `${what} must be 16 bytes, got ${key.length}`);
    }
    this.#key = Uint8Array.from(key);
  }

  /** A copy of the raw key (for wrapping or storing it; never log it). */
  bytes(): Uint8Array {
    return Uint8Array.from(this.#key);
  }

  /** AES-ECB encryption of whole 16-byte blocks. */
  encryptBlocks(blocks: Uint8Array): Buffer {
    if (this.#ecb === undefined) {
      this.#ecb = createCipheriv('aes-128-ecb', this.#key, null);
      this.#ecb.setAutoPadding(false);
    }
    return this.#ecb.update(blocks);
  }

  /** AES-ECB decryption of whole 16-byte blocks (the network side of JoinAccept "encryption"). */
  decryptBlocks(blocks: Uint8Array): Buffer {
    if (this.#ecbDecipher === undefined) {
      this.#ecbDecipher = createDecipheriv('aes-128-ecb', this.#key, null);
      this.#ecbDecipher.setAutoPadding(false);
    }
    return this.#ecbDecipher.update(blocks);
  }

  /**
   * CBC-MAC with a zero IV over whole blocks. Returns the CBC output: the MAC is its last
   * 16 bytes. `blocks` is modified (its first block is xored with the chaining value).
   */
  cbcMac(blocks: Uint8Array): Buffer {
    if (this.#cbc === undefined) {
      this.#cbc = createCipheriv('aes-128-cbc', this.#key, ZERO_BLOCK);
      this.#cbc.setAutoPadding(false);
    }
    const chain = this.#cbcChain;
    for (let i = 0; i < 16; i++) blocks[i]! ^= chain[i]!;
    const out = this.#cbc.update(blocks);
    const last = out.length - 16;
    for (let i = 0; i < 16; i++) chain[i] = out[last + i]!;
    return out;
  }

  /** CMAC subkeys K1, K2 (RFC 4493 §2.3), computed once per key. */
  cmacSubkeys(): [Uint8Array, Uint8Array] {
    if (this.#cmacSubkeys === undefined) {
      // E(0) through the CBC cipher the CMAC uses anyway: a MIC-only key needs one cipher, not two.
      const l = Uint8Array.from(this.cbcMac(new Uint8Array(16)).subarray(0, 16));
      const k1 = doubleInGf128(l);
      this.#cmacSubkeys = [k1, doubleInGf128(k1)];
    }
    return this.#cmacSubkeys;
  }
}

/** Multiplication by x in GF(2^128) as RFC 4493 defines it for subkey generation. */
function doubleInGf128(block: Uint8Array): Uint8Array {
  const out = new Uint8Array(16);
  for (let i = 0; i < 15; i++) out[i] = ((block[i]! << 1) | (block[i + 1]! >>> 7)) & 0xff;
  out[15] = (block[15]! << 1) & 0xff;
  if (block[0]! & 0x80) out[15]! ^= 0x87;
  return out;
}

/** Accepts raw bytes or an already prepared key. */
export type KeyInput = AesKey | Uint8Array;

export function asAesKey(key: KeyInput, what?: string): AesKey {
  return key instanceof AesKey ? key : new AesKey(key, what);
}
