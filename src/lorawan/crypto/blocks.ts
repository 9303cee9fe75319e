import { writeUint32LE } from '../bytes.js';

/** Frame direction as the crypto blocks encode it (LoRaWAN §4.3.3, §4.4). */
export type FrameDirection = 'uplink' | 'downlink';

/**
 * Writes the 16-byte block shared by the A_i (encryption) and B0 (MIC) blocks:
 * first | 0x00×4 | Dir | DevAddr | FCnt | 0x00 | last. Bytes 1..4 are left for callers that
 * put other fields there (1.1 ConfFCnt, FOpts counter type).
 */
export function writeCounterBlock(
  out: Uint8Array,
  offset: number,
  first: number,
  direction: FrameDirection,
  devAddr: number,
  fCnt: number,
  last: number,
): void {
  out[offset] = first;
  out[offset + 1] = 0;
  out[offset + 2] = 0;
  out[offset + 3] = 0;
  out[offset + 4] = 0;
  out[offset + 5] = direction === 'uplink' ? 0 : 1;
  writeUint32LE(out, offset + 6, devAddr);
  writeUint32LE(out, offset + 10, fCnt);
  out[offset + 14] = 0;
  out[offset + 15] = last;
}
