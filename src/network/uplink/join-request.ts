import type { DeduplicatedUplink } from '../../gateway/deduplicator.js';
import type { JoinAnswer } from '../../join/join-server.js';
import type { JoinRequest } from '../../lorawan/phy-payload.js';
import type { NetworkContext } from '../context.js';
import { allocateDevAddr } from '../devaddr.js';
import { deviceInfo } from '../device-info.js';
import type { ClassAScheduler } from '../downlink/class-a.js';
import { emitLogEvent } from '../log-event.js';
import { initialSessionMac, type SessionMac, trustSessionMac } from '../mac/session-mac.js';
import type { MacVersion } from '../session.js';
import type { DeviceSession, NetworkDevice } from '../store.js';

/**
 * OTAA: relays a JoinRequest to the join server with the session parameters the network
 * chose (DevAddr from its NetID, RX settings, the region's CFList), stores the new session
 * when the join server accepts, and answers with the JoinAccept in the join windows.
 */
export async function handleJoinRequest(
  ctx: NetworkContext,
  scheduler: ClassAScheduler,
  uplink: DeduplicatedUplink,
  uplinkDr: number,
  request: JoinRequest,
  deduplicationId: string,
): Promise<void> {
  ctx.counters.increment('joinRequests');
  const devAddr = allocateDevAddr(ctx.config.netId);
  const answer = await ctx.joinServer.handleJoinRequest({
    phyPayload: uplink.phyPayload,
    netId: ctx.config.netId,
    devAddr,
    dlSettings: { rx1DrOffset: ctx.config.rx1DrOffset, rx2Dr: ctx.config.rx2Dr },
    rxDelay: ctx.config.rx1DelaySeconds,
    cfList: ctx.region.encodeCfList(ctx.channelPlan),
  });
  if (answer.result !== 'Success') {
    ctx.counters.increment('joinsRejected');
    ctx.logger.warn(
      { devEui: request.devEui, joinEui: request.joinEui, result: answer.result },
      `join refused: ${answer.message}`,
    );
    const device = await ctx.devices.get(request.devEui);
    if (device !== undefined) {
      await emitLogEvent(ctx, device, 'ERROR', 'OTAA', answer.message, {
        deduplicationId,
        result: answer.result,
      });
    }
    return;
  }
  const device = await ctx.devices.get(answer.devEui);
  if (device === undefined) return;
  const now = new Date(ctx.now()).toISOString();
  await startSession(ctx, scheduler, {
    device,
    answer,
    devAddr,
    macState: joinedSessionMac(ctx, answer.macVersion, device.deviceClass, now),
    now,
    uplink,
    uplinkDr,
    deduplicationId,
  });
  ctx.counters.increment('joinsAccepted');
}

/**
 * A join server's accepted answer (to a JoinRequest or a RejoinRequest) becomes the device's
 * session: stored, cached, answered with the JoinAccept in the join-accept windows, and told in
 * a `join` event.
 */
export async function startSession(
  ctx: NetworkContext,
  scheduler: ClassAScheduler,
  params: {
    device: NetworkDevice;
    answer: Extract<JoinAnswer, { result: 'Success' }>;
    devAddr: number;
    macState: SessionMac;
    now: string;
    uplink: DeduplicatedUplink;
    uplinkDr: number;
    deduplicationId: string;
    eventFields?: Record<string, unknown>;
  },
): Promise<void> {
  const { device, answer, devAddr, now } = params;
  const session: DeviceSession = {
    devEui: device.devEui,
    devAddr,
    macVersion: answer.macVersion,
    keys: answer.sessionKeys,
    fCntUp: null,
    nFCntDown: 0,
    aFCntDown: 0,
    rx1DelaySeconds: ctx.config.rx1DelaySeconds,
    rx1DrOffset: ctx.config.rx1DrOffset,
    rx2Dr: ctx.config.rx2Dr,
    rx2FrequencyHz: ctx.config.rx2FrequencyHz,
    awaitingAck: null,
    macState: params.macState,
    createdAt: now,
    updatedAt: now,
  };
  await ctx.store.saveSession(session);
  ctx.sessions.set(session);
  ctx.adrHistories.delete(device.devEui);
  await ctx.store.touchDevice(device.devEui, now);
  await scheduler.answer(params.uplink, params.uplinkDr, {
    kind: 'joinAccept',
    phyPayload: answer.phyPayload,
    devEui: device.devEui,
    device,
  });
  await ctx.emit({
    type: 'join',
    devEui: device.devEui,
    applicationId: device.applicationId,
    time: now,
    body: {
      deduplicationId: params.deduplicationId,
      time: now,
      deviceInfo: deviceInfo(device),
      devAddr: devAddr.toString(16).padStart(8, '0'),
      ...params.eventFields,
    },
  });
}

/** The MAC state of a new OTAA session: the JoinAccept's settings and CFList channels. */
export function joinedSessionMac(
  ctx: NetworkContext,
  macVersion: MacVersion,
  deviceClass: 'A' | 'C',
  now: string,
): SessionMac {
  const state = initialSessionMac(ctx.region, {
    macVersion,
    deviceClass,
    cfListChannels: ctx.channelPlan,
    rx1DelaySeconds: ctx.config.rx1DelaySeconds,
    rx1DrOffset: ctx.config.rx1DrOffset,
    rx2Dr: ctx.config.rx2Dr,
    rx2FrequencyHz: ctx.config.rx2FrequencyHz,
  });
  // The first status request comes one interval after the join.
  state.mac.lastDevStatusRequestAt = now;
  return trustSessionMac(state);
}
