import { asAesKey, type KeyInput } from './aes.js';
import { type FrameDirection, writeCounterBlock } from './blocks.js';
import { BlockScratch } from './scratch.js';

const keystreamInput = new BlockScratch();

/**
 * FRMPayload encryption (LoRaWAN 1.0 §4.3.3.1, 1.1 §4.3.3): XOR with AES(K, A_i), i = 1..k.
 * The same call decrypts. K is the AppSKey for FPort > 0, the NwkSKey (1.1: NwkSEncKey) for
 * FPort 0; `fCnt` is the full 32-bit counter (1.1 downlinks: AFCntDown or NFCntDown).
 */
export function encryptFrmPayload(
  key: KeyInput,
  direction: FrameDirection,
  devAddr: number,
  fCnt: number,
  payload: Uint8Array,
): Uint8Array {
  const out = new Uint8Array(payload.length);
  if (payload.length === 0) return out;
  const blockCount = Math.ceil(payload.length / 16);
  const blocks = keystreamInput.view(blockCount);
  for (let i = 0; i < blockCount; i++) {
    writeCounterBlock(blocks, i * 16, 0x01, direction, devAddr, fCnt, (i + 1) & 0xff);
  }
  const keystream = asAesKey(key).encryptBlocks(blocks);
  for (let i = 0; i < payload.length; i++) out[i] = payload[i]! ^ keystream[i]!;
  return out;
}

export const decryptFrmPayload = encryptFrmPayload;

const foptsBlock = new Uint8Array(16);

/**
 * LoRaWAN 1.1 FOpts encryption with NwkSEncKey (§4.3.1.6, in the form of the 1.1 errata that
 * deployed stacks follow): one block A with A[4] = 0x01 for the network counters (FCntUp,
 * NFCntDown) or 0x02 when a downlink carries FPort > 0 and so counts with AFCntDown, and A[15] = 1.
 */
export function encryptFOpts(
  nwkSEncKey: KeyInput,
  direction: FrameDirection,
  devAddr: number,
  fCnt: number,
  fOpts: Uint8Array,
  aFCntDown = false,
): Uint8Array {
  const out = new Uint8Array(fOpts.length);
  if (fOpts.length === 0) return out;
  writeCounterBlock(foptsBlock, 0, 0x01, direction, devAddr, fCnt, 0x01);
  foptsBlock[4] = aFCntDown ? 0x02 : 0x01;
  const keystream = asAesKey(nwkSEncKey).encryptBlocks(foptsBlock);
  for (let i = 0; i < fOpts.length; i++) out[i] = fOpts[i]! ^ keystream[i]!;
  return out;
}

export const decryptFOpts = encryptFOpts;
