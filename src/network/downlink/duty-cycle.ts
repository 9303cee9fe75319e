import type { Region, SubBand } from '../../lorawan/regions/index.js';

/**
 * Transmit duty-cycle accounting per gateway and regulatory sub-band (ETSI EN 300 220-2 for
 * EU868: 0.1 %, 1 % or 10 % of the time on air, judged over an observation period of one hour).
 *
 * Pure: the clock is the caller's (`startMs`, `nowMs`, one time base for one instance, e.g. ms
 * since the Unix epoch); nothing here reads the time, sets a timer or does I/O.
 *
 * The rule applied is a sliding window: in every window of `windowMs` the airtime of a gateway
 * in one sub-band stays within `dutyCycle × windowMs`. A transmission [start, start + airtime)
 * is checked against the window that ends when it ends: the airtime already recorded after that
 * window's start, plus its own, must fit the budget. Transmissions recorded for later times
 * (scheduled ahead) count in full, so a window that ends after them is covered too.
 *
 * `record` (and `release`, which takes a recorded transmission back) are the only methods that
 * change anything: `check` and `usage` only read, so a scheduler may probe other times freely. Entries are pruned when a transmission is recorded,
 * keeping two windows behind the end of the latest one: a check for a transmission that ends up
 * to one window before the latest recorded end (scheduled out of order) still sees everything
 * its window overlaps. Older ones may have been dropped.
 *
 * Each recorded transmission counts exactly (clipped at the window's edges). Only entries merged
 * to bound memory (see `SubBandLedger`) rely on a gateway transmitting one frame at a time.
 */

const HOUR_MS = 3_600_000;
/** Entries kept behind the latest recorded end, in windows (one for the window, one for lookback). */
const HISTORY_WINDOWS = 2;
/** Slack for floating-point sums of fractional airtimes: 1 ns, far below any regulatory matter. */
const EPSILON_MS = 1e-6;
const DEFAULT_MAX_TRACKED_GATEWAYS = 10_000;
/**
 * Enough for a gateway that keeps a 10 % sub-band busy with 41 ms frames (SF7, 13 bytes) over
 * two hours (17 560 frames); beyond it entries are merged (see `SubBandLedger`).
 */
const DEFAULT_MAX_ENTRIES_PER_SUB_BAND = 32_768;

export interface GatewayDutyCycleOptions {
  readonly region: Region;
  /** The observation window, ms. Default one hour. */
  readonly windowMs?: number;
  /**
   * Gateways whose transmissions are kept; the one used least recently is forgotten beyond it
   * (its next transmissions start from an empty window). Default 10 000.
   */
  readonly maxTrackedGateways?: number;
  /**
   * Entries kept per gateway and sub-band; beyond it neighbouring entries are merged, which
   * can only over-count at the window's edge. Default 32 768.
   */
  readonly maxEntriesPerSubBand?: number;
}

export type DutyCycleCheck =
  | {
      readonly ok: true;
      /** Absent for a region without duty-cycle sub-bands. */
      readonly subBand?: SubBand;
      /**
       * Airtime recorded in the window that ends with the transmission, or scheduled after it,
       * ms (without its own).
       */
      readonly usedMs: number;
      /** `dutyCycle × windowMs`; Infinity for a region without sub-bands. */
      readonly budgetMs: number;
    }
  | DutyCycleRefusal;

export type DutyCycleRefusal =
  | {
      readonly ok: false;
      readonly code: 'OUTSIDE_SUB_BANDS';
      readonly reason: string;
    }
  | {
      readonly ok: false;
      readonly code: 'DUTY_CYCLE';
      readonly reason: string;
      readonly subBand: SubBand;
      readonly usedMs: number;
      readonly budgetMs: number;
      /**
       * Earliest start (whole ms, on the caller's clock) at which the same transmission fits,
       * counting what is recorded now; absent when it is longer than the whole budget.
       */
      readonly retryAtMs?: number;
    };

export interface SubBandUsage {
  readonly subBand: SubBand;
  /** Airtime on air within (nowMs − windowMs, nowMs], ms. */
  readonly usedMs: number;
  readonly budgetMs: number;
}

/** One transmission, or after merging several neighbouring ones (then airtime < span). */
interface Entry {
  startMs: number;
  endMs: number;
  airtimeMs: number;
  /** Airtime of this entry and every earlier one of the ledger, since `baseMs` was zero. */
  cumulativeMs: number;
}

