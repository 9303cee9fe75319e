import { assertUint } from './bytes.js';
import { LorawanError } from './errors.js';

/**
 * Frame counters. The wire carries the low 16 bits of a 32-bit counter (LoRaWAN 1.0.4 §4.3.1.5,
 * 1.1 §4.3.1.5); the receiver keeps the high bits and reconstructs the full value.
 *
 * End of the counter space: LoRaWAN 1.0.4 and 1.1 forbid a counter to wrap from 2^32 − 1 back
 * to 0 within a session; the device must rejoin (or, for ABP, be re-personalised) first. So no
 * function here ever wraps: a value that would need to be 2^32 or more is reported as the end of
 * the session (`undefined` / `sessionExhausted`).
 */

/**
 * MAX_FCNT_GAP of LoRaWAN 1.0 to 1.0.3 (16384). LoRaWAN 1.0.4 and 1.1 dropped it; a caller
 * that follows them passes `maxGap: Infinity` to `checkFCnt`, and the 16-bit wire field then
 * is the only limit (a gap of at most 65535).
 */
export const DEFAULT_MAX_FCNT_GAP = 16_384;

const UINT32_MAX = 0xffff_ffff;

/**
 * The full 32-bit counter for a 16-bit wire value: the smallest value ≥ `lastFCnt32` (the last
 * counter accepted in this session) whose low 16 bits equal `wire16`.
 *
 * - Gaps of 0 to 65535 past `lastFCnt32` are recovered exactly, across 16-bit roll-overs.
 * - A wire value equal to the low bits of `lastFCnt32` yields `lastFCnt32` itself, so the caller
 *   can recognise a retransmission; anything greater is a new frame.
 * - `lastFCnt32` undefined means a fresh session (nothing received yet): the result is `wire16`.
 * - `undefined` when the result would be 2^32 or more: the counter space is used up and the
 *   session is over.
 */
export function reconstructFCnt(
  wire16: number,
  lastFCnt32: number | undefined,
): number | undefined {
  assertUint(wire16, 16, 'FCnt (16-bit wire value)');
  if (lastFCnt32 === undefined) return wire16;
  assertUint(lastFCnt32, 32, 'last FCnt');
  // Arithmetic rather than bitwise operators: JavaScript bit operations are signed 32-bit.
  let full = lastFCnt32 - (lastFCnt32 % 0x1_0000) + wire16;
  if (full < lastFCnt32) full += 0x1_0000;
  return full > UINT32_MAX ? undefined : full;
}

export interface FCntCheckOptions {
  /**
   * Largest accepted difference between the new counter and the last accepted one (for a fresh
   * session: the new counter itself, since counters start at 0). Default DEFAULT_MAX_FCNT_GAP;
   * `Infinity` disables the check (LoRaWAN 1.0.4 / 1.1).
   */
  readonly maxGap?: number;
}

export type FCntCheck =
  /** A new frame. `lost` frames were skipped since the last accepted one (0 = in sequence). */
  | { readonly status: 'new'; readonly fCnt: number; readonly lost: number }
  /** The counter of the last accepted frame again: a retransmission, or a replay. */
  | { readonly status: 'retransmission'; readonly fCnt: number }
  /** Ahead by more than `maxGap`: dropped (LoRaWAN 1.0 MAX_FCNT_GAP). */
  | {
      readonly status: 'gapTooLarge';
      readonly fCnt: number;
      readonly gap: number;
      readonly maxGap: number;
    }
  /** The counter would pass 2^32 − 1: the session is over, the device must rejoin. */
  | { readonly status: 'sessionExhausted' };

/**
 * Classifies a received 16-bit counter against the last accepted 32-bit one. The network server
 * accepts 'new' (and updates the stored counter with a compare-and-set), decides on
 * 'retransmission' by its own rules (LoRaWAN 1.0: a confirmed uplink may be repeated with the
 * same counter; 1.1: only with the same payload), and drops the rest.
 */
export function checkFCnt(
  wire16: number,
  lastFCnt32: number | undefined,
  options: FCntCheckOptions = {},
): FCntCheck {
  const maxGap = options.maxGap ?? DEFAULT_MAX_FCNT_GAP;
  if (!(maxGap === Number.POSITIVE_INFINITY || (Number.isInteger(maxGap) && maxGap >= 1))) {
    throw new LorawanError(
      'INVALID_FIELD',
      `maxGap must be a positive integer or Infinity, got ${maxGap}`,
    );
  }
  const fCnt = reconstructFCnt(wire16, lastFCnt32);
  if (fCnt === undefined) return { status: 'sessionExhausted' };
  if (lastFCnt32 === undefined) {
    if (fCnt > maxGap) return { status: 'gapTooLarge', fCnt, gap: fCnt, maxGap };
    return { status: 'new', fCnt, lost: fCnt };
  }
  if (fCnt === lastFCnt32) return { status: 'retransmission', fCnt };
  const gap = fCnt - lastFCnt32;
  if (gap > maxGap) return { status: 'gapTooLarge', fCnt, gap, maxGap };
  return { status: 'new', fCnt, lost: gap - 1 };
}

/** True when `checkFCnt` says 'new': the frame advances the counter within `maxGap`. */
export function isFCntAcceptable(
  wire16: number,
  lastFCnt32: number | undefined,
  options: FCntCheckOptions = {},
): boolean {
  return checkFCnt(wire16, lastFCnt32, options).status === 'new';
}
