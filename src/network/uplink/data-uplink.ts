import { type DeduplicatedUplink, isBetter } from '../../gateway/deduplicator.js';
import {
  type DecryptedDataFrame,
  decryptDataFrame,
  verifyDataMic,
} from '../../lorawan/data-frame.js';
import { isLorawanError } from '../../lorawan/errors.js';
import { checkFCnt } from '../../lorawan/fcnt.js';
import { decodeMacCommands, type MacCommand } from '../../lorawan/mac-commands.js';
import type { DataFrame } from '../../lorawan/phy-payload.js';
import { defaultAdrKeeps } from '../adr/default-adr.js';
import { appendUplinkInPlace, type UplinkHistoryEntry } from '../adr/history.js';
import type { NetworkContext } from '../context.js';
import { deviceInfo } from '../device-info.js';
import type { NetworkDeviceProfile } from '../device-profile.js';
import type { ClassAScheduler } from '../downlink/class-a.js';
import { chirpstackRxInfo, chirpstackTxInfo } from '../events.js';
import { emitLogEvent } from '../log-event.js';
import { deviceTimeAnswer, unixMsToGpsMs } from '../mac/device-time.js';
import { linkCheckAnswer } from '../mac/link-check.js';
import { batteryLevel } from '../mac/mac-state.js';
import { type SessionMac, sessionMacOf, trustSessionMac } from '../mac/session-mac.js';
import { dataSessionKeys } from '../prepared-keys.js';
import type { DeviceSession, NetworkDevice } from '../store.js';
import {
  type FramePrecheck,
  framePrecheckOf,
  maxFCntGapOf,
  precheckVersion,
} from './frame-precheck.js';
import { nextStatusRequestMs, processUplinkMac } from './mac-layer.js';

interface Match {
  session: DeviceSession;
  fCnt: number;
  status: 'new' | 'retransmission';
  /** Set when the gateway worker checked the MIC (and decrypted) for this session and counter. */
  precheck?: FramePrecheck;
}

/** LoRaWAN 1.0.4 and 1.1 dropped MAX_FCNT_GAP: the 32-bit MIC is the replay protection there. */
const maxFCntGap = maxFCntGapOf;

/**
 * The gateway worker's check of this frame (frame-precheck.ts), when it vouches for the
 * device's current session (same keys, same DevAddr) and for the counter this thread rebuilds
 * from its own last counter: the MIC is not computed again. Anything else: undefined, and the
 * whole match runs here.
 */
function prechecked(ctx: NetworkContext, frame: DataFrame, annotation: unknown): Match | undefined {
  const precheck = framePrecheckOf(annotation);
  if (precheck === undefined) return undefined;
  const session = ctx.sessions.byDevEui(precheck.devEui);
  if (
    session === undefined ||
    session.devAddr !== frame.devAddr ||
    session.keys.lorawan !== '1.0' ||
    precheckVersion(session.keys) !== precheck.version
  ) {
    return undefined;
  }
  const check = checkFCnt(frame.fCnt, session.fCntUp ?? undefined, {
    maxGap: maxFCntGap(session),
  });
  if (
    (check.status !== 'new' && check.status !== 'retransmission') ||
    check.fCnt !== precheck.fCnt
  ) {
    return undefined;
  }
  ctx.counters.increment('uplinksPrechecked');
  return { session, fCnt: check.fCnt, status: check.status, precheck };
}

/**
 * Whether the frame's MIC verifies with a session for a 32-bit counter. TxCh is in the 1.1 MIC
 * only, and the channel index may be ambiguous there: each candidate is tried; 1.0 frames are
 * checked once.
 */
function micVerifier(
  ctx: NetworkContext,
  session: DeviceSession,
  frame: DataFrame,
  micInput: Uint8Array,
  context: { confFCnt: number; uplinkDr: number; uplinkFrequencyHz: number },
): (fCnt: number) => boolean {
  const keys = dataSessionKeys(session);
  const channels =
    session.keys.lorawan === '1.1'
      ? uplinkChannelIndices(ctx, session, context.uplinkFrequencyHz)
      : [0];
  return (fCnt) =>
    channels.some((txCh) =>
      verifyDataMic(frame, micInput, keys, fCnt, {
        confFCnt: context.confFCnt,
        txDr: context.uplinkDr,
        txCh,
      }),
    );
}

