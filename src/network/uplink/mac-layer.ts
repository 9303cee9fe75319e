import type { LinkADRAns, MacCommand } from '../../lorawan/mac-commands.js';
import { encodeMacCommands } from '../../lorawan/mac-commands.js';
import type { Region } from '../../lorawan/regions/index.js';
import { adrDecisionChanges } from '../adr/algorithm.js';
import { defaultAdr, defaultAdrKeeps } from '../adr/default-adr.js';
import {
  ADR_HISTORY_LENGTH,
  appendUplinkInPlace,
  type UplinkHistoryEntry,
} from '../adr/history.js';
import type { NetworkDeviceProfile } from '../device-profile.js';
import { applyLinkAdrAnswers, buildLinkAdrRequests } from '../mac/link-adr.js';
import type { MacState } from '../mac/mac-state.js';
import type { MacAnswerOutcome, MacProfile } from '../mac/requests.js';
import {
  applyMacAnswers,
  DEFAULT_DEV_STATUS_INTERVAL_MS,
  planMacRequests,
} from '../mac/requests.js';
import {
  activationSessionMac,
  enabledChannelIndices,
  type SessionMac,
} from '../mac/session-mac.js';
import type { MacVersion } from '../session.js';

/** FOpts holds at most 15 bytes. */
const MAX_FOPTS = 15;
/** Downlinks that may carry one LinkADRReq block before ADR gives up on an answer. */
const MAX_LINK_ADR_ATTEMPTS = 3;

export interface UplinkMacInput {
  region: Region;
  macVersion: MacVersion;
  deviceClass: 'A' | 'C';
  profile: NetworkDeviceProfile;
  /** The session's stored MAC state, or undefined to start from the defaults. */
  state: SessionMac | undefined;
  /** Settings the session was activated with (used when there is no state yet). */
  activation: {
    rx1DelaySeconds: number;
    rx1DrOffset: number;
    rx2Dr: number;
    rx2FrequencyHz: number;
    createdAt: string;
  };
  /** The ADR history of the device (memory only), appended to in place. */
  history: UplinkHistoryEntry[];
  uplinkDr: number;
  fCnt: number;
  adrBit: boolean;
  adrAckReq: boolean;
  /** Best SNR among the gateways that heard the uplink, and how many did. */
  maxSnrDb: number;
  gatewayCount: number;
  /** The uplink's MAC commands, decoded. */
  commands: readonly MacCommand[];
  /** Answers the uplink path already made (LinkCheckAns, DeviceTimeAns, RekeyConf...). */
  answers: readonly MacCommand[];
  /**
   * Where the session's downlinks stand: the next NFCntDown (1.0: FCntDown), plus in LoRaWAN
   * 1.1 the next AFCntDown. It grows with every downlink, whichever counter that one took (a 1.1
   * downlink with an application payload takes AFCntDown only, also when it carries MAC
   * commands), so a pending request sees that a downlink went out since it was sent.
   */
  nFCntDown: number;
  nowMs: number;
}

export interface UplinkMacResult {
  /** For the next downlink, in order: answers, replies, LinkADRReq block, requests. */
  commands: MacCommand[];
  /** A downlink should go even with nothing else to send (ADRACKReq, requests, replies). */
  downlinkNeeded: boolean;
  /** The state to keep in memory; undefined when it is still `input.state`. */
  state: SessionMac | undefined;
  /**
   * Whether the state differs from the stored one in more than the data rate (which every
   * uplink tells again): only then is it worth a write.
   */
  persist: boolean;
  /** What happened, for the device's log events. */
  notes: { level: 'INFO' | 'WARNING'; code: string; description: string }[];
}

/**
 * The MAC layer's part of one accepted uplink: reads the answers to earlier requests (LinkADRAns
 * here, the rest through `applyMacAnswers`), feeds ADR, and plans what the next downlink
 * carries. Pure: the caller stores the state and sends the commands.
 */
