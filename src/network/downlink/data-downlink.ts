import type { GatewayTxAck } from '../../gateway/types.js';
import { buildDataFrame } from '../../lorawan/data-frame.js';
import { encodeMacCommands, type MacCommand } from '../../lorawan/mac-commands.js';
import type { NetworkContext } from '../context.js';
import { deviceInfo } from '../device-info.js';
import type { GaletEvent } from '../events.js';
import { emitLogEvent } from '../log-event.js';
import { dataSessionKeys } from '../prepared-keys.js';
import type { DeviceSession, NetworkDevice, QueuedDownlink } from '../store.js';
import { nextApplicationFCntDown, queuedItemFate } from './blind-downlinks.js';
import { downlinkModulation } from './rx-windows.js';

/** FOpts holds at most 15 bytes of MAC commands; more go in an FPort-0 frame. */
export const MAX_FOPTS_LENGTH = 15;

export interface DataDownlinkRequest {
  session: DeviceSession;
  device: NetworkDevice;
  /** The data rate of the window it goes out in (limits the payload). */
  dataRate: number;
  /** Set ACK: answers a confirmed uplink. */
  ack: boolean;
  /** The uplink's 32-bit counter (the 1.1 MIC's ConfFCnt when ACK is set). */
  uplinkFCnt?: number;
  adr: boolean;
  macCommands: readonly MacCommand[];
  /** Send even when it carries nothing (ADRACKReq, a device repeating MAC answers). */
  force: boolean;
}

export interface BuiltDataDownlink {
  phyPayload: Uint8Array;
  queueItem?: QueuedDownlink;
  fCntDown: number;
}

/**
 * Builds the next data downlink of a device for one window: MAC commands first (in FOpts, or
 * alone in an FPort-0 frame when they exceed 15 bytes), then the next queued item if it fits
 * the window's data rate and no confirmed downlink waits for its ACK. Takes the frame counter
 * and marks the queue item sent. undefined when there is nothing to send.
 */
