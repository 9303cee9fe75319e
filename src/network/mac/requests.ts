/**
 * The MAC commands the network starts (except LinkADRReq, which is ADR's): which to piggy-back on
 * the next downlink so the device ends up as its profile wants, and what the device's answers
 * change in the state. Pure functions of a `MacState` (mac-state.ts), a `MacProfile` and the
 * clock the caller passes in.
 *
 * How the server uses them:
 * - on every uplink, even one without MAC commands, `applyMacAnswers` with the decoded FOpts or
 *   FPort-0 commands; it returns the new state, one outcome per answer to log, the replies to
 *   put first in the next downlink (DeviceModeConf), and whether a downlink is needed soon;
 * - when building a downlink, `planMacRequests` with where the downlink counters stand (the
 *   FCntDown that downlink will carry; 1.1: NFCntDown + AFCntDown) and the bytes left for MAC
 *   commands (FOpts: 15 minus the answers already placed); keep the state it returns only if
 *   that downlink is actually sent, and log what it `abandoned`.
 *
 * Sticky answers. LoRaWAN 1.0.4 and 1.1 (in the descriptions of these answers): a device puts
 * RXParamSetupAns, RXTimingSetupAns and DlChannelAns in every uplink until it receives a Class A
 * downlink, so the network learns its RX settings even when an uplink is lost. The answers carry
 * no sequence number, so a repeat looks like a fresh answer. Here: an uplink that carries one of
 * them while the previous uplink carried the same kind is a repeat (the device has not received
 * a downlink in between), taken as already handled, with the status the first one got, and the
 * state unchanged; and no new request of that kind is sent (nor re-sent) while the device is
 * repeating, so the next answer of that kind cannot be confused with a repeat. An uplink without
 * them proves a downlink arrived and ends the repeats. `downlinkNeeded` tells the caller to send
 * one (even empty) so the repeats stop.
 *
 * Retries. A request waits for its answer until `resendAfterDownlinks` more downlinks have gone
 * out (one by default: in Class A, the uplink the next downlink answers should have carried the
 * answer); then it is sent again, up to `maxAttempts` downlinks in all, then abandoned: recorded
 * in `refused` and not planned again for `retryUnansweredAfterMs`. A request the device refuses
 * (an ACK bit cleared) is recorded too and not sent again until the profile asks for something
 * else or a new session begins: a refused command left the device unchanged (LoRaWAN 1.0.4 and
 * 1.1), and the same command would be refused again.
 */
import {
  DOWNLINK_MAC_COMMAND_NAMES,
  type DownlinkMacCommand,
  MAC_COMMAND_CIDS,
  type MacCommand,
  type MacCommandName,
  type MacCommandOf,
  macCommandPayloadLength,
} from '../../lorawan/mac-commands.js';
import type { Region } from '../../lorawan/regions/index.js';
import type { MacVersion } from '../session.js';
import {
  channelProblem,
  type DeviceClass,
  dataRateProblem,
  frequencyProblem,
  intProblem,
  isDefinedChannel,
  type MacAnswerStatus,
  type MacRequest,
  type MacRequestName,
  type MacState,
  type PendingMacRequest,
  type RefusedMacRequest,
  rejoinProblem,
  rx1DelayProblem,
  rx1DrOffsetProblem,
  type StickyAnswer,
  type StickyAnswerName,
  type TxParams,
  trimTrailingNulls,
  txParamsProblem,
  uintProblem,
} from './mac-state.js';

// ---------------------------------------------------------------------------------------------
// The profile: what the network wants the device to use.

/** A channel beyond the region's defaults (EU868: indices 3-15), set with NewChannelReq. */
export interface MacProfileChannel {
  index: number;
  frequencyHz: number;
  minDr: number;
  maxDr: number;
}

/** An RX1 downlink frequency for a channel, set with DlChannelReq. */
export interface MacProfileDlChannel {
  index: number;
  frequencyHz: number;
}

/** A one-off LoRaWAN 1.1 ForceRejoinReq; sent once per `id`. */
export interface ForceRejoinRequest {
  /** Chosen by whoever asks (an API call id, a timestamp): a new id sends a new request. */
  id: string;
  /** Retransmission delay 32 s × 2^period + random(0-32 s), 0-7. */
  period: number;
  /** Retransmissions after the first RejoinRequest, 0-7. */
  maxRetries: number;
  /** 0 or 1: rejoin type 0; 2: rejoin type 2. */
  rejoinType: number;
  /** Data rate of the RejoinRequest. */
  dataRate: number;
}

/**
 * Desired MAC settings from the device profile. Every field is optional: an absent setting is
 * left as the device has it (no command is sent for it), except `devStatusIntervalMs` which
 * defaults to `DEFAULT_DEV_STATUS_INTERVAL_MS`. Invalid values are reported by
 * `validateMacProfile` and skipped by the planner (the rest of the profile still applies).
 */
