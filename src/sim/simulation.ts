import type { TxAckStatus } from '../gateway/types.js';
import {
  type DeviceTransmission,
  type DownlinkOutcome,
  type ReceivedDownlink,
  type ReceiveWindow,
  SimulatedDevice,
  type SimulatedDeviceConfig,
} from './device.js';
import {
  type LinkQuality,
  type ReceivedPullResp,
  SimulatedGateway,
  type SimulatedGatewayOptions,
} from './gateway.js';
import {
  createPayloadGenerator,
  PAYLOAD_KINDS,
  type PayloadGenerator,
  type PayloadKind,
} from './payloads.js';
import { createRandom, type Random } from './random.js';

/**
 * A fleet of simulated devices heard by simulated gateways, against a network server at a
 * Semtech UDP address: OTAA devices join (retrying with backoff until accepted), then every
 * device sends periodic uplinks with realistic payloads, some confirmed. Each uplink is heard
 * by the K gateways of its device, each with its own signal. Everything random is drawn from
 * one seed; every timer is cleared by `stop()`.
 */

export interface SimulationDeviceConfig extends SimulatedDeviceConfig {
  /** Payload format (default: the formats in turn, device by device). */
  payload?: PayloadKind;
  /** Overrides the simulation's interval for this device. */
  uplinkIntervalMs?: number;
}

export interface JoinRetryOptions {
  /** Wait for a JoinAccept this long before trying again (default 7000: JOIN_ACCEPT_DELAY2 + 1 s). */
  timeoutMs?: number;
  /** First backoff after a failed attempt (default 1000), doubled per attempt. */
  firstDelayMs?: number;
  /** Backoff ceiling (default 60 000). */
  maxDelayMs?: number;
}

export interface SimulationOptions {
  server: { host: string; port: number };
  /** Number of gateways, with EUIs `gatewayIds` or derived from the seed. */
  gateways: number;
  gatewayIds?: readonly string[];
  devices: readonly SimulationDeviceConfig[];
  uplinkIntervalMs: number;
  /** Stop after this long. */
  durationMs?: number;
  /** Stop once every device sent this many data uplinks (and `settleMs` passed). */
  uplinkCount?: number;
  /** Time left after the last uplink for its downlinks (default 2000 ms). */
  settleMs?: number;
  /** Share of confirmed uplinks, 0 to 1 (default 0). */
  confirmedRatio?: number;
  /** Default 1. */
  seed?: number;
  /** Gateways hearing each device (default min(2, gateways)). */
  gatewaysPerDevice?: number;
  joinRetry?: JoinRetryOptions;
  /** Options every gateway gets (intervals, protocol version, TX_ACK policy, clocks). */
  gatewayOptions?: Partial<
    Omit<SimulatedGatewayOptions, 'gatewayId' | 'server' | 'onEvent' | 'random'>
  >;
  onEvent?: (event: SimulationEvent) => void;
}

export interface SimulationStats {
  joinRequests: number;
  joins: number;
  uplinksSent: number;
  confirmedUplinks: number;
  /** Data downlinks the devices accepted. */
  downlinksReceived: number;
  downlinksBadMic: number;
  /** Replayed or malformed downlinks meant for a device. */
  downlinksRejected: number;
  /** Downlinks carrying the ACK of a confirmed uplink. */
  acksReceived: number;
  /** PULL_RESPs that fit no receive window, or arrived too late to be sent. */
  timingErrors: number;
  /** PULL_RESPs the gateways refused (TX_ACK other than NONE). */
  txAckErrors: number;
  /** Errors inside the simulation (a device could not build a frame, a socket failed). */
  errors: number;
}

export type SimulationEvent =
  | { type: 'started'; gatewayIds: string[] }
  | { type: 'joinRequest'; devEui: string; devNonce: number; attempt: number }
  | { type: 'joined'; devEui: string; devAddr: string }
  | {
      type: 'uplink';
      devEui: string;
      fCnt: number;
      fPort: number | undefined;
      confirmed: boolean;
      gatewayIds: string[];
    }
  | { type: 'downlink'; devEui: string; window: ReceiveWindow['name']; downlink: ReceivedDownlink }
  | { type: 'downlinkRejected'; devEui: string; reason: string; detail: string }
  | { type: 'timingError'; gatewayId: string; record: ReceivedPullResp }
  | { type: 'txAckError'; gatewayId: string; status: TxAckStatus }
  | { type: 'error'; message: string }
  | { type: 'finished'; stats: SimulationStats };

