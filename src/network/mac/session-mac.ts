import type { LinkADRReq } from '../../lorawan/mac-commands.js';
import type { ChannelPlan, Region } from '../../lorawan/regions/index.js';
import type { MacVersion } from '../session.js';
import { type DeviceClass, initialMacState, type MacState, validateMacState } from './mac-state.js';
import type { ForceRejoinRequest } from './requests.js';

/**
 * What the network keeps of one session's MAC layer, stored with the session as JSON: the
 * device settings and pending requests of `mac-state.ts`, and the ADR part (data rate, TX power,
 * NbTrans and the LinkADRReq block waiting for its answer), which `link-adr.ts` plans and reads.
 * The ADR uplink history is not here: it lives in memory only (see uplink/mac-layer.ts).
 */
export interface SessionMac {
  /** Layout version of this JSON document. */
  v: 1;
  mac: MacState;
  adr: AdrState;
  /**
   * LoRaWAN 1.1: RJcount0 of the last type 0/2 RejoinRequest accepted in this session (-1: none
   * yet); a RejoinRequest must count above it.
   */
  lastRjCount0?: number;
  /**
   * LoRaWAN 1.1: a ForceRejoinReq asked through the API, sent with the next downlink (once per
   * id) and removed once sent.
   */
  forceRejoin?: ForceRejoinRequest;
}

export interface AdrState {
  /** The data rate of the device's latest uplink (null before one). */
  dr: number | null;
  /** TXPower index the device uses (0 = max EIRP after a join or a reset). */
  txPowerIndex: number;
  nbTrans: number;
  pendingLinkAdr: PendingLinkAdr | null;
}

export interface PendingLinkAdr {
  commands: LinkADRReq[];
  /** What the block asks for, so an accepted answer can be applied as a whole. */
  target: { dr: number; txPowerIndex: number; nbTrans: number; enabledChannels: number[] };
  sentAt: string;
  nFCntDown: number;
  attempts: number;
}

export interface InitialSessionMacOptions {
  macVersion: MacVersion;
  deviceClass: DeviceClass;
  cfListChannels?: ChannelPlan;
  rx1DelaySeconds?: number;
  rx1DrOffset?: number;
  rx2Dr?: number;
  rx2FrequencyHz?: number;
}

export function initialSessionMac(region: Region, options: InitialSessionMacOptions): SessionMac {
  return {
    v: 1,
    mac: initialMacState(region, options),
    adr: { dr: null, txPowerIndex: 0, nbTrans: 1, pendingLinkAdr: null },
  };
}

/**
 * The MAC state of a session that has none yet (ABP, or stored before the MAC layer): the
 * settings it was activated with, and its first status request one interval after activation
 * rather than with the first uplink.
 */
export function activationSessionMac(
  region: Region,
  session: {
    macVersion: MacVersion;
    rx1DelaySeconds: number;
    rx1DrOffset: number;
    rx2Dr: number;
    rx2FrequencyHz: number;
    createdAt: string;
  },
  deviceClass: DeviceClass,
): SessionMac {
  const state = initialSessionMac(region, {
    macVersion: session.macVersion,
    deviceClass,
    rx1DelaySeconds: session.rx1DelaySeconds,
    rx1DrOffset: session.rx1DrOffset,
    rx2Dr: session.rx2Dr,
    rx2FrequencyHz: session.rx2FrequencyHz,
  });
  state.mac.lastDevStatusRequestAt = session.createdAt;
  return state;
}

/**
 * A stored MAC state, checked: anything that is not a valid state for this region (an older
 * layout, a hand-edited row) gives undefined, and the caller starts again from the defaults,
 * as after a join. Never throws.
 */
export function sessionMacFromJson(value: unknown, region: Region): SessionMac | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const candidate = value as Partial<SessionMac>;
  if (candidate.v !== 1 || typeof candidate.mac !== 'object' || candidate.mac === null) {
    return undefined;
  }
  const adr = candidate.adr;
  if (
    typeof adr !== 'object' ||
    adr === null ||
    !(adr.dr === null || (Number.isInteger(adr.dr) && adr.dr >= 0 && adr.dr <= 15)) ||
    !(Number.isInteger(adr.txPowerIndex) && adr.txPowerIndex >= 0 && adr.txPowerIndex <= 15) ||
    !(Number.isInteger(adr.nbTrans) && adr.nbTrans >= 1 && adr.nbTrans <= 15) ||
    !(adr.pendingLinkAdr === null || isPendingLinkAdr(adr.pendingLinkAdr))
  ) {
    return undefined;
  }
  try {
    if (validateMacState(candidate.mac, region).length > 0) return undefined;
  } catch {
    return undefined;
  }
  return candidate as SessionMac;
}

