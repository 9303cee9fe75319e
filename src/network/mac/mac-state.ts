/**
 * What the network server believes one device's MAC layer is set to, and the requests it is
 * waiting on. Plain JSON data: the server stores it with the device session and hands it to the
 * pure functions of `requests.ts` on each uplink and downlink; `JSON.parse(JSON.stringify(s))`
 * gives back an equal state (no `undefined`, no class instances, times as ISO strings).
 *
 * LinkADRReq (data rate, TX power, NbTrans, channel mask) is the ADR module's: this state only
 * carries the channel list and each channel's `enabled` flag, which that module reads and updates.
 */
import { LorawanError } from '../../lorawan/errors.js';
import type { MacCommandOf } from '../../lorawan/mac-commands.js';
import type { Channel, ChannelPlan, Region } from '../../lorawan/regions/index.js';
import type { MacVersion } from '../session.js';

export type DeviceClass = 'A' | 'C';

/** The network-initiated requests this module plans and waits answers for. */
export type MacRequest =
  | MacCommandOf<'RXParamSetupReq'>
  | MacCommandOf<'RXTimingSetupReq'>
  | MacCommandOf<'NewChannelReq'>
  | MacCommandOf<'DlChannelReq'>
  | MacCommandOf<'DutyCycleReq'>
  | MacCommandOf<'TxParamSetupReq'>
  | MacCommandOf<'ADRParamSetupReq'>
  | MacCommandOf<'RejoinParamSetupReq'>
  | MacCommandOf<'DevStatusReq'>;
export type MacRequestName = MacRequest['cid'];

/** How a device's answer to a request was taken. */
export type MacAnswerStatus = 'applied' | 'rejected' | 'unexpected';

/** TxParamSetupReq settings (regions with dwell-time rules, such as AS923). */
export interface TxParams {
  /** True: 400 ms uplink dwell time limit. */
  uplinkDwellTime: boolean;
  downlinkDwellTime: boolean;
  /** Index into the regional MaxEIRP table. */
  maxEirpIndex: number;
}

/** LoRaWAN 1.1 RejoinParamSetupReq settings the device accepted. */
export interface RejoinParams {
  /** Rejoin at least every 2^(maxTimeN + 10) s. */
  maxTimeN: number;
  /** Rejoin at least every 2^(maxCountN + 4) uplinks. */
  maxCountN: number;
  /** False when the device said it cannot keep time: it then uses the count limit only. */
  timeOk: boolean;
}

/** The last DevStatusAns. */
export interface DevStatus {
  /** 0 external power, 1-254 battery level (1 empty, 254 full), 255 unable to measure. */
  battery: number;
  /** SNR in dB of the DevStatusReq as the device received it, -32..31. */
  margin: number;
  /** ISO time of the uplink that carried it. */
  at: string;
}

/** A request sent and not answered yet. */
export interface PendingMacRequest {
  command: MacRequest;
  /** ISO time of the latest downlink that carried it. */
  sentAt: string;
  /** `nFCntDown` of that downlink as `planMacRequests` took it (1.1: NFCntDown + AFCntDown). */
  nFCntDown: number;
  /** Downlinks that have carried this very command. */
  attempts: number;
}

/**
 * A request the device refused (an ACK bit cleared) or never answered. The planner does not send
 * the same command again (an unanswered one only after a while) until the profile asks for
 * something else or a new session starts.
 */
export interface RefusedMacRequest {
  command: MacRequest;
  reason: 'rejected' | 'unanswered';
  detail: string;
  at: string;
}

/** Answers the device repeats in every uplink until it receives a downlink (see requests.ts). */
export type StickyAnswerName = 'RXParamSetupAns' | 'RXTimingSetupAns' | 'DlChannelAns';

/** A sticky answer of the latest uplink, with how it was taken, so its repeats are recognised. */
export interface StickyAnswer {
  cid: StickyAnswerName;
  status: MacAnswerStatus;
}

/** The last ForceRejoinReq sent (it has no answer: the device sends a RejoinRequest). */
export interface ForceRejoinRecord {
  /** The `id` of the profile's one-off request, so it is sent once. */
  id: string;
  at: string;
  nFCntDown: number;
}

