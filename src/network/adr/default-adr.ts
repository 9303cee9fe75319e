import type { Region } from '../../lorawan/regions/region.js';
import { REQUIRED_SNR_DB } from '../mac/link-check.js';
import {
  type AdrAlgorithm,
  type AdrDecision,
  type AdrInput,
  adrDataRateRange,
  DEFAULT_INSTALLATION_MARGIN_DB,
  MAX_ADR_NB_TRANS,
  txPowerIndexRange,
} from './algorithm.js';
import { ADR_HISTORY_LENGTH, packetLossRate, type UplinkHistory } from './history.js';

/**
 * The default ADR algorithm.
 *
 * Margin and steps: margin = best SNR of the history − demodulation floor of the current data
 * rate's spreading factor (SF7 −7.5 … SF12 −20 dB) − installation margin; steps =
 * trunc(margin / 3 dB).
 * - Positive steps raise the data rate one index per step, up to min(profile maxDr,
 *   region.maxAdrDataRate), then spend what is left lowering TX power one index (2 dB in EU868)
 *   per step, down to the region's lowest power.
 * - Negative steps raise TX power one index per step, up to index 0. The data rate is never
 *   lowered for margin: a device that loses the network lowers it itself (ADR backoff,
 *   LoRaWAN 1.0.4 §4.3.1.1).
 *
 * Choices of this implementation:
 * - SNR referred to the current TX power: an entry sent at another TX power index counts with
 *   its SNR shifted by the power difference (region.txPowerDbm). Without it, after lowering the
 *   power the history would still show the old, stronger SNRs for 20 uplinks and each decision
 *   would lower the power again, overshooting. Data rate changes need no correction: the SNR is
 *   measured in the channel bandwidth, whatever the spreading factor.
 * - Full history before improving: raising the data rate, lowering TX power and changing NbTrans
 *   wait for ADR_HISTORY_LENGTH (20) uplinks. Raising TX power on a negative margin does not
 *   wait: more samples could only raise the best SNR, but a device that is barely heard now
 *   should not keep losing frames for 20 more uplinks; the power comes down again once the
 *   history is full if the margin allows it.
 * - Out-of-range current values are brought back into range whatever the margin: a data rate
 *   outside the profile's range, a TX power index the region does not define, NbTrans outside
 *   1-3 (0 means 1 on the wire).
 * - NbTrans from the loss rate of the history (FCnt gaps): < 5 % one less (at least 1),
 *   5-10 % unchanged, 10-30 % one more (at most 3), ≥ 30 % 3.
 */

/** dB of margin per ADR step. */
export const ADR_STEP_DB = 3;

/**
 * The best SNR of the history as if every uplink had been sent at `txPowerIndex`: an uplink
 * sent 2 dB stronger counts 2 dB lower. An entry with a TX power index the region does not
 * define counts as received. −Infinity for an empty history.
 */
export function maxSnrAtTxPowerDb(
  region: Region,
  history: UplinkHistory,
  txPowerIndex: number,
): number {
  const currentDbm = region.txPowerDbm(txPowerIndex);
  let best = Number.NEGATIVE_INFINITY;
  for (const entry of history) {
    const sentDbm = region.txPowerDbm(entry.txPowerIndex);
    const offsetDb = currentDbm === undefined || sentDbm === undefined ? 0 : sentDbm - currentDbm;
    best = Math.max(best, entry.maxSnrDb - offsetDb);
  }
  return best;
}

/** NbTrans for a loss rate (0 to 1), from the current NbTrans. */
export function nbTransForLossRate(lossRate: number, nbTrans: number): number {
  const current = clamp(nbTrans, 1, MAX_ADR_NB_TRANS);
  if (lossRate < 0.05) return Math.max(1, current - 1);
  if (lossRate < 0.1) return current;
  if (lossRate < 0.3) return Math.min(MAX_ADR_NB_TRANS, current + 1);
  return MAX_ADR_NB_TRANS;
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, value));
}

function db(value: number): string {
  return `${Number(value.toFixed(1))} dB`;
}

