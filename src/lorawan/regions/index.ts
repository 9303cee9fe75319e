import { LorawanError } from '../errors.js';
import { EU868 } from './eu868.js';
import type { Region, RegionName } from './region.js';

export { EU868 } from './eu868.js';
export type {
  Channel,
  ChannelPlan,
  DataRate,
  LinkAdrChannelMaskBlock,
  LinkAdrChannelMaskInput,
  LinkAdrChannelMaskResult,
  MaxPayloadSize,
  MaxPayloadSizeOptions,
  Modulation,
  Region,
  RegionName,
  SubBand,
} from './region.js';
export { dataRateTimeOnAirMs, nameOfDataRate, parseDatr } from './region.js';

const REGIONS: Readonly<Record<RegionName, Region>> = Object.freeze({ EU868 });

/** The names `getRegion` accepts, in their canonical spelling. */
export const regionNames: readonly RegionName[] = Object.freeze(
  Object.keys(REGIONS) as RegionName[],
);

export function isRegionName(name: string): name is RegionName {
  return Object.hasOwn(REGIONS, name);
}

/**
 * The region with this name. Case does not matter ('eu868' finds EU868), since the name comes
 * from configuration files and command lines; anything else is UNSUPPORTED.
 */
export function getRegion(name: string): Region {
  const canonical = name.toUpperCase();
  if (isRegionName(canonical)) return REGIONS[canonical];
  throw new LorawanError(
    'UNSUPPORTED',
    `region ${name} is not supported; supported: ${regionNames.join(', ')}`,
  );
}