interface DeviceRuntime {
  device: SimulatedDevice;
  random: Random;
  payloads: PayloadGenerator;
  intervalMs: number;
  links: { gateway: SimulatedGateway; base: LinkQuality }[];
  uplinksSent: number;
  joinAttempts: number;
  joinTimer: NodeJS.Timeout | undefined;
  done: boolean;
}

function emptyStats(): SimulationStats {
  return {
    joinRequests: 0,
    joins: 0,
    uplinksSent: 0,
    confirmedUplinks: 0,
    downlinksReceived: 0,
    downlinksBadMic: 0,
    downlinksRejected: 0,
    acksReceived: 0,
    timingErrors: 0,
    txAckErrors: 0,
    errors: 0,
  };
}

function gatewayIdFor(random: Random, index: number): string {
  const prefix = Array.from(random.fork('gateway-prefix').bytes(4), (b) =>
    b.toString(16).padStart(2, '0'),
  ).join('');
  return `${prefix}${index.toString(16).padStart(8, '0')}`;
}

export class Simulation {
  readonly devices: readonly SimulatedDevice[];
  readonly gateways: readonly SimulatedGateway[];
  /** Resolves when the duration is over or every device sent `uplinkCount` uplinks. */
  readonly finished: Promise<SimulationStats>;
  readonly #options: SimulationOptions;
  readonly #random: Random;
  readonly #runtimes: DeviceRuntime[];
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #stats = emptyStats();
  #finish: (stats: SimulationStats) => void = () => {};
  #stopped: Promise<SimulationStats> | undefined;

  /** Opens the gateways (waiting briefly for their first PULL_ACK) and starts the devices. */
  static async start(options: SimulationOptions): Promise<Simulation> {
    if (!(options.uplinkIntervalMs > 0)) throw new RangeError('uplinkIntervalMs must be positive');
    if (options.gateways < 1) throw new RangeError('a simulation needs at least one gateway');
    const random = createRandom(options.seed ?? 1);
    let simulation: Simulation | undefined;
    const gateways: SimulatedGateway[] = [];
    try {
      for (let index = 0; index < options.gateways; index++) {
        const gatewayId = options.gatewayIds?.[index] ?? gatewayIdFor(random, index);
        gateways.push(
          await SimulatedGateway.start({
            statIntervalMs: 30_000,
            ...options.gatewayOptions,
            gatewayId,
            server: options.server,
            random: random.fork(`gateway:${gatewayId}`),
            onEvent: (event) => {
              if (simulation !== undefined) simulation.#onGatewayEvent(event);
            },
          }),
        );
      }
    } catch (error) {
      await Promise.all(gateways.map((gateway) => gateway.close()));
      throw error;
    }
    simulation = new Simulation(options, random, gateways);
    await Promise.all(gateways.map((gateway) => gateway.ready(2000)));
    simulation.#emit({ type: 'started', gatewayIds: gateways.map((g) => g.gatewayId) });
    simulation.#begin();
    return simulation;
  }

