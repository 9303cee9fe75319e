import type { DeduplicatedUplink } from '../../gateway/deduplicator.js';
import { isBetter } from '../../gateway/deduplicator.js';
import type { GatewayTxAck, UplinkRxInfo } from '../../gateway/types.js';
import type { MacCommand } from '../../lorawan/mac-commands.js';
import { dataRateTimeOnAirMs } from '../../lorawan/regions/index.js';
import type { NetworkContext } from '../context.js';
import { emitLogEvent } from '../log-event.js';
import { dataRx1FrequencyHz } from '../mac/mac-state.js';
import { rxSettingsOf, sessionMacOf } from '../mac/session-mac.js';
import type { DeviceSession, NetworkDevice, QueuedDownlink } from '../store.js';
import {
  type BuiltDataDownlink,
  buildDataDownlink,
  emitTxAckEvent,
  putBackDownlink,
  settleConfirmedDownlink,
} from './data-downlink.js';
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
      /** MAC answers and requests for the downlink, in order. */
      macCommands: MacCommand[];
      /** Answer even with nothing to carry (ADRACKReq, repeated MAC answers). */
      force: boolean;
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

/**
 * Class A downlinks: picks the best gateway that heard the uplink and has a downlink path, the
 * first window there is still time for, builds the frame to fit that window's data rate, and
 * follows the gateway's TX acknowledgement (falling back to RX2 when RX1 is refused).
 */
export class ClassAScheduler {
  readonly #inFlight = new Map<number, InFlight>();

  constructor(private readonly ctx: NetworkContext) {}

  /** FCntDown of the confirmed downlink the device has yet to acknowledge (1.1 ConfFCnt). */
  awaitingAckFCnt(devEui: string): number | undefined {
    return this.ctx.sessions.byDevEui(devEui)?.awaitingAck?.fCntDown;
  }