export interface MacProfile {
  /** RXTimingSetupReq: RECEIVE_DELAY1 in seconds, 1-15. */
  rx1DelaySeconds?: number;
  /** RXParamSetupReq, with rx2Dr and rx2FrequencyHz: 0 to the region's maximum (EU868: 5). */
  rx1DrOffset?: number;
  rx2Dr?: number;
  rx2FrequencyHz?: number;
  /**
   * NewChannelReq: the complete list of channels beyond the region's defaults. A channel the
   * device has and this list lacks is deleted (frequency 0). Absent: channels left alone. Only in
   * regions with a dynamic channel plan (CFList of frequencies, such as EU868).
   */
  extraChannels?: readonly MacProfileChannel[];
  /**
   * DlChannelReq: the complete list of RX1 downlink frequencies that differ from the uplink
   * ones. A channel with an override the list lacks gets its uplink frequency back. Absent:
   * left alone.
   */
  dlChannels?: readonly MacProfileDlChannel[];
  /** DutyCycleReq: aggregated duty cycle 1/2^maxDutyCycle, 0-15 (0: only the regulatory limit). */
  maxDutyCycle?: number;
  /** Periodic DevStatusReq; default 24 h; 0 disables it. */
  devStatusIntervalMs?: number;
  /** TxParamSetupReq; ignored where the region does not support it (EU868). */
  txParams?: TxParams;
  /** LoRaWAN 1.1 ADRParamSetupReq: ADR_ACK_LIMIT = 2^adrAckLimitExp, 0-15. */
  adrAckLimitExp?: number;
  /** LoRaWAN 1.1 ADRParamSetupReq: ADR_ACK_DELAY = 2^adrAckDelayExp, 0-15. */
  adrAckDelayExp?: number;
  /** LoRaWAN 1.1 RejoinParamSetupReq, 0-15 each. */
  rejoin?: { maxTimeN: number; maxCountN: number };
  /** LoRaWAN 1.1 ForceRejoinReq, sent once per id. */
  forceRejoin?: ForceRejoinRequest;
}

export const DEFAULT_DEV_STATUS_INTERVAL_MS = 24 * 60 * 60 * 1000;

/** When to send a request again, and when to stop. */
export interface MacRetryPolicy {
  /** Downlinks to wait for an answer before sending a request again; at least 1. */
  resendAfterDownlinks: number;
  /** Downlinks that may carry one request, the first included, before it is abandoned. */
  maxAttempts: number;
  /** How long an abandoned (unanswered) request is not planned again. */
  retryUnansweredAfterMs: number;
}

export const DEFAULT_MAC_RETRY_POLICY: Readonly<MacRetryPolicy> = Object.freeze({
  resendAfterDownlinks: 1,
  maxAttempts: 3,
  retryUnansweredAfterMs: 24 * 60 * 60 * 1000,
});

/** Problems with a profile for a region, one message each; empty when it is valid. */
export function validateMacProfile(profile: MacProfile, region: Region): string[] {
  const problems: string[] = [];
  const check = (problem: string | undefined): void => {
    if (problem !== undefined) problems.push(problem);
  };
  if (profile.rx1DelaySeconds !== undefined) {
    check(rx1DelayProblem(profile.rx1DelaySeconds, 'rx1DelaySeconds'));
  }
  if (profile.rx1DrOffset !== undefined) {
    check(rx1DrOffsetProblem(profile.rx1DrOffset, region, 'rx1DrOffset'));
  }
  if (profile.rx2Dr !== undefined) check(dataRateProblem(profile.rx2Dr, region, 'rx2Dr'));
  if (profile.rx2FrequencyHz !== undefined) {
    check(frequencyProblem(profile.rx2FrequencyHz, region, 'rx2FrequencyHz'));
  }
  if (profile.extraChannels !== undefined) {
    desiredChannels(profile.extraChannels, region, problems);
  }
  if (profile.dlChannels !== undefined) {
    desiredDlChannels(profile.dlChannels, region, problems);
    for (const { index } of profile.dlChannels) {
      if (
        index >= region.defaultChannels.length &&
        profile.extraChannels !== undefined &&
        !profile.extraChannels.some((channel) => channel.index === index)
      ) {
        problems.push(`dlChannels names channel ${index}, which extraChannels does not define`);
      }
    }
  }
  if (profile.maxDutyCycle !== undefined) {
    check(uintProblem(profile.maxDutyCycle, 15, 'maxDutyCycle'));
  }
  if (profile.devStatusIntervalMs !== undefined) {
    check(devStatusIntervalProblem(profile.devStatusIntervalMs));
  }
  if (profile.txParams !== undefined) check(txParamsProblem(profile.txParams, 'txParams'));
  if (profile.adrAckLimitExp !== undefined) {
    check(uintProblem(profile.adrAckLimitExp, 15, 'adrAckLimitExp'));
  }
  if (profile.adrAckDelayExp !== undefined) {
    check(uintProblem(profile.adrAckDelayExp, 15, 'adrAckDelayExp'));
  }
  if (profile.rejoin !== undefined) check(rejoinProblem(profile.rejoin, 'rejoin'));
  if (profile.forceRejoin !== undefined) check(forceRejoinProblem(profile.forceRejoin, region));
  return problems;
}

function devStatusIntervalProblem(value: unknown): string | undefined {
  return intProblem(value, 0, Number.MAX_SAFE_INTEGER, 'devStatusIntervalMs');
}

function forceRejoinProblem(request: ForceRejoinRequest, region: Region): string | undefined {
  if (typeof request.id !== 'string' || request.id === '') {
    return 'forceRejoin.id must be a non-empty string';
  }
  return (
    uintProblem(request.period, 7, 'forceRejoin.period') ??
    uintProblem(request.maxRetries, 7, 'forceRejoin.maxRetries') ??
    // LoRaWAN 1.1 ForceRejoinReq: RejoinType 0 and 1 both mean a type 0 rejoin; 3-7 are RFU.
    uintProblem(request.rejoinType, 2, 'forceRejoin.rejoinType') ??
    dataRateProblem(request.dataRate, region, 'forceRejoin.dataRate')
  );
}

type ChannelSpec = { frequencyHz: number; minDr: number; maxDr: number };

/**
 * The profile's extra channels by index; 'keep' for an index whose entry is invalid (that
 * channel is left as the device has it). Problems are appended to `problems`.
 */