export interface MacState {
  /** RECEIVE_DELAY1 in seconds (1-15); RX2 opens one second later. */
  rx1DelaySeconds: number;
  rx1DrOffset: number;
  rx2Dr: number;
  rx2FrequencyHz: number;
  /**
   * The device's channels by index: the region's defaults, the CFList's, then those
   * NewChannelReq defined; null where no channel is defined. Trailing nulls are trimmed.
   */
  channels: (Channel | null)[];
  /** DlChannelReq: RX1 downlink frequency per channel index; null = the uplink frequency. */
  dlChannelFrequencies: (number | null)[];
  /** DutyCycleReq: aggregated duty cycle limit 1/2^maxDutyCycle; 0 = only the regulatory one. */
  maxDutyCycle: number;
  /** TxParamSetupReq settings; null = the region's defaults (never set). */
  txParams: TxParams | null;
  /** ADR_ACK_LIMIT = 2^adrAckLimitExp (settable with ADRParamSetupReq in 1.1). */
  adrAckLimitExp: number;
  /** ADR_ACK_DELAY = 2^adrAckDelayExp. */
  adrAckDelayExp: number;
  /** RejoinParamSetupReq settings; null = never set (the device's own default). */
  rejoin: RejoinParams | null;
  deviceClass: DeviceClass;
  lastDevStatus: DevStatus | null;
  /** ISO time the latest periodic DevStatusReq was first sent. */
  lastDevStatusRequestAt: string | null;
  lastForceRejoin: ForceRejoinRecord | null;
  /** Requests waiting for their answer, in the order they were sent. */
  pending: PendingMacRequest[];
  /** At most one per request key (RXParamSetupReq, NewChannelReq for index 8, ...). */
  refused: RefusedMacRequest[];
  /** Sticky answers the latest uplink carried, in order. */
  stickyAnswers: StickyAnswer[];
}

export interface InitialMacStateOptions {
  /** Checked; the initial state is the same for every version Galet serves. */
  macVersion: MacVersion;
  /** The class the device profile says; a 1.1 device may switch with DeviceModeInd. */
  deviceClass: DeviceClass;
  /**
   * The channel plan the JoinAccept announced: the region's defaults followed by the CFList's
   * channels, as `region.decodeCfList` returns it. Absent: the defaults only (no CFList; ABP).
   */
  cfListChannels?: ChannelPlan;
  /** Default RECEIVE_DELAY1 of the region (1 s in EU868); 0 means 1, as in a JoinAccept. */
  rx1DelaySeconds?: number;
  /** Default 0. */
  rx1DrOffset?: number;
  /** Default: the region's RX2 data rate. */
  rx2Dr?: number;
  /** Default: the region's RX2 frequency. */
  rx2FrequencyHz?: number;
}

const MAC_VERSIONS: readonly MacVersion[] = ['1.0.2', '1.0.3', '1.0.4', '1.1.0'];
const MAX_RX1_DELAY_SECONDS = 15;

/**
 * The MAC state after an OTAA join (with the JoinAccept's DLSettings, RxDelay and CFList) or an
 * ABP activation (with the settings the device was configured with). INVALID_FIELD when a
 * setting is not valid in the region.
 */
export function initialMacState(region: Region, options: InitialMacStateOptions): MacState {
  if (!MAC_VERSIONS.includes(options.macVersion)) {
    throw new LorawanError(
      'INVALID_FIELD',
      `MAC version ${JSON.stringify(options.macVersion)} is not one of ${MAC_VERSIONS.join(', ')}`,
    );
  }
  const state: MacState = {
    rx1DelaySeconds: options.rx1DelaySeconds ?? region.receiveDelay1Ms / 1000,
    rx1DrOffset: options.rx1DrOffset ?? 0,
    rx2Dr: options.rx2Dr ?? region.rx2Default.dataRate,
    rx2FrequencyHz: options.rx2FrequencyHz ?? region.rx2Default.frequencyHz,
    channels: initialChannels(region, options.cfListChannels),
    dlChannelFrequencies: [],
    maxDutyCycle: 0,
    txParams: null,
    adrAckLimitExp: Math.round(Math.log2(region.adrAckLimit)),
    adrAckDelayExp: Math.round(Math.log2(region.adrAckDelay)),
    rejoin: null,
    deviceClass: options.deviceClass,
    lastDevStatus: null,
    lastDevStatusRequestAt: null,
    lastForceRejoin: null,
    pending: [],
    refused: [],
    stickyAnswers: [],
  };
  // JoinAccept RxDelay and RXTimingSetupReq: a delay of 0 means 1 s, like 1.
  if (state.rx1DelaySeconds === 0) state.rx1DelaySeconds = 1;
  const problems = validateMacState(state, region);
  if (problems.length > 0) {
    throw new LorawanError('INVALID_FIELD', `invalid initial MAC state: ${problems.join('; ')}`);
  }
  return state;
}

