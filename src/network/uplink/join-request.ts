import type { JoinRequest } from '../../lorawan/phy-payload.js';
import type { NetworkContext } from '../context.js';
import { allocateDevAddr } from '../devaddr.js';
import { deviceInfo } from '../device-info.js';
import type { ClassAScheduler } from '../downlink/class-a.js';
import { emitLogEvent } from '../log-event.js';
import { initialSessionMac, type SessionMac, trustSessionMac } from '../mac/session-mac.js';
import type { MacVersion } from '../session.js';
import type { DeviceSession } from '../store.js';
import type { DeduplicatedUplink } from './deduplicator.js';

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
  const session: DeviceSession = {
    devEui: answer.devEui,
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
    macState: joinedSessionMac(ctx, answer.macVersion, device.deviceClass, now),
    createdAt: now,
    updatedAt: now,
  };
  await ctx.store.saveSession(session);
  ctx.sessions.set(session);
  ctx.adrHistories.delete(device.devEui);
  ctx.counters.increment('joinsAccepted');
  await ctx.store.touchDevice(device.devEui, now);
  await scheduler.answer(uplink, uplinkDr, {
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
      deduplicationId,
      time: now,
      deviceInfo: deviceInfo(device),
      devAddr: devAddr.toString(16).padStart(8, '0'),
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