function isPendingLinkAdr(value: unknown): value is PendingLinkAdr {
  if (typeof value !== 'object' || value === null) return false;
  const pending = value as Partial<PendingLinkAdr>;
  return (
    Array.isArray(pending.commands) &&
    pending.commands.every((c) => typeof c === 'object' && c !== null && c.cid === 'LinkADRReq') &&
    typeof pending.target === 'object' &&
    pending.target !== null &&
    Array.isArray(pending.target.enabledChannels) &&
    typeof pending.sentAt === 'string' &&
    Number.isInteger(pending.nFCntDown) &&
    Number.isInteger(pending.attempts)
  );
}

/** The indices of the enabled channels, ascending. */
export function enabledChannelIndices(channels: ChannelPlan): number[] {
  const out: number[] = [];
  channels.forEach((channel, index) => {
    if (channel?.enabled) out.push(index);
  });
  return out;
}

const checked = new WeakSet<object>();

/**
 * The session's MAC state, checked once per object (the cache keeps the same object until it
 * changes). undefined when the session has none yet or the stored one is not valid here.
 */
export function sessionMacOf(
  region: Region,
  session: { macState: unknown },
): SessionMac | undefined {
  const value = session.macState;
  if (typeof value !== 'object' || value === null) return undefined;
  if (checked.has(value)) return value as SessionMac;
  const parsed = sessionMacFromJson(value, region);
  if (parsed !== undefined) checked.add(parsed);
  return parsed;
}

/** Marks a state built by the MAC layer itself as checked. */
export function trustSessionMac(state: SessionMac): SessionMac {
  checked.add(state);
  return state;
}

/** The receive-window settings the device uses now: its MAC state's, else the activation's. */
export function rxSettingsOf(
  region: Region,
  session: {
    macState: unknown;
    rx1DelaySeconds: number;
    rx1DrOffset: number;
    rx2Dr: number;
    rx2FrequencyHz: number;
  },
): { rx1DelaySeconds: number; rx1DrOffset: number; rx2Dr: number; rx2FrequencyHz: number } {
  return sessionMacOf(region, session)?.mac ?? session;
}

/** What the API shows of a session's MAC state: the device's settings as the network knows them. */
export interface SessionMacView {
  dataRate: number | null;
  txPowerIndex: number;
  nbTrans: number;
  rx1DelaySeconds: number;
  rx1DrOffset: number;
  rx2Dr: number;
  rx2FrequencyHz: number;
  channels: {
    index: number;
    frequencyHz: number;
    minDr: number;
    maxDr: number;
    enabled: boolean;
    /** RX1 downlink frequency set with DlChannelReq, when it differs from the uplink one. */
    downlinkFrequencyHz?: number;
  }[];
  maxDutyCycle: number;
  deviceClass: DeviceClass;
  /** MAC requests sent and not answered yet. */
  pendingMacCommands: string[];
  /** The last DevStatusAns: battery 0 = external power, 1-254 level, 255 unknown; margin dB. */
  deviceStatus: { battery: number; margin: number; at: string } | null;
}

export function sessionMacView(region: Region, macState: unknown): SessionMacView | null {
  const state = sessionMacFromJson(macState, region);
  if (state === undefined) return null;
  const { mac, adr } = state;
  const channels: SessionMacView['channels'] = [];
  mac.channels.forEach((channel, index) => {
    if (channel === null) return;
    const downlinkFrequencyHz = mac.dlChannelFrequencies[index];
    channels.push({
      index,
      ...channel,
      ...(typeof downlinkFrequencyHz === 'number' ? { downlinkFrequencyHz } : {}),
    });
  });
  return {
    dataRate: adr.dr,
    txPowerIndex: adr.txPowerIndex,
    nbTrans: adr.nbTrans,
    rx1DelaySeconds: mac.rx1DelaySeconds,
    rx1DrOffset: mac.rx1DrOffset,
    rx2Dr: mac.rx2Dr,
    rx2FrequencyHz: mac.rx2FrequencyHz,
    channels,
    maxDutyCycle: mac.maxDutyCycle,
    deviceClass: mac.deviceClass,
    pendingMacCommands: [
      ...mac.pending.map((pending) => pending.command.cid),
      ...(adr.pendingLinkAdr === null ? [] : ['LinkADRReq']),
    ],
    deviceStatus: mac.lastDevStatus,
  };
}