function desiredChannels(
  list: readonly MacProfileChannel[],
  region: Region,
  problems: string[],
): Map<number, ChannelSpec | 'keep'> {
  const desired = new Map<number, ChannelSpec | 'keep'>();
  for (const entry of list) {
    const { index } = entry;
    const indexProblem = intProblem(
      index,
      region.defaultChannels.length,
      region.maxChannels - 1,
      `extraChannels index (${region.name} default channels cannot be changed)`,
    );
    if (indexProblem !== undefined) {
      problems.push(indexProblem);
      continue;
    }
    if (desired.has(index)) {
      problems.push(`extraChannels names channel ${index} twice; the first entry is used`);
      continue;
    }
    const problem = channelProblem(entry, region, `extra channel ${index}`);
    if (problem !== undefined) {
      problems.push(problem);
      desired.set(index, 'keep');
      continue;
    }
    desired.set(index, { frequencyHz: entry.frequencyHz, minDr: entry.minDr, maxDr: entry.maxDr });
  }
  return desired;
}

function desiredDlChannels(
  list: readonly MacProfileDlChannel[],
  region: Region,
  problems: string[],
): Map<number, number | 'keep'> {
  const desired = new Map<number, number | 'keep'>();
  for (const entry of list) {
    const indexProblem = intProblem(entry.index, 0, region.maxChannels - 1, 'dlChannels index');
    if (indexProblem !== undefined) {
      problems.push(indexProblem);
      continue;
    }
    if (desired.has(entry.index)) {
      problems.push(`dlChannels names channel ${entry.index} twice; the first entry is used`);
      continue;
    }
    const problem = frequencyProblem(
      entry.frequencyHz,
      region,
      `downlink frequency of channel ${entry.index}`,
    );
    if (problem !== undefined) problems.push(problem);
    desired.set(entry.index, problem === undefined ? entry.frequencyHz : 'keep');
  }
  return desired;
}

// ---------------------------------------------------------------------------------------------
// What each version and region allows.

export function isLorawan11(macVersion: MacVersion): boolean {
  return macVersion.startsWith('1.1');
}

/** Regions whose devices accept NewChannelReq and DlChannelReq (dynamic channel plans). */
function definesChannels(region: Region): boolean {
  return region.cfListType === 'frequencies';
}

/**
 * Whether the network may send this request to a device of this MAC version in this region.
 * ADRParamSetupReq, RejoinParamSetupReq and ForceRejoinReq exist from LoRaWAN 1.1 on; a 1.0.x
 * device would not know their CID and drop the rest of the FOpts. TxParamSetupReq only where
 * the regional parameters define it; NewChannelReq and DlChannelReq only with a dynamic plan.
 */
export function isMacRequestSupported(
  name: MacRequestName | 'ForceRejoinReq',
  region: Region,
  macVersion: MacVersion,
): boolean {
  switch (name) {
    case 'ADRParamSetupReq':
    case 'RejoinParamSetupReq':
    case 'ForceRejoinReq':
      return isLorawan11(macVersion);
    case 'TxParamSetupReq':
      return region.supportsTxParamSetup;
    case 'NewChannelReq':
    case 'DlChannelReq':
      return definesChannels(region);
    case 'RXParamSetupReq':
    case 'RXTimingSetupReq':
    case 'DutyCycleReq':
    case 'DevStatusReq':
      return true;
    default:
      return assertNever(name);
  }
}

/** The answer each request gets. */
const ANSWER_OF = {
  RXParamSetupReq: 'RXParamSetupAns',
  RXTimingSetupReq: 'RXTimingSetupAns',
  NewChannelReq: 'NewChannelAns',
  DlChannelReq: 'DlChannelAns',
  DutyCycleReq: 'DutyCycleAns',
  TxParamSetupReq: 'TxParamSetupAns',
  ADRParamSetupReq: 'ADRParamSetupAns',
  RejoinParamSetupReq: 'RejoinParamSetupAns',
  DevStatusReq: 'DevStatusAns',
} as const satisfies Record<MacRequestName, MacCommandName>;

export const STICKY_ANSWERS: readonly StickyAnswerName[] = [
  'RXParamSetupAns',
  'RXTimingSetupAns',
  'DlChannelAns',
];

/** One request of each kind at a time; channel commands once per channel index. */
export function requestKey(command: MacRequest): string {
  return command.cid === 'NewChannelReq' || command.cid === 'DlChannelReq'
    ? `${command.cid}:${command.chIndex}`
    : command.cid;
}

/** Bytes a downlink command takes: its CID and its payload. */
export function macCommandSize(name: DownlinkMacCommand['cid']): number {
  return 1 + (macCommandPayloadLength(MAC_COMMAND_CIDS[name], 'downlink') ?? 0);
}

function sameRequest(a: MacRequest, b: MacRequest): boolean {
  const left = a as unknown as Record<string, unknown>;
  const right = b as unknown as Record<string, unknown>;
  const keys = Object.keys(left);
  return keys.length === Object.keys(right).length && keys.every((key) => left[key] === right[key]);
}