/**
 * Session matching (as ChirpStack does it): every session with the frame's DevAddr is a
 * candidate; the 32-bit counter is rebuilt from each one's last counter and the MIC decides.
 * A frame whose MIC only verifies with a counter at or below the last one is a replay.
 */
function matchSession(
  ctx: NetworkContext,
  scheduler: ClassAScheduler,
  frame: DataFrame,
  micInput: Uint8Array,
  uplinkDr: number,
  uplinkFrequencyHz: number,
): Match | 'replayed' | 'gapTooLarge' | undefined {
  let outcome: 'replayed' | 'gapTooLarge' | undefined;
  for (const session of ctx.sessions.byDevAddr(frame.devAddr)) {
    const verifies = micVerifier(ctx, session, frame, micInput, {
      confFCnt: scheduler.awaitingAckFCnt(session.devEui) ?? 0,
      uplinkDr,
      uplinkFrequencyHz,
    });
    const check = checkFCnt(frame.fCnt, session.fCntUp ?? undefined, {
      maxGap: maxFCntGap(session),
    });
    if (check.status === 'new' || check.status === 'retransmission') {
      if (verifies(check.fCnt)) {
        return { session, fCnt: check.fCnt, status: check.status };
      }
    } else if (check.status === 'gapTooLarge') {
      if (verifies(check.fCnt)) outcome = 'gapTooLarge';
    }
    // An old counter in the current 16-bit epoch: valid MIC means someone replays a frame.
    const last = session.fCntUp;
    if (last !== null) {
      const old = last - (last % 0x1_0000) + frame.fCnt;
      if (old < last && verifies(old)) outcome = 'replayed';
    }
  }
  return outcome;
}