export function processUplinkMac(input: UplinkMacInput): UplinkMacResult {
  const { region, macVersion, profile } = input;
  const notes: UplinkMacResult['notes'] = [];
  const at = new Date(input.nowMs).toISOString();
  let session: SessionMac =
    input.state ??
    (() => {
      const initial = activationSessionMac(
        region,
        { ...input.activation, macVersion },
        input.deviceClass,
      );
      initial.adr.dr = input.uplinkDr;
      return initial;
    })();
  const start = session;

  // The device tells its data rate with every uplink (it may have lowered it itself).
  if (session.adr.dr !== input.uplinkDr) {
    session = { ...session, adr: { ...session.adr, dr: input.uplinkDr } };
  }

  // LinkADRAns: the answer to the pending block, all at once.
  const linkAdrAnswers = input.commands.filter(
    (command): command is LinkADRAns => command.cid === 'LinkADRAns',
  );
  const pendingLinkAdr = session.adr.pendingLinkAdr;
  if (linkAdrAnswers.length > 0) {
    if (pendingLinkAdr === null) {
      notes.push({
        level: 'WARNING',
        code: 'MAC_LINK_ADR',
        description: 'LinkADRAns without a pending LinkADRReq; ignored',
      });
    } else {
      const before = {
        dr: session.adr.dr ?? input.uplinkDr,
        txPowerIndex: session.adr.txPowerIndex,
        nbTrans: session.adr.nbTrans,
        enabledChannels: enabledChannelIndices(session.mac.channels),
      };
      const result = applyLinkAdrAnswers(before, pendingLinkAdr.commands, linkAdrAnswers, {
        region,
        channels: session.mac.channels,
        deviceAdrEnabled: input.adrBit,
      });
      const enabled = new Set(result.state.enabledChannels);
      session = {
        ...session,
        mac: {
          ...session.mac,
          channels: session.mac.channels.map((channel, index) =>
            channel === null ? null : { ...channel, enabled: enabled.has(index) },
          ),
        },
        adr: {
          ...session.adr,
          txPowerIndex: result.state.txPowerIndex,
          nbTrans: result.state.nbTrans,
          pendingLinkAdr: null,
        },
      };
      notes.push(
        result.accepted
          ? {
              level: 'INFO',
              code: 'MAC_LINK_ADR',
              description: `LinkADRReq applied: DR${result.state.dr}, TX power index ${result.state.txPowerIndex}, NbTrans ${result.state.nbTrans}`,
            }
          : {
              level: 'WARNING',
              code: 'MAC_LINK_ADR',
              description: `device refused LinkADRReq (${result.rejected.join(', ')}); settings unchanged`,
            },
      );
    }
  }

  // Without commands and without answers being repeated, there is nothing to apply.
  const applied =
    input.commands.length > 0 || session.mac.stickyAnswers.length > 0
      ? applyMacAnswers(session.mac, input.commands, {
          nowMs: input.nowMs,
          region,
          macVersion,
        })
      : { state: session.mac, outcomes: [], replies: [], downlinkNeeded: false };
  if (applied.state !== session.mac) {
    session = { ...session, mac: applied.state };
  }
  for (const outcome of applied.outcomes) notes.push(outcomeNote(outcome));

  // ADR: history of uplinks with the ADR bit, and a decision when nothing is pending.
  const history = input.history;
  const commands: MacCommand[] = [...input.answers, ...applied.replies];
  if (input.adrBit && profile.adr.enabled) {
    appendUplinkInPlace(history, {
      fCnt: input.fCnt,
      maxSnrDb: input.maxSnrDb,
      gatewayCount: input.gatewayCount,
      dr: input.uplinkDr,
      txPowerIndex: session.adr.txPowerIndex,
    });
    const linkAdr = planLinkAdr(session, input, history, at, notes);
    if (linkAdr !== undefined) {
      session = linkAdr.session;
      // No block when ADR has just given up on an unanswered one.
      commands.push(...(linkAdr.session.adr.pendingLinkAdr?.commands ?? []));
    }
  }

  const mac = session.mac;
  const quiet = quietPlans.get(mac);
  if (quiet === undefined || quiet.profile !== profile.mac || input.nowMs >= quiet.untilMs) {
    const used = encodeMacCommands(commands).length;
    const plan = planMacRequests(mac, profile.mac, {
      region,
      macVersion,
      nowMs: input.nowMs,
      nFCntDown: input.nFCntDown,
      maxBytes: Math.max(0, MAX_FOPTS - used),
    });
    const settled =
      plan.commands.length === 0 &&
      plan.abandoned.length === 0 &&
      mac.pending.length === 0 &&
      mac.refused.length === 0;
    if (settled) {
      // Nothing to ask until the next status request is due: later uplinks skip the planner.
      quietPlans.set(mac, {
        profile: profile.mac,
        untilMs: nextStatusRequestMs(mac.lastDevStatusRequestAt, profile),
      });
    } else {
      session = { ...session, mac: plan.state };
      commands.push(...plan.commands);
    }
    for (const abandoned of plan.abandoned) {
      notes.push({
        level: 'WARNING',
        code: 'MAC_UNANSWERED',
        description: `${abandoned.command.cid} given up: ${abandoned.reason}`,
      });
    }
  }

  // A ForceRejoinReq the API asked for is done once the planner has sent it.
  if (
    session.forceRejoin !== undefined &&
    session.mac.lastForceRejoin?.id === session.forceRejoin.id
  ) {
    const { forceRejoin: _sent, ...rest } = session;
    session = rest;
  }

  return {
    commands,
    downlinkNeeded: input.adrAckReq || applied.downlinkNeeded || commands.length > 0,
    state: session === start && input.state !== undefined ? undefined : session,
    persist: session !== start && persistedForm(session) !== persistedForm(start),
    notes,
  };
}