/** Why a request cannot be applied to a device of this version in this region, if it cannot. */
function requestProblem(command: MacRequest, region: Region, macVersion: MacVersion) {
  if (typeof command !== 'object' || command === null) return 'not a MAC command';
  const name = command.cid;
  if (!Object.hasOwn(ANSWER_OF, name)) return `${JSON.stringify(name)} is not a request`;
  if (!isMacRequestSupported(name, region, macVersion)) {
    return `${name} is not supported for LoRaWAN ${macVersion} in ${region.name}`;
  }
  switch (command.cid) {
    case 'RXParamSetupReq':
      return (
        rx1DrOffsetProblem(command.rx1DrOffset, region, 'RX1DROffset') ??
        dataRateProblem(command.rx2DataRate, region, 'RX2 data rate') ??
        frequencyProblem(command.frequencyHz, region, 'RX2 frequency')
      );
    case 'RXTimingSetupReq':
      return rx1DelayProblem(command.delaySeconds, 'RX1 delay');
    case 'NewChannelReq': {
      const indexProblem = intProblem(
        command.chIndex,
        region.defaultChannels.length,
        region.maxChannels - 1,
        'NewChannelReq channel index',
      );
      if (indexProblem !== undefined || command.frequencyHz === 0) return indexProblem;
      return channelProblem(command, region, `channel ${command.chIndex}`);
    }
    case 'DlChannelReq':
      return (
        intProblem(command.chIndex, 0, region.maxChannels - 1, 'DlChannelReq channel index') ??
        frequencyProblem(command.frequencyHz, region, 'DlChannelReq frequency')
      );
    case 'DutyCycleReq':
      return uintProblem(command.maxDutyCycle, 15, 'MaxDutyCycle');
    case 'TxParamSetupReq':
      return txParamsProblem(command, 'TxParamSetupReq');
    case 'ADRParamSetupReq':
      return (
        uintProblem(command.limitExp, 15, 'Limit_exp') ??
        uintProblem(command.delayExp, 15, 'Delay_exp')
      );
    case 'RejoinParamSetupReq':
      return rejoinProblem(command, 'RejoinParamSetupReq');
    case 'DevStatusReq':
      return undefined;
    default:
      return assertNever(command);
  }
}

// ---------------------------------------------------------------------------------------------
// Planning.

export interface PlanMacRequestsOptions {
  region: Region;
  macVersion: MacVersion;
  nowMs: number;
  /**
   * Where the session's downlinks stand for the one being built: its NFCntDown (1.0: FCntDown),
   * plus AFCntDown in LoRaWAN 1.1 (see uplink/mac-layer.ts); it grows with every downlink.
   */
  nFCntDown: number;
  /**
   * Bytes available for these commands: FOpts holds 15 in all (FOptsLen is 4 bits), minus what the
   * caller placed before (answers, LinkADRReq); more when the commands go in an FPort-0 payload.
   */
  maxBytes: number;
  policy?: Partial<MacRetryPolicy>;
}

/** A request given up on after `attempts` downlinks without an answer; the caller logs it. */
export interface AbandonedMacRequest {
  command: MacRequest;
  attempts: number;
  reason: string;
}

export interface MacPlan {
  /** To put in the downlink, in this order, after any answers. */
  commands: DownlinkMacCommand[];
  /** The state with these commands pending; keep it only if the downlink is sent. */
  state: MacState;
  abandoned: AbandonedMacRequest[];
  /** `validateMacProfile` of the profile: its invalid parts were skipped. */
  profileErrors: string[];
}

/**
 * The requests to piggy-back on the next downlink, in priority order: ForceRejoinReq,
 * NewChannelReq (lowest index first; channels come before anything that refers to them:
 * DlChannelReq, and the ADR module's LinkADRReq masks), DlChannelReq, RXParamSetupReq,
 * RXTimingSetupReq, DutyCycleReq, TxParamSetupReq, ADRParamSetupReq, RejoinParamSetupReq,
 * DevStatusReq. A command that does not fit is left for a later downlink while smaller ones
 * behind it may still go.
 */
