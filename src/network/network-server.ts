import { randomUUID } from 'node:crypto';
import { type DeduplicatedUplink, Deduplicator } from '../gateway/deduplicator.js';
import type {
  GatewayBackend,
  GatewayStats,
  GatewayTxAck,
  GatewayUplink,
} from '../gateway/types.js';
import type { JoinServer } from '../join/join-server.js';
import { type Logger, silentLogger } from '../logger.js';
import { isLorawanError } from '../lorawan/errors.js';
import { decodePhyPayloadWithMicInput } from '../lorawan/phy-payload.js';
import type { Channel, ChannelPlan, Region } from '../lorawan/regions/index.js';
import type { NetworkConfig, NetworkContext } from './context.js';
import { createNetworkCounters, type NetworkCounters } from './counters.js';
import { DeviceCache } from './device-cache.js';
import { DeviceProfileCache } from './device-profile-cache.js';
import type { BlindDownlinkRelay } from './downlink/blind-downlinks.js';
import { ClassAScheduler } from './downlink/class-a.js';
import { ClassCScheduler } from './downlink/class-c.js';
import { GatewayDutyCycle } from './downlink/duty-cycle.js';
import { uplinkDataRate } from './downlink/rx-windows.js';
import { EventBus, type GaletEvent } from './events.js';
import type { UplinkForwarder } from './forward.js';
import { KeyedQueue } from './keyed-queue.js';
import { LatencyHistogram } from './latency.js';
import type { ForceRejoinRequest } from './mac/requests.js';
import { activationSessionMac, sessionMacOf, trustSessionMac } from './mac/session-mac.js';
import { SessionCache } from './session-cache.js';
import type { DeviceSession, NetworkStore } from './store.js';
import { handleDataUplink } from './uplink/data-uplink.js';
import { FramePrecheckMirror } from './uplink/frame-precheck.js';
import { handleJoinRequest } from './uplink/join-request.js';
import { handleRejoinRequest } from './uplink/rejoin-request.js';

/** EU868 channels 3-7 that an 8-channel gateway listens on, sent to devices in the CFList. */
export const EU868_EXTRA_CHANNELS_HZ = [
  867_100_000, 867_300_000, 867_500_000, 867_700_000, 867_900_000,
];

export interface NetworkServerOptions {
  region: Region;
  store: NetworkStore;
  gateways: GatewayBackend;
  joinServer: JoinServer;
  config?: Partial<NetworkConfig> & { extraChannelsHz?: number[] };
  logger?: Logger;
  now?: () => number;
  bus?: EventBus;
  /**
   * Where the uplinks of operator-blind sessions go (to the provider's application role, which
   * alone holds the AppSKey). Absent: they are stored encrypted and go nowhere else.
   */
  forwardUplink?: UplinkForwarder;
  /** Operator-blind downlinks (encrypted by the provider): re-encryption and reports. */
  blindDownlinks?: BlindDownlinkRelay;
}

export function defaultNetworkConfig(region: Region): NetworkConfig {
  return {
    netId: 0x000000,
    deduplicationWindowMs: 200,
    downlinkLeadMs: 50,
    rx1DelaySeconds: 1,
    rx1DrOffset: 0,
    rx2Dr: region.rx2Default.dataRate,
    rx2FrequencyHz: region.rx2Default.frequencyHz,
    allowUnknownGateways: false,
  };
}

/**
 * The network server role: gateway copies in, deduplicated uplinks through session matching,
 * counters, MAC commands and events, Class A answers out. Every stage is guarded: a bad frame
 * is counted and logged, never thrown out of the gateway callback.
 */
export class NetworkServer {
  readonly counters: NetworkCounters = createNetworkCounters();
  readonly bus: EventBus;
  /** Time from reception to the stored `up` event: after the last copy, and beyond the dedup window. */
  readonly latency = {
    sinceLastCopy: new LatencyHistogram(),
    beyondWindow: new LatencyHistogram(),
  };
  readonly #ctx: NetworkContext;
  readonly #deduplicator: Deduplicator;
  readonly #scheduler: ClassAScheduler;
  readonly #classC: ClassCScheduler;
  readonly #knownGateways = new Set<string>();
  readonly #unknownGatewayCheckedAt = new Map<string, number>();
  readonly #inProgress = new Set<Promise<void>>();
  readonly #perDevice = new KeyedQueue<string>();
  #nextDownlinkId = 1;

