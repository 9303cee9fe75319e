import { decryptDataFrame, verifyDataMic } from '../../lorawan/data-frame.js';
import { isLorawanError } from '../../lorawan/errors.js';
import { checkFCnt, DEFAULT_MAX_FCNT_GAP } from '../../lorawan/fcnt.js';
import { decodeMacCommands, type MacCommand } from '../../lorawan/mac-commands.js';
import type { DataFrame } from '../../lorawan/phy-payload.js';
import type { NetworkContext } from '../context.js';
import { deviceInfo } from '../device-info.js';
import type { ClassAScheduler } from '../downlink/class-a.js';
import { chirpstackRxInfo, chirpstackTxInfo } from '../events.js';
import { emitLogEvent } from '../log-event.js';
import { deviceTimeAnswer, unixMsToGpsMs } from '../mac/device-time.js';
import { linkCheckAnswer } from '../mac/link-check.js';
import { dataSessionKeys } from '../prepared-keys.js';
import type { DeviceSession, NetworkDevice } from '../store.js';
import type { DeduplicatedUplink } from './deduplicator.js';

interface Match {
  session: DeviceSession;
  fCnt: number;
  status: 'new' | 'retransmission';
}

/** LoRaWAN 1.0.4 and 1.1 dropped MAX_FCNT_GAP: the 32-bit MIC is the replay protection there. */
function maxFCntGap(session: DeviceSession): number {
  return session.macVersion === '1.0.4' || session.macVersion === '1.1.0'
    ? Number.POSITIVE_INFINITY
    : DEFAULT_MAX_FCNT_GAP;
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
  uplinkChannel: number,
): Match | 'replayed' | 'gapTooLarge' | undefined {
  let outcome: 'replayed' | 'gapTooLarge' | undefined;
  for (const session of ctx.sessions.byDevAddr(frame.devAddr)) {
    const keys = dataSessionKeys(session);
    const micContext = {
      confFCnt: scheduler.awaitingAckFCnt(session.devEui) ?? 0,
      txDr: uplinkDr,
      txCh: uplinkChannel,
    };
    const check = checkFCnt(frame.fCnt, session.fCntUp ?? undefined, {
      maxGap: maxFCntGap(session),
    });
    if (check.status === 'new' || check.status === 'retransmission') {
      if (verifyDataMic(frame, micInput, keys, check.fCnt, micContext)) {
        return { session, fCnt: check.fCnt, status: check.status };
      }
    } else if (check.status === 'gapTooLarge') {
      if (verifyDataMic(frame, micInput, keys, check.fCnt, micContext)) outcome = 'gapTooLarge';
    }
    // An old counter in the current 16-bit epoch: valid MIC means someone replays a frame.
    const last = session.fCntUp;
    if (last !== null) {
      const old = last - (last % 0x1_0000) + frame.fCnt;
      if (old < last && verifyDataMic(frame, micInput, keys, old, micContext)) outcome = 'replayed';
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
  if (ctx.sessions.byDevAddr(frame.devAddr).length === 0) {
    ctx.counters.increment('uplinksUnknownDevAddr');
    ctx.logger.debug(
      { devAddr: frame.devAddr.toString(16).padStart(8, '0') },
      'uplink from unknown DevAddr dropped',
    );
    return;
  }
  const channel = uplinkChannelIndex(ctx, uplink.txInfo.frequencyHz);
  const match = matchSession(ctx, scheduler, frame, micInput, uplinkDr, channel);
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
        macAnswers: [],
      });
    }
    return;
  }

  const keys = dataSessionKeys(session);
  const decrypted = decryptDataFrame(frame, keys, fCnt);
  const time = new Date(ctx.now()).toISOString();
  const body: Record<string, unknown> = {
    deduplicationId,
    time,
    deviceInfo: deviceInfo(device),
    devAddr: frame.devAddr.toString(16).padStart(8, '0'),
    adr: frame.fCtrl.adr,
    dr: uplinkDr,
    fCnt,
    fPort: frame.fPort ?? null,
    confirmed,
    rxInfo: uplink.rxInfo.map(chirpstackRxInfo),
    txInfo: chirpstackTxInfo(uplink.txInfo),
  };
  if (frame.fPort !== undefined && frame.fPort > 0 && decrypted.frmPayload !== undefined) {
    body['data'] = Buffer.from(decrypted.frmPayload).toString('base64');
  }
  const event = {
    type: 'up' as const,
    devEui: device.devEui,
    applicationId: device.applicationId,
    time,
    body,
  };
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

  const macBytes =
    frame.fPort === 0 ? (decrypted.frmPayload ?? new Uint8Array(0)) : decrypted.fOpts;
  const macAnswers = await answerMacCommands(ctx, device, uplink, uplinkDr, macBytes);
  await scheduler.settleAcknowledgement(device, frame.fCtrl.ack);

  await scheduler.answer(uplink, uplinkDr, {
    kind: 'data',
    session: updated,
    device,
    ack: confirmed,
    uplinkFCnt: fCnt,
    adr: frame.fCtrl.adr,
    macAnswers,
  });
}

/** The uplink's channel index in the device's channel plan (1.1 MIC input TxCh). */
function uplinkChannelIndex(ctx: NetworkContext, frequencyHz: number): number {
  const index = ctx.channelPlan.findIndex((channel) => channel?.frequencyHz === frequencyHz);
  return index === -1 ? 0 : index;
}

/** Answers the device-initiated MAC commands this server handles; logs the rest. */
async function answerMacCommands(
  ctx: NetworkContext,
  device: NetworkDevice,
  uplink: DeduplicatedUplink,
  uplinkDr: number,
  bytes: Uint8Array,
): Promise<MacCommand[]> {
  if (bytes.length === 0) return [];
  let commands: MacCommand[];
  try {
    commands = decodeMacCommands(bytes, 'uplink');
  } catch (error) {
    if (!isLorawanError(error)) throw error;
    ctx.counters.increment('macCommandsMalformed');
    await emitLogEvent(ctx, device, 'WARNING', 'MAC_COMMANDS', error.message);
    return [];
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
        ctx.logger.debug(
          { devEui: device.devEui, cid: command.cid },
          'MAC command not handled yet',
        );
    }
  }
  return answers;
}
