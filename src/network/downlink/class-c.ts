import type { GatewayTxAck } from '../../gateway/types.js';
import { dataRateTimeOnAirMs } from '../../lorawan/regions/index.js';
import type { NetworkContext } from '../context.js';
import { emitLogEvent } from '../log-event.js';
import { rxSettingsOf, sessionMacOf } from '../mac/session-mac.js';
import type { DeviceSession, NetworkDevice, QueuedDownlink } from '../store.js';
import {
  buildDataDownlink,
  emitTxAckEvent,
  putBackDownlink,
  settleConfirmedDownlink,
} from './data-downlink.js';
import { downlinkModulation } from './rx-windows.js';

/** PHYPayload bytes around an FRMPayload: MHDR, DevAddr, FCtrl, FCnt, FPort, MIC. */
const FRAME_OVERHEAD = 13;
/** When a gateway sends no TX_ACK (protocol 1), the next item goes this long after airtime. */
const NEXT_AFTER_AIRTIME_MS = 500;
/** A gateway that refused a frame is asked again after this long. */
const RETRY_AFTER_REFUSAL_MS = 5_000;

interface ClassCFlight {
  devEui: string;
  gatewayId: string;
  queueItem: QueuedDownlink | undefined;
  fCntDown: number;
  frequencyHz: number;
  dataRate: number;
  /** What the duty-cycle accounting recorded for it. */
  startMs: number;
  airtimeMs: number;
  expiresAtMs: number;
}

/** Which transmission of a confirmed downlink an acknowledgement timeout is for. */
function transmissionKey(awaiting: { queueItemId: string; fCntDown: number }): string {
  return `${awaiting.queueItemId}:${awaiting.fCntDown}`;
}

/**
 * Class C (LoRaWAN 1.0.4 §6): the device listens on its RX2 parameters whenever it does not
 * transmit, so a queued downlink goes at once ("immediately" timing) through the best gateway
 * of its latest uplink, one item at a time. A confirmed item waits for its ACK (an uplink) up to
 * the profile's timeout, then is sent again or reported unacknowledged; so does one that went in
 * a Class A window (the uplink path triggers the scheduler after answering). Class A windows
 * still serve the device when an uplink opens them. After a restart the gateway comes from the
 * device's latest stored uplink; a device that never sent one waits for its first.
 */
export class ClassCScheduler {
  readonly #inFlight = new Map<number, ClassCFlight>();
  /** One timer per device; `watching` names the transmission an acknowledgement timeout is for. */
  readonly #timers = new Map<string, { timer: NodeJS.Timeout; watching?: string }>();
  /** Devices told about a missing gateway or a duty-cycle wait, so the log says it once. */
  readonly #waitingReason = new Map<string, string>();
  #closed = false;

  constructor(private readonly ctx: NetworkContext) {}

  /** Whether the device is in Class C now (a 1.1 device may have switched with DeviceModeInd). */
  isClassC(device: NetworkDevice, session: DeviceSession): boolean {
    if (session.macVersion === '1.1.0') {
      const state = sessionMacOf(this.ctx.region, session);
      if (state !== undefined) return state.mac.deviceClass === 'C';
    }
    return device.deviceClass === 'C';
  }

