import type { Region } from '../../lorawan/regions/region.js';
import type { UplinkHistory } from './history.js';

/**
 * The pluggable ADR (adaptive data rate) interface. An algorithm is a pure function of the
 * device's current radio settings, its uplink history, its device profile and its region: no I/O,
 * no clock. The network server turns a decision that changes something into a LinkADRReq
 * (`network/mac/link-adr.ts`) and updates the session only when the device accepts it.
 */

/** The installation margin a profile gets when it does not set one, dB. */
export const DEFAULT_INSTALLATION_MARGIN_DB = 10;

/** The highest NbTrans ADR assigns (the wire allows 15; more repetitions rarely pay off). */
export const MAX_ADR_NB_TRANS = 3;

/** The ADR part of a device profile. */
export interface AdrProfile {
  /** Whether the network runs ADR for the device. When false, decisions change nothing. */
  readonly enabled: boolean;
  /** Margin kept above the demodulation floor, dB. Default DEFAULT_INSTALLATION_MARGIN_DB. */
  readonly installationMarginDb?: number;
  /** Lowest data rate ADR may assign. Default 0. */
  readonly minDr?: number;
  /** Highest data rate ADR may assign; capped at `region.maxAdrDataRate`. Default that. */
  readonly maxDr?: number;
}

export interface AdrInput {
  readonly region: Region;
  /** The device's current uplink data rate index. */
  readonly dr: number;
  /** The device's current TX power index (0 = max EIRP). */
  readonly txPowerIndex: number;
  /** The device's current number of transmissions per unconfirmed uplink. */
  readonly nbTrans: number;
  /** The device's last uplinks, oldest first (`network/adr/history.ts`). */
  readonly history: UplinkHistory;
  readonly profile: AdrProfile;
}

export interface AdrDecision {
  readonly dr: number;
  readonly txPowerIndex: number;
  readonly nbTrans: number;
  /** Why, in words for the device's log (`margin 12.5 dB: 4 steps, DR0 -> DR4`). */
  readonly reason?: string;
}

export interface AdrAlgorithm {
  /** A short identifier a device profile names the algorithm by ('default'). */
  readonly name: string;
  decide(input: AdrInput): AdrDecision;
}

/** Whether a decision asks the device for something other than what it has now. */
export function adrDecisionChanges(input: AdrInput, decision: AdrDecision): boolean {
  return (
    decision.dr !== input.dr ||
    decision.txPowerIndex !== input.txPowerIndex ||
    decision.nbTrans !== input.nbTrans
  );
}

/**
 * The TX power indices the region defines, 0 to `max` (EU868: 0-7, MaxEIRP − 2·index dBm).
 * The LinkADRReq field is 4 bits, and 15 means "keep", so 0-14 are looked at.
 */
export function txPowerIndexRange(region: Region): { readonly min: number; readonly max: number } {
  let max = 0;
  for (let index = 0; index < 15; index++) {
    if (region.txPowerDbm(index) === undefined) break;
    max = index;
  }
  return { min: 0, max };
}

/**
 * The data rates a profile lets ADR assign in a region: [minDr, min(maxDr, region.maxAdrDataRate)].
 * Undefined when the range is empty (a profile whose minimum is above its maximum).
 */
export function adrDataRateRange(
  region: Region,
  profile: AdrProfile,
): { readonly min: number; readonly max: number } | undefined {
  const min = Math.max(0, profile.minDr ?? 0);
  const max = Math.min(profile.maxDr ?? region.maxAdrDataRate, region.maxAdrDataRate);
  if (!Number.isInteger(min) || !Number.isInteger(max) || min > max) return undefined;
  return { min, max };
}
