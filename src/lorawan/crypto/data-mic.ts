import { writeUint16LE } from '../bytes.js';
import { asAesKey, type KeyInput } from './aes.js';
import { type FrameDirection, writeCounterBlock } from './blocks.js';
import { aesCmacInto } from './cmac.js';

const b0 = new Uint8Array(16);
const b1 = new Uint8Array(16);
const halfMic = new Uint8Array(2);

/**
 * LoRaWAN 1.0.x data frame MIC (§4.4): CMAC(NwkSKey, B0 | msg)[0..3], msg = MHDR..FRMPayload.
 * Returns the 4 MIC bytes in wire order.
 */
export function dataMic10(
  nwkSKey: KeyInput,
  direction: FrameDirection,
  devAddr: number,
  fCnt: number,
  msg: Uint8Array,
  out: Uint8Array = new Uint8Array(4),
): Uint8Array {
  writeCounterBlock(b0, 0, 0x49, direction, devAddr, fCnt, msg.length);
  return aesCmacInto(asAesKey(nwkSKey), msg, b0, out);
}

export interface Uplink11MicParams {
  fNwkSIntKey: KeyInput;
  sNwkSIntKey: KeyInput;
  devAddr: number;
  fCnt: number;
  /** FCntDown of the confirmed downlink this uplink acknowledges, else 0. */
  confFCnt: number;
  /** Data rate and channel index the uplink was sent on. */
  txDr: number;
  txCh: number;
}

/**
 * LoRaWAN 1.1 uplink MIC (§4.4): cmacS = CMAC(SNwkSIntKey, B1 | msg), cmacF = CMAC(FNwkSIntKey,
 * B0 | msg); MIC = cmacS[0..1] | cmacF[0..1]. Only the confFCnt's low 16 bits enter the MIC.
 */
export function uplinkMic11(
  params: Uplink11MicParams,
  msg: Uint8Array,
  out: Uint8Array = new Uint8Array(4),
): Uint8Array {
  writeCounterBlock(b0, 0, 0x49, 'uplink', params.devAddr, params.fCnt, msg.length);
  writeCounterBlock(b1, 0, 0x49, 'uplink', params.devAddr, params.fCnt, msg.length);
  writeUint16LE(b1, 1, params.confFCnt & 0xffff);
  b1[3] = params.txDr & 0xff;
  b1[4] = params.txCh & 0xff;
  aesCmacInto(asAesKey(params.sNwkSIntKey), msg, b1, halfMic);
  out[0] = halfMic[0]!;
  out[1] = halfMic[1]!;
  aesCmacInto(asAesKey(params.fNwkSIntKey), msg, b0, halfMic);
  out[2] = halfMic[0]!;
  out[3] = halfMic[1]!;
  return out;
}

/**
 * LoRaWAN 1.1 downlink MIC (§4.4): CMAC(SNwkSIntKey, B0 | msg)[0..3] where B0 carries ConfFCnt
 * (the FCntUp of the confirmed uplink being acknowledged, when ACK is set; else 0).
 */
export function downlinkMic11(
  sNwkSIntKey: KeyInput,
  devAddr: number,
  fCnt: number,
  confFCnt: number,
  msg: Uint8Array,
  out: Uint8Array = new Uint8Array(4),
): Uint8Array {
  writeCounterBlock(b0, 0, 0x49, 'downlink', devAddr, fCnt, msg.length);
  writeUint16LE(b0, 1, confFCnt & 0xffff);
  return aesCmacInto(asAesKey(sNwkSIntKey), msg, b0, out);
}