  /**
   * Sends the device's next queued item if it is a Class C device and may receive one now; if
   * a confirmed downlink waits for its acknowledgement, makes sure its timeout runs.
   */
  trigger(devEui: string): void {
    if (this.#closed) return;
    void this.#run(devEui).catch((error: unknown) => {
      this.ctx.logger.error({ err: error, devEui }, 'Class C downlink failed');
    });
  }

  /** True when the acknowledgement was for a Class C transmission (and is now handled). */
  async handleTxAck(ack: GatewayTxAck): Promise<boolean> {
    const flight = this.#inFlight.get(ack.downlinkId);
    if (flight === undefined) return false;
    this.#inFlight.delete(ack.downlinkId);
    const device = await this.ctx.devices.get(flight.devEui);
    if (ack.status === 'NONE') {
      this.ctx.counters.increment('txAcksOk');
      if (device !== undefined) await this.#emitTxAck(device, flight, ack);
      if (!flight.queueItem?.confirmed) this.trigger(flight.devEui);
      return true;
    }
    this.ctx.counters.increment('txAcksError');
    // Not transmitted: the airtime counted when it was handed to the gateway was not used.
    this.ctx.dutyCycle.release(
      flight.gatewayId,
      flight.frequencyHz,
      flight.startMs,
      flight.airtimeMs,
    );
    if (device !== undefined) {
      await this.#emitTxAck(device, flight, ack);
      await emitLogEvent(
        this.ctx,
        device,
        'ERROR',
        'DOWNLINK_NOT_TRANSMITTED',
        `gateway ${ack.gatewayId} refused the Class C downlink: ${ack.status}`,
      );
    }
    if (flight.queueItem !== undefined) {
      await putBackDownlink(
        this.ctx,
        flight.queueItem,
        `gateway refused transmission: ${ack.status}`,
      );
    }
    this.#later(flight.devEui, RETRY_AFTER_REFUSAL_MS);
    return true;
  }

  close(): void {
    this.#closed = true;
    for (const { timer } of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
  }

  async #run(devEui: string): Promise<void> {
    const session = this.ctx.sessions.byDevEui(devEui);
    if (session === undefined) return;
    if (!this.ctx.pendingDownlinks.has(devEui) && session.awaitingAck === null) return;
    const device = await this.ctx.devices.get(devEui);
    if (device === undefined || !this.isClassC(device, session)) return;
    await this.ctx.exclusive(session.devAddr, () => this.#send(device));
  }

  async #send(device: NetworkDevice): Promise<void> {
    const { ctx } = this;
    const devEui = device.devEui;
    const session = ctx.sessions.byDevEui(devEui);
    if (session === undefined) return;
    if (session.awaitingAck !== null) {
      await this.#watchAcknowledgement(device, session.awaitingAck);
      return;
    }
    if (!ctx.pendingDownlinks.has(devEui)) return;
    const gateway = ctx.lastUplinkGateway.get(devEui);
    if (gateway === undefined) {
      await this.#waiting(
        device,
        'CLASS_C_NO_GATEWAY',
        'no uplink known from this device: the Class C downlink waits for its first one',
      );
      return;
    }
    const next = await ctx.store.nextPendingDownlink(devEui);
    if (next === undefined) return;
    const rx = rxSettingsOf(ctx.region, session);
    const dataRate = ctx.region.dataRate(rx.rx2Dr);
    const startMs = ctx.now();
    const estimatedMs = dataRateTimeOnAirMs(
      dataRate,
      FRAME_OVERHEAD + next.data.length,
      'downlink',
    );
    const dutyCycle = ctx.dutyCycle.check(
      gateway.gatewayId,
      rx.rx2FrequencyHz,
      startMs,
      estimatedMs,
    );
    if (!dutyCycle.ok) {
      ctx.counters.increment('downlinksDutyCycleRefused');
      await this.#waiting(
        device,
        'DUTY_CYCLE',
        `Class C downlink kept queued: ${dutyCycle.reason}`,
      );
      const retryAtMs = 'retryAtMs' in dutyCycle ? dutyCycle.retryAtMs : undefined;
      if (retryAtMs !== undefined) this.#later(devEui, Math.max(1_000, retryAtMs - startMs));
      return;
    }
    const profile = await ctx.profiles.forDevice(device);
    const built = await buildDataDownlink(ctx, {
      session,
      device,
      dataRate: rx.rx2Dr,
      ack: false,
      adr: profile.adr.enabled,
      macCommands: [],
      force: false,
    });
    if (built === undefined) return;
    const downlinkId = ctx.nextDownlinkId();
    const sent = await ctx.gateways.sendDownlink({
      gatewayId: gateway.gatewayId,
      downlinkId,
      phyPayload: built.phyPayload,
      frequencyHz: rx.rx2FrequencyHz,
      powerDbm: ctx.region.downlinkTxPowerDbm(rx.rx2FrequencyHz),
      modulation: downlinkModulation(dataRate),
      timing: { kind: 'immediately' },
    });
    if (!sent) {
      ctx.counters.increment('downlinksNoGatewayPath');
      if (built.queueItem !== undefined) {
        await putBackDownlink(
          ctx,
          built.queueItem,
          `gateway ${gateway.gatewayId} has no downlink path`,
        );
      }
      await this.#waiting(
        device,
        'NO_DOWNLINK_PATH',
        `gateway ${gateway.gatewayId} of the latest uplink has no downlink path`,
      );
      this.#later(devEui, RETRY_AFTER_REFUSAL_MS);
      return;
    }
    this.#waitingReason.delete(devEui);
    const airtimeMs = dataRateTimeOnAirMs(dataRate, built.phyPayload.length, 'downlink');
    ctx.dutyCycle.record(gateway.gatewayId, rx.rx2FrequencyHz, startMs, airtimeMs);
    ctx.counters.increment('downlinksScheduled');
    ctx.counters.increment('classCDownlinksScheduled');
    this.#remember(downlinkId, {
      devEui,
      gatewayId: gateway.gatewayId,
      queueItem: built.queueItem,
      fCntDown: built.fCntDown,
      frequencyHz: rx.rx2FrequencyHz,
      dataRate: rx.rx2Dr,
      startMs,
      airtimeMs,
      expiresAtMs: ctx.now() + 30_000,
    });
    const item = built.queueItem;
    if (item?.confirmed) {
      this.#later(
        devEui,
        profile.confirmedDownlink.classCTimeoutMs,
        () =>
          this.#ackTimedOut(device, item, built.fCntDown, profile.confirmedDownlink.maxAttempts),
        transmissionKey({ queueItemId: item.id, fCntDown: built.fCntDown }),
      );
    } else {
      this.#later(devEui, airtimeMs + NEXT_AFTER_AIRTIME_MS);
    }
  }

  /**
   * A confirmed downlink the device has yet to acknowledge and no timeout watches: one sent in
   * a Class A window. The profile's Class C timeout applies to it too: the device may send its
   * next uplink (the only other thing that settles it) hours later, and its queue waits.
   */
  async #watchAcknowledgement(
    device: NetworkDevice,
    awaiting: NonNullable<DeviceSession['awaitingAck']>,
  ): Promise<void> {
    const key = transmissionKey(awaiting);
    if (this.#timers.get(device.devEui)?.watching === key) return;
    const item = await this.ctx.store.getDownlink(awaiting.queueItemId);
    if (item === undefined) return;
    const { maxAttempts, classCTimeoutMs } = (await this.ctx.profiles.forDevice(device))
      .confirmedDownlink;
    this.#later(
      device.devEui,
      classCTimeoutMs,
      () => this.#ackTimedOut(device, item, awaiting.fCntDown, maxAttempts),
      key,
    );
  }

  /** No uplink acknowledged the confirmed item in time: send it again, or report it. */
  async #ackTimedOut(
    device: NetworkDevice,
    item: QueuedDownlink,
    fCntDown: number,
    maxAttempts: number,
  ): Promise<void> {
    const session = this.ctx.sessions.byDevEui(device.devEui);
    if (session === undefined) return;
    await this.ctx.exclusive(session.devAddr, async () => {
      const awaiting = this.ctx.sessions.byDevEui(device.devEui)?.awaitingAck;
      // Acknowledged, or sent again meanwhile (in a Class A window): not this timer's business.
      if (awaiting?.queueItemId !== item.id || awaiting.fCntDown !== fCntDown) return;
      await settleConfirmedDownlink(this.ctx, device, awaiting, {
        acknowledged: false,
        maxAttempts,
        why: 'not acknowledged within the Class C timeout',
      });
    });
    this.trigger(device.devEui);
  }

  /**
   * Runs `work` (default: another send) for the device after `delayMs`; one timer per device.
   * `watching`: the transmission an acknowledgement timeout is for.
   */
  #later(devEui: string, delayMs: number, work?: () => Promise<void>, watching?: string): void {
    if (this.#closed) return;
    const previous = this.#timers.get(devEui);
    if (previous !== undefined) clearTimeout(previous.timer);
    const timer = setTimeout(() => {
      this.#timers.delete(devEui);
      if (work === undefined) this.trigger(devEui);
      else
        void work().catch((error: unknown) => {
          this.ctx.logger.error({ err: error, devEui }, 'Class C acknowledgement timeout failed');
        });
    }, Math.ceil(delayMs));
    timer.unref();
    this.#timers.set(devEui, watching === undefined ? { timer } : { timer, watching });
  }

  async #waiting(device: NetworkDevice, code: string, description: string): Promise<void> {
    if (this.#waitingReason.get(device.devEui) === description) return;
    this.#waitingReason.set(device.devEui, description);
    await emitLogEvent(this.ctx, device, 'WARNING', code, description);
  }

  #remember(downlinkId: number, flight: ClassCFlight): void {
    const now = this.ctx.now();
    for (const [id, old] of this.#inFlight) {
      if (old.expiresAtMs < now) this.#inFlight.delete(id);
    }
    this.#inFlight.set(downlinkId, flight);
  }

  async #emitTxAck(device: NetworkDevice, flight: ClassCFlight, ack: GatewayTxAck): Promise<void> {
    await emitTxAckEvent(this.ctx, device, ack, {
      queueItemId: flight.queueItem?.id ?? null,
      fCntDown: flight.fCntDown,
      window: 'CLASS_C',
      frequencyHz: flight.frequencyHz,
      dataRate: flight.dataRate,
    });
  }
}
