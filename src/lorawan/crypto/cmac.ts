import type { AesKey } from './aes.js';
import { BlockScratch } from './scratch.js';

const scratch = new BlockScratch();

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
  const buffer = scratch.view(blockCount);
  // Plain loops: for the few dozen bytes of a LoRaWAN frame they cost less than set()/fill().
  for (let i = 0; i < prefixLength; i++) buffer[i] = prefix![i]!;
  for (let i = 0; i < message.length; i++) buffer[prefixLength + i] = message[i]!;
  const complete = length !== 0 && length % 16 === 0;
  if (!complete) {
    buffer[length] = 0x80;
    for (let i = length + 1; i < buffer.length; i++) buffer[i] = 0;
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
