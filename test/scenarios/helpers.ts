/**
 * Scenario harness: a real Galet (startTestGalet) and simulated devices and Semtech UDP gateways
 * on 127.0.0.1. The harness only uses the public surface: the HTTP API (devices, queue, events,
 * metrics) and UDP datagrams. Everything random is seeded; waits poll with a deadline.
 */
import { createSocket } from 'node:dgram';
import type { TxAckStatus } from '../../src/gateway/types.js';
import { bytesToHex } from '../../src/lorawan/index.js';
import type { GaletOptions } from '../../src/server/galet.js';
import {
  type DeviceActivation,
  type DeviceLorawanVersion,
  type DeviceTransmission,
  type DownlinkOutcome,
  type ReceiveWindow,
  SimulatedDevice,
  type SimulatedDeviceConfig,
} from '../../src/sim/device.js';
import {
  type LinkQuality,
  type ReceivedPullResp,
  SimulatedGateway,
} from '../../src/sim/gateway.js';
import { apiRequest } from '../helpers/api.js';
import { removeDir, startTestGalet, type TestGalet } from '../helpers/galet.js';

export const APP_KEY = Uint8Array.from({ length: 16 }, (_, i) => 0x2b + i);
export const NWK_KEY = Uint8Array.from({ length: 16 }, (_, i) => 0x7e - i);
export const JOIN_EUI = '70b3d57ed0000000';

/** Galet's spelling of a simulated device's LoRaWAN version. */
export function macVersionOf(version: DeviceLorawanVersion): '1.0.2' | '1.0.3' | '1.0.4' | '1.1.0' {
  return version === '1.1' ? '1.1.0' : version;
}

export interface GatewaySpec {
  gatewayId: string;
  /** Counter value at start (default: seeded from the gateway EUI). */
  counterStartUs?: number;
  /** TX_ACK policy (default: the simulator's, TOO_LATE when the PULL_RESP came too late). */
  txAckStatus?: (pullResp: ReceivedPullResp) => TxAckStatus | undefined;
}

/** What a device made of a frame a gateway handed it. */
export interface Delivery {
  devEui: string;
  gatewayId: string;
  window: ReceiveWindow['name'];
  outcome: DownlinkOutcome;
}

/** A device's uplink heard by one gateway with the given signal. */
export interface Hearing {
  gateway: SimulatedGateway;
  link: LinkQuality;
}

// biome-ignore lint/suspicious/noExplicitAny: events are read field by field and asserted on
export type ApiEvent = Record<string, any> & { id: number; event: string };

/** Galet settings a scenario may change (the rest are startTestGalet's). */
export type ScenarioGaletOptions = Pick<
  Partial<GaletOptions>,
  'deduplicationWindowMs' | 'roles' | 'sqliteWriterThread' | 'framePrecheck'
>;

/** Settings of the simulated twin beyond its identity and keys. */
export type SimulatorSettings = Omit<
  Partial<SimulatedDeviceConfig>,
  'devEui' | 'lorawanVersion' | 'activation' | 'deviceClass'
>;

/** What a test may add to a device it registers. */
export interface DeviceOptions {
  /** The device's profile (POST /device-profiles); default none. */
  deviceProfileId?: string;
  /** Registered with this class, and the simulated device starts in it (default 'A'). */
  deviceClass?: 'A' | 'C';
  /** Data rate, ADR bit, battery, channels... of the simulated device. */
  simulator?: SimulatorSettings;
}

const DEFAULT_LINK: LinkQuality = { rssi: -80, snr: 7 };

