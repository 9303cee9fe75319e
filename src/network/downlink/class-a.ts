import type { GatewayTxAck, UplinkRxInfo } from '../../gateway/types.js';
import { buildDataFrame } from '../../lorawan/data-frame.js';
import { encodeMacCommands, type MacCommand } from '../../lorawan/mac-commands.js';
import type { NetworkContext } from '../context.js';
import { deviceInfo } from '../device-info.js';
import { emitLogEvent } from '../log-event.js';
import { dataSessionKeys } from '../prepared-keys.js';
import type { DeviceSession, NetworkDevice, QueuedDownlink } from '../store.js';
import type { DeduplicatedUplink } from '../uplink/deduplicator.js';
import { isBetter } from '../uplink/deduplicator.js';
import { classAWindows, downlinkModulation, type ReceiveWindow } from './rx-windows.js';

/** What an uplink asks the network to answer in its receive windows. */
export type ClassAAnswer =
  | { kind: 'joinAccept'; phyPayload: Uint8Array; devEui: string; device: NetworkDevice }
  | {
      kind: 'data';
      session: DeviceSession;
      device: NetworkDevice;
      /** The uplink was confirmed: set ACK. */
      ack: boolean;
      /** The uplink's 32-bit counter (1.1 downlink MIC when ACK is set). */
      uplinkFCnt: number;
      adr: boolean;
      macAnswers: MacCommand[];
    };

interface InFlight {
  answer: ClassAAnswer;
  uplink: DeduplicatedUplink;
  rx: UplinkRxInfo;
  window: ReceiveWindow;
  rx2: ReceiveWindow;
  phyPayload: Uint8Array;
  queueItem: QueuedDownlink | undefined;
  fCntDown: number | undefined;
  expiresAtMs: number;
}

/** FOpts holds at most 15 bytes of MAC commands; more go in an FPort-0 frame. */
const MAX_FOPTS_LENGTH = 15;

/**
 * Class A downlinks: picks the best gateway that heard the uplink and has a downlink path, the
 * first window there is still time for, builds the frame to fit that window's data rate, and
 * follows the gateway's TX acknowledgement (falling back to RX2 when RX1 is refused).
 */
export class ClassAScheduler {
  readonly #inFlight = new Map<number, InFlight>();
  /** Confirmed downlinks sent and waiting for the device's ACK, by DevEUI. */
  #nextDownlinkId = 1;

  constructor(private readonly ctx: NetworkContext) {}

  /** FCntDown of the confirmed downlink the device has yet to acknowledge (1.1 ConfFCnt). */
  awaitingAckFCnt(devEui: string): number | undefined {
    return this.ctx.sessions.byDevEui(devEui)?.awaitingAck?.fCntDown;
  }