  async answer(uplink: DeduplicatedUplink, uplinkDr: number, answer: ClassAAnswer): Promise<void> {
    // Most uplinks need no answer: nothing to acknowledge, no MAC command, nothing queued.
    if (
      answer.kind === 'data' &&
      !answer.ack &&
      !answer.force &&
      answer.macCommands.length === 0 &&
      !this.ctx.pendingDownlinks.has(answer.device.devEui)
    ) {
      return;
    }
    const copies = [...uplink.rxInfo].sort((a, b) =>
      isBetter(a, b) ? -1 : isBetter(b, a) ? 1 : 0,
    );
    const settings =
      answer.kind === 'data'
        ? rxSettingsOf(this.ctx.region, answer.session)
        : {
            rx1DelaySeconds: 1,
            rx1DrOffset: 0,
            rx2Dr: this.ctx.region.rx2Default.dataRate,
            rx2FrequencyHz: this.ctx.region.rx2Default.frequencyHz,
          };
    // A JoinAccept goes on the region's RX1 frequency: the device has no session settings yet.
    const rx1FrequencyHz =
      answer.kind === 'data'
        ? dataRx1FrequencyHz(
            this.ctx.region,
            sessionMacOf(this.ctx.region, answer.session)?.mac,
            uplink.txInfo.frequencyHz,
          )
        : undefined;
    // Every (gateway, window) still reachable, best gateway first, RX1 before RX2.
    const candidates: { rx: UplinkRxInfo; window: ReceiveWindow; rx2: ReceiveWindow }[] = [];
    for (const rx of copies) {
      const [rx1, rx2] = classAWindows({
        region: this.ctx.region,
        uplinkFrequencyHz: uplink.txInfo.frequencyHz,
        rx1FrequencyHz,
        uplinkDr,
        uplinkTimestampUs: rx.timestampUs,
        isJoinAccept: answer.kind === 'joinAccept',
        settings,
      });
      for (const window of [rx1, rx2]) {
        if (this.#inTime(rx, window)) candidates.push({ rx, window, rx2 });
      }
    }
    if (candidates.length === 0) {
      this.ctx.counters.increment('downlinksTooLate');
      await this.#log(
        answer,
        'WARNING',
        'DOWNLINK_TOO_LATE',
        'no receive window left to answer the uplink',
      );
      return;
    }
    let built: BuiltDataDownlink | { phyPayload: Uint8Array; queueItem?: undefined } | undefined;
    const refusals: string[] = [];
    for (const { rx, window, rx2 } of candidates) {
      if (built === undefined) {
        built = await this.#build(answer, window);
        if (built === undefined) return;
      }
      if (!this.#fitsWindow(built.phyPayload, window)) continue;
      const startMs = rx.receivedAtMs + window.delayMs;
      const airtimeMs = this.#airtimeMs(built.phyPayload, window);
      const dutyCycle = this.ctx.dutyCycle.check(
        rx.gatewayId,
        window.frequencyHz,
        startMs,
        airtimeMs,
      );
      if (!dutyCycle.ok) {
        this.ctx.counters.increment('downlinksDutyCycleRefused');
        refusals.push(`${window.name}: ${dutyCycle.reason}`);
        continue;
      }
      const downlinkId = this.ctx.nextDownlinkId();
      const sent = await this.#transmit(downlinkId, rx.gatewayId, built.phyPayload, window);
      if (!sent) {
        this.ctx.counters.increment('downlinksNoGatewayPath');
        refusals.push(`${window.name}: gateway ${rx.gatewayId} has no downlink path`);
        continue;
      }
      this.ctx.dutyCycle.record(rx.gatewayId, window.frequencyHz, startMs, airtimeMs);
      this.ctx.counters.increment('downlinksScheduled');
      this.#remember(downlinkId, {
        answer,
        uplink,
        rx,
        window,
        rx2,
        phyPayload: built.phyPayload,
        queueItem: built.queueItem,
        fCntDown: 'fCntDown' in built ? built.fCntDown : undefined,
        expiresAtMs: this.ctx.now() + rx2.delayMs + 10_000,
      });
      if (refusals.length > 0) {
        await this.#log(
          answer,
          'INFO',
          'DOWNLINK_REROUTED',
          `sent in ${window.name} through gateway ${rx.gatewayId} because ${refusals.join('; ')}`,
        );
      }
      return;
    }
    if (built?.queueItem !== undefined) {
      await putBackDownlink(this.ctx, built.queueItem, refusals.join('; '));
    }
    const dutyCycleOnly = refusals.length > 0 && refusals.every((r) => r.includes('duty cycle'));
    await this.#log(
      answer,
      'WARNING',
      dutyCycleOnly ? 'DUTY_CYCLE' : 'NO_DOWNLINK_PATH',
      built === undefined
        ? 'no gateway that heard the uplink can transmit'
        : `downlink kept for later: ${refusals.join('; ') || 'it fits no window in time'}`,
    );
  }

  /**
   * Called on each uplink of a device: settles the confirmed downlink it may acknowledge. An
   * uplink without ACK means the device missed it: it goes back to the queue (first in line,
   * with a new counter) until the profile's attempts are spent, then is reported unacknowledged.
   */
  async settleAcknowledgement(
    device: NetworkDevice,
    ackBit: boolean,
    maxAttempts: number,
  ): Promise<void> {
    const awaiting = this.ctx.sessions.byDevEui(device.devEui)?.awaitingAck;
    if (awaiting === undefined || awaiting === null) return;
    await settleConfirmedDownlink(
      this.ctx,
      device,
      awaiting,
      ackBit
        ? { acknowledged: true }
        : { acknowledged: false, maxAttempts, why: 'not acknowledged' },
    );
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
    // Not transmitted: the airtime counted when it was handed to the gateway was not used.
    this.ctx.dutyCycle.release(
      flight.rx.gatewayId,
      flight.window.frequencyHz,
      flight.rx.receivedAtMs + flight.window.delayMs,
      this.#airtimeMs(flight.phyPayload, flight.window),
    );
    await this.#emitTxAck(flight, ack);
    const rx2StartMs = flight.rx.receivedAtMs + flight.rx2.delayMs;
    const rx2AirtimeMs = this.#airtimeMs(flight.phyPayload, flight.rx2);
    if (
      flight.window.name === 'RX1' &&
      this.#fitsWindow(flight.phyPayload, flight.rx2) &&
      this.#inTime(flight.rx, flight.rx2) &&
      this.ctx.dutyCycle.check(
        flight.rx.gatewayId,
        flight.rx2.frequencyHz,
        rx2StartMs,
        rx2AirtimeMs,
      ).ok
    ) {
      const downlinkId = this.ctx.nextDownlinkId();
      if (await this.#transmit(downlinkId, flight.rx.gatewayId, flight.phyPayload, flight.rx2)) {
        this.ctx.dutyCycle.record(
          flight.rx.gatewayId,
          flight.rx2.frequencyHz,
          rx2StartMs,
          rx2AirtimeMs,
        );
        this.ctx.counters.increment('downlinksRx2Fallback');
        this.#remember(downlinkId, { ...flight, window: flight.rx2 });
        return;
      }
    }
    if (flight.queueItem !== undefined) {
      await putBackDownlink(
        this.ctx,
        flight.queueItem,
        `gateway refused transmission: ${ack.status}`,
      );
    }
    await this.#log(
      flight.answer,
      'ERROR',
      'DOWNLINK_NOT_TRANSMITTED',
      `gateway ${ack.gatewayId} refused the ${flight.window.name} downlink: ${ack.status}`,
    );
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

  #airtimeMs(phyPayload: Uint8Array, window: ReceiveWindow): number {
    return dataRateTimeOnAirMs(
      this.ctx.region.dataRate(window.dataRate),
      phyPayload.length,
      'downlink',
    );
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
  ): Promise<BuiltDataDownlink | { phyPayload: Uint8Array } | undefined> {
    if (answer.kind === 'joinAccept') return { phyPayload: answer.phyPayload };
    return buildDataDownlink(this.ctx, {
      session: answer.session,
      device: answer.device,
      dataRate: window.dataRate,
      ack: answer.ack,
      uplinkFCnt: answer.uplinkFCnt,
      adr: answer.adr,
      macCommands: answer.macCommands,
      force: answer.force,
    });
  }

  async #emitTxAck(flight: InFlight, ack: GatewayTxAck): Promise<void> {
    await emitTxAckEvent(this.ctx, flight.answer.device, ack, {
      queueItemId: flight.queueItem?.id ?? null,
      fCntDown: flight.fCntDown ?? null,
      window: flight.window.name,
      frequencyHz: flight.window.frequencyHz,
      dataRate: flight.window.dataRate,
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
