import type { AesKey } from './aes.js';

// Scratch space for the padded message, with one view per block count: cipher.update copies its
// input synchronously, so reusing them saves allocations on the uplink path.
let scratch = new Uint8Array(0);
let scratchViews: Uint8Array[] = [];

function paddedBuffer(blockCount: number): Uint8Array {
  if (blockCount >= scratchViews.length) {
    const count = Math.max(blockCount + 1, 20);
    scratch = new Uint8Array(count * 16);
    scratchViews = Array.from({ length: count }, (_, i) => scratch.subarray(0, i * 16));
  }
  return scratchViews[blockCount]!;
}

/**
 * AES-CMAC (RFC 4493) of `prefix | message`, written into `out` (16 bytes, or fewer for a
 * truncated MAC). LoRaWAN MICs are a CMAC over a 16-byte B0/B1 block followed by the frame, so
 * the prefix is taken separately instead of concatenating first.
 */
export function aesCmacInto(
  key: AesKey,
  message: Uint8Array,
  prefix: Uint8Array | undefined,
  out: Uint8Array,
): Uint8Array {
  const prefixLength = prefix === undefined ? 0 : prefix.length;
  const length = prefixLength + message.length;
  const blockCount = length === 0 ? 1 : Math.ceil(length / 16);
  const buffer = paddedBuffer(blockCount);
  if (prefix !== undefined) buffer.set(prefix, 0);
  buffer.set(message, prefixLength);
  const complete = length !== 0 && length % 16 === 0;
  if (!complete) {
    buffer[length] = 0x80;
    buffer.fill(0, length + 1);
  }
  const [k1, k2] = key.cmacSubkeys();
  const subkey = complete ? k1 : k2;
  const lastBlock = buffer.length - 16;
  for (let i = 0; i < 16; i++) buffer[lastBlock + i]! ^= subkey[i]!;
  const cbc = key.cbcMac(buffer);
  const macOffset = cbc.length - 16;
  const outLength = Math.min(out.length, 16);
  for (let i = 0; i < outLength; i++) out[i] = cbc[macOffset + i]!;
  return out;
}

/** AES-CMAC (RFC 4493) of `prefix | message`, all 16 bytes. */
export function aesCmac(key: AesKey, message: Uint8Array, prefix?: Uint8Array): Uint8Array {
  return aesCmacInto(key, message, prefix, new Uint8Array(16));
}
