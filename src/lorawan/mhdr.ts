import { LorawanError } from './errors.js';

/** Message types in MHDR code order (LoRaWAN §4.2.1). */
export const MTYPES = [
  'JoinRequest',
  'JoinAccept',
  'UnconfirmedDataUp',
  'UnconfirmedDataDown',
  'ConfirmedDataUp',
  'ConfirmedDataDown',
  'RejoinRequest',
  'Proprietary',
] as const;

export type MType = (typeof MTYPES)[number];
export type DataMType =
  | 'UnconfirmedDataUp'
  | 'UnconfirmedDataDown'
  | 'ConfirmedDataUp'
  | 'ConfirmedDataDown';

/** Major version of the frame format; only LoRaWAN R1 (0) is defined. */
export const LORAWAN_R1 = 0;

export function mTypeCode(mType: MType): number {
  return MTYPES.indexOf(mType);
}

export function isDataMType(mType: MType): mType is DataMType {
  return (
    mType === 'UnconfirmedDataUp' ||
    mType === 'UnconfirmedDataDown' ||
    mType === 'ConfirmedDataUp' ||
    mType === 'ConfirmedDataDown'
  );
}

export function isUplinkMType(mType: MType): boolean {
  return (
    mType === 'JoinRequest' ||
    mType === 'UnconfirmedDataUp' ||
    mType === 'ConfirmedDataUp' ||
    mType === 'RejoinRequest'
  );
}

export function decodeMhdr(byte: number): { mType: MType; major: number } {
  const major = byte & 0x03;
  if (major !== LORAWAN_R1) {
    throw new LorawanError('UNSUPPORTED', `MHDR major version ${major} is not LoRaWAN R1 (0)`);
  }
  return { mType: MTYPES[byte >>> 5]!, major };
}

export function encodeMhdr(mType: MType): number {
  return (mTypeCode(mType) << 5) | LORAWAN_R1;
}