/**
 * The transmissions of one gateway in one sub-band, ordered by end time, with prefix sums of
 * airtime so that the airtime after a point is one binary search and a subtraction, plus a
 * correction for the few entries that straddle the point. Entries are pruned lazily from the
 * front; transmissions recorded a little out of order are inserted from the back (usually a
 * plain append).
 *
 * Memory: when there are more than `maxEntries` entries, neighbouring pairs are merged into one
 * entry (first start, last end, summed airtime), which halves the count; amortised O(1). A merged
 * entry that straddles a window's start counts min(airtime, part of its span inside), an upper
 * bound for transmissions that do not overlap: merging can refuse a little early, never allow
 * too much.
 */
class SubBandLedger {
  #entries: Entry[] = [];
  /** Index of the first live entry; entries before it are pruned but not yet spliced out. */
  #head = 0;
  /** `cumulativeMs` of the last pruned entry (0 when none). */
  #baseMs = 0;
  /** Largest span (end − start, at least the airtime) among live entries: bounds the straddlers. */
  #maxSpanMs = 0;
  readonly #maxEntries: number;

  constructor(maxEntries: number) {
    this.#maxEntries = maxEntries;
  }

  get size(): number {
    return this.#entries.length - this.#head;
  }

  /** Drops the entries that ended at or before `horizonMs`. */
  prune(horizonMs: number): void {
    const entries = this.#entries;
    while (this.#head < entries.length && entries[this.#head]!.endMs <= horizonMs) {
      this.#baseMs = entries[this.#head]!.cumulativeMs;
      this.#head += 1;
    }
    if (this.#head === entries.length) {
      this.#entries = [];
      this.#head = 0;
      this.#baseMs = 0;
      this.#maxSpanMs = 0;
    } else if (this.#head >= 64 && this.#head * 2 >= entries.length) {
      this.#rebuild(entries.slice(this.#head));
    }
  }