export async function waitFor<T>(
  description: string,
  check: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 3000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${description}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A Galet with an application, registered gateways and their simulators; devices added per test. */
export class ScenarioNetwork {
  galet: TestGalet;
  gateways: SimulatedGateway[];
  readonly applicationId: string;
  readonly deliveries: Delivery[] = [];
  #specs: readonly GatewaySpec[];
  /** Counter values `countFromNow()` took: `metrics()` reports `*_total` samples above them. */
  #counterBaseline = new Map<string, number>();
  readonly #databaseUrl: string | undefined;
  readonly #options: ScenarioGaletOptions;
  /** Devices that hear no downlink (the gateways still transmit them). */
  readonly #deaf = new Set<string>();
  /** Attached to a Galet in another process: closing leaves it running. */
  #external = false;

  private constructor(
    galet: TestGalet,
    applicationId: string,
    specs: readonly GatewaySpec[],
    gateways: SimulatedGateway[],
    databaseUrl: string | undefined,
    options: ScenarioGaletOptions,
  ) {
    this.#databaseUrl = databaseUrl;
    this.#options = options;
    this.galet = galet;
    this.applicationId = applicationId;
    this.#specs = specs;
    this.gateways = gateways;
  }

  /**
   * `databaseUrl`: PostgreSQL instead of the SQLite file in the temporary data directory;
   * `options`: Galet settings such as a shorter deduplication window.
   */
  static async start(
    specs: readonly GatewaySpec[],
    databaseUrl?: string,
    options: ScenarioGaletOptions = {},
  ): Promise<ScenarioNetwork> {
    const galet = await startTestGalet({
      ...options,
      ...(databaseUrl === undefined ? {} : { databaseUrl }),
    });
    try {
      const application = await galet.request('POST', '/api/v1/applications', {
        name: 'Commune de Saint-Galmier',
      });
      if (application.status !== 201) throw new Error(JSON.stringify(application.json));
      for (const spec of specs) {
        const created = await galet.request('POST', '/api/v1/gateways', {
          gatewayId: spec.gatewayId,
          name: `gateway ${spec.gatewayId}`,
        });
        if (created.status !== 201) throw new Error(JSON.stringify(created.json));
      }
      const gateways = await startGateways(specs, galet.udpPort);
      return new ScenarioNetwork(galet, application.json.id, specs, gateways, databaseUrl, options);
    } catch (error) {
      await galet.stop();
      await removeDir(galet.dataDir);
      throw error;
    }
  }

  /**
   * Drives a Galet running in another process (its API and UDP port): registers an application
   * and the gateways through the API and starts the simulated gateways. `close()` stops only
   * the gateways.
   */
  static async attach(
    external: { baseUrl: string; udpPort: number; adminToken: string; dataDir: string },
    specs: readonly GatewaySpec[],
    /** The application and gateways registered already (a restarted process): none created. */
    existing?: { applicationId: string },
  ): Promise<ScenarioNetwork> {
    const request: TestGalet['request'] = (method, path, body) =>
      apiRequest(external.baseUrl, external.adminToken, method, path, body);
    const galet = {
      baseUrl: external.baseUrl,
      udpPort: external.udpPort,
      dataDir: external.dataDir,
      adminToken: { token: external.adminToken, created: false, source: 'environment' },
      request,
      stop: async () => {},
    } as unknown as TestGalet;
    const gateways = (udpPort: number) => startGateways(specs, udpPort);
    if (existing !== undefined) {
      const net = new ScenarioNetwork(
        galet,
        existing.applicationId,
        specs,
        await gateways(external.udpPort),
        undefined,
        {},
      );
      net.#external = true;
      return net;
    }
    const application = await request('POST', '/api/v1/applications', { name: 'Eau du Forez' });
    if (application.status !== 201) throw new Error(JSON.stringify(application.json));
    for (const spec of specs) {
      const created = await request('POST', '/api/v1/gateways', {
        gatewayId: spec.gatewayId,
        name: `gateway ${spec.gatewayId}`,
      });
      if (created.status !== 201) throw new Error(JSON.stringify(created.json));
    }
    const net = new ScenarioNetwork(
      galet,
      application.json.id,
      specs,
      await gateways(external.udpPort),
      undefined,
      {},
    );
    net.#external = true;
    return net;
  }

  gateway(gatewayId: string): SimulatedGateway {
    const gateway = this.gateways.find((g) => g.gatewayId === gatewayId);
    if (gateway === undefined) throw new Error(`no gateway ${gatewayId}`);
    return gateway;
  }

  /**
   * Replaces the simulated gateways: closes the current ones, registers the gateways of `specs`
   * that Galet does not know yet, and starts their simulators. Lets independent tests share one
   * Galet, each with gateways of its own (fresh EUIs start with empty stats and duty cycle).
   */
  async useGateways(specs: readonly GatewaySpec[]): Promise<void> {
    await Promise.all(this.gateways.map((gateway) => gateway.close()));
    this.gateways = [];
    for (const spec of specs) {
      if ((await this.galet.request('GET', `/api/v1/gateways/${spec.gatewayId}`)).status === 200) {
        continue;
      }
      const created = await this.galet.request('POST', '/api/v1/gateways', {
        gatewayId: spec.gatewayId,
        name: `gateway ${spec.gatewayId}`,
      });
      if (created.status !== 201) throw new Error(JSON.stringify(created.json));
    }
    this.#specs = specs;
    this.gateways = await startGateways(specs, this.galet.udpPort);
  }

  /**
   * From now on `metrics()` (and `metric`, `waitForMetric`) report each counter (a `*_total`
   * sample) as its increase since this call, so a test sharing a Galet with earlier tests
   * asserts exact counts of its own traffic. A restart clears it: the new Galet counts from 0.
   */
  async countFromNow(): Promise<void> {
    this.#counterBaseline = new Map();
    for (const [name, value] of await this.metrics()) {
      if (isCounterSample(name)) this.#counterBaseline.set(name, value);
    }
  }

  /** Stops Galet and the gateways, then starts a new Galet on the same data directory. */
  async restart(): Promise<void> {
    await Promise.all(this.gateways.map((gateway) => gateway.close()));
    this.gateways = [];
    await this.galet.stop();
    this.galet = await startTestGalet({
      ...this.#options,
      dataDir: this.galet.dataDir,
      ...(this.#databaseUrl === undefined ? {} : { databaseUrl: this.#databaseUrl }),
    });
    this.#counterBaseline = new Map();
    this.gateways = await startGateways(this.#specs, this.galet.udpPort);
  }

  async close(): Promise<void> {
    if (this.#external) {
      await Promise.all(this.gateways.map((gateway) => gateway.close()));
      return;
    }
    try {
      await Promise.all(this.gateways.map((gateway) => gateway.close()));
      await this.galet.stop();
    } finally {
      await removeDir(this.galet.dataDir);
    }
  }

  /** Registers an OTAA device through the API and returns its simulated twin. */
  async addOtaaDevice(
    devEui: string,
    lorawanVersion: DeviceLorawanVersion,
    options: { devNonce?: number; register?: boolean } & DeviceOptions = {},
  ): Promise<SimulatedDevice> {
    const is11 = lorawanVersion === '1.1';
    if (options.register !== false) {
      const created = await this.galet.request('POST', '/api/v1/devices', {
        devEui,
        joinEui: JOIN_EUI,
        name: `device ${devEui}`,
        applicationId: this.applicationId,
        macVersion: macVersionOf(lorawanVersion),
        appKey: bytesToHex(APP_KEY),
        ...(is11 ? { nwkKey: bytesToHex(NWK_KEY) } : {}),
        ...registrationExtras(options),
      });
      if (created.status !== 201) throw new Error(JSON.stringify(created.json));
    }
    const activation: DeviceActivation = {
      mode: 'otaa',
      joinEui: JOIN_EUI,
      appKey: APP_KEY,
      ...(is11 ? { nwkKey: NWK_KEY } : {}),
      ...(options.devNonce === undefined ? {} : { devNonce: options.devNonce }),
    };
    return new SimulatedDevice({
      ...options.simulator,
      devEui,
      lorawanVersion,
      activation,
      ...(options.deviceClass === undefined ? {} : { deviceClass: options.deviceClass }),
    });
  }

  /** Registers an ABP device (unless `register` is false) and returns its simulated twin. */
  async addAbpDevice(
    devEui: string,
    lorawanVersion: DeviceLorawanVersion,
    devAddr: number,
    options: { fCntUp?: number; register?: boolean; keySeed?: number } & DeviceOptions = {},
  ): Promise<SimulatedDevice> {
    const seed = options.keySeed ?? Number.parseInt(devEui.slice(-2), 16);
    const key = (n: number) =>
      Uint8Array.from({ length: 16 }, (_, i) => (seed * 7 + n * 31 + i) & 0xff);
    const keys =
      lorawanVersion === '1.1'
        ? { fNwkSIntKey: key(1), sNwkSIntKey: key(2), nwkSEncKey: key(3), appSKey: key(4) }
        : { nwkSKey: key(1), appSKey: key(4) };
    if (options.register !== false) {
      const abp: Record<string, string> = { devAddr: devAddr.toString(16).padStart(8, '0') };
      for (const [name, value] of Object.entries(keys)) abp[name] = bytesToHex(value);
      const created = await this.galet.request('POST', '/api/v1/devices', {
        devEui,
        name: `device ${devEui}`,
        applicationId: this.applicationId,
        macVersion: macVersionOf(lorawanVersion),
        abp,
        ...registrationExtras(options),
      });
      if (created.status !== 201) throw new Error(JSON.stringify(created.json));
    }
    return new SimulatedDevice({
      ...options.simulator,
      devEui,
      lorawanVersion,
      activation: {
        mode: 'abp',
        devAddr,
        keys,
        ...(options.fCntUp === undefined ? {} : { fCntUp: options.fCntUp }),
      },
      ...(options.deviceClass === undefined ? {} : { deviceClass: options.deviceClass }),
    });
  }

  /** Creates a device profile through the API (`settings` as POST /device-profiles takes them). */
  async createDeviceProfile(name: string, settings: Record<string, unknown>): Promise<string> {
    const created = await this.galet.request('POST', '/api/v1/device-profiles', {
      name,
      ...settings,
    });
    if (created.status !== 201) throw new Error(JSON.stringify(created.json));
    return created.json.id;
  }

  /**
   * Makes the device reachable by a gateway outside class A windows while it operates in
   * class C (what it takes is recorded in `deliveries`, window 'rxc'). Returns the function that
   * unregisters it.
   */
  listenClassC(
    device: SimulatedDevice,
    gateway: SimulatedGateway = this.gateways[0]!,
    link: LinkQuality = DEFAULT_LINK,
  ): () => void {
    return gateway.registerClassC(device, {
      link,
      deliver: (phyPayload, window, quality) =>
        this.#deliver(device, gateway, phyPayload, window, quality),
    });
  }

  /** While deaf, the device hears no downlink: the gateways transmit, the frames are lost. */
  setDeaf(device: SimulatedDevice, deaf: boolean): void {
    if (deaf) this.#deaf.add(device.devEui);
    else this.#deaf.delete(device.devEui);
  }

  /**
   * Backdates the device's session by `ageMs`. Galet's clock cannot be injected through
   * `startGalet`, so a test that needs an old session (a DevStatusReq one interval after
   * activation) rewrites `createdAt` in storage and tells the network, as the API does when it
   * creates an ABP session.
   */
  async ageSession(devEui: string, ageMs: number): Promise<void> {
    const session = await this.galet.storage.deviceSessions.get(devEui);
    if (session === undefined) throw new Error(`device ${devEui} has no session`);
    const createdAt = new Date(Date.parse(session.createdAt) - ageMs).toISOString();
    this.galet.network.sessionChanged(
      await this.galet.storage.deviceSessions.upsert({ ...session, createdAt }),
    );
  }

  /**
   * Puts a frame on the air: each listed gateway (default: the first) forwards it with its
   * signal; frames that fit a receive window go to the device. Returns each gateway's tmst.
   */
  transmit(
    device: SimulatedDevice,
    transmission: DeviceTransmission,
    heardBy: readonly (SimulatedGateway | Hearing)[] = [this.gateways[0]!],
  ): number[] {
    return heardBy.map((entry) => {
      const { gateway, link } =
        entry instanceof SimulatedGateway ? { gateway: entry, link: DEFAULT_LINK } : entry;
      return gateway.forwardUplink(transmission, link, (phyPayload, window, quality) =>
        this.#deliver(device, gateway, phyPayload, window, quality),
      );
    });
  }

  /** A frame a gateway hands to a device: taken (unless the device is deaf) and recorded. */
  #deliver(
    device: SimulatedDevice,
    gateway: SimulatedGateway,
    phyPayload: Uint8Array,
    window: ReceiveWindow,
    quality: LinkQuality,
  ): boolean {
    const outcome: DownlinkOutcome = this.#deaf.has(device.devEui)
      ? { status: 'ignored', reason: 'the device is deaf (test)' }
      : device.receive(phyPayload, { window: window.name, snr: quality.snr });
    this.deliveries.push({
      devEui: device.devEui,
      gatewayId: gateway.gatewayId,
      window: window.name,
      outcome,
    });
    return outcome.status === 'joined' || outcome.status === 'accepted';
  }

  /** Sends a JoinRequest and waits until the device took the JoinAccept. */
  async join(
    device: SimulatedDevice,
    heardBy?: readonly (SimulatedGateway | Hearing)[],
  ): Promise<{ transmission: DeviceTransmission; tmst: number[] }> {
    const transmission = device.joinRequest();
    const tmst = this.transmit(device, transmission, heardBy);
    await waitFor(`${device.devEui} joins`, () => device.activated);
    return { transmission, tmst };
  }

  /** Sends an uplink and waits for its `up` event. */
  async uplink(
    device: SimulatedDevice,
    options: Parameters<SimulatedDevice['uplink']>[0] = {},
    heardBy?: readonly (SimulatedGateway | Hearing)[],
  ): Promise<{ transmission: DeviceTransmission; tmst: number[]; event: ApiEvent }> {
    const transmission = device.uplink(options);
    const tmst = this.transmit(device, transmission, heardBy);
    const event = await this.waitForEvent(
      device.devEui,
      (e) => e.event === 'up' && e.fCnt === transmission.counter,
      `up event with fCnt ${transmission.counter}`,
    );
    return { transmission, tmst, event };
  }

  /** Waits until the device accepted a data downlink (`count` in all), returns the last one. */
  async waitForDownlink(device: SimulatedDevice, count: number) {
    await waitFor(
      `${device.devEui} receives downlink #${count}`,
      () => device.receivedDownlinks.length >= count,
    );
    return device.receivedDownlinks[count - 1]!;
  }

  async queueDownlink(
    devEui: string,
    fPort: number,
    data: Uint8Array,
    confirmed = false,
  ): Promise<string> {
    const queued = await this.galet.request('POST', `/api/v1/devices/${devEui}/queue`, {
      fPort,
      data: Buffer.from(data).toString('base64'),
      confirmed,
    });
    if (queued.status !== 201) throw new Error(JSON.stringify(queued.json));
    return queued.json.id;
  }

  /** The device's events, oldest first. */
  async events(devEui: string, type?: string): Promise<ApiEvent[]> {
    const response = await this.galet.request('GET', `/api/v1/devices/${devEui}/events?limit=1000`);
    if (response.status !== 200) throw new Error(JSON.stringify(response.json));
    const events = (response.json.events as ApiEvent[]).reverse();
    return type === undefined ? events : events.filter((e) => e.event === type);
  }

  async waitForEvent(
    devEui: string,
    predicate: (event: ApiEvent) => boolean,
    description: string,
  ): Promise<ApiEvent> {
    return waitFor(`${devEui}: ${description}`, async () =>
      (await this.events(devEui)).find(predicate),
    );
  }

  /**
   * Prometheus samples by `name{labels}` (labels as printed); counters relative to
   * `countFromNow()` when it was called.
   */
  async metrics(): Promise<Map<string, number>> {
    const response = await fetch(`${this.galet.baseUrl}/api/v1/metrics`, {
      headers: { authorization: `Bearer ${this.galet.adminToken.token}` },
    });
    if (response.status !== 200) throw new Error(`metrics: HTTP ${response.status}`);
    const samples = new Map<string, number>();
    for (const line of (await response.text()).split('\n')) {
      if (line === '' || line.startsWith('#')) continue;
      const space = line.lastIndexOf(' ');
      const name = line.slice(0, space);
      samples.set(name, Number(line.slice(space + 1)) - (this.#counterBaseline.get(name) ?? 0));
    }
    return samples;
  }

  /** One counter, 0 when absent: `metric('galet_network_uplinks_replayed_total')`. */
  async metric(name: string): Promise<number> {
    return (await this.metrics()).get(name) ?? 0;
  }

  async waitForMetric(name: string, atLeast: number): Promise<number> {
    return waitFor(`${name} >= ${atLeast}`, async () => {
      const value = await this.metric(name);
      return value >= atLeast ? value : undefined;
    });
  }

  /** Sends raw datagrams to Galet's UDP port from a socket of its own. */
  async sendRaw(datagrams: readonly Uint8Array[]): Promise<void> {
    const socket = createSocket('udp4');
    try {
      for (const datagram of datagrams) {
        await new Promise<void>((resolve, reject) =>
          socket.send(datagram, this.galet.udpPort, '127.0.0.1', (error) =>
            error ? reject(error) : resolve(),
          ),
        );
      }
    } finally {
      await new Promise<void>((resolve) => socket.close(() => resolve()));
    }
  }
}

/** A Prometheus counter sample (`name_total` or `name_total{labels}`), as opposed to a gauge. */
function isCounterSample(name: string): boolean {
  return /_total(\{|$)/.test(name);
}

/** The API fields a test's device options add to POST /devices. */
function registrationExtras(options: DeviceOptions): Record<string, unknown> {
  return {
    ...(options.deviceProfileId === undefined ? {} : { deviceProfileId: options.deviceProfileId }),
    ...(options.deviceClass === undefined ? {} : { deviceClass: options.deviceClass }),
  };
}

async function startGateways(
  specs: readonly GatewaySpec[],
  udpPort: number,
): Promise<SimulatedGateway[]> {
  const gateways: SimulatedGateway[] = [];
  try {
    for (const spec of specs) {
      gateways.push(
        await SimulatedGateway.start({
          gatewayId: spec.gatewayId,
          server: { host: '127.0.0.1', port: udpPort },
          pullIntervalMs: 1000,
          statIntervalMs: 0,
          ...(spec.counterStartUs === undefined ? {} : { counterStartUs: spec.counterStartUs }),
          ...(spec.txAckStatus === undefined ? {} : { txAckStatus: spec.txAckStatus }),
        }),
      );
    }
    for (const gateway of gateways) {
      if (!(await gateway.ready(2000))) throw new Error(`${gateway.gatewayId}: no PULL_ACK`);
    }
  } catch (error) {
    await Promise.all(gateways.map((gateway) => gateway.close()));
    throw error;
  }
  return gateways;
}
