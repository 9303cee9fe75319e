import { LorawanError } from '../lorawan/errors.js';

/**
 * DevAddr allocation from a NetID (LoRaWAN Backend Interfaces §13): the NetID type (its top 3
 * bits) fixes how many leading bits of the DevAddr carry the type prefix and the NwkID taken
 * from the NetID's low bits; the rest (NwkAddr) is ours to choose.
 */
const NWK_ID_BITS = [6, 6, 9, 11, 12, 13, 15, 17] as const;

export interface DevAddrPrefix {
  /** The fixed leading bits, aligned at bit 31. */
  prefix: number;
  /** How many leading bits are fixed. */
  prefixLength: number;
}

export function devAddrPrefix(netId: number): DevAddrPrefix {
  if (!Number.isInteger(netId) || netId < 0 || netId > 0xffffff) {
    throw new LorawanError('INVALID_FIELD', `NetID must be 24 bits, got ${netId}`);
  }
  const type = netId >>> 21;
  const nwkIdBits = NWK_ID_BITS[type]!;
  const typePrefixLength = type + 1;
  // Type prefix: `type` ones followed by a zero.
  const typePrefix = ((1 << type) - 1) << 1;
  const nwkId = netId & ((1 << nwkIdBits) - 1);
  const prefixLength = typePrefixLength + nwkIdBits;
  const prefix = (((typePrefix << nwkIdBits) | nwkId) << (32 - prefixLength)) >>> 0;
  return { prefix, prefixLength };
}

/** A DevAddr inside the NetID's block, with `random` choosing the NwkAddr bits. */
export function allocateDevAddr(netId: number, random: () => number = Math.random): number {
  const { prefix, prefixLength } = devAddrPrefix(netId);
  const nwkAddrBits = 32 - prefixLength;
  const nwkAddr = Math.floor(random() * 2 ** nwkAddrBits);
  return (prefix | nwkAddr) >>> 0;
}

export function isDevAddrOfNetId(devAddr: number, netId: number): boolean {
  const { prefix, prefixLength } = devAddrPrefix(netId);
  const mask = prefixLength === 0 ? 0 : (~0 << (32 - prefixLength)) >>> 0;
  return (devAddr & mask) >>> 0 === prefix;
}
