import { LorawanError } from './errors.js';

/**
 * Frame control flags (LoRaWAN §4.3.1). Bit 4 means ClassB on an uplink and FPending on a
 * downlink; ADRACKReq exists only on uplinks. A flag that has no meaning in the frame's direction
 * is false after decoding and must be false when encoding.
 */
export interface FCtrl {
  adr: boolean;
  adrAckReq: boolean;
  ack: boolean;
  classB: boolean;
  fPending: boolean;
}

export function decodeFCtrl(byte: number, uplink: boolean): { fCtrl: FCtrl; fOptsLength: number } {
  return {
    fCtrl: {
      adr: (byte & 0x80) !== 0,
      adrAckReq: uplink && (byte & 0x40) !== 0,
      ack: (byte & 0x20) !== 0,
      classB: uplink && (byte & 0x10) !== 0,
      fPending: !uplink && (byte & 0x10) !== 0,
    },
    fOptsLength: byte & 0x0f,
  };
}

export function encodeFCtrl(fCtrl: FCtrl, fOptsLength: number, uplink: boolean): number {
  if (fOptsLength > 15) {
    throw new LorawanError('INVALID_FIELD', `FOpts is at most 15 bytes, got ${fOptsLength}`);
  }
  if (uplink && fCtrl.fPending) {
    throw new LorawanError('INVALID_FIELD', 'FCtrl.fPending is a downlink flag');
  }
  if (!uplink && (fCtrl.classB || fCtrl.adrAckReq)) {
    throw new LorawanError('INVALID_FIELD', 'FCtrl.classB and FCtrl.adrAckReq are uplink flags');
  }
  return (
    (fCtrl.adr ? 0x80 : 0) |
    (fCtrl.adrAckReq ? 0x40 : 0) |
    (fCtrl.ack ? 0x20 : 0) |
    (fCtrl.classB || fCtrl.fPending ? 0x10 : 0) |
    fOptsLength
  );
}