  async answer(uplink: DeduplicatedUplink, uplinkDr: number, answer: ClassAAnswer): Promise<void> {
    // Most uplinks need no answer: nothing to acknowledge, no MAC answer, nothing queued.
    if (
      answer.kind === 'data' &&
      !answer.ack &&
      answer.macAnswers.length === 0 &&
      !this.ctx.pendingDownlinks.has(answer.device.devEui)
    ) {
      return;
    }
    const copies = [...uplink.rxInfo].sort((a, b) =>
      isBetter(a, b) ? -1 : isBetter(b, a) ? 1 : 0,
    );
    const settings =
      answer.kind === 'data'
        ? answer.session
        : {
            rx1DelaySeconds: 1,
            rx1DrOffset: 0,
            rx2Dr: this.ctx.region.rx2Default.dataRate,
            rx2FrequencyHz: this.ctx.region.rx2Default.frequencyHz,
          };
    for (const rx of copies) {
      const [rx1, rx2] = classAWindows({
        region: this.ctx.region,
        uplinkFrequencyHz: uplink.txInfo.frequencyHz,
        uplinkDr,
        uplinkTimestampUs: rx.timestampUs,
        isJoinAccept: answer.kind === 'joinAccept',
        settings,
      });
      const window = this.#firstWindowInTime(rx, rx1, rx2);
      if (window === undefined) {
        this.ctx.counters.increment('downlinksTooLate');
        await this.#log(
          answer,
          'WARNING',
          'DOWNLINK_TOO_LATE',
          'no receive window left to answer the uplink',
        );
        return;
      }
      const built = await this.#build(answer, window);
      if (built === undefined) return;
      const downlinkId = this.#nextDownlinkId++;
      const sent = await this.#transmit(downlinkId, rx.gatewayId, built.phyPayload, window);
      if (!sent) {
        this.ctx.counters.increment('downlinksNoGatewayPath');
        if (built.queueItem !== undefined) {
          await this.#putBack(built.queueItem, `gateway ${rx.gatewayId} has no downlink path`);
        }
        continue;
      }
      this.ctx.counters.increment('downlinksScheduled');
      this.#remember(downlinkId, {
        answer,
        uplink,
        rx,
        window,
        rx2,
        phyPayload: built.phyPayload,
        queueItem: built.queueItem,
        fCntDown: built.fCntDown,
        expiresAtMs: this.ctx.now() + rx2.delayMs + 10_000,
      });
      return;
    }
    await this.#log(
      answer,
      'WARNING',
      'NO_DOWNLINK_PATH',
      'no gateway that heard the uplink can transmit',
    );
  }

  /** Called on each uplink of a device: settles the confirmed downlink it may acknowledge. */
  async settleAcknowledgement(device: NetworkDevice, ackBit: boolean): Promise<void> {
    const awaiting = this.ctx.sessions.byDevEui(device.devEui)?.awaitingAck;
    if (awaiting === undefined || awaiting === null) return;
    await this.#setAwaitingAck(device.devEui, null);
    if (ackBit) {
      this.ctx.counters.increment('confirmedDownlinksAcked');
      await this.ctx.store.markDownlinkAcked(awaiting.queueItemId);
    } else {
      this.ctx.counters.increment('confirmedDownlinksUnacked');
      await this.ctx.store.markDownlinkFailed(
        awaiting.queueItemId,
        'not acknowledged by the device',
      );
    }
    await this.ctx.emit({
      type: 'ack',
      devEui: device.devEui,
      applicationId: device.applicationId,
      time: new Date(this.ctx.now()).toISOString(),
      body: {
        time: new Date(this.ctx.now()).toISOString(),
        deviceInfo: deviceInfo(device),
        queueItemId: awaiting.queueItemId,
        acknowledged: ackBit,
        fCntDown: awaiting.fCntDown,
      },
    });
  }

  async handleTxAck(ack: GatewayTxAck): Promise<void> {
    const flight = this.#inFlight.get(ack.downlinkId);
    if (flight === undefined) return;
    this.#inFlight.delete(ack.downlinkId);
    if (ack.status === 'NONE') {
      this.ctx.counters.increment('txAcksOk');
      await this.#emitTxAck(flight, ack);
      return;
    }
    this.ctx.counters.increment('txAcksError');
    await this.#emitTxAck(flight, ack);
    if (
      flight.window.name === 'RX1' &&
      this.#fitsWindow(flight.phyPayload, flight.rx2) &&
      this.#inTime(flight.rx, flight.rx2)
    ) {
      const downlinkId = this.#nextDownlinkId++;
      if (await this.#transmit(downlinkId, flight.rx.gatewayId, flight.phyPayload, flight.rx2)) {
        this.ctx.counters.increment('downlinksRx2Fallback');
        this.#remember(downlinkId, { ...flight, window: flight.rx2 });
        return;
      }
    }
    if (flight.queueItem !== undefined) {
      await this.#putBack(flight.queueItem, `gateway refused transmission: ${ack.status}`);
    }
    await this.#log(
      flight.answer,
      'ERROR',
      'DOWNLINK_NOT_TRANSMITTED',
      `gateway ${ack.gatewayId} refused the ${flight.window.name} downlink: ${ack.status}`,
    );
  }

  /** An item that was never transmitted goes back to the queue, first in line. */
  async #putBack(item: QueuedDownlink, reason: string): Promise<void> {
    await this.ctx.store.requeueDownlink(item.id, reason);
    this.ctx.pendingDownlinks.add(item.devEui);
    if (this.ctx.sessions.byDevEui(item.devEui)?.awaitingAck?.queueItemId === item.id) {
      await this.#setAwaitingAck(item.devEui, null);
    }
  }

  async #setAwaitingAck(devEui: string, awaiting: DeviceSession['awaitingAck']): Promise<void> {
    await this.ctx.store.setAwaitingAck(devEui, awaiting);
    const session = this.ctx.sessions.byDevEui(devEui);
    if (session !== undefined) this.ctx.sessions.set({ ...session, awaitingAck: awaiting });
  }

  #remember(downlinkId: number, flight: InFlight): void {
    const now = this.ctx.now();
    for (const [id, old] of this.#inFlight) {
      if (old.expiresAtMs < now) this.#inFlight.delete(id);
    }
    this.#inFlight.set(downlinkId, flight);
  }

  #inTime(rx: UplinkRxInfo, window: ReceiveWindow): boolean {
    return this.ctx.now() < rx.receivedAtMs + window.delayMs - this.ctx.config.downlinkLeadMs;
  }

  #firstWindowInTime(
    rx: UplinkRxInfo,
    rx1: ReceiveWindow,
    rx2: ReceiveWindow,
  ): ReceiveWindow | undefined {
    if (this.#inTime(rx, rx1)) return rx1;
    if (this.#inTime(rx, rx2)) return rx2;
    return undefined;
  }

  #fitsWindow(phyPayload: Uint8Array, window: ReceiveWindow): boolean {
    // MACPayload = PHYPayload without MHDR and MIC.
    return phyPayload.length - 5 <= this.ctx.region.maxPayloadSize(window.dataRate).macPayload;
  }

  async #transmit(
    downlinkId: number,
    gatewayId: string,
    phyPayload: Uint8Array,
    window: ReceiveWindow,
  ): Promise<boolean> {
    const dataRate = this.ctx.region.dataRate(window.dataRate);
    return this.ctx.gateways.sendDownlink({
      gatewayId,
      downlinkId,
      phyPayload,
      frequencyHz: window.frequencyHz,
      powerDbm: this.ctx.region.downlinkTxPowerDbm(window.frequencyHz),
      modulation: downlinkModulation(dataRate),
      timing: { kind: 'counter', timestampUs: window.timestampUs },
    });
  }

  async #build(
    answer: ClassAAnswer,
    window: ReceiveWindow,
  ): Promise<
    { phyPayload: Uint8Array; queueItem?: QueuedDownlink; fCntDown?: number } | undefined
  > {
    if (answer.kind === 'joinAccept') return { phyPayload: answer.phyPayload };
    const { session, device } = answer;
    const maxFrmPayload = this.ctx.region.maxPayloadSize(window.dataRate).frmPayload;
    let fOpts = encodeMacCommands(answer.macAnswers);
    let macInPayload = false;
    if (fOpts.length > MAX_FOPTS_LENGTH) macInPayload = true;

    let item: QueuedDownlink | undefined;
    const hasQueue = this.ctx.pendingDownlinks.has(device.devEui);
    if (!macInPayload && hasQueue) {
      const next = await this.ctx.store.nextPendingDownlink(device.devEui);
      if (
        next !== undefined &&
        next.data.length + fOpts.length <= maxFrmPayload &&
        (this.ctx.sessions.byDevEui(device.devEui)?.awaitingAck ?? null) === null
      ) {
        item = next;
      }
    }
    if (!answer.ack && fOpts.length === 0 && item === undefined) return undefined;

    const pending = hasQueue ? await this.ctx.store.countPendingDownlinks(device.devEui) : 0;
    if (pending === 0 || (pending === 1 && item !== undefined))
      this.ctx.pendingDownlinks.delete(device.devEui);
    const is11 = session.keys.lorawan === '1.1';
    const usesAppCounter = is11 && item !== undefined;
    const fCntDown = await this.ctx.store.takeFCntDown(device.devEui, usesAppCounter ? 'a' : 'n');
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
    const keys = dataSessionKeys(session);
    const phyPayload = buildDataFrame(
      {
        mType: item?.confirmed === true ? 'ConfirmedDataDown' : 'UnconfirmedDataDown',
        devAddr: session.devAddr,
        fCtrl: {
          adr: answer.adr,
          adrAckReq: false,
          ack: answer.ack,
          classB: false,
          fPending: pending > (item === undefined ? 0 : 1),
        },
        fCnt: fCntDown,
        fOpts,
        ...(fPort === undefined ? {} : { fPort }),
        ...(frmPayload === undefined ? {} : { frmPayload }),
      },
      keys,
      { confFCnt: answer.uplinkFCnt },
    );
    if (item !== undefined) {
      await this.ctx.store.markDownlinkSent(item.id, fCntDown);
      // Remembered at once, with the session: a gateway without TX_ACK (protocol 1) and a
      // restart must not lose it (the 1.1 MIC of the acknowledging uplink needs this FCntDown).
      if (item.confirmed)
        await this.#setAwaitingAck(device.devEui, { queueItemId: item.id, fCntDown });
    }
    return { phyPayload, ...(item === undefined ? {} : { queueItem: item }), fCntDown };
  }

  async #emitTxAck(flight: InFlight, ack: GatewayTxAck): Promise<void> {
    const device = flight.answer.device;
    const time = new Date(this.ctx.now()).toISOString();
    const dataRate = this.ctx.region.dataRate(flight.window.dataRate);
    await this.ctx.emit({
      type: 'txack',
      devEui: device.devEui,
      applicationId: device.applicationId,
      time,
      body: {
        downlinkId: ack.downlinkId,
        time,
        deviceInfo: deviceInfo(device),
        queueItemId: flight.queueItem?.id ?? null,
        fCntDown: flight.fCntDown ?? null,
        gatewayId: ack.gatewayId,
        status: ack.status,
        window: flight.window.name,
        txInfo: {
          frequency: flight.window.frequencyHz,
          power: this.ctx.region.downlinkTxPowerDbm(flight.window.frequencyHz),
          modulation: downlinkModulation(dataRate),
        },
      },
    });
  }

  async #log(
    answer: ClassAAnswer,
    level: 'INFO' | 'WARNING' | 'ERROR',
    code: string,
    description: string,
  ): Promise<void> {
    await emitLogEvent(this.ctx, answer.device, level, code, description);
  }
}