export async function handleDataUplink(
  ctx: NetworkContext,
  scheduler: ClassAScheduler,
  uplink: DeduplicatedUplink,
  uplinkDr: number,
  frame: DataFrame,
  micInput: Uint8Array,
  deduplicationId: string,
): Promise<void> {
  if (
    ctx.sessions.byDevAddr(frame.devAddr).length === 0 &&
    previousSessionsWith(ctx, frame.devAddr).length === 0
  ) {
    ctx.counters.increment('uplinksUnknownDevAddr');
    ctx.logger.debug(
      { devAddr: frame.devAddr.toString(16).padStart(8, '0') },
      'uplink from unknown DevAddr dropped',
    );
    return;
  }
  const match =
    prechecked(ctx, frame, uplink.annotation) ??
    matchSession(ctx, scheduler, frame, micInput, uplinkDr, uplink.txInfo.frequencyHz);
  if (
    match === undefined &&
    (await acceptOnPreviousSession(ctx, uplink, uplinkDr, frame, micInput, deduplicationId))
  ) {
    return;
  }
  if (match === undefined || match === 'replayed' || match === 'gapTooLarge') {
    const counter =
      match === 'replayed'
        ? 'uplinksReplayed'
        : match === 'gapTooLarge'
          ? 'uplinksFCntGapTooLarge'
          : 'uplinksMicFailed';
    ctx.counters.increment(counter);
    ctx.logger.info(
      { devAddr: frame.devAddr.toString(16).padStart(8, '0'), fCnt: frame.fCnt, reason: counter },
      'uplink dropped',
    );
    return;
  }
  const { session, fCnt } = match;
  const device = await ctx.devices.get(session.devEui);
  if (device === undefined) return;
  // The device uses the session of its last rejoin: the one before is over.
  ctx.previousSessions.delete(session.devEui);
  const confirmed = frame.mType === 'ConfirmedDataUp';

  if (match.status === 'retransmission') {
    ctx.counters.increment('uplinksRetransmitted');
    // The device did not hear our ACK: answer again, without a second event.
    if (confirmed) {
      await scheduler.answer(uplink, uplinkDr, {
        kind: 'data',
        session,
        device,
        ack: true,
        uplinkFCnt: fCnt,
        adr: frame.fCtrl.adr,
        macCommands: [],
        force: false,
      });
    }
    return;
  }

  const { decrypted, event } = upEvent(ctx, {
    device,
    session,
    frame,
    fCnt,
    uplink,
    uplinkDr,
    deduplicationId,
    precheck: match.precheck,
  });
  // The counter moves and the event is stored in one write: an accepted uplink is never lost.
  if (!(await ctx.store.commitUplink(session.devEui, session.fCntUp, fCnt, event))) {
    ctx.counters.increment('uplinksFCntRace');
    const fresh = await ctx.store.getSession(session.devEui);
    if (fresh !== undefined) ctx.sessions.set(fresh);
    return;
  }
  // Uplinks of one DevAddr are handled one at a time, so the cached session is updated in place:
  // a copy per uplink would be one more long-lived object for the garbage collector.
  const cached = ctx.sessions.byDevEui(session.devEui);
  if (cached === session) {
    session.fCntUp = fCnt;
  } else if (cached === undefined || (cached.fCntUp ?? -1) < fCnt) {
    ctx.sessions.set({ ...session, fCntUp: fCnt });
  }
  const updated: DeviceSession = ctx.sessions.byDevEui(session.devEui) ?? {
    ...session,
    fCntUp: fCnt,
  };
  ctx.counters.increment('uplinksAccepted');
  ctx.observeUplinkLatency(uplink, ctx.now());
  ctx.bus.publish(event);
  // Kept while the answer is scheduled: a Class A window does not wait for the outbox write.
  const forwarded = forwardEncrypted(ctx, { device, session, frame, fCnt, event });

  const macBytes =
    frame.fPort === 0 ? (decrypted.frmPayload ?? new Uint8Array(0)) : decrypted.fOpts;
  const { commands, answers } = await answerMacCommands(ctx, device, uplink, uplinkDr, macBytes);
  const profile = await ctx.profiles.forDevice(device);
  await scheduler.settleAcknowledgement(
    device,
    frame.fCtrl.ack,
    profile.confirmedDownlink.maxAttempts,
  );
  const mac = await runMacLayer(ctx, {
    session: updated,
    device,
    profile,
    uplink,
    uplinkDr,
    fCnt,
    adrBit: frame.fCtrl.adr,
    adrAckReq: frame.fCtrl.adrAckReq,
    commands,
    answers,
  });
  const current = ctx.sessions.byDevEui(session.devEui) ?? updated;
  if (device.deviceClass === 'C' || sessionMacOf(ctx.region, current)?.mac.deviceClass === 'C') {
    rememberBestGateway(ctx, device.devEui, uplink);
  }

  await scheduler.answer(uplink, uplinkDr, {
    kind: 'data',
    session: current,
    device,
    ack: confirmed,
    uplinkFCnt: fCnt,
    adr: frame.fCtrl.adr,
    macCommands: mac.commands,
    force: mac.downlinkNeeded,
  });
  // A Class C device may take the rest of its queue at once (after this uplink's windows), and
  // a confirmed downlink sent in those windows gets the Class C acknowledgement timeout.
  if (
    ctx.pendingDownlinks.has(device.devEui) ||
    (ctx.sessions.byDevEui(device.devEui)?.awaitingAck ?? null) !== null
  ) {
    ctx.triggerClassC(device.devEui);
  }
  await forwarded;
}