  private constructor(options: SimulationOptions, random: Random, gateways: SimulatedGateway[]) {
    this.#options = options;
    this.#random = random;
    this.gateways = gateways;
    this.finished = new Promise((resolve) => {
      this.#finish = resolve;
    });
    const perDevice = Math.max(1, Math.min(options.gatewaysPerDevice ?? 2, gateways.length));
    this.#runtimes = options.devices.map((config, index) => {
      const deviceRandom = random.fork(`device:${config.devEui.toLowerCase()}`);
      const device = new SimulatedDevice({
        ...config,
        random: config.random ?? deviceRandom.fork('radio'),
      });
      const chosen = [...gateways]
        .map((gateway) => ({ gateway, order: deviceRandom.next() }))
        .sort((a, b) => a.order - b.order)
        .slice(0, perDevice);
      return {
        device,
        random: deviceRandom,
        payloads: createPayloadGenerator(
          config.payload ?? PAYLOAD_KINDS[index % PAYLOAD_KINDS.length]!,
          deviceRandom.fork('payload'),
        ),
        intervalMs: config.uplinkIntervalMs ?? options.uplinkIntervalMs,
        links: chosen.map(({ gateway }) => {
          // Signal at each gateway: from the edge of coverage to close by; SNR follows RSSI.
          const rssi = deviceRandom.float(-125, -60);
          return {
            gateway,
            base: { rssi, snr: Math.min(12, (rssi + 118) / 3 + deviceRandom.gaussian(2)) },
          };
        }),
        uplinksSent: 0,
        joinAttempts: 0,
        joinTimer: undefined,
        done: false,
      };
    });
    this.devices = this.#runtimes.map((runtime) => runtime.device);
    // Devices operating in class C also hear what their gateways send outside class A windows.
    for (const runtime of this.#runtimes) {
      for (const { gateway, base } of runtime.links) {
        gateway.registerClassC(runtime.device, {
          link: base,
          deliver: (phyPayload, window, quality) =>
            this.#deliver(runtime, phyPayload, window, quality),
        });
      }
    }
  }

  stats(): SimulationStats {
    return { ...this.#stats };
  }

  /** Clears every timer, closes the gateways and resolves `finished` if it was not. */
  stop(): Promise<SimulationStats> {
    this.#stopped ??= (async () => {
      for (const timer of this.#timers) clearTimeout(timer);
      this.#timers.clear();
      await Promise.all(this.gateways.map((gateway) => gateway.close()));
      const stats = this.stats();
      this.#finish(stats);
      return stats;
    })();
    return this.#stopped;
  }

  // -------------------------------------------------------------------------------------------

  #begin(): void {
    const { durationMs } = this.#options;
    if (durationMs !== undefined) this.#after(durationMs, () => this.#complete());
    for (const runtime of this.#runtimes) {
      // Spread the fleet's first transmissions over one interval, as devices powered at random.
      const startMs = runtime.random.float(0, Math.min(runtime.intervalMs, 1000));
      this.#after(startMs, () =>
        runtime.device.activated ? this.#sendUplink(runtime) : this.#sendJoin(runtime),
      );
    }
    if (this.#runtimes.length === 0 && durationMs === undefined) this.#complete();
  }

  #complete(): void {
    if (this.#stopped !== undefined) return;
    const stats = this.stats();
    this.#emit({ type: 'finished', stats });
    this.#finish(stats);
  }

  #after(delayMs: number, action: () => void): NodeJS.Timeout {
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      if (this.#stopped !== undefined) return;
      try {
        action();
      } catch (error) {
        this.#stats.errors++;
        this.#emit({
          type: 'error',
          message: error instanceof Error ? error.message : String(error),
        });
      }
    }, delayMs);
    this.#timers.add(timer);
    return timer;
  }

  #emit(event: SimulationEvent): void {
    this.#options.onEvent?.(event);
  }

  #sendJoin(runtime: DeviceRuntime): void {
    if (runtime.device.activated) return;
    const retry = this.#options.joinRetry ?? {};
    const transmission = runtime.device.joinRequest();
    runtime.joinAttempts++;
    this.#stats.joinRequests++;
    this.#emit({
      type: 'joinRequest',
      devEui: runtime.device.devEui,
      devNonce: transmission.counter,
      attempt: runtime.joinAttempts,
    });
    this.#transmit(runtime, transmission);
    runtime.joinTimer = this.#after(retry.timeoutMs ?? 7000, () => {
      runtime.joinTimer = undefined;
      if (runtime.device.activated) return;
      const first = retry.firstDelayMs ?? 1000;
      const ceiling = retry.maxDelayMs ?? 60_000;
      const backoff = Math.min(ceiling, first * 2 ** Math.min(runtime.joinAttempts - 1, 20));
      // Jitter keeps a fleet powered up together from retrying in lockstep.
      this.#after(backoff * runtime.random.float(0.5, 1.5), () => this.#sendJoin(runtime));
    });
  }

  #sendUplink(runtime: DeviceRuntime): void {
    const { uplinkCount } = this.#options;
    if (uplinkCount !== undefined && runtime.uplinksSent >= uplinkCount) return;
    const payload = runtime.payloads.next();
    const confirmed = runtime.random.chance(this.#options.confirmedRatio ?? 0);
    const transmission = runtime.device.uplink({
      fPort: payload.fPort,
      payload: payload.bytes,
      confirmed,
    });
    runtime.uplinksSent++;
    this.#stats.uplinksSent++;
    if (confirmed) this.#stats.confirmedUplinks++;
    const gatewayIds = this.#transmit(runtime, transmission);
    this.#emit({
      type: 'uplink',
      devEui: runtime.device.devEui,
      fCnt: transmission.counter,
      fPort: payload.fPort,
      confirmed,
      gatewayIds,
    });
    if (uplinkCount !== undefined && runtime.uplinksSent >= uplinkCount) {
      this.#after(this.#options.settleMs ?? 2000, () => {
        runtime.done = true;
        if (this.#runtimes.every((r) => r.done)) this.#complete();
      });
      return;
    }
    const jitter = runtime.random.float(0.9, 1.1);
    this.#after(runtime.intervalMs * jitter, () => this.#sendUplink(runtime));
  }

  /** Puts a frame on the air: every linked gateway hears it with its own signal. */
  #transmit(runtime: DeviceRuntime, transmission: DeviceTransmission): string[] {
    const heardBy: string[] = [];
    for (const { gateway, base } of runtime.links) {
      const link = {
        rssi: base.rssi + runtime.random.gaussian(2),
        snr: base.snr + runtime.random.gaussian(1),
      };
      gateway.forwardUplink(transmission, link, (phyPayload, window, quality) =>
        this.#deliver(runtime, phyPayload, window, quality),
      );
      heardBy.push(gateway.gatewayId);
    }
    return heardBy;
  }

  #deliver(
    runtime: DeviceRuntime,
    phyPayload: Uint8Array,
    window: ReceiveWindow,
    link: LinkQuality,
  ): boolean {
    const { device } = runtime;
    const outcome: DownlinkOutcome = device.receive(phyPayload, {
      window: window.name,
      snr: link.snr,
    });
    switch (outcome.status) {
      case 'joined':
        this.#stats.joins++;
        if (runtime.joinTimer !== undefined) {
          clearTimeout(runtime.joinTimer);
          this.#timers.delete(runtime.joinTimer);
          runtime.joinTimer = undefined;
        }
        this.#emit({
          type: 'joined',
          devEui: device.devEui,
          devAddr: outcome.devAddr.toString(16).padStart(8, '0'),
        });
        // A JoinAccept answering a rejoin keeps the uplink loop that runs already.
        if (outcome.rejoinType === undefined) {
          this.#after(runtime.random.float(0, Math.min(runtime.intervalMs, 1000)), () =>
            this.#sendUplink(runtime),
          );
        }
        return true;
      case 'accepted':
        this.#stats.downlinksReceived++;
        if (outcome.downlink.ack) this.#stats.acksReceived++;
        this.#emit({
          type: 'downlink',
          devEui: device.devEui,
          window: window.name,
          downlink: outcome.downlink,
        });
        return true;
      case 'rejected':
        if (outcome.reason === 'mic') this.#stats.downlinksBadMic++;
        else this.#stats.downlinksRejected++;
        this.#emit({
          type: 'downlinkRejected',
          devEui: device.devEui,
          reason: outcome.reason,
          detail: outcome.detail,
        });
        return false;
      case 'ignored':
        return false;
    }
  }

  #onGatewayEvent(event: Parameters<NonNullable<SimulatedGatewayOptions['onEvent']>>[0]): void {
    if (event.type === 'error') {
      this.#stats.errors++;
      this.#emit({ type: 'error', message: `gateway ${event.gatewayId}: ${event.message}` });
      return;
    }
    if (event.type !== 'downlink') return;
    const { record, gatewayId } = event;
    if (record.window === undefined || record.txAckStatus === 'TOO_LATE') {
      this.#stats.timingErrors++;
      this.#emit({ type: 'timingError', gatewayId, record });
    }
    if (record.txAckStatus !== 'NONE') {
      this.#stats.txAckErrors++;
      this.#emit({ type: 'txAckError', gatewayId, status: record.txAckStatus });
    }
  }
}

/** Starts a simulation, waits until it finishes (needs `durationMs` or `uplinkCount`), stops it. */
export async function runSimulation(options: SimulationOptions): Promise<SimulationStats> {
  if (options.durationMs === undefined && options.uplinkCount === undefined) {
    throw new RangeError('runSimulation needs durationMs or uplinkCount to know when to stop');
  }
  const simulation = await Simulation.start(options);
  try {
    await simulation.finished;
  } finally {
    await simulation.stop();
  }
  return simulation.stats();
}