  constructor(options: NetworkServerOptions) {
    const { region } = options;
    const config = { ...defaultNetworkConfig(region), ...options.config };
    this.bus = options.bus ?? new EventBus();
    const store = options.store;
    const bus = this.bus;
    this.#ctx = {
      config,
      region,
      channelPlan: channelPlan(region, options.config?.extraChannelsHz ?? EU868_EXTRA_CHANNELS_HZ),
      store,
      gateways: options.gateways,
      joinServer: options.joinServer,
      sessions: new SessionCache(),
      devices: new DeviceCache(store),
      profiles: new DeviceProfileCache(store),
      adrHistories: new Map(),
      dutyCycle: new GatewayDutyCycle({ region }),
      lastUplinkGateway: new Map(),
      previousSessions: new Map(),
      exclusive: async <T>(devAddr: number, work: () => Promise<T>): Promise<T> => {
        let result: T | undefined;
        await this.#perDevice.run(`addr:${devAddr}`, async () => {
          result = await work();
        });
        return result as T;
      },
      nextDownlinkId: () => this.#nextDownlinkId++,
      triggerClassC: (devEui: string) => this.#classC.trigger(devEui),
      pendingDownlinks: new Set<string>(),
      observeUplinkLatency: (uplink, storedAtMs) => {
        this.latency.sinceLastCopy.observe(storedAtMs - uplink.lastReceivedAtMs);
        this.latency.beyondWindow.observe(
          storedAtMs - uplink.firstReceivedAtMs - config.deduplicationWindowMs,
        );
      },
      counters: this.counters,
      logger: options.logger ?? silentLogger,
      now: options.now ?? Date.now,
      bus,
      forwardUplink: options.forwardUplink,
      blindDownlinks: options.blindDownlinks,
      emit: async (event: GaletEvent) => {
        await store.appendEvent(event);
        bus.publish(event);
      },
    };
    this.#scheduler = new ClassAScheduler(this.#ctx);
    this.#classC = new ClassCScheduler(this.#ctx);
    this.#deduplicator = new Deduplicator({
      windowMs: config.deduplicationWindowMs,
      onUplink: (uplink) => this.#track(this.#handleUplink(uplink)),
    });
  }

  get config(): NetworkConfig {
    return this.#ctx.config;
  }

  /** Loads sessions and wires the gateway backend. */
  async start(): Promise<void> {
    this.#ctx.sessions.load(await this.#ctx.store.listSessions());
    this.#startFramePrecheck();
    const devices = await this.#ctx.store.listDevices();
    this.#ctx.devices.load(devices);
    for (const devEui of await this.#ctx.store.devicesWithPendingDownlinks())
      this.#ctx.pendingDownlinks.add(devEui);
    // Class C devices can be reached before their next uplink: through the gateway that heard
    // their latest stored one.
    for (const device of devices) {
      const session = this.#ctx.sessions.byDevEui(device.devEui);
      if (session === undefined || !this.#classC.isClassC(device, session)) continue;
      const gateway = await this.#ctx.store.lastUplinkGateway(device.devEui);
      if (gateway !== undefined) this.#ctx.lastUplinkGateway.set(device.devEui, gateway);
    }
    const deduplication = this.#ctx.gateways.deduplication;
    if (deduplication === undefined) {
      this.#ctx.gateways.onUplink((copy) => this.#acceptCopy(copy));
    } else {
      deduplication.onUplink((uplink) => {
        this.counters.increment('uplinkCopies', uplink.rxInfo.length);
        this.#track(this.#handleUplink(uplink));
      });
    }
    this.#ctx.gateways.onTxAck((ack) => this.#track(this.#handleTxAck(ack)));
    this.#ctx.gateways.onStats((stats) => this.#track(this.#handleStats(stats)));
    for (const devEui of this.#ctx.lastUplinkGateway.keys()) {
      if (this.#ctx.pendingDownlinks.has(devEui)) this.#classC.trigger(devEui);
    }
  }

  /**
   * When the gateway backend runs an annotator beside its socket (the UDP worker), the MIC
   * check and decryption of 1.0.x data frames happen there (uplink/frame-precheck.ts): the
   * worker gets every session now, each change after, and all again when it restarts.
   */
  #startFramePrecheck(): void {
    const annotator = this.#ctx.gateways.frameAnnotator;
    if (annotator === undefined) return;
    const sessions = this.#ctx.sessions;
    const mirror = new FramePrecheckMirror((update) => annotator.update(update));
    mirror.reset(sessions.all());
    sessions.mirrorTo(mirror);
    annotator.onStarted(() => mirror.reset(sessions.all()));
  }

  /**
   * Gateway allow-list check for the gateway backend: answered at once from memory for known
   * gateways (every datagram asks), and for recently refused ones; otherwise the store decides.
   */
  isGatewayAllowed(gatewayId: string): boolean | Promise<boolean> {
    if (this.#ctx.config.allowUnknownGateways || this.#knownGateways.has(gatewayId)) return true;
    const checkedAt = this.#unknownGatewayCheckedAt.get(gatewayId);
    const now = this.#ctx.now();
    if (checkedAt !== undefined && now - checkedAt < 5_000) return false;
    return this.#askStoreAboutGateway(gatewayId, now);
  }

  async #askStoreAboutGateway(gatewayId: string, now: number): Promise<boolean> {
    if (await this.#ctx.store.isGatewayKnown(gatewayId)) {
      this.#knownGateways.add(gatewayId);
      this.#unknownGatewayCheckedAt.delete(gatewayId);
      return true;
    }
    if (this.#unknownGatewayCheckedAt.size > 10_000) this.#unknownGatewayCheckedAt.clear();
    this.#unknownGatewayCheckedAt.set(gatewayId, now);
    return false;
  }

  /** A session was created or changed outside the uplink path (ABP device, API). */
  sessionChanged(session: DeviceSession): void {
    this.#ctx.sessions.set(session);
  }

  sessionRemoved(devEui: string): void {
    this.#ctx.sessions.delete(devEui);
    this.#ctx.previousSessions.delete(devEui);
    this.#ctx.devices.forget(devEui);
    this.#ctx.pendingDownlinks.delete(devEui);
  }

  /** The API queued a downlink for this device. */
  downlinkQueued(devEui: string): void {
    this.#ctx.pendingDownlinks.add(devEui);
    this.#classC.trigger(devEui);
  }

  /** A device profile was changed or deleted through the API. */
  deviceProfileChanged(id: string): void {
    this.#ctx.profiles.forget(id);
  }

  /** A device's record changed (name, profile, class): read it again on its next frame. */
  deviceChanged(devEui: string): void {
    this.#ctx.devices.forget(devEui);
  }

  /**
   * LoRaWAN 1.1 ForceRejoinReq for one device, sent with its next downlink (its next uplink's
   * windows). Returns the request id, or why it cannot be asked.
   */
  async forceRejoin(
    devEui: string,
    request: Omit<ForceRejoinRequest, 'id' | 'dataRate'> & { dataRate?: number },
  ): Promise<{ id: string } | { error: string }> {
    const ctx = this.#ctx;
    const session = ctx.sessions.byDevEui(devEui);
    if (session === undefined) return { error: `device ${devEui} has no session (not joined)` };
    if (session.keys.lorawan !== '1.1') {
      return {
        error: `device ${devEui} is LoRaWAN ${session.macVersion}: ForceRejoinReq is 1.1 only`,
      };
    }
    const id = randomUUID();
    await ctx.exclusive(session.devAddr, async () => {
      const current = ctx.sessions.byDevEui(devEui) ?? session;
      const device = await ctx.devices.get(devEui);
      const base =
        sessionMacOf(ctx.region, current) ??
        activationSessionMac(ctx.region, current, device?.deviceClass ?? 'A');
      // Default: the data rate the device uses now, so the RejoinRequest reaches as far.
      const dataRate = request.dataRate ?? base.adr.dr ?? ctx.region.joinDataRates.min;
      const state = trustSessionMac({ ...base, forceRejoin: { id, ...request, dataRate } });
      await ctx.store.saveMacState(devEui, state);
      current.macState = state;
    });
    return { id };
  }

  /**
   * The operator set a device's class (API): the session's MAC state follows (it otherwise keeps
   * the class a LoRaWAN 1.1 device chose with DeviceModeInd), and a Class C device gets its
   * queue at once.
   */
  async deviceClassChanged(devEui: string, deviceClass: 'A' | 'C'): Promise<void> {
    const ctx = this.#ctx;
    ctx.devices.forget(devEui);
    const session = ctx.sessions.byDevEui(devEui);
    if (session === undefined) return;
    await ctx.exclusive(session.devAddr, async () => {
      const current = ctx.sessions.byDevEui(devEui) ?? session;
      const state = sessionMacOf(ctx.region, current);
      if (state === undefined || state.mac.deviceClass === deviceClass) return;
      const next = trustSessionMac({ ...state, mac: { ...state.mac, deviceClass } });
      await ctx.store.saveMacState(devEui, next);
      current.macState = next;
    });
    if (deviceClass === 'C') {
      if (!ctx.lastUplinkGateway.has(devEui)) {
        const gateway = await ctx.store.lastUplinkGateway(devEui);
        if (gateway !== undefined) ctx.lastUplinkGateway.set(devEui, gateway);
      }
      this.#classC.trigger(devEui);
    }
  }

  /**
   * Transmit time of a gateway in each duty-cycle sub-band over the last hour, counting the
   * transmissions already scheduled (Class A windows open up to 16 s after their uplink).
   */
  gatewayDutyCycle(gatewayId: string): {
    subBand: string;
    minFrequencyHz: number;
    maxFrequencyHz: number;
    dutyCycle: number;
    usedMs: number;
    budgetMs: number;
  }[] {
    return this.#ctx.dutyCycle.usage(gatewayId, this.#ctx.now() + 16_000).map((usage) => ({
      subBand: usage.subBand.name,
      minFrequencyHz: usage.subBand.minFrequencyHz,
      maxFrequencyHz: usage.subBand.maxFrequencyHz,
      dutyCycle: usage.subBand.dutyCycle,
      usedMs: Math.round(usage.usedMs * 10) / 10,
      budgetMs: usage.budgetMs,
    }));
  }

  gatewayAdded(gatewayId: string): void {
    this.#knownGateways.add(gatewayId);
    this.#unknownGatewayCheckedAt.delete(gatewayId);
  }

  /** A gateway was deleted: its traffic is refused from now on (as an unknown gateway's). */
  gatewayRemoved(gatewayId: string): void {
    this.#knownGateways.delete(gatewayId);
    this.#ctx.gateways.gatewayRemoved?.(gatewayId);
  }

  get activeSessions(): number {
    return this.#ctx.sessions.size;
  }

  /** Processes what is open (dedup windows, uplinks under way) and stops taking more. */
  async close(): Promise<void> {
    await this.#ctx.gateways.deduplication?.flush();
    this.#deduplicator.close();
    this.#classC.close();
    while (this.#inProgress.size > 0) await Promise.allSettled([...this.#inProgress]);
  }

  #track(work: Promise<void>): void {
    this.#inProgress.add(work);
    void work.finally(() => this.#inProgress.delete(work));
  }

  #acceptCopy(copy: GatewayUplink): void {
    this.counters.increment('uplinkCopies');
    const allowed = this.isGatewayAllowed(copy.rxInfo.gatewayId);
    if (allowed === true) {
      this.#deduplicator.add(copy);
      return;
    }
    const decide = (verdict: boolean) => {
      if (verdict) this.#deduplicator.add(copy);
      else this.counters.increment('uplinksFromUnknownGateway');
    };
    if (allowed === false) decide(false);
    else this.#track(allowed.then(decide, () => decide(false)));
  }

  async #handleUplink(uplink: DeduplicatedUplink): Promise<void> {
    this.counters.increment('uplinksDeduplicated');
    const ctx = this.#ctx;
    const deduplicationId = randomUUID();
    try {
      const { payload, micInput } = decodePhyPayloadWithMicInput(uplink.phyPayload);
      const uplinkDr = uplinkDataRate(ctx.region, uplink.txInfo.modulation);
      switch (payload.mType) {
        case 'JoinRequest':
          await this.#perDevice.run(`join:${payload.devEui}`, () =>
            handleJoinRequest(ctx, this.#scheduler, uplink, uplinkDr, payload, deduplicationId),
          );
          return;
        case 'UnconfirmedDataUp':
        case 'ConfirmedDataUp':
          await this.#perDevice.run(`addr:${payload.devAddr}`, () =>
            handleDataUplink(
              ctx,
              this.#scheduler,
              uplink,
              uplinkDr,
              payload,
              micInput,
              deduplicationId,
            ),
          );
          return;
        case 'RejoinRequest':
          await this.#perDevice.run(`join:${payload.devEui}`, () =>
            handleRejoinRequest(
              ctx,
              this.#scheduler,
              uplink,
              uplinkDr,
              payload,
              micInput,
              deduplicationId,
            ),
          );
          return;
        default:
          this.counters.increment('uplinksMalformed');
          ctx.logger.info({ mType: payload.mType }, 'frame type not handled on the uplink path');
      }
    } catch (error) {
      if (isLorawanError(error)) {
        this.counters.increment('uplinksMalformed');
        ctx.logger.info(
          { code: error.code, gateways: uplink.rxInfo.length },
          `malformed uplink: ${error.message}`,
        );
        return;
      }
      ctx.logger.error({ err: error }, 'uplink processing failed');
    }
  }

  async #handleTxAck(ack: GatewayTxAck): Promise<void> {
    try {
      if (!(await this.#classC.handleTxAck(ack))) await this.#scheduler.handleTxAck(ack);
    } catch (error) {
      this.#ctx.logger.error({ err: error }, 'TX acknowledgement processing failed');
    }
  }

  async #handleStats(stats: GatewayStats): Promise<void> {
    try {
      if (await this.isGatewayAllowed(stats.gatewayId))
        await this.#ctx.store.recordGatewayStats(stats);
    } catch (error) {
      this.#ctx.logger.error({ err: error }, 'gateway statistics processing failed');
    }
  }
}

/** The region's default channels followed by the extra channels the CFList announces. */
export function channelPlan(region: Region, extraChannelsHz: readonly number[]): ChannelPlan {
  const plan: Channel[] = region.defaultChannels.map((channel) => ({ ...channel }));
  for (const frequencyHz of extraChannelsHz)
    plan.push({ frequencyHz, minDr: 0, maxDr: 5, enabled: true });
  return plan;
}