export async function buildDataDownlink(
  ctx: NetworkContext,
  request: DataDownlinkRequest,
): Promise<BuiltDataDownlink | undefined> {
  const { session, device } = request;
  const maxFrmPayload = ctx.region.maxPayloadSize(request.dataRate).frmPayload;
  let fOpts = encodeMacCommands(request.macCommands);
  const macInPayload = fOpts.length > MAX_FOPTS_LENGTH;

  let item: QueuedDownlink | undefined;
  const hasQueue = ctx.pendingDownlinks.has(device.devEui);
  // Read even when it cannot go in this frame: an operator-blind item this frame's counter
  // makes stale goes back to its provider now, not one uplink later.
  let next = hasQueue ? await ctx.store.nextPendingDownlink(device.devEui) : undefined;
  if (next !== undefined) {
    const current = ctx.sessions.byDevEui(device.devEui) ?? session;
    const fate = queuedItemFate(current.keys, next, nextApplicationFCntDown(current));
    if (fate.kind === 'refuse') {
      await refuseDownlink(ctx, device, next, fate.reason);
      next = undefined;
    } else if (
      fate.kind === 'send' &&
      !macInPayload &&
      next.data.length + fOpts.length <= maxFrmPayload &&
      (current.awaitingAck ?? null) === null
    ) {
      item = next;
    }
  }
  if (!request.ack && fOpts.length === 0 && item === undefined && !request.force) {
    if (next !== undefined) handBackIfStale(ctx, device, session, next);
    return undefined;
  }

  const pending = hasQueue ? await ctx.store.countPendingDownlinks(device.devEui) : 0;
  if (pending === 0 || (pending === 1 && item !== undefined)) {
    ctx.pendingDownlinks.delete(device.devEui);
  }
  const is11 = session.keys.lorawan === '1.1';
  const usesAppCounter = is11 && item !== undefined;
  // An operator-blind item encrypted for a later counter: the counters before it are skipped.
  const fCntDown = await ctx.store.takeFCntDown(
    device.devEui,
    usesAppCounter ? 'a' : 'n',
    ...(item?.encryptedFor == null ? [] : [item.encryptedFor.fCntDown]),
  );
  const cached = ctx.sessions.byDevEui(device.devEui);
  if (cached !== undefined) {
    if (usesAppCounter) cached.aFCntDown = Math.max(cached.aFCntDown, fCntDown + 1);
    else cached.nFCntDown = Math.max(cached.nFCntDown, fCntDown + 1);
  }
  if (item?.encryptedFor != null && item.encryptedFor.fCntDown !== fCntDown) {
    // The cache was behind the stored counter (should not happen): never send a payload under
    // another counter. No frame this window (the counter taken is skipped, which is allowed).
    ctx.logger.warn(
      { devEui: device.devEui, queueItemId: item.id, fCntDown },
      'operator-blind downlink held back: the stored counter differs from the cached one',
    );
    ctx.pendingDownlinks.add(device.devEui);
    handBackIfStale(ctx, device, session, item, usesAppCounter ? undefined : fCntDown + 1);
    return undefined;
  }
  if (next !== undefined && item === undefined) {
    handBackIfStale(ctx, device, session, next, usesAppCounter ? undefined : fCntDown + 1);
  }
  let fPort: number | undefined;
  let frmPayload: Uint8Array | undefined;
  if (macInPayload) {
    fPort = 0;
    frmPayload = fOpts.subarray(0, maxFrmPayload);
    fOpts = new Uint8Array(0);
  } else if (item !== undefined) {
    fPort = item.fPort;
    frmPayload = item.data;
  }
  const phyPayload = buildDataFrame(
    {
      mType: item?.confirmed === true ? 'ConfirmedDataDown' : 'UnconfirmedDataDown',
      devAddr: session.devAddr,
      fCtrl: {
        adr: request.adr,
        adrAckReq: false,
        ack: request.ack,
        classB: false,
        fPending: pending > (item === undefined ? 0 : 1),
      },
      fCnt: fCntDown,
      fOpts,
      ...(fPort === undefined ? {} : { fPort }),
      ...(frmPayload === undefined ? {} : { frmPayload }),
    },
    dataSessionKeys(session),
    request.uplinkFCnt === undefined ? {} : { confFCnt: request.uplinkFCnt },
  );
  if (item !== undefined) {
    await ctx.store.markDownlinkSent(item.id, fCntDown);
    item = { ...item, attempts: item.attempts + 1 };
    // Remembered at once, with the session: a gateway without TX_ACK (protocol 1) and a
    // restart must not lose it (the 1.1 MIC of the acknowledging uplink needs this FCntDown).
    if (item.confirmed)
      await setAwaitingAck(ctx, device.devEui, { queueItemId: item.id, fCntDown });
  }
  return { phyPayload, ...(item === undefined ? {} : { queueItem: item }), fCntDown };
}

/**
 * Hands an operator-blind item back to its provider when it is no longer encrypted for the
 * session's next application counter (`nFCntDownAfter`: the 1.0 counter after a frame that
 * did not carry it).
 */
function handBackIfStale(
  ctx: NetworkContext,
  device: NetworkDevice,
  session: DeviceSession,
  item: QueuedDownlink,
  nFCntDownAfter?: number,
): void {
  const current = ctx.sessions.byDevEui(device.devEui) ?? session;
  const envelope = current.keys.appSKeyEnvelope;
  if (envelope === undefined || item.encryptedFor == null || ctx.blindDownlinks === undefined) {
    return;
  }
  const counters = {
    keys: current.keys,
    aFCntDown: current.aFCntDown,
    nFCntDown: Math.max(current.nFCntDown, nFCntDownAfter ?? 0),
  };
  const fCntDown = nextApplicationFCntDown(counters);
  const fate = queuedItemFate(current.keys, item, fCntDown);
  if (fate.kind !== 'handBack') return;
  ctx.counters.increment('blindDownlinksHandedBack');
  ctx.blindDownlinks.handBack({
    applicationId: device.applicationId,
    devEui: device.devEui,
    itemId: item.id,
    devAddr: current.devAddr,
    fCntDown,
    appSKeyEnvelope: envelope,
    reason: fate.reason,
  });
}

/** An item this network can never transmit: failed, with a `log` event saying why. */
async function refuseDownlink(
  ctx: NetworkContext,
  device: NetworkDevice,
  item: QueuedDownlink,
  reason: string,
): Promise<void> {
  ctx.counters.increment('downlinksRefused');
  ctx.logger.warn({ devEui: device.devEui, queueItemId: item.id }, `downlink refused: ${reason}`);
  await ctx.store.markDownlinkFailed(item.id, reason);
  await emitLogEvent(ctx, device, 'ERROR', 'DOWNLINK_REFUSED', reason, { queueItemId: item.id });
}