export function planMacRequests(
  state: MacState,
  profile: MacProfile,
  options: PlanMacRequestsOptions,
): MacPlan {
  const { region, macVersion, nowMs, nFCntDown } = options;
  if (!Number.isInteger(options.maxBytes) || options.maxBytes < 0) {
    throw new RangeError(`maxBytes must be a non-negative integer, got ${options.maxBytes}`);
  }
  const policy: MacRetryPolicy = { ...DEFAULT_MAC_RETRY_POLICY, ...options.policy };
  const resendAfter = Math.max(1, policy.resendAfterDownlinks);
  const profileErrors = validateMacProfile(profile, region);
  const at = new Date(nowMs).toISOString();

  let remaining = options.maxBytes;
  const commands: DownlinkMacCommand[] = [];
  const sent: PendingMacRequest[] = [];
  const abandoned: AbandonedMacRequest[] = [];
  const kept = new Set<PendingMacRequest>(state.pending);
  const visited = new Set<string>();
  const pendingByKey = new Map<string, PendingMacRequest>();
  for (const pending of state.pending) {
    const key = requestKey(pending.command);
    if (!pendingByKey.has(key)) pendingByKey.set(key, pending);
  }
  const refusedByKey = new Map<string, RefusedMacRequest>(
    state.refused.map((refused) => [requestKey(refused.command), refused]),
  );
  const stickyNow = new Set(state.stickyAnswers.map((answer) => answer.cid));
  let lastDevStatusRequestAt = state.lastDevStatusRequestAt;
  let lastForceRejoin = state.lastForceRejoin;

  const isDue = (pending: PendingMacRequest): boolean =>
    nFCntDown < pending.nFCntDown || nFCntDown - pending.nFCntDown >= resendAfter;

  const fits = (name: DownlinkMacCommand['cid']): boolean => {
    const size = macCommandSize(name);
    if (size > remaining) return false;
    remaining -= size;
    return true;
  };

  /**
   * One request key: `wanted` is the command the device needs now, or undefined when it needs
   * none. Returns true when the command goes in this downlink.
   */
  const step = (key: string, wanted: MacRequest | undefined): boolean => {
    visited.add(key);
    const pending = pendingByKey.get(key);
    if (wanted === undefined) {
      // Nothing to change (any more): an unanswered request is dropped once its answer is due.
      if (pending !== undefined && isDue(pending)) kept.delete(pending);
      refusedByKey.delete(key);
      return false;
    }
    // A sticky answer of this kind is being repeated: wait until it stops.
    if (stickyNow.has(ANSWER_OF[wanted.cid] as StickyAnswerName)) return false;
    let attempts = 1;
    if (pending !== undefined) {
      if (!isDue(pending)) return false;
      if (sameRequest(pending.command, wanted)) {
        if (pending.attempts >= policy.maxAttempts) {
          kept.delete(pending);
          const reason = `no answer after ${pending.attempts} downlink(s)`;
          abandoned.push({ command: pending.command, attempts: pending.attempts, reason });
          if (wanted.cid !== 'DevStatusReq') {
            refusedByKey.set(key, { command: wanted, reason: 'unanswered', detail: reason, at });
          }
          return false;
        }
        attempts = pending.attempts + 1;
      }
    } else {
      const refused = refusedByKey.get(key);
      if (refused !== undefined && sameRequest(refused.command, wanted)) {
        const refusedAtMs = Date.parse(refused.at);
        const waited =
          Number.isNaN(refusedAtMs) || nowMs - refusedAtMs >= policy.retryUnansweredAfterMs;
        if (refused.reason === 'rejected' || !waited) return false;
      }
    }
    if (!fits(wanted.cid)) return false;
    if (pending !== undefined) kept.delete(pending);
    refusedByKey.delete(key);
    commands.push(wanted);
    sent.push({ command: wanted, sentAt: at, nFCntDown, attempts });
    return true;
  };

  // ForceRejoinReq: LoRaWAN 1.1 only, once per id, no answer (the device rejoins), never pending.
  const forceRejoin = profile.forceRejoin;
  if (
    forceRejoin !== undefined &&
    isMacRequestSupported('ForceRejoinReq', region, macVersion) &&
    forceRejoinProblem(forceRejoin, region) === undefined &&
    forceRejoin.id !== state.lastForceRejoin?.id &&
    fits('ForceRejoinReq')
  ) {
    const { period, maxRetries, rejoinType, dataRate } = forceRejoin;
    commands.push({ cid: 'ForceRejoinReq', period, maxRetries, rejoinType, dataRate });
    lastForceRejoin = { id: forceRejoin.id, at, nFCntDown };
  }

  // NewChannelReq, then DlChannelReq: the device applies the commands of a frame in order, so a
  // DlChannelReq may follow the NewChannelReq that defines its channel; and a device resets the
  // downlink frequency of a channel NewChannelReq sets (LoRaMac-node does), so the override
  // comes after.
  const newChannelsInFrame = new Map<number, MacCommandOf<'NewChannelReq'>>();
  const channelsAwaitingAnswer = new Set<number>();
  if (definesChannels(region)) {
    const desired =
      profile.extraChannels === undefined
        ? undefined
        : desiredChannels(profile.extraChannels, region, []);
    for (let index = region.defaultChannels.length; index < region.maxChannels; index++) {
      const key = `NewChannelReq:${index}`;
      const want = desired?.get(index);
      if (want === 'keep') {
        visited.add(key);
      } else {
        const have = state.channels[index];
        let wanted: MacCommandOf<'NewChannelReq'> | undefined;
        if (desired !== undefined && want === undefined && isDefinedChannel(have)) {
          wanted = { cid: 'NewChannelReq', chIndex: index, frequencyHz: 0, minDr: 0, maxDr: 0 };
        } else if (
          want !== undefined &&
          (!isDefinedChannel(have) ||
            have.frequencyHz !== want.frequencyHz ||
            have.minDr !== want.minDr ||
            have.maxDr !== want.maxDr)
        ) {
          wanted = { cid: 'NewChannelReq', chIndex: index, ...want };
        }
        if (step(key, wanted) && wanted !== undefined) newChannelsInFrame.set(index, wanted);
      }
      const pending = pendingByKey.get(key);
      if (pending !== undefined && kept.has(pending)) channelsAwaitingAnswer.add(index);
    }

    const desiredDl =
      profile.dlChannels === undefined
        ? undefined
        : desiredDlChannels(profile.dlChannels, region, []);
    for (let index = 0; index < region.maxChannels; index++) {
      const key = `DlChannelReq:${index}`;
      const target = desiredDl?.get(index);
      if (desiredDl === undefined) {
        step(key, undefined);
        continue;
      }
      if (target === 'keep' || channelsAwaitingAnswer.has(index)) {
        // Keep what is pending; decide once the channel's own request is answered.
        visited.add(key);
        continue;
      }
      const planned = newChannelsInFrame.get(index);
      const channel = planned ?? state.channels[index];
      // After a NewChannelReq the device uses the uplink frequency until told otherwise.
      const current = planned === undefined ? (state.dlChannelFrequencies[index] ?? null) : null;
      let wanted: MacCommandOf<'DlChannelReq'> | undefined;
      if (isDefinedChannel(channel)) {
        const wantedHz = target === undefined || target === channel.frequencyHz ? null : target;
        if (wantedHz !== current) {
          wanted = {
            cid: 'DlChannelReq',
            chIndex: index,
            frequencyHz: wantedHz ?? channel.frequencyHz,
          };
        }
      }
      step(key, wanted);
    }
  }

  const valid = <T>(value: T | undefined, problem: (value: T) => string | undefined) =>
    value !== undefined && problem(value) === undefined;

  const rx1DrOffset = valid(profile.rx1DrOffset, (v) => rx1DrOffsetProblem(v, region, ''))
    ? profile.rx1DrOffset!
    : state.rx1DrOffset;
  const rx2Dr = valid(profile.rx2Dr, (v) => dataRateProblem(v, region, ''))
    ? profile.rx2Dr!
    : state.rx2Dr;
  const rx2FrequencyHz = valid(profile.rx2FrequencyHz, (v) => frequencyProblem(v, region, ''))
    ? profile.rx2FrequencyHz!
    : state.rx2FrequencyHz;
  step(
    'RXParamSetupReq',
    rx1DrOffset !== state.rx1DrOffset ||
      rx2Dr !== state.rx2Dr ||
      rx2FrequencyHz !== state.rx2FrequencyHz
      ? { cid: 'RXParamSetupReq', rx1DrOffset, rx2DataRate: rx2Dr, frequencyHz: rx2FrequencyHz }
      : undefined,
  );

  const delaySeconds = profile.rx1DelaySeconds;
  step(
    'RXTimingSetupReq',
    valid(delaySeconds, (v) => rx1DelayProblem(v, '')) && delaySeconds !== state.rx1DelaySeconds
      ? { cid: 'RXTimingSetupReq', delaySeconds: delaySeconds! }
      : undefined,
  );

  const maxDutyCycle = profile.maxDutyCycle;
  step(
    'DutyCycleReq',
    valid(maxDutyCycle, (v) => uintProblem(v, 15, '')) && maxDutyCycle !== state.maxDutyCycle
      ? { cid: 'DutyCycleReq', maxDutyCycle: maxDutyCycle! }
      : undefined,
  );

  if (isMacRequestSupported('TxParamSetupReq', region, macVersion)) {
    const want = profile.txParams;
    const have = state.txParams;
    step(
      'TxParamSetupReq',
      valid(want, (v) => txParamsProblem(v, '')) &&
        (have === null ||
          have.uplinkDwellTime !== want!.uplinkDwellTime ||
          have.downlinkDwellTime !== want!.downlinkDwellTime ||
          have.maxEirpIndex !== want!.maxEirpIndex)
        ? {
            cid: 'TxParamSetupReq',
            uplinkDwellTime: want!.uplinkDwellTime,
            downlinkDwellTime: want!.downlinkDwellTime,
            maxEirpIndex: want!.maxEirpIndex,
          }
        : undefined,
    );
  }

  if (isMacRequestSupported('ADRParamSetupReq', region, macVersion)) {
    const limitExp = valid(profile.adrAckLimitExp, (v) => uintProblem(v, 15, ''))
      ? profile.adrAckLimitExp!
      : state.adrAckLimitExp;
    const delayExp = valid(profile.adrAckDelayExp, (v) => uintProblem(v, 15, ''))
      ? profile.adrAckDelayExp!
      : state.adrAckDelayExp;
    step(
      'ADRParamSetupReq',
      limitExp !== state.adrAckLimitExp || delayExp !== state.adrAckDelayExp
        ? { cid: 'ADRParamSetupReq', limitExp, delayExp }
        : undefined,
    );
  }

  if (isMacRequestSupported('RejoinParamSetupReq', region, macVersion)) {
    const want = profile.rejoin;
    const have = state.rejoin;
    step(
      'RejoinParamSetupReq',
      valid(want, (v) => rejoinProblem(v, '')) &&
        (have === null || have.maxTimeN !== want!.maxTimeN || have.maxCountN !== want!.maxCountN)
        ? { cid: 'RejoinParamSetupReq', maxTimeN: want!.maxTimeN, maxCountN: want!.maxCountN }
        : undefined,
    );
  }

  const intervalMs = valid(profile.devStatusIntervalMs, devStatusIntervalProblem)
    ? profile.devStatusIntervalMs!
    : DEFAULT_DEV_STATUS_INTERVAL_MS;
  const lastRequestMs =
    state.lastDevStatusRequestAt === null ? Number.NaN : Date.parse(state.lastDevStatusRequestAt);
  const devStatusPending = pendingByKey.has('DevStatusReq');
  const devStatusDue =
    intervalMs > 0 &&
    (devStatusPending || Number.isNaN(lastRequestMs) || nowMs - lastRequestMs >= intervalMs);
  if (step('DevStatusReq', devStatusDue ? { cid: 'DevStatusReq' } : undefined)) {
    // The period counts from the first send, not from the retries.
    if (!devStatusPending) lastDevStatusRequestAt = at;
  }

  // Requests no step looked at (no longer supported for this device): dropped once due.
  for (const pending of state.pending) {
    if (!visited.has(requestKey(pending.command)) && isDue(pending)) kept.delete(pending);
  }

  return {
    commands,
    state: {
      ...state,
      lastDevStatusRequestAt,
      lastForceRejoin,
      pending: [...state.pending.filter((pending) => kept.has(pending)), ...sent],
      refused: [...refusedByKey.values()],
    },
    abandoned,
    profileErrors,
  };
}

