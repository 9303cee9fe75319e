import type { MacCommandOf } from '../../lorawan/mac-commands.js';

/** 1980-01-06T00:00:00Z, the GPS epoch, in ms since the Unix epoch. */
const GPS_EPOCH_UNIX_MS = Date.UTC(1980, 0, 6);

/**
 * Leap seconds between GPS time and UTC, with the UTC instant from which each applies. GPS time
 * does not count leap seconds; none has been inserted since 2017 (IERS Bulletin C).
 */
const LEAP_SECONDS: ReadonlyArray<[number, number]> = [
  [Date.UTC(2017, 0, 1), 18],
  [Date.UTC(2015, 6, 1), 17],
  [Date.UTC(2012, 6, 1), 16],
  [Date.UTC(2009, 0, 1), 15],
  [Date.UTC(2006, 0, 1), 14],
];

export function unixMsToGpsMs(unixMs: number): number {
  const leap = LEAP_SECONDS.find(([from]) => unixMs >= from)?.[1] ?? 13;
  return unixMs - GPS_EPOCH_UNIX_MS + leap * 1000;
}

/**
 * DeviceTimeAns (LoRaWAN 1.0.3+ §5.9): GPS time at the end of the uplink transmission, whole
 * seconds and 1/256 s steps. `gpsTimeMs` is the gateway's GPS timestamp of the uplink when it has
 * one (most accurate), else the server's reception time converted with unixMsToGpsMs.
 */
export function deviceTimeAnswer(gpsTimeMs: number): MacCommandOf<'DeviceTimeAns'> {
  const seconds = Math.floor(gpsTimeMs / 1000);
  const fractionalSecond = Math.min(255, Math.floor(((gpsTimeMs - seconds * 1000) * 256) / 1000));
  return { cid: 'DeviceTimeAns', gpsEpochSeconds: seconds >>> 0, fractionalSecond };
}