  add(startMs: number, airtimeMs: number): void {
    const endMs = startMs + airtimeMs;
    const entries = this.#entries;
    let index = entries.length;
    while (index > this.#head && entries[index - 1]!.endMs > endMs) index -= 1;
    const before = index > this.#head ? entries[index - 1]!.cumulativeMs : this.#baseMs;
    entries.splice(index, 0, { startMs, endMs, airtimeMs, cumulativeMs: before + airtimeMs });
    for (let i = index + 1; i < entries.length; i += 1) entries[i]!.cumulativeMs += airtimeMs;
    this.#maxSpanMs = Math.max(this.#maxSpanMs, airtimeMs);
    if (this.size > this.#maxEntries) this.#mergePairs();
  }

  /**
   * Takes out the entry `add(startMs, airtimeMs)` made. False when it is no longer there as such:
   * pruned, or merged with a neighbour (which then keeps counting: too much, never too little).
   */
  remove(startMs: number, airtimeMs: number): boolean {
    const endMs = startMs + airtimeMs;
    const entries = this.#entries;
    for (let index = entries.length - 1; index >= this.#head; index -= 1) {
      const entry = entries[index]!;
      if (entry.endMs < endMs) break;
      if (entry.endMs !== endMs || entry.startMs !== startMs || entry.airtimeMs !== airtimeMs) {
        continue;
      }
      entries.splice(index, 1);
      for (let i = index; i < entries.length; i += 1) entries[i]!.cumulativeMs -= airtimeMs;
      if (this.#head === entries.length) this.prune(Number.POSITIVE_INFINITY);
      return true;
    }
    return false;
  }

  /** Airtime after `fromMs`, including entries that end later than any window (scheduled ones). */
  airtimeAfter(fromMs: number): number {
    const first = this.#firstEndingAfter(fromMs);
    const entries = this.#entries;
    if (first === entries.length) return 0;
    let total = entries[entries.length - 1]!.cumulativeMs - this.#cumulativeBefore(first);
    // Only an entry that ends within its span of `fromMs` can have started before it.
    for (
      let i = first;
      i < entries.length && entries[i]!.endMs < fromMs + this.#maxSpanMs;
      i += 1
    ) {
      const entry = entries[i]!;
      total -= entry.airtimeMs - airtimeWithin(entry, fromMs, Number.POSITIVE_INFINITY);
    }
    return Math.max(0, total);
  }

  /** Airtime within (fromMs, toMs]. */
  airtimeBetween(fromMs: number, toMs: number): number {
    if (toMs <= fromMs) return 0;
    const entries = this.#entries;
    const first = this.#firstEndingAfter(fromMs);
    const afterTo = this.#firstEndingAfter(toMs);
    let total = 0;
    if (afterTo > first) {
      total = entries[afterTo - 1]!.cumulativeMs - this.#cumulativeBefore(first);
      for (let i = first; i < afterTo && entries[i]!.endMs < fromMs + this.#maxSpanMs; i += 1) {
        const entry = entries[i]!;
        total -= entry.airtimeMs - airtimeWithin(entry, fromMs, toMs);
      }
    }
    // Entries still on air at `toMs` (they end later but may have started before it).
    for (
      let i = afterTo;
      i < entries.length && entries[i]!.endMs < toMs + this.#maxSpanMs;
      i += 1
    ) {
      total += airtimeWithin(entries[i]!, fromMs, toMs);
    }
    return Math.max(0, total);
  }

  /**
   * The smallest window start, at or after `fromMs`, after which at most `allowanceMs` of
   * airtime remains. The airtime after a point t falls piecewise linearly as t grows: an entry
   * counts in full until t reaches end − airtime, then shrinks to nothing at its end. A sweep
   * over those points finds where the sum meets the allowance.
   */
  earliestFit(fromMs: number, allowanceMs: number): number {
    const entries = this.#entries;
    const events: { atMs: number; slope: number }[] = [];
    let remaining = 0;
    let slope = 0;
    for (let i = this.#firstEndingAfter(fromMs); i < entries.length; i += 1) {
      const { endMs, airtimeMs } = entries[i]!;
      const shrinkFromMs = endMs - airtimeMs;
      remaining += Math.min(airtimeMs, endMs - fromMs);
      if (shrinkFromMs > fromMs) events.push({ atMs: shrinkFromMs, slope: -1 });
      else slope -= 1;
      events.push({ atMs: endMs, slope: 1 });
    }
    events.sort((a, b) => a.atMs - b.atMs);
    let atMs = fromMs;
    for (const event of events) {
      if (remaining <= allowanceMs) return atMs;
      if (slope < 0) {
        const reachedAtMs = atMs + (remaining - allowanceMs) / -slope;
        if (reachedAtMs <= event.atMs) return reachedAtMs;
      }
      remaining += slope * (event.atMs - atMs);
      atMs = event.atMs;
      slope += event.slope;
    }
    return atMs;
  }

  #firstEndingAfter(timeMs: number): number {
    const entries = this.#entries;
    let low = this.#head;
    let high = entries.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (entries[middle]!.endMs > timeMs) high = middle;
      else low = middle + 1;
    }
    return low;
  }

  #cumulativeBefore(index: number): number {
    return index > this.#head ? this.#entries[index - 1]!.cumulativeMs : this.#baseMs;
  }

  #mergePairs(): void {
    const live = this.#entries.slice(this.#head);
    const merged: Entry[] = [];
    for (let i = 0; i < live.length; i += 2) {
      const first = live[i]!;
      const second = live[i + 1];
      if (second === undefined) {
        merged.push(first);
        continue;
      }
      merged.push({
        startMs: Math.min(first.startMs, second.startMs),
        endMs: second.endMs,
        airtimeMs: first.airtimeMs + second.airtimeMs,
        cumulativeMs: second.cumulativeMs,
      });
    }
    this.#rebuild(merged);
  }

  /** Replaces the live entries, restarting the prefix sums from zero so they stay small. */
  #rebuild(live: Entry[]): void {
    let cumulativeMs = 0;
    let maxSpanMs = 0;
    for (const entry of live) {
      cumulativeMs += entry.airtimeMs;
      entry.cumulativeMs = cumulativeMs;
      maxSpanMs = Math.max(maxSpanMs, entry.endMs - entry.startMs, entry.airtimeMs);
    }
    this.#entries = live;
    this.#head = 0;
    this.#baseMs = 0;
    this.#maxSpanMs = maxSpanMs;
  }
}

/**
 * An entry's airtime inside (fromMs, toMs]: exact for one transmission, an upper bound for
 * merged ones that do not overlap.
 */
function airtimeWithin(entry: Entry, fromMs: number, toMs: number): number {
  const inside = Math.min(entry.endMs, toMs) - Math.max(entry.startMs, fromMs);
  return Math.max(0, Math.min(entry.airtimeMs, inside));
}