function initialChannels(region: Region, plan: ChannelPlan | undefined): (Channel | null)[] {
  const channels: (Channel | null)[] = region.defaultChannels.map((c) => ({ ...c }));
  if (plan === undefined) return channels;
  if (plan.length > region.maxChannels) {
    throw new LorawanError(
      'INVALID_FIELD',
      `${region.name} devices hold at most ${region.maxChannels} channels, the plan has ${plan.length}`,
    );
  }
  region.defaultChannels.forEach((expected, index) => {
    const given = plan[index];
    if (
      !isDefinedChannel(given) ||
      given.frequencyHz !== expected.frequencyHz ||
      given.minDr !== expected.minDr ||
      given.maxDr !== expected.maxDr
    ) {
      throw new LorawanError(
        'INVALID_FIELD',
        `channel ${index} of the plan must be the ${region.name} default channel ` +
          `(${expected.frequencyHz} Hz, DR${expected.minDr}-DR${expected.maxDr}): ` +
          'pass the whole plan, defaults first, as region.decodeCfList returns it',
      );
    }
  });
  for (let index = region.defaultChannels.length; index < plan.length; index++) {
    const channel = plan[index];
    channels[index] = isDefinedChannel(channel)
      ? {
          frequencyHz: channel.frequencyHz,
          minDr: channel.minDr,
          maxDr: channel.maxDr,
          enabled: channel.enabled,
        }
      : null;
  }
  return trimTrailingNulls(channels);
}

/** A channel that exists: not null/undefined, and not the frequency 0 NewChannelReq deletes with. */
export function isDefinedChannel<C extends { frequencyHz: number }>(
  channel: C | null | undefined,
): channel is C {
  return channel !== null && channel !== undefined && channel.frequencyHz !== 0;
}

/** A copy of a per-index list without the nulls at its end (so equal states compare equal). */
export function trimTrailingNulls<T>(list: readonly (T | null)[]): (T | null)[] {
  let end = list.length;
  while (end > 0 && list[end - 1] === null) end--;
  return list.slice(0, end);
}

/**
 * The index of the channel an uplink on this frequency went out on, as the network knows the
 * device's channels; an enabled channel first when two share the frequency. undefined when no
 * channel has it.
 */
export function uplinkChannelIndex(state: MacState, uplinkFrequencyHz: number): number | undefined {
  let disabled: number | undefined;
  for (const [index, channel] of state.channels.entries()) {
    if (!isDefinedChannel(channel) || channel.frequencyHz !== uplinkFrequencyHz) continue;
    if (channel.enabled) return index;
    disabled ??= index;
  }
  return disabled;
}

/**
 * The RX1 frequency of a data downlink answering an uplink on this frequency: the frequency a
 * DlChannelReq the device accepted gave the uplink's channel, else the region's rule (in EU868,
 * the uplink frequency). The region's rule too without a MAC state, or for a frequency that is
 * none of the device's channels.
 */
export function dataRx1FrequencyHz(
  region: Region,
  state: MacState | undefined,
  uplinkFrequencyHz: number,
): number {
  const index = state === undefined ? undefined : uplinkChannelIndex(state, uplinkFrequencyHz);
  const override = index === undefined ? undefined : state?.dlChannelFrequencies[index];
  return override ?? region.rx1FrequencyHz(uplinkFrequencyHz);
}

