import type { DeduplicatedUplink } from '../../gateway/deduplicator.js';
import type { RejoinRequest } from '../../lorawan/phy-payload.js';
import { verifyRejoinRequestMic } from '../../lorawan/rejoin-request.js';
import type { NetworkContext } from '../context.js';
import { allocateDevAddr } from '../devaddr.js';
import type { ClassAScheduler } from '../downlink/class-a.js';
import { emitLogEvent } from '../log-event.js';
import { sessionMacOf, trustSessionMac } from '../mac/session-mac.js';
import { joinedSessionMac, startSession } from './join-request.js';

/**
 * LoRaWAN 1.1 RejoinRequest (§6.2.4): a new session negotiated through the join server while
 * the device keeps its identity.
 * - Types 0 (new DevAddr, radio settings and keys) and 2 (new keys only) are signed with the
 *   current session's SNwkSIntKey, which only the network holds: it checks the MIC and that
 *   RJcount0 went up before asking the join server.
 * - Type 1 (lost session) is signed with JSIntKey: the join server checks it and RJcount1.
 * The JoinAccept goes in the join-accept windows. The new session replaces the old one at once:
 * a device that misses the JoinAccept keeps using its old session, which is then gone, and must
 * rejoin again (it retries per its RejoinParamSetup or ForceRejoinReq settings).
 */
export async function handleRejoinRequest(
  ctx: NetworkContext,
  scheduler: ClassAScheduler,
  uplink: DeduplicatedUplink,
  uplinkDr: number,
  request: RejoinRequest,
  micInput: Uint8Array,
  deduplicationId: string,
): Promise<void> {
  ctx.counters.increment('rejoinRequests');
  const device = await ctx.devices.get(request.devEui);
  const refuse = async (message: string): Promise<void> => {
    ctx.counters.increment('rejoinsRejected');
    ctx.logger.warn(
      { devEui: request.devEui, rejoinType: request.rejoinType },
      `rejoin refused: ${message}`,
    );
    if (device !== undefined) {
      await emitLogEvent(ctx, device, 'ERROR', 'REJOIN', message, {
        deduplicationId,
        rejoinType: request.rejoinType,
      });
    }
  };
  if (device === undefined) {
    await refuse(`unknown device ${request.devEui}`);
    return;
  }
  let current = ctx.sessions.byDevEui(request.devEui);
  if (request.rejoinType !== 1) {
    // A device that missed the JoinAccept of its last rejoin still signs with the session
    // before it, which the network keeps until the device uses the new one.
    const previous = ctx.previousSessions.get(request.devEui);
    if (
      previous !== undefined &&
      previous.keys.lorawan === '1.1' &&
      current?.keys.lorawan === '1.1' &&
      !verifyRejoinRequestMic(request, current.keys.sNwkSIntKey, micInput) &&
      verifyRejoinRequestMic(request, previous.keys.sNwkSIntKey, micInput)
    ) {
      current = previous;
    }
    if (current === undefined || current.keys.lorawan !== '1.1') {
      await refuse(`type ${request.rejoinType} RejoinRequest without a LoRaWAN 1.1 session`);
      return;
    }
    if (request.netId !== ctx.config.netId) {
      await refuse(`RejoinRequest for NetID ${request.netId.toString(16)}, not this network's`);
      return;
    }
    if (!verifyRejoinRequestMic(request, current.keys.sNwkSIntKey, micInput)) {
      await refuse(`type ${request.rejoinType} RejoinRequest MIC does not verify (SNwkSIntKey)`);
      return;
    }
    const last = sessionMacOf(ctx.region, current)?.lastRjCount0;
    if (last !== undefined && request.rjCount0 <= last) {
      await refuse(`RJcount0 ${request.rjCount0} is not above the last one (${last}): a replay`);
      return;
    }
  }

  // Type 2 keeps the DevAddr and radio settings; 0 and 1 start over, as a join does.
  const devAddr =
    request.rejoinType === 2 && current !== undefined
      ? current.devAddr
      : allocateDevAddr(ctx.config.netId);
  const answer = await ctx.joinServer.handleRejoinRequest({
    phyPayload: uplink.phyPayload,
    netId: ctx.config.netId,
    devAddr,
    dlSettings: { rx1DrOffset: ctx.config.rx1DrOffset, rx2Dr: ctx.config.rx2Dr },
    rxDelay: ctx.config.rx1DelaySeconds,
    cfList: ctx.region.encodeCfList(ctx.channelPlan),
  });
  if (answer.result !== 'Success') {
    await refuse(`${answer.result}: ${answer.message}`);
    return;
  }
  const now = new Date(ctx.now()).toISOString();
  if (current !== undefined) {
    // Kept until the device uses the new session; a retry of this rejoin must count above it.
    const state = sessionMacOf(ctx.region, current);
    ctx.previousSessions.set(device.devEui, {
      ...current,
      macState:
        state === undefined || request.rejoinType === 1
          ? current.macState
          : trustSessionMac({ ...state, lastRjCount0: request.rjCount0 }),
    });
  }
  let macState = joinedSessionMac(ctx, answer.macVersion, device.deviceClass, now);
  const previous = current === undefined ? undefined : sessionMacOf(ctx.region, current);
  if (request.rejoinType === 2 && previous !== undefined) {
    // Rekey only: the radio settings the device has stay as they are.
    macState = trustSessionMac({ ...previous, mac: { ...previous.mac, pending: [] } });
  }
  if (request.rejoinType !== 1) {
    // RJcount0 starts again from 0 after the JoinAccept; remembered so a replay is refused.
    macState = trustSessionMac({ ...macState, lastRjCount0: -1 });
  }
  await startSession(ctx, scheduler, {
    device,
    answer,
    devAddr,
    macState,
    now,
    uplink,
    uplinkDr,
    deduplicationId,
    eventFields: { rejoinType: request.rejoinType },
  });
  ctx.counters.increment('rejoinsAccepted');
}