/**
 * MAC states for which the planner found nothing to ask under a given profile, and until when
 * that holds (the next periodic status request). A state object is never changed in place, so
 * the answer stays true for that object.
 */
const quietPlans = new WeakMap<MacState, { profile: MacProfile; untilMs: number }>();

/**
 * When the profile's periodic DevStatusReq is next due, from the last one (an ISO time; a
 * session without a state counts from its activation); Infinity when the profile has none.
 */
export function nextStatusRequestMs(
  lastRequestAt: string | null,
  profile: NetworkDeviceProfile,
): number {
  const interval = profile.mac.devStatusIntervalMs ?? DEFAULT_DEV_STATUS_INTERVAL_MS;
  if (interval <= 0) return Number.POSITIVE_INFINITY;
  const last = lastRequestAt === null ? Number.NaN : Date.parse(lastRequestAt);
  return Number.isNaN(last) ? 0 : last + interval;
}

/** A new LinkADRReq block when ADR wants a change, or the pending one again when it is due. */
function planLinkAdr(
  session: SessionMac,
  input: UplinkMacInput,
  history: UplinkHistoryEntry[],
  at: string,
  notes: UplinkMacResult['notes'],
): { session: SessionMac } | undefined {
  const pending = session.adr.pendingLinkAdr;
  if (pending !== null) {
    const due = input.nFCntDown < pending.nFCntDown || input.nFCntDown > pending.nFCntDown;
    if (!due) return undefined;
    if (pending.attempts >= MAX_LINK_ADR_ATTEMPTS) {
      notes.push({
        level: 'WARNING',
        code: 'MAC_UNANSWERED',
        description: `LinkADRReq given up: no answer after ${pending.attempts} downlink(s); ADR observes ${ADR_HISTORY_LENGTH} more uplinks before asking again`,
      });
      // A device that does not answer is not asked again at once (that would be a downlink
      // per uplink, forever): ADR starts its observation again.
      history.length = 0;
      return {
        session: { ...session, adr: { ...session.adr, pendingLinkAdr: null } },
      };
    }
    return {
      session: {
        ...session,
        adr: {
          ...session.adr,
          pendingLinkAdr: {
            ...pending,
            sentAt: at,
            nFCntDown: input.nFCntDown,
            attempts: pending.attempts + 1,
          },
        },
      },
    };
  }
  const current = {
    dr: input.uplinkDr,
    txPowerIndex: session.adr.txPowerIndex,
    nbTrans: session.adr.nbTrans,
  };
  if (
    defaultAdrKeeps({
      region: input.region,
      profile: input.profile.adr,
      historyLength: history.length,
      ...current,
    })
  ) {
    return undefined;
  }
  const adrInput = { region: input.region, ...current, history, profile: input.profile.adr };
  const decision = defaultAdr.decide(adrInput);
  if (!adrDecisionChanges(adrInput, decision)) return undefined;
  const enabledChannels = enabledChannelIndices(session.mac.channels);
  const target = {
    dr: decision.dr,
    txPowerIndex: decision.txPowerIndex,
    nbTrans: decision.nbTrans,
    enabledChannels,
  };
  let commands: ReturnType<typeof buildLinkAdrRequests>;
  try {
    commands = buildLinkAdrRequests(input.region, target, session.mac.channels);
  } catch (error) {
    notes.push({
      level: 'WARNING',
      code: 'MAC_LINK_ADR',
      description: `ADR wanted ${decision.reason ?? 'a change'} but cannot ask for it: ${(error as Error).message}`,
    });
    return undefined;
  }
  notes.push({ level: 'INFO', code: 'ADR', description: decision.reason ?? 'ADR change' });
  return {
    session: {
      ...session,
      adr: {
        ...session.adr,
        pendingLinkAdr: { commands, target, sentAt: at, nFCntDown: input.nFCntDown, attempts: 1 },
      },
    },
  };
}

function outcomeNote(outcome: MacAnswerOutcome): UplinkMacResult['notes'][number] {
  return {
    level: outcome.status === 'applied' ? 'INFO' : 'WARNING',
    code: 'MAC_ANSWER',
    description: `${outcome.cid}: ${outcome.detail}`,
  };
}

function persistedForm(state: SessionMac): string {
  return JSON.stringify({ ...state, adr: { ...state.adr, dr: null } });
}