/** Per-gateway, per-sub-band transmit duty-cycle accounting over a sliding window. */
export class GatewayDutyCycle {
  readonly #region: Region;
  readonly #windowMs: number;
  readonly #maxTrackedGateways: number;
  readonly #maxEntriesPerSubBand: number;
  readonly #subBandIndex: ReadonlyMap<SubBand, number>;
  /** Gateway → one ledger per sub-band (by index). Map order is least recently used first. */
  readonly #gateways = new Map<string, (SubBandLedger | undefined)[]>();

  constructor(options: GatewayDutyCycleOptions) {
    const windowMs = options.windowMs ?? HOUR_MS;
    if (!(Number.isFinite(windowMs) && windowMs > 0)) {
      throw new RangeError(`duty-cycle windowMs must be a positive number of ms, got ${windowMs}`);
    }
    const maxTrackedGateways = options.maxTrackedGateways ?? DEFAULT_MAX_TRACKED_GATEWAYS;
    if (!(Number.isInteger(maxTrackedGateways) && maxTrackedGateways >= 1)) {
      throw new RangeError(
        `duty-cycle maxTrackedGateways must be a positive integer, got ${maxTrackedGateways}`,
      );
    }
    const maxEntries = options.maxEntriesPerSubBand ?? DEFAULT_MAX_ENTRIES_PER_SUB_BAND;
    if (!(Number.isInteger(maxEntries) && maxEntries >= 2)) {
      throw new RangeError(
        `duty-cycle maxEntriesPerSubBand must be an integer of at least 2, got ${maxEntries}`,
      );
    }
    this.#region = options.region;
    this.#windowMs = windowMs;
    this.#maxTrackedGateways = maxTrackedGateways;
    this.#maxEntriesPerSubBand = maxEntries;
    this.#subBandIndex = new Map(options.region.subBands.map((subBand, i) => [subBand, i]));
  }

  get windowMs(): number {
    return this.#windowMs;
  }

  /** How many gateways have transmissions recorded. */
  get trackedGateways(): number {
    return this.#gateways.size;
  }

