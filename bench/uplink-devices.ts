import { createHash } from 'node:crypto';

/**
 * The benchmark's ABP devices, derived from their index so that the provisioning step and the
 * load generator (separate processes) agree without sharing state.
 */
export interface BenchDevice {
  devEui: string;
  devAddr: number;
  nwkSKey: Uint8Array;
  appSKey: Uint8Array;
}

function key(label: string, index: number): Uint8Array {
  return new Uint8Array(createHash('sha256').update(`${label}:${index}`).digest().subarray(0, 16));
}

export function benchDevice(index: number): BenchDevice {
  return {
    devEui: `70b3d5b000${index.toString(16).padStart(6, '0')}`,
    // NetID 000013 block (26000000-27ffffff), one DevAddr per device.
    devAddr: (0x26000000 + index) >>> 0,
    nwkSKey: key('nwk', index),
    appSKey: key('app', index),
  };
}

export function benchGatewayId(index: number): string {
  return `b0b0b0b0${index.toString(16).padStart(8, '0')}`;
}
