import { assertUint } from '../../lorawan/bytes.js';
import { LorawanError } from '../../lorawan/errors.js';

/**
 * The uplink history ADR decides from: the last uplinks of one device session, oldest first.
 * It is plain JSON (numbers only) so that it is stored with the device session as it is.
 *
 * What it keeps and why:
 * - One entry per frame counter. A retransmission (NbTrans > 1, or a confirmed uplink sent
 *   again) or a duplicate of a counter already in the history is ignored: the first reception
 *   stands, and a frame sent several times does not count several times in the loss rate.
 * - A counter below the last one that is not in the history can only mean a new session (the
 *   uplink pipeline refuses replays), so the history restarts from that uplink. Callers should
 *   still clear the history themselves (`[]`) on a join or rejoin.
 * - The history is NOT cleared when the data rate or TX power changes. Each entry records the
 *   data rate and TX power index it was sent with, so that an algorithm can refer the SNR to the
 *   current TX power (the default one does), and the loss rate stays meaningful across changes:
 *   a change does not stop ADR for the next 20 uplinks.
 */

/** How many uplinks the history keeps, and how many the default ADR wants before it acts. */
export const ADR_HISTORY_LENGTH = 20;

export interface UplinkHistoryEntry {
  /** The full 32-bit FCntUp (reconstructed), so that gaps across a 16-bit roll-over count right. */
  readonly fCnt: number;
  /** Best SNR over the gateways that received the uplink, dB. */
  readonly maxSnrDb: number;
  /** How many gateways received the uplink (after deduplication). */
  readonly gatewayCount: number;
  /** The data rate index the uplink was sent at. */
  readonly dr: number;
  /** The TX power index the device was using (as the network last set it). */
  readonly txPowerIndex: number;
}

/** Oldest first; at most ADR_HISTORY_LENGTH entries; fCnt strictly increasing. */
export type UplinkHistory = readonly UplinkHistoryEntry[];

function assertEntry(entry: UplinkHistoryEntry): void {
  assertUint(entry.fCnt, 32, 'ADR history fCnt');
  if (!Number.isFinite(entry.maxSnrDb)) {
    throw new LorawanError(
      'INVALID_FIELD',
      `ADR history maxSnrDb must be a finite number of dB, got ${entry.maxSnrDb}`,
    );
  }
  assertUint(entry.gatewayCount, 16, 'ADR history gatewayCount');
  assertUint(entry.dr, 4, 'ADR history dr');
  assertUint(entry.txPowerIndex, 4, 'ADR history txPowerIndex');
}

/**
 * The history with one more uplink: a new array, the input is not changed. Ignores an uplink
 * whose counter is already in the history; restarts the history on a counter below the last one
 * (a new session). Keeps the newest `maxLength` entries. INVALID_FIELD for an entry whose fields
 * are out of range (a programming error of the caller).
 */
export function appendUplink(
  history: UplinkHistory,
  entry: UplinkHistoryEntry,
  maxLength: number = ADR_HISTORY_LENGTH,
): UplinkHistoryEntry[] {
  assertEntry(entry);
  if (!Number.isInteger(maxLength) || maxLength < 1) {
    throw new LorawanError(
      'INVALID_FIELD',
      `ADR history length must be a positive integer, got ${maxLength}`,
    );
  }
  const copy: UplinkHistoryEntry = {
    fCnt: entry.fCnt,
    maxSnrDb: entry.maxSnrDb,
    gatewayCount: entry.gatewayCount,
    dr: entry.dr,
    txPowerIndex: entry.txPowerIndex,
  };
  const last = history[history.length - 1];
  if (last === undefined) return [copy];
  if (history.some((known) => known.fCnt === entry.fCnt)) return [...history];
  if (entry.fCnt < last.fCnt) return [copy];
  const next = [...history, copy];
  return next.length > maxLength ? next.slice(next.length - maxLength) : next;
}

/**
 * `appendUplink` for a history the caller owns: the same rules, but the array is changed in
 * place (the uplink path keeps one per ADR device and must not allocate a new one per frame).
 * Returns the array.
 */
export function appendUplinkInPlace(
  history: UplinkHistoryEntry[],
  entry: UplinkHistoryEntry,
  maxLength: number = ADR_HISTORY_LENGTH,
): UplinkHistoryEntry[] {
  const last = history[history.length - 1];
  if (last !== undefined && entry.fCnt <= last.fCnt) {
    if (history.some((known) => known.fCnt === entry.fCnt)) return history;
    history.length = 0;
  }
  assertEntry(entry);
  history.push({
    fCnt: entry.fCnt,
    maxSnrDb: entry.maxSnrDb,
    gatewayCount: entry.gatewayCount,
    dr: entry.dr,
    txPowerIndex: entry.txPowerIndex,
  });
  if (history.length > maxLength) history.splice(0, history.length - maxLength);
  return history;
}

/**
 * The fraction of frames lost between the oldest and the newest uplink of the history, 0 to 1:
 * the frames the counters say were sent (newest − oldest + 1) minus those received, over those
 * sent. Frames before the oldest entry are not counted. 0 with fewer than two entries.
 */
export function packetLossRate(history: UplinkHistory): number {
  const first = history[0];
  const last = history[history.length - 1];
  if (first === undefined || last === undefined || history.length < 2) return 0;
  const sent = last.fCnt - first.fCnt + 1;
  if (sent <= history.length) return 0;
  return (sent - history.length) / sent;
}

/**
 * A history read back from storage. Anything that is not a valid history (an older format,
 * a hand-edited row) gives an empty history: ADR then collects uplinks again, which is safe.
 */
export function uplinkHistoryFromJson(value: unknown): UplinkHistoryEntry[] {
  if (!Array.isArray(value)) return [];
  let history: UplinkHistoryEntry[] = [];
  for (const item of value) {
    if (typeof item !== 'object' || item === null) return [];
    const { fCnt, maxSnrDb, gatewayCount, dr, txPowerIndex } = item as Record<string, unknown>;
    if (
      typeof fCnt !== 'number' ||
      typeof maxSnrDb !== 'number' ||
      typeof gatewayCount !== 'number' ||
      typeof dr !== 'number' ||
      typeof txPowerIndex !== 'number'
    ) {
      return [];
    }
    const previous = history[history.length - 1];
    if (previous !== undefined && fCnt <= previous.fCnt) return [];
    try {
      history = appendUplink(history, { fCnt, maxSnrDb, gatewayCount, dr, txPowerIndex });
    } catch {
      return [];
    }
  }
  return history;
}