// ---------------------------------------------------------------------------------------------
// Answers.

export interface ApplyMacAnswersOptions {
  nowMs: number;
  region: Region;
  macVersion: MacVersion;
}

export interface MacAnswerOutcome {
  /** The uplink command this is about (RXParamSetupAns, DeviceModeInd, ...). */
  cid: MacCommandName;
  status: MacAnswerStatus;
  /** One sentence for the log. */
  detail: string;
  /** The pending request it answered, if any. */
  request?: MacRequest;
}

export interface AppliedMacAnswers {
  state: MacState;
  /** One per answer this module handles, in uplink order. */
  outcomes: MacAnswerOutcome[];
  /** Commands the next downlink must carry, before any request: DeviceModeConf. */
  replies: DownlinkMacCommand[];
  /**
   * A downlink should go soon, even without data: a reply is waiting, or the device repeats
   * sticky answers until it receives one.
   */
  downlinkNeeded: boolean;
}

/** Uplink commands other modules answer (LinkADRAns: ADR; LinkCheckReq, DeviceTimeReq, ...). */
const HANDLED_ELSEWHERE: ReadonlySet<string> = new Set([
  'ResetInd',
  'LinkCheckReq',
  'LinkADRAns',
  'RekeyInd',
  'DeviceTimeReq',
  'PingSlotInfoReq',
  'PingSlotChannelAns',
  'BeaconTimingReq',
  'BeaconFreqAns',
]);