function decide(input: AdrInput): AdrDecision {
  const { region, profile, history } = input;
  if (!profile.enabled) {
    return {
      dr: input.dr,
      txPowerIndex: input.txPowerIndex,
      nbTrans: input.nbTrans,
      reason: 'ADR is disabled in the device profile',
    };
  }
  const drRange = adrDataRateRange(region, profile);
  if (drRange === undefined) {
    return {
      dr: input.dr,
      txPowerIndex: input.txPowerIndex,
      nbTrans: input.nbTrans,
      reason: `the profile's data rate range is empty (minDr ${profile.minDr}, maxDr ${profile.maxDr}, ${region.name} ADR up to DR${region.maxAdrDataRate})`,
    };
  }
  const powerRange = txPowerIndexRange(region);
  let dr = clamp(input.dr, drRange.min, drRange.max);
  let txPowerIndex = clamp(input.txPowerIndex, powerRange.min, powerRange.max);
  let nbTrans = clamp(input.nbTrans, 1, MAX_ADR_NB_TRANS);

  const notes: string[] = [];
  const finish = (): AdrDecision => {
    const changes: string[] = [];
    if (dr !== input.dr) changes.push(`DR${input.dr} -> DR${dr}`);
    if (txPowerIndex !== input.txPowerIndex) {
      changes.push(`TX power index ${input.txPowerIndex} -> ${txPowerIndex}`);
    }
    if (nbTrans !== input.nbTrans) changes.push(`NbTrans ${input.nbTrans} -> ${nbTrans}`);
    if (changes.length === 0) changes.push('no change');
    return { dr, txPowerIndex, nbTrans, reason: [...notes, changes.join(', ')].join('; ') };
  };

  if (dr !== input.dr) notes.push(`DR${input.dr} is outside DR${drRange.min}-DR${drRange.max}`);
  if (history.length === 0) {
    notes.push('no uplink in the history yet');
    return finish();
  }
  const full = history.length >= ADR_HISTORY_LENGTH;

  const dataRate = region.dataRates[dr];
  const floorDb =
    dataRate?.modulation === 'LORA' ? REQUIRED_SNR_DB[dataRate.spreadingFactor] : undefined;
  if (floorDb === undefined) {
    notes.push(`no demodulation floor known for DR${dr}`);
  } else {
    const installationMarginDb = Number.isFinite(profile.installationMarginDb)
      ? (profile.installationMarginDb as number)
      : DEFAULT_INSTALLATION_MARGIN_DB;
    const snrDb = maxSnrAtTxPowerDb(region, history, input.txPowerIndex);
    const marginDb = snrDb - floorDb - installationMarginDb;
    let steps = Math.trunc(marginDb / ADR_STEP_DB);
    notes.push(
      `margin ${db(marginDb)} (best SNR ${db(snrDb)}, floor ${db(floorDb)}, installation margin ${db(installationMarginDb)}): ${steps} step(s)`,
    );
    if (steps > 0 && !full) {
      notes.push(`waiting for ${ADR_HISTORY_LENGTH} uplinks before improving (${history.length})`);
    } else if (steps > 0) {
      while (steps > 0 && dr < drRange.max) {
        dr++;
        steps--;
      }
      while (steps > 0 && txPowerIndex < powerRange.max) {
        txPowerIndex++;
        steps--;
      }
    } else {
      while (steps < 0 && txPowerIndex > powerRange.min) {
        txPowerIndex--;
        steps++;
      }
    }
  }

  if (full) {
    const lossRate = packetLossRate(history);
    nbTrans = nbTransForLossRate(lossRate, nbTrans);
    notes.push(`loss ${Number((lossRate * 100).toFixed(1))} %`);
  }
  return finish();
}

export const defaultAdr: AdrAlgorithm = Object.freeze({ name: 'default', decide });

/**
 * A cheap answer, without a decision, to "would `defaultAdr.decide` keep these settings?" for
 * the uplink path: before a full history it only raises TX power or brings out-of-range
 * settings back into range, so at full power (index 0), NbTrans 1-3 and a data rate in the
 * profile's range it changes nothing. false means "ask `decide`", not "it will change".
 */
export function defaultAdrKeeps(input: {
  region: Region;
  profile: AdrInput['profile'];
  historyLength: number;
  dr: number;
  txPowerIndex: number;
  nbTrans: number;
}): boolean {
  const range = adrDataRateRange(input.region, input.profile);
  return (
    input.historyLength < ADR_HISTORY_LENGTH &&
    input.txPowerIndex === 0 &&
    input.nbTrans >= 1 &&
    input.nbTrans <= MAX_ADR_NB_TRANS &&
    range !== undefined &&
    input.dr >= range.min &&
    input.dr <= range.max
  );
}