/** The `up` event of an accepted uplink (ChirpStack v4 shape), with the decrypted frame. */
function upEvent(
  ctx: NetworkContext,
  params: {
    device: NetworkDevice;
    session: DeviceSession;
    frame: DataFrame;
    fCnt: number;
    uplink: DeduplicatedUplink;
    uplinkDr: number;
    deduplicationId: string;
    /** The gateway worker decrypted the frame already (1.0: FOpts travel in clear). */
    precheck?: FramePrecheck | undefined;
  },
) {
  const { device, frame, uplink, precheck } = params;
  const decrypted: DecryptedDataFrame =
    precheck === undefined
      ? decryptDataFrame(frame, dataSessionKeys(params.session), params.fCnt)
      : {
          fOpts: frame.fOpts,
          frmPayload: frame.fPort === undefined ? new Uint8Array(0) : precheck.frmPayload,
        };
  const time = new Date(ctx.now()).toISOString();
  const body: Record<string, unknown> = {
    deduplicationId: params.deduplicationId,
    time,
    deviceInfo: deviceInfo(device),
    devAddr: frame.devAddr.toString(16).padStart(8, '0'),
    adr: frame.fCtrl.adr,
    dr: params.uplinkDr,
    fCnt: params.fCnt,
    fPort: frame.fPort ?? null,
    confirmed: frame.mType === 'ConfirmedDataUp',
    rxInfo: uplink.rxInfo.map(chirpstackRxInfo),
    txInfo: chirpstackTxInfo(uplink.txInfo),
  };
  if (frame.fPort !== undefined && frame.fPort > 0) {
    if (params.session.keys.appSKey === undefined) {
      // Operator-blind: without the AppSKey the FRMPayload is shown as it travelled, encrypted.
      body['frmPayload'] = Buffer.from(frame.frmPayload ?? new Uint8Array(0)).toString('base64');
    } else if (decrypted.frmPayload !== undefined) {
      body['data'] = Buffer.from(decrypted.frmPayload).toString('base64');
    }
  }
  const event = {
    type: 'up' as const,
    devEui: device.devEui,
    applicationId: device.applicationId,
    time,
    body,
  };
  return { decrypted, event };
}

/**
 * An operator-blind session's uplink (FPort > 0) goes to the application role with its
 * encrypted FRMPayload and the AppSKey envelope. A failure (e.g. the provider's outbox is full)
 * is counted and logged: the uplink itself is stored already.
 */
async function forwardEncrypted(
  ctx: NetworkContext,
  params: {
    device: NetworkDevice;
    session: DeviceSession;
    frame: DataFrame;
    fCnt: number;
    event: { body: Record<string, unknown> };
  },
): Promise<void> {
  const { session, frame } = params;
  const envelope = session.keys.appSKeyEnvelope;
  if (
    envelope === undefined ||
    ctx.forwardUplink === undefined ||
    frame.fPort === undefined ||
    frame.fPort === 0
  ) {
    return;
  }
  try {
    await ctx.forwardUplink({
      applicationId: params.device.applicationId,
      devEui: session.devEui,
      devAddr: frame.devAddr,
      fCnt: params.fCnt,
      fPort: frame.fPort,
      frmPayload: frame.frmPayload ?? new Uint8Array(0),
      appSKeyEnvelope: envelope,
      event: params.event.body,
    });
    ctx.counters.increment('uplinksForwarded');
  } catch (error) {
    ctx.counters.increment('uplinksForwardFailed');
    ctx.logger.error(
      { err: error, devEui: session.devEui, applicationId: params.device.applicationId },
      'uplink not forwarded to the application role',
    );
  }
}

/** Sessions replaced by a rejoin whose device may not have heard the JoinAccept yet. */
function previousSessionsWith(ctx: NetworkContext, devAddr: number): DeviceSession[] {
  if (ctx.previousSessions.size === 0) return [];
  const found: DeviceSession[] = [];
  for (const session of ctx.previousSessions.values()) {
    if (session.devAddr === devAddr) found.push(session);
  }
  return found;
}

/**
 * LoRaWAN 1.1 §6.2.4: after a rejoin the network keeps the old security context until the
 * device uses the new one. A frame that only the old session verifies comes from a device that
 * missed the JoinAccept: its data is stored (nothing accepted is lost), the old counter moves in
 * memory, and no downlink answers it (the device will rejoin again). True when it was such a
 * frame.
 */