/** What a DevStatusAns battery byte means. */
export type BatteryLevel =
  | { kind: 'external-power' }
  | { kind: 'unknown' }
  | { kind: 'level'; percent: number };

export function batteryLevel(battery: number): BatteryLevel {
  if (battery === 0) return { kind: 'external-power' };
  if (!Number.isInteger(battery) || battery < 0 || battery >= 255) return { kind: 'unknown' };
  // 1 is the minimum and 254 the maximum level; one decimal is all the byte carries.
  return { kind: 'level', percent: Math.round((battery / 254) * 1000) / 10 };
}

// ---------------------------------------------------------------------------------------------
// Validation: what must hold of a state, whatever path produced it (also a persisted one).

/**
 * Problems with a state for a region, one message each; empty when the state is valid. Written
 * defensively (type checks included) so it can judge a state read back from storage.
 */
export function validateMacState(state: MacState, region: Region): string[] {
  const problems: string[] = [];
  const check = (problem: string | undefined): void => {
    if (problem !== undefined) problems.push(problem);
  };
  if (typeof state !== 'object' || state === null) return ['the MAC state is not an object'];
  check(rx1DelayProblem(state.rx1DelaySeconds, 'rx1DelaySeconds'));
  check(rx1DrOffsetProblem(state.rx1DrOffset, region, 'rx1DrOffset'));
  check(dataRateProblem(state.rx2Dr, region, 'rx2Dr'));
  check(frequencyProblem(state.rx2FrequencyHz, region, 'rx2FrequencyHz'));
  if (!Array.isArray(state.channels)) {
    problems.push('channels is not a list');
  } else {
    if (state.channels.length > region.maxChannels) {
      problems.push(
        `${region.name} devices hold at most ${region.maxChannels} channels, the state has ${state.channels.length}`,
      );
    }
    state.channels.forEach((channel, index) => {
      if (channel === null) return;
      if (typeof channel !== 'object') {
        problems.push(`channel ${index} is neither a channel nor null`);
        return;
      }
      check(channelProblem(channel, region, `channel ${index}`));
      if (typeof channel.enabled !== 'boolean')
        problems.push(`channel ${index} has no enabled flag`);
    });
    region.defaultChannels.forEach((expected, index) => {
      const channel = state.channels[index];
      if (!isDefinedChannel(channel) || channel.frequencyHz !== expected.frequencyHz) {
        problems.push(`channel ${index} must be the ${region.name} default channel`);
      }
    });
  }
  if (!Array.isArray(state.dlChannelFrequencies)) {
    problems.push('dlChannelFrequencies is not a list');
  } else {
    state.dlChannelFrequencies.forEach((frequencyHz, index) => {
      if (frequencyHz === null) return;
      check(frequencyProblem(frequencyHz, region, `downlink frequency of channel ${index}`));
      if (Array.isArray(state.channels) && !isDefinedChannel(state.channels[index])) {
        problems.push(`channel ${index} has a downlink frequency but is not defined`);
      }
    });
  }
  check(uintProblem(state.maxDutyCycle, 15, 'maxDutyCycle'));
  if (state.txParams !== null) check(txParamsProblem(state.txParams, 'txParams'));
  check(uintProblem(state.adrAckLimitExp, 15, 'adrAckLimitExp'));
  check(uintProblem(state.adrAckDelayExp, 15, 'adrAckDelayExp'));
  if (state.rejoin !== null) {
    check(rejoinProblem(state.rejoin, 'rejoin'));
    if (typeof state.rejoin?.timeOk !== 'boolean') problems.push('rejoin.timeOk is not a boolean');
  }
  if (state.deviceClass !== 'A' && state.deviceClass !== 'C') {
    problems.push(`deviceClass must be A or C, got ${JSON.stringify(state.deviceClass)}`);
  }
  if (state.lastDevStatus !== null) {
    const status = state.lastDevStatus;
    check(uintProblem(status?.battery, 255, 'lastDevStatus.battery'));
    check(intProblem(status?.margin, -32, 31, 'lastDevStatus.margin'));
    check(isoTimeProblem(status?.at, 'lastDevStatus.at'));
  }
  if (state.lastDevStatusRequestAt !== null) {
    check(isoTimeProblem(state.lastDevStatusRequestAt, 'lastDevStatusRequestAt'));
  }
  if (state.lastForceRejoin !== null) {
    check(isoTimeProblem(state.lastForceRejoin?.at, 'lastForceRejoin.at'));
  }
  if (!Array.isArray(state.pending)) problems.push('pending is not a list');
  else {
    state.pending.forEach((pending, i) => {
      check(isoTimeProblem(pending?.sentAt, `pending request ${i} sentAt`));
      check(intProblem(pending?.attempts, 1, Number.MAX_SAFE_INTEGER, `pending ${i} attempts`));
    });
  }
  if (!Array.isArray(state.refused)) problems.push('refused is not a list');
  if (!Array.isArray(state.stickyAnswers)) problems.push('stickyAnswers is not a list');
  return problems;
}