  /**
   * Whether `gatewayId` may transmit `airtimeMs` on `frequencyHz` from `startMs`, given what is
   * recorded. Records nothing: call `record` once the gateway has accepted the transmission.
   */
  check(
    gatewayId: string,
    frequencyHz: number,
    startMs: number,
    airtimeMs: number,
  ): DutyCycleCheck {
    assertTransmission(startMs, airtimeMs);
    if (this.#region.subBands.length === 0) {
      return { ok: true, usedMs: 0, budgetMs: Number.POSITIVE_INFINITY };
    }
    const index = this.#subBandIndexFor(frequencyHz);
    if (index === undefined) {
      return {
        ok: false,
        code: 'OUTSIDE_SUB_BANDS',
        reason:
          `gateway ${gatewayId} cannot transmit on ${formatFrequency(frequencyHz)}: ` +
          `the frequency is in no ${this.#region.name} duty-cycle sub-band`,
      };
    }
    const subBand = this.#region.subBands[index]!;
    const budgetMs = subBand.dutyCycle * this.#windowMs;
    const windowStartMs = startMs + airtimeMs - this.#windowMs;
    const ledger = this.#gateways.get(gatewayId)?.[index];
    const usedMs = ledger?.airtimeAfter(windowStartMs) ?? 0;
    if (usedMs + airtimeMs <= budgetMs + EPSILON_MS) {
      return { ok: true, subBand, usedMs, budgetMs };
    }
    let retryAtMs: number | undefined;
    if (airtimeMs <= budgetMs + EPSILON_MS && ledger !== undefined) {
      const fitsFromMs = ledger.earliestFit(windowStartMs, budgetMs - airtimeMs);
      retryAtMs = Math.max(Math.ceil(startMs), Math.ceil(fitsFromMs + this.#windowMs - airtimeMs));
    }
    const when =
      retryAtMs === undefined
        ? `it is longer than the whole budget`
        : `it fits ${formatDuration(retryAtMs - startMs)} later`;
    return {
      ok: false,
      code: 'DUTY_CYCLE',
      reason:
        `gateway ${gatewayId} cannot transmit ${formatDuration(airtimeMs)} on ` +
        `${formatFrequency(frequencyHz)}: sub-band ${subBand.name} ` +
        `(${formatPercent(subBand.dutyCycle)} duty cycle) already has ${formatDuration(usedMs)} ` +
        `of its ${formatDuration(budgetMs)} per ${this.#windowName()} on air; ${when}`,
      subBand,
      usedMs,
      budgetMs,
      ...(retryAtMs === undefined ? {} : { retryAtMs }),
    };
  }

  /**
   * Counts a transmission (one the gateway accepted, or even one `check` refused: it was on air
   * all the same). Returns the sub-band it counts against, undefined when it is in none.
   */
  record(
    gatewayId: string,
    frequencyHz: number,
    startMs: number,
    airtimeMs: number,
  ): SubBand | undefined {
    assertTransmission(startMs, airtimeMs);
    const index = this.#subBandIndexFor(frequencyHz);
    if (index === undefined) return undefined;
    const subBand = this.#region.subBands[index]!;
    if (airtimeMs === 0) return subBand;
    let ledgers = this.#gateways.get(gatewayId);
    if (ledgers === undefined) {
      ledgers = [];
      if (this.#gateways.size >= this.#maxTrackedGateways) {
        const leastRecent = this.#gateways.keys().next().value;
        if (leastRecent !== undefined) this.#gateways.delete(leastRecent);
      }
    } else {
      this.#gateways.delete(gatewayId);
    }
    this.#gateways.set(gatewayId, ledgers);
    let ledger = ledgers[index];
    if (ledger === undefined) {
      ledger = new SubBandLedger(this.#maxEntriesPerSubBand);
      ledgers[index] = ledger;
    }
    ledger.prune(startMs + airtimeMs - this.#windowMs * HISTORY_WINDOWS);
    ledger.add(startMs, airtimeMs);
    return subBand;
  }

  /**
   * Takes back a transmission `record` counted that the gateway did not make (its TX_ACK
   * reported an error), with the same arguments. Returns whether it was found; one merged with
   * its neighbours to bound memory (see `SubBandLedger`) stays counted.
   */
  release(gatewayId: string, frequencyHz: number, startMs: number, airtimeMs: number): boolean {
    assertTransmission(startMs, airtimeMs);
    const index = this.#subBandIndexFor(frequencyHz);
    if (index === undefined || airtimeMs === 0) return false;
    return this.#gateways.get(gatewayId)?.[index]?.remove(startMs, airtimeMs) ?? false;
  }

  /** Airtime per sub-band of the region in (nowMs − windowMs, nowMs]; zeros for an unknown gateway. */
  usage(gatewayId: string, nowMs: number): SubBandUsage[] {
    if (!Number.isFinite(nowMs)) throw new RangeError(`nowMs must be finite, got ${nowMs}`);
    const ledgers = this.#gateways.get(gatewayId);
    const fromMs = nowMs - this.#windowMs;
    return this.#region.subBands.map((subBand, index) => {
      const ledger = ledgers?.[index];
      return {
        subBand,
        usedMs: ledger?.airtimeBetween(fromMs, nowMs) ?? 0,
        budgetMs: subBand.dutyCycle * this.#windowMs,
      };
    });
  }

  forget(gatewayId: string): void {
    this.#gateways.delete(gatewayId);
  }

  #subBandIndexFor(frequencyHz: number): number | undefined {
    const subBand = this.#region.subBandFor(frequencyHz);
    return subBand === undefined ? undefined : this.#subBandIndex.get(subBand);
  }

  #windowName(): string {
    return this.#windowMs === HOUR_MS ? 'hour' : formatDuration(this.#windowMs);
  }
}

function assertTransmission(startMs: number, airtimeMs: number): void {
  if (!Number.isFinite(startMs)) throw new RangeError(`startMs must be finite, got ${startMs}`);
  if (!(Number.isFinite(airtimeMs) && airtimeMs >= 0)) {
    throw new RangeError(`airtimeMs must be a finite number of ms, at least 0, got ${airtimeMs}`);
  }
}

/** '868.1 MHz', '869.525 MHz'. */
function formatFrequency(frequencyHz: number): string {
  return `${Number((frequencyHz / 1e6).toFixed(6))} MHz`;
}

/** '0.1 %', '1 %', '10 %'. */
function formatPercent(fraction: number): string {
  return `${Number((fraction * 100).toPrecision(3))} %`;
}

/** '41 ms', '2.794 s', '36 s', '6 min', '14 min 3 s'. */
function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 120_000) return `${Number((ms / 1000).toFixed(3))} s`;
  const totalSeconds = Math.round(ms / 1000);
  const minutes = Math.floor(totalSeconds / 60);
  const seconds = totalSeconds % 60;
  return seconds === 0 ? `${minutes} min` : `${minutes} min ${seconds} s`;
}