async function acceptOnPreviousSession(
  ctx: NetworkContext,
  uplink: DeduplicatedUplink,
  uplinkDr: number,
  frame: DataFrame,
  micInput: Uint8Array,
  deduplicationId: string,
): Promise<boolean> {
  for (const previous of previousSessionsWith(ctx, frame.devAddr)) {
    const check = checkFCnt(frame.fCnt, previous.fCntUp ?? undefined, {
      maxGap: maxFCntGap(previous),
    });
    if (check.status !== 'new') continue;
    const verifies = micVerifier(ctx, previous, frame, micInput, {
      confFCnt: 0,
      uplinkDr,
      uplinkFrequencyHz: uplink.txInfo.frequencyHz,
    });
    if (!verifies(check.fCnt)) continue;
    const device = await ctx.devices.get(previous.devEui);
    if (device === undefined) return false;
    const { event } = upEvent(ctx, {
      device,
      session: previous,
      frame,
      fCnt: check.fCnt,
      uplink,
      uplinkDr,
      deduplicationId,
    });
    previous.fCntUp = check.fCnt;
    await ctx.emit(event);
    ctx.counters.increment('uplinksAccepted');
    ctx.counters.increment('uplinksOnPreviousSession');
    ctx.observeUplinkLatency(uplink, ctx.now());
    await emitLogEvent(
      ctx,
      device,
      'WARNING',
      'REJOIN_NOT_TAKEN',
      'uplink in the session from before the last rejoin: the device missed the JoinAccept; data stored, no downlink',
    );
    return true;
  }
  return false;
}

/** Class C downlinks go through the best gateway of the latest uplink (kept for Class C only). */
function rememberBestGateway(
  ctx: NetworkContext,
  devEui: string,
  uplink: DeduplicatedUplink,
): void {
  let best = uplink.rxInfo[0];
  for (const rx of uplink.rxInfo) if (best === undefined || isBetter(rx, best)) best = rx;
  if (best === undefined) return;
  const known = ctx.lastUplinkGateway.get(devEui);
  if (known === undefined) {
    ctx.lastUplinkGateway.set(devEui, {
      gatewayId: best.gatewayId,
      snr: best.snr,
      rssi: best.rssi,
      atMs: ctx.now(),
    });
  } else {
    known.gatewayId = best.gatewayId;
    known.snr = best.snr;
    known.rssi = best.rssi;
    known.atMs = ctx.now();
  }
}

interface MacLayerInput {
  session: DeviceSession;
  device: NetworkDevice;
  profile: NetworkDeviceProfile;
  uplink: DeduplicatedUplink;
  uplinkDr: number;
  fCnt: number;
  adrBit: boolean;
  adrAckReq: boolean;
  commands: MacCommand[];
  answers: MacCommand[];
}

/**
 * The MAC layer for an accepted uplink: answers to earlier requests, ADR, new requests. Most
 * uplinks of most devices need none of it (no ADR bit, no MAC command, nothing the profile
 * wants changed), and skip it without building a state.
 */