/**
 * Takes the MAC commands of one uplink (decoded, in order): each answer is matched with the
 * oldest pending request of its kind (the device answers in the order it received them) and,
 * when the device accepted it, its settings enter the state. A refused request keeps the old
 * settings (any ACK bit cleared means the device changed nothing) and is recorded
 * so it is not sent again. Commands other modules handle (LinkADRAns, LinkCheckReq,
 * DeviceTimeReq, RekeyInd, ResetInd, class B) get no outcome. Call it for every uplink, even
 * one without commands: that is how the end of sticky-answer repeats is seen. Never throws.
 */
export function applyMacAnswers(
  state: MacState,
  answers: readonly MacCommand[],
  options: ApplyMacAnswersOptions,
): AppliedMacAnswers {
  const { region, macVersion } = options;
  const at = new Date(options.nowMs).toISOString();
  let next: MacState = { ...state, pending: [...state.pending] };
  const refusedByKey = new Map<string, RefusedMacRequest>(
    state.refused.map((refused) => [requestKey(refused.command), refused]),
  );
  const outcomes: MacAnswerOutcome[] = [];
  const replies: DownlinkMacCommand[] = [];
  const stickyAnswers: StickyAnswer[] = [];
  const seen = new Map<string, number>();

  /** Takes the oldest pending request of a kind out of the state. */
  const takePending = (name: MacRequestName): PendingMacRequest | undefined => {
    const index = next.pending.findIndex((pending) => pending?.command?.cid === name);
    if (index < 0) return undefined;
    const [pending] = next.pending.splice(index, 1);
    return pending;
  };

  /**
   * Matches an answer with its request and applies it. `nacks` names the refused parts (empty:
   * accepted); `apply` returns the new state, or a string saying why it cannot be applied.
   */
  const answer = <N extends MacRequestName>(
    cid: MacCommandName,
    name: N,
    nacks: string[],
    apply: (request: MacCommandOf<N>) => MacState | string,
  ): MacAnswerOutcome => {
    const pending = takePending(name);
    if (pending === undefined) {
      return { cid, status: 'unexpected', detail: `no ${name} is pending; ignored` };
    }
    const request = pending.command as MacCommandOf<N>;
    const problem = requestProblem(request, region, macVersion);
    if (problem !== undefined) {
      return {
        cid,
        status: 'unexpected',
        detail: `the pending ${name} cannot be applied (${problem}); settings unchanged`,
        request,
      };
    }
    const key = requestKey(request);
    if (nacks.length > 0) {
      const detail = `device refused ${name}: ${nacks.join(', ')}; settings unchanged`;
      refusedByKey.set(key, { command: request, reason: 'rejected', detail, at });
      return { cid, status: 'rejected', detail, request };
    }
    const applied = apply(request);
    if (typeof applied === 'string') {
      return { cid, status: 'unexpected', detail: applied, request };
    }
    next = applied;
    refusedByKey.delete(key);
    return { cid, status: 'applied', detail: `${name} applied`, request };
  };

  /** A sticky answer: a repeat when the previous uplink carried the same kind. */
  const sticky = (
    cid: StickyAnswerName,
    nacks: string[],
    fresh: () => MacAnswerOutcome,
  ): MacAnswerOutcome => {
    const occurrence = seen.get(cid) ?? 0;
    seen.set(cid, occurrence + 1);
    const before = state.stickyAnswers.filter((sticky) => sticky?.cid === cid);
    let outcome: MacAnswerOutcome;
    if (before.length > 0) {
      const status = before[occurrence]?.status ?? (nacks.length > 0 ? 'rejected' : 'applied');
      outcome = {
        cid,
        status,
        detail: `repeat of an earlier ${cid} (the device repeats it until it receives a downlink); state unchanged`,
      };
    } else {
      outcome = fresh();
    }
    stickyAnswers.push({ cid, status: outcome.status });
    return outcome;
  };

  for (const command of answers) {
    if (typeof command !== 'object' || command === null) continue;
    let outcome: MacAnswerOutcome | undefined;
    switch (command.cid) {
      case 'RXParamSetupAns': {
        const nacks = [
          ...(command.rx1DrOffsetAck ? [] : ['RX1DROffset']),
          ...(command.rx2DataRateAck ? [] : ['RX2 data rate']),
          ...(command.channelAck ? [] : ['RX2 frequency']),
        ];
        outcome = sticky(command.cid, nacks, () =>
          answer(command.cid, 'RXParamSetupReq', nacks, (request) => ({
            ...next,
            rx1DrOffset: request.rx1DrOffset,
            rx2Dr: request.rx2DataRate,
            rx2FrequencyHz: request.frequencyHz,
          })),
        );
        break;
      }
      case 'RXTimingSetupAns':
        outcome = sticky(command.cid, [], () =>
          answer(command.cid, 'RXTimingSetupReq', [], (request) => ({
            ...next,
            rx1DelaySeconds: request.delaySeconds,
          })),
        );
        break;
      case 'DlChannelAns': {
        const nacks = [
          ...(command.uplinkFrequencyExists ? [] : ['uplink frequency not defined']),
          ...(command.channelFrequencyOk ? [] : ['frequency not usable']),
        ];
        outcome = sticky(command.cid, nacks, () =>
          answer(command.cid, 'DlChannelReq', nacks, (request) => {
            const channel = next.channels[request.chIndex];
            if (!isDefinedChannel(channel)) {
              return `the device accepted DlChannelReq for channel ${request.chIndex}, which the network does not know; settings unchanged`;
            }
            const frequencies = [...next.dlChannelFrequencies];
            while (frequencies.length <= request.chIndex) frequencies.push(null);
            frequencies[request.chIndex] =
              request.frequencyHz === channel.frequencyHz ? null : request.frequencyHz;
            return { ...next, dlChannelFrequencies: trimTrailingNulls(frequencies) };
          }),
        );
        break;
      }
      case 'NewChannelAns': {
        const nacks = [
          ...(command.dataRateRangeOk ? [] : ['data rate range']),
          ...(command.channelFrequencyOk ? [] : ['frequency']),
        ];
        outcome = answer(command.cid, 'NewChannelReq', nacks, (request) => {
          const channels = [...next.channels];
          while (channels.length <= request.chIndex) channels.push(null);
          // A new or changed channel is enabled at once (the reference device stack, LoRaMac-node,
          // sets its mask bit); frequency 0 deletes it.
          channels[request.chIndex] =
            request.frequencyHz === 0
              ? null
              : {
                  frequencyHz: request.frequencyHz,
                  minDr: request.minDr,
                  maxDr: request.maxDr,
                  enabled: true,
                };
          const frequencies = [...next.dlChannelFrequencies];
          if (request.chIndex < frequencies.length) frequencies[request.chIndex] = null;
          return {
            ...next,
            channels: trimTrailingNulls(channels),
            dlChannelFrequencies: trimTrailingNulls(frequencies),
          };
        });
        break;
      }
      case 'DutyCycleAns':
        outcome = answer(command.cid, 'DutyCycleReq', [], (request) => ({
          ...next,
          maxDutyCycle: request.maxDutyCycle,
        }));
        break;
      case 'TxParamSetupAns':
        outcome = answer(command.cid, 'TxParamSetupReq', [], (request) => ({
          ...next,
          txParams: {
            uplinkDwellTime: request.uplinkDwellTime,
            downlinkDwellTime: request.downlinkDwellTime,
            maxEirpIndex: request.maxEirpIndex,
          },
        }));
        break;
      case 'ADRParamSetupAns':
        outcome = answer(command.cid, 'ADRParamSetupReq', [], (request) => ({
          ...next,
          adrAckLimitExp: request.limitExp,
          adrAckDelayExp: request.delayExp,
        }));
        break;
      case 'RejoinParamSetupAns':
        outcome = answer(command.cid, 'RejoinParamSetupReq', [], (request) => ({
          ...next,
          rejoin: {
            maxTimeN: request.maxTimeN,
            maxCountN: request.maxCountN,
            timeOk: command.timeOk === true,
          },
        }));
        if (outcome.status === 'applied' && command.timeOk !== true) {
          outcome.detail += ' (the device cannot keep MaxTimeN: it rejoins by uplink count only)';
        }
        break;
      case 'DevStatusAns': {
        const { battery, margin } = command;
        const problem =
          uintProblem(battery, 255, 'battery') ?? intProblem(margin, -32, 31, 'margin');
        if (problem !== undefined) {
          outcome = { cid: command.cid, status: 'unexpected', detail: `${problem}; ignored` };
          break;
        }
        outcome = answer(command.cid, 'DevStatusReq', [], () => next);
        // Unsolicited or late (after the request was abandoned), the reading is still a fact.
        next = { ...next, lastDevStatus: { battery, margin, at } };
        if (outcome.status === 'unexpected')
          outcome.detail = 'no DevStatusReq is pending; recorded anyway';
        break;
      }
      case 'DeviceModeInd':
        outcome = deviceMode(command.class, next.deviceClass, macVersion);
        if (outcome.status === 'applied') {
          const deviceClass = command.class as DeviceClass;
          next = { ...next, deviceClass };
          replies.push({ cid: 'DeviceModeConf', class: deviceClass });
        }
        break;
      default:
        if (HANDLED_ELSEWHERE.has(command.cid)) break;
        outcome = {
          cid: command.cid,
          status: 'unexpected',
          detail: (DOWNLINK_MAC_COMMAND_NAMES as readonly string[]).includes(command.cid)
            ? `${command.cid} is a downlink command; ignored`
            : `unknown MAC command ${JSON.stringify(command.cid)}; ignored`,
        };
    }
    if (outcome !== undefined) outcomes.push(outcome);
  }

  return {
    state: { ...next, refused: [...refusedByKey.values()], stickyAnswers },
    outcomes,
    replies,
    downlinkNeeded: replies.length > 0 || stickyAnswers.length > 0,
  };
}

/** LoRaWAN 1.1 class C: the device says which class it now uses; the network confirms. */
function deviceMode(
  wanted: unknown,
  current: DeviceClass,
  macVersion: MacVersion,
): MacAnswerOutcome {
  const cid = 'DeviceModeInd';
  if (!isLorawan11(macVersion)) {
    return {
      cid,
      status: 'unexpected',
      detail: `DeviceModeInd is LoRaWAN 1.1; a ${macVersion} device gets no DeviceModeConf`,
    };
  }
  if (wanted !== 'A' && wanted !== 'C') {
    return { cid, status: 'unexpected', detail: `class ${JSON.stringify(wanted)} is not A or C` };
  }
  return {
    cid,
    status: 'applied',
    detail:
      wanted === current ? `device confirms class ${wanted}` : `class ${current} -> ${wanted}`,
  };
}

function assertNever(value: never): never {
  throw new Error(`unhandled value ${JSON.stringify(value)}`);
}