/** Operator-blind sessions: the provider learns what became of its items (durably). */
async function reportToProvider(ctx: NetworkContext, event: GaletEvent): Promise<void> {
  if (ctx.blindDownlinks === undefined) return;
  if (ctx.sessions.byDevEui(event.devEui)?.keys.appSKeyEnvelope === undefined) return;
  await ctx.blindDownlinks.report(event);
}

export async function setAwaitingAck(
  ctx: NetworkContext,
  devEui: string,
  awaiting: DeviceSession['awaitingAck'],
): Promise<void> {
  await ctx.store.setAwaitingAck(devEui, awaiting);
  const session = ctx.sessions.byDevEui(devEui);
  if (session !== undefined) ctx.sessions.set({ ...session, awaitingAck: awaiting });
}

/** An item that was never transmitted goes back to the queue, first in line. */
export async function putBackDownlink(
  ctx: NetworkContext,
  item: QueuedDownlink,
  reason: string,
): Promise<void> {
  await ctx.store.requeueDownlink(item.id, reason);
  ctx.pendingDownlinks.add(item.devEui);
  if (ctx.sessions.byDevEui(item.devEui)?.awaitingAck?.queueItemId === item.id) {
    await setAwaitingAck(ctx, item.devEui, null);
  }
}

/**
 * Settles the confirmed downlink a device had to acknowledge. Acknowledged: done. Not (an
 * uplink without ACK, or the Class C timeout): back to the queue, first in line, while the
 * profile's attempts last, else marked failed. Both ends give an `ack` event.
 */
export async function settleConfirmedDownlink(
  ctx: NetworkContext,
  device: NetworkDevice,
  awaiting: NonNullable<DeviceSession['awaitingAck']>,
  outcome: { acknowledged: true } | { acknowledged: false; maxAttempts: number; why: string },
): Promise<void> {
  await setAwaitingAck(ctx, device.devEui, null);
  if (!outcome.acknowledged) {
    const item = await ctx.store.getDownlink(awaiting.queueItemId);
    if (item !== undefined && item.attempts < outcome.maxAttempts) {
      ctx.counters.increment('confirmedDownlinksRetried');
      await putBackDownlink(
        ctx,
        item,
        `${outcome.why} (attempt ${item.attempts} of ${outcome.maxAttempts}); sending again`,
      );
      return;
    }
  }
  if (outcome.acknowledged) {
    ctx.counters.increment('confirmedDownlinksAcked');
    await ctx.store.markDownlinkAcked(awaiting.queueItemId);
  } else {
    ctx.counters.increment('confirmedDownlinksUnacked');
    await ctx.store.markDownlinkFailed(awaiting.queueItemId, 'not acknowledged by the device');
  }
  const time = new Date(ctx.now()).toISOString();
  const event: GaletEvent = {
    type: 'ack',
    devEui: device.devEui,
    applicationId: device.applicationId,
    time,
    body: {
      time,
      deviceInfo: deviceInfo(device),
      queueItemId: awaiting.queueItemId,
      acknowledged: outcome.acknowledged,
      fCntDown: awaiting.fCntDown,
    },
  };
  await ctx.emit(event);
  await reportToProvider(ctx, event);
}

/** The `txack` event of a transmission the gateway acknowledged (or refused). */
export async function emitTxAckEvent(
  ctx: NetworkContext,
  device: NetworkDevice,
  ack: GatewayTxAck,
  sent: {
    queueItemId: string | null;
    fCntDown: number | null;
    window: string;
    frequencyHz: number;
    dataRate: number;
  },
): Promise<void> {
  const time = new Date(ctx.now()).toISOString();
  const event: GaletEvent = {
    type: 'txack',
    devEui: device.devEui,
    applicationId: device.applicationId,
    time,
    body: {
      downlinkId: ack.downlinkId,
      time,
      deviceInfo: deviceInfo(device),
      queueItemId: sent.queueItemId,
      fCntDown: sent.fCntDown,
      gatewayId: ack.gatewayId,
      status: ack.status,
      window: sent.window,
      txInfo: {
        frequency: sent.frequencyHz,
        power: ctx.region.downlinkTxPowerDbm(sent.frequencyHz),
        modulation: downlinkModulation(ctx.region.dataRate(sent.dataRate)),
      },
    },
  };
  await ctx.emit(event);
  if (sent.queueItemId !== null) await reportToProvider(ctx, event);
}