async function runMacLayer(
  ctx: NetworkContext,
  input: MacLayerInput,
): Promise<{ commands: MacCommand[]; downlinkNeeded: boolean }> {
  const { session, device, profile } = input;
  const stored = sessionMacOf(ctx.region, session);
  let maxSnrDb = Number.NEGATIVE_INFINITY;
  for (const rx of input.uplink.rxInfo) maxSnrDb = Math.max(maxSnrDb, rx.snr);
  if (
    stored === undefined &&
    session.macState === null &&
    input.commands.length === 0 &&
    !input.adrAckReq &&
    !profileWantsChanges(profile, session, ctx.now())
  ) {
    const quiet = { commands: input.answers, downlinkNeeded: input.answers.length > 0 };
    if (!input.adrBit || !profile.adr.enabled) return quiet;
    // A device still at its activation settings (full power, NbTrans 1): until its history is
    // full, ADR could only bring a data rate outside the profile's range back into it.
    const history = adrHistoryOf(ctx, device.devEui, true);
    appendUplinkInPlace(history, {
      fCnt: input.fCnt,
      maxSnrDb,
      gatewayCount: input.uplink.rxInfo.length,
      dr: input.uplinkDr,
      txPowerIndex: 0,
    });
    if (
      defaultAdrKeeps({
        region: ctx.region,
        profile: profile.adr,
        historyLength: history.length,
        dr: input.uplinkDr,
        txPowerIndex: 0,
        nbTrans: 1,
      })
    ) {
      return quiet;
    }
  }
  const result = processUplinkMac({
    region: ctx.region,
    macVersion: session.macVersion,
    deviceClass: device.deviceClass,
    profile: withForcedRejoin(profile, stored),
    state: stored,
    activation: session,
    history: adrHistoryOf(ctx, device.devEui, input.adrBit && profile.adr.enabled),
    uplinkDr: input.uplinkDr,
    fCnt: input.fCnt,
    adrBit: input.adrBit,
    adrAckReq: input.adrAckReq,
    maxSnrDb,
    gatewayCount: input.uplink.rxInfo.length,
    commands: input.commands,
    answers: input.answers,
    // Every downlink takes NFCntDown or (1.1, with an application payload) AFCntDown.
    nFCntDown: session.nFCntDown + session.aFCntDown,
    nowMs: ctx.now(),
  });
  if (result.state !== undefined) {
    const state = trustSessionMac(result.state);
    if (result.persist) {
      await ctx.store.saveMacState(device.devEui, state);
      ctx.counters.increment('macStatesSaved');
    }
    const cached = ctx.sessions.byDevEui(device.devEui);
    if (cached !== undefined) cached.macState = state;
    const status = result.state.mac.lastDevStatus;
    if (status !== null && status !== stored?.mac.lastDevStatus) {
      await emitStatusEvent(ctx, device, status);
    }
  }
  if (result.commands.some((command) => command.cid === 'LinkADRReq')) {
    ctx.counters.increment('adrRequests');
  }
  for (const note of result.notes) {
    await emitLogEvent(ctx, device, note.level, note.code, note.description);
  }
  return { commands: result.commands, downlinkNeeded: result.downlinkNeeded };
}

/** The device profile with the ForceRejoinReq the API asked for this device, if one waits. */
function withForcedRejoin(
  profile: NetworkDeviceProfile,
  state: SessionMac | undefined,
): NetworkDeviceProfile {
  const forceRejoin = state?.forceRejoin;
  if (forceRejoin === undefined || state?.mac.lastForceRejoin?.id === forceRejoin.id)
    return profile;
  return { ...profile, mac: { ...profile.mac, forceRejoin } };
}

/** The device's ADR history, created when the uplink feeds ADR (else a throwaway empty one). */
function adrHistoryOf(ctx: NetworkContext, devEui: string, feedsAdr: boolean) {
  const known = ctx.adrHistories.get(devEui);
  if (known !== undefined || !feedsAdr) return known ?? [];
  const created: UplinkHistoryEntry[] = [];
  ctx.adrHistories.set(devEui, created);
  return created;
}

/**
 * Whether a device without a MAC state yet would get a request from its profile: any MAC
 * setting beyond the status interval, or a status request that is due.
 */
function profileWantsChanges(
  profile: NetworkDeviceProfile,
  session: DeviceSession,
  nowMs: number,
): boolean {
  for (const key of Object.keys(profile.mac)) {
    if (key !== 'devStatusIntervalMs') return true;
  }
  return nowMs >= nextStatusRequestMs(session.createdAt, profile);
}

/** ChirpStack v4's `status` event, from a DevStatusAns. */
async function emitStatusEvent(
  ctx: NetworkContext,
  device: NetworkDevice,
  status: { battery: number; margin: number; at: string },
): Promise<void> {
  const level = batteryLevel(status.battery);
  await ctx.emit({
    type: 'status',
    devEui: device.devEui,
    applicationId: device.applicationId,
    time: status.at,
    body: {
      time: status.at,
      deviceInfo: deviceInfo(device),
      margin: status.margin,
      externalPowerSource: level.kind === 'external-power',
      batteryLevelUnavailable: level.kind === 'unknown',
      batteryLevel: level.kind === 'level' ? level.percent : 0,
    },
  });
}