// Single-value checks shared with requests.ts. Each returns a message naming the value, or
// undefined when it is fine.

export function uintProblem(value: unknown, max: number, what: string): string | undefined {
  return intProblem(value, 0, max, what);
}

export function intProblem(
  value: unknown,
  min: number,
  max: number,
  what: string,
): string | undefined {
  if (typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max) {
    return undefined;
  }
  return `${what} must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`;
}

export function rx1DelayProblem(value: unknown, what: string): string | undefined {
  return intProblem(value, 1, MAX_RX1_DELAY_SECONDS, what);
}

export function rx1DrOffsetProblem(value: unknown, region: Region, what: string) {
  return intProblem(value, 0, region.maxRx1DrOffset, `${what} (${region.name})`);
}

export function dataRateProblem(value: unknown, region: Region, what: string): string | undefined {
  if (
    typeof value === 'number' &&
    Number.isInteger(value) &&
    Object.hasOwn(region.dataRates, value)
  ) {
    return undefined;
  }
  return `${what} must be a data rate defined in ${region.name}, got ${JSON.stringify(value)}`;
}

export function frequencyProblem(value: unknown, region: Region, what: string): string | undefined {
  const { min, max } = region.frequencyRangeHz;
  if (
    typeof value === 'number' &&
    Number.isInteger(value) &&
    value >= min &&
    value <= max &&
    value % 100 === 0
  ) {
    return undefined;
  }
  return `${what} must be a multiple of 100 Hz from ${min} to ${max} Hz in ${region.name}, got ${JSON.stringify(value)}`;
}

/** A channel's frequency and data rate range (the `enabled` flag is not judged). */
export function channelProblem(
  channel: { frequencyHz: unknown; minDr: unknown; maxDr: unknown },
  region: Region,
  what: string,
): string | undefined {
  return (
    frequencyProblem(channel.frequencyHz, region, `${what} frequency`) ??
    dataRateProblem(channel.minDr, region, `${what} minDr`) ??
    dataRateProblem(channel.maxDr, region, `${what} maxDr`) ??
    ((channel.minDr as number) > (channel.maxDr as number)
      ? `${what} has minDr ${channel.minDr} above maxDr ${channel.maxDr}`
      : undefined)
  );
}

export function txParamsProblem(params: TxParams, what: string): string | undefined {
  if (typeof params !== 'object' || params === null) return `${what} is not an object`;
  if (
    typeof params.uplinkDwellTime !== 'boolean' ||
    typeof params.downlinkDwellTime !== 'boolean'
  ) {
    return `${what} dwell times must be booleans`;
  }
  return uintProblem(params.maxEirpIndex, 15, `${what}.maxEirpIndex`);
}

export function rejoinProblem(
  params: { maxTimeN: number; maxCountN: number },
  what: string,
): string | undefined {
  if (typeof params !== 'object' || params === null) return `${what} is not an object`;
  return (
    uintProblem(params.maxTimeN, 15, `${what}.maxTimeN`) ??
    uintProblem(params.maxCountN, 15, `${what}.maxCountN`)
  );
}

function isoTimeProblem(value: unknown, what: string): string | undefined {
  if (typeof value === 'string' && !Number.isNaN(Date.parse(value))) return undefined;
  return `${what} must be an ISO time, got ${JSON.stringify(value)}`;
}