/**
 * The index the uplink's channel may have in the device's channel plan (LoRaWAN 1.1 §4.4: TxCh
 * is part of the MIC), most likely first; usually one. The plan is the session's: channels that
 * NewChannelReq added or moved are not the CFList's. A device uses a channel as soon as it
 * receives the NewChannelReq, so the uplink carrying its answer may already go out on it: a
 * pending request's index comes first, then the one the network's state knows (the device may
 * have missed the request). Without a MAC state, the plan every device starts with.
 */
function uplinkChannelIndices(
  ctx: NetworkContext,
  session: DeviceSession,
  frequencyHz: number,
): number[] {
  const indices: number[] = [];
  const mac = sessionMacOf(ctx.region, session)?.mac;
  if (mac !== undefined) {
    for (const pending of mac.pending) {
      const command = pending.command;
      if (command.cid === 'NewChannelReq' && command.frequencyHz === frequencyHz) {
        indices.push(command.chIndex);
      }
    }
    const known = mac.channels.findIndex((channel) => channel?.frequencyHz === frequencyHz);
    if (known !== -1) indices.push(known);
  }
  if (indices.length === 0) {
    const planned = ctx.channelPlan.findIndex((channel) => channel?.frequencyHz === frequencyHz);
    indices.push(planned === -1 ? 0 : planned);
  }
  return [...new Set(indices)];
}

/** Answers the device-initiated MAC commands this server handles; logs the rest. */
async function answerMacCommands(
  ctx: NetworkContext,
  device: NetworkDevice,
  uplink: DeduplicatedUplink,
  uplinkDr: number,
  bytes: Uint8Array,
): Promise<{ commands: MacCommand[]; answers: MacCommand[] }> {
  if (bytes.length === 0) return { commands: [], answers: [] };
  let commands: MacCommand[];
  try {
    commands = decodeMacCommands(bytes, 'uplink');
  } catch (error) {
    if (!isLorawanError(error)) throw error;
    ctx.counters.increment('macCommandsMalformed');
    await emitLogEvent(ctx, device, 'WARNING', 'MAC_COMMANDS', error.message);
    return { commands: [], answers: [] };
  }
  const answers: MacCommand[] = [];
  for (const command of commands) {
    switch (command.cid) {
      case 'LinkCheckReq': {
        const best = Math.max(...uplink.rxInfo.map((rx) => rx.snr));
        const dataRate = ctx.region.dataRate(uplinkDr);
        const spreadingFactor = dataRate.modulation === 'LORA' ? dataRate.spreadingFactor : 7;
        answers.push(linkCheckAnswer(best, spreadingFactor, uplink.rxInfo.length));
        break;
      }
      case 'DeviceTimeReq': {
        const gps = uplink.rxInfo.find(
          (rx) => rx.timeSinceGpsEpochMs !== undefined,
        )?.timeSinceGpsEpochMs;
        answers.push(deviceTimeAnswer(gps ?? unixMsToGpsMs(uplink.firstReceivedAtMs)));
        break;
      }
      // LoRaWAN 1.1 §5.10 / §5.1: a 1.1 device repeats RekeyInd (after OTAA) or ResetInd (ABP)
      // until the network confirms with the minor version both speak (1 = LoRaWAN 1.1).
      case 'RekeyInd':
        answers.push({ cid: 'RekeyConf', minorVersion: Math.min(command.minorVersion, 1) });
        break;
      case 'ResetInd':
        answers.push({ cid: 'ResetConf', minorVersion: Math.min(command.minorVersion, 1) });
        break;
      default:
        // Answers to the network's requests: the MAC layer (mac-layer.ts) reads them.
        break;
    }
  }
  return { commands, answers };
}
