import { createSocket, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { performance } from 'node:perf_hooks';
import {
  encodePacket,
  isSemtechUdpError,
  type ProtocolVersion,
  parsePacket,
  type Rxpk,
  type Stat,
  type Txpk,
  uplinkToRxpk,
} from '../gateway/semtech-udp/packets.js';
import type { GatewayLocation, Modulation, TxAckStatus } from '../gateway/types.js';
import { EU868, type Region } from '../lorawan/index.js';
import type { DeviceTransmission, ReceiveWindow } from './device.js';
import { createRandom, type Random } from './random.js';

/**
 * A gateway running the Semtech packet forwarder, over a real UDP socket: PULL_DATA keep-alives,
 * PUSH_DATA with rxpk and stat, PULL_RESP answered with TX_ACK. Its "air" is simple: a downlink
 * reaches a device when its counter time, frequency and data rate fit a receive window the
 * device opened with an uplink this gateway heard, and the frame is handed over when the
 * PULL_RESP arrives (the timing is checked on the counter, not waited for). A downlink that fits
 * no such window (`imme`, or a time that is no class A window) reaches the class C devices
 * registered with `registerClassC` whose continuous window has its frequency and data rate.
 */

export interface LinkQuality {
  /** dBm. */
  rssi: number;
  /** dB. */
  snr: number;
}

/** What happened to one PULL_RESP. */
export interface ReceivedPullResp {
  token: number;
  txpk: Txpk;
  /** The gateway counter when the PULL_RESP arrived. */
  arrivedAtCounterUs: number;
  /** Counter time left before transmission (txpk.tmst − arrival, signed); absent for imme. */
  leadUs?: number;
  /** The uplink whose receive window the downlink fits, when one does. */
  uplinkTimestampUs?: number;
  devEui?: string;
  /** txpk.tmst − uplink tmst modulo 2^32: 1 000 000 for RX1 after a data uplink with RxDelay 1. */
  offsetUs?: number;
  /** Arrival − uplink tmst: how long the network server took to answer, in counter µs. */
  arrivedAfterUplinkUs?: number;
  /** The class A window it fits, or 'rxc' when it reaches class C devices instead. */
  window?: ReceiveWindow['name'];
  txAckStatus: TxAckStatus;
  /** A device took the frame (right window, its DevAddr, good MIC). */
  delivered: boolean;
}

/** Hands a downlink to the device that opened the window; returns whether it accepted it. */
export type DownlinkDelivery = (
  phyPayload: Uint8Array,
  window: ReceiveWindow,
  link: LinkQuality,
) => boolean;

/**
 * A device that listens between its transmissions (class C). SimulatedDevice is one: its
 * `continuousWindow()` is the RX2 frequency and data rate while it operates in class C.
 */
export interface ContinuousReceiver {
  readonly devEui: string;
  /** The window it listens on now; undefined while it does not (class A). */
  continuousWindow(): ReceiveWindow | undefined;
  /** Takes a frame heard in that window (used when no `deliver` is registered). */
  receive(
    phyPayload: Uint8Array,
    reception: { window?: ReceiveWindow['name']; snr?: number },
  ): { status: string };
}

export interface ClassCRegistration {
  /** Signal of the gateway's downlinks at the device (default: -80 dBm, 8 dB). */
  link?: LinkQuality;
  /** Hands the frame over instead of `receiver.receive` (e.g. to record the outcome). */
  deliver?: DownlinkDelivery;
}

export type SimulatedGatewayEvent =
  | { type: 'pullAck' }
  | { type: 'pushAck' }
  | { type: 'downlink'; gatewayId: string; record: ReceivedPullResp }
  | { type: 'error'; gatewayId: string; message: string };

export interface SimulatedGatewayOptions {
  /** Lower-case hex EUI. */
  gatewayId: string;
  server: { host: string; port: number };
  /** Default 2; version 1 forwarders send no TX_ACK. */
  protocolVersion?: ProtocolVersion;
  /** Default 5000 (the packet forwarder's keepalive_interval). */
  pullIntervalMs?: number;
  /** Default 30 000 (stat_interval); 0 sends no periodic stat. */
  statIntervalMs?: number;
  region?: Region;
  location?: GatewayLocation;
  /** Monotonic ms clock for the 32-bit µs counter (default performance.now). */
  monotonicMs?: () => number;
  /** Wall clock, ms since the Unix epoch (default Date.now). */
  now?: () => number;
  /** Counter value at start (default random: real gateways start anywhere). */
  counterStartUs?: number;
  random?: Random;
  /**
   * The TX_ACK status to give a PULL_RESP; undefined lets the gateway decide (TOO_LATE when
   * it arrived less than `minimumLeadUs` before its transmit time, NONE otherwise).
   */
  txAckStatus?: (pullResp: ReceivedPullResp) => TxAckStatus | undefined;
  /**
   * How early a PULL_RESP must arrive. lora_pkt_fwd's JIT queue wants a few tens of ms to
   * program the radio; default 30 000 µs.
   */
  minimumLeadUs?: number;
  /** Most PULL_RESP records kept in `downlinks` (default 10 000, oldest dropped). */
  maxRecords?: number;
  onEvent?: (event: SimulatedGatewayEvent) => void;
}

export interface SimulatedGatewayCounts {
  rxReceived: number;
  rxForwarded: number;
  pushDataSent: number;
  pushAcks: number;
  pullDataSent: number;
  pullAcks: number;
  pullResps: number;
  /** PULL_RESPs answered with TX_ACK NONE (transmitted). */
  txEmitted: number;
}

interface ClassCListener {
  receiver: ContinuousReceiver;
  link: LinkQuality;
  deliver: DownlinkDelivery;
}

interface HeardUplink {
  timestampUs: number;
  transmission: DeviceTransmission;
  link: LinkQuality;
  deliver: DownlinkDelivery | undefined;
}

const COUNTER_MODULO = 2 ** 32;
/** Uplinks older than this (counter time) can no longer be answered: RX2 of a join is at 6 s. */
const RECENT_UPLINK_US = 10_000_000;
const MAX_RECENT_UPLINKS = 1024;
const DEFAULT_CLASS_C_LINK: LinkQuality = { rssi: -80, snr: 8 };

function signed32(value: number): number {
  return value | 0;
}

function pad(value: number, length = 2): string {
  return String(value).padStart(length, '0');
}

/** Semtech stat time: "2014-01-12 08:59:28 GMT". */
function statTime(ms: number): string {
  const d = new Date(ms);
  return (
    `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} GMT`
  );
}

export class SimulatedGateway {
  readonly gatewayId: string;
  readonly #socket: Socket;
  readonly #server: { host: string; port: number };
  readonly #version: ProtocolVersion;
  readonly #region: Region;
  readonly #location: GatewayLocation | undefined;
  readonly #monotonicMs: () => number;
  readonly #now: () => number;
  readonly #startMs: number;
  readonly #counterStartUs: number;
  readonly #random: Random;
  readonly #txAckStatus: SimulatedGatewayOptions['txAckStatus'];
  readonly #minimumLeadUs: number;
  readonly #maxRecords: number;
  readonly #onEvent: (event: SimulatedGatewayEvent) => void;
  readonly #timers: NodeJS.Timeout[] = [];
  readonly #recent: HeardUplink[] = [];
  readonly #classC = new Map<string, ClassCListener>();
  readonly #downlinks: ReceivedPullResp[] = [];
  readonly #readyWaiters: ((ready: boolean) => void)[] = [];
  #pullAcked = false;
  #closed: Promise<void> | undefined;
  readonly #counts: SimulatedGatewayCounts = zeroCounts();
  /** The counters at the last `stat`: reports carry the difference. */
  #lastStatCounts: SimulatedGatewayCounts = zeroCounts();

  /** Binds a socket, sends the first PULL_DATA and starts the keep-alive and stat timers. */
  static async start(options: SimulatedGatewayOptions): Promise<SimulatedGateway> {
    const socket = createSocket({ type: isIPv6(options.server.host) ? 'udp6' : 'udp4' });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    const gateway = new SimulatedGateway(socket, options);
    gateway.#startTimers(options.pullIntervalMs ?? 5000, options.statIntervalMs ?? 30_000);
    return gateway;
  }

  private constructor(socket: Socket, options: SimulatedGatewayOptions) {
    this.gatewayId = options.gatewayId.toLowerCase();
    this.#socket = socket;
    this.#server = options.server;
    this.#version = options.protocolVersion ?? 2;
    this.#region = options.region ?? EU868;
    this.#location = options.location;
    this.#monotonicMs = options.monotonicMs ?? (() => performance.now());
    this.#now = options.now ?? Date.now;
    this.#random = options.random ?? createRandom(Number.parseInt(this.gatewayId.slice(-8), 16));
    this.#startMs = this.#monotonicMs();
    this.#counterStartUs =
      (options.counterStartUs ?? this.#random.int(0, COUNTER_MODULO - 1)) >>> 0;
    this.#txAckStatus = options.txAckStatus;
    this.#minimumLeadUs = options.minimumLeadUs ?? 30_000;
    this.#maxRecords = options.maxRecords ?? 10_000;
    this.#onEvent = options.onEvent ?? (() => {});
    socket.on('message', (datagram) => {
      try {
        this.#receive(datagram);
      } catch (error) {
        // A device or handler bug must not take the socket down with it.
        this.#error(
          `handling a datagram failed: ${error instanceof Error ? error.message : error}`,
        );
      }
    });
    socket.on('error', (error) => this.#error(`socket error: ${error.message}`));
  }

  #startTimers(pullIntervalMs: number, statIntervalMs: number): void {
    this.sendPullData();
    this.#timers.push(setInterval(() => this.sendPullData(), pullIntervalMs));
    if (statIntervalMs > 0) {
      this.#timers.push(setInterval(() => this.sendStat(), statIntervalMs));
    }
  }

  /** The gateway's 32-bit microsecond counter now (the `tmst` clock). */
  counterUs(): number {
    const elapsedUs = Math.floor((this.#monotonicMs() - this.#startMs) * 1000);
    return (this.#counterStartUs + elapsedUs) % COUNTER_MODULO;
  }

  /** The PULL_RESPs received, oldest first. */
  get downlinks(): readonly ReceivedPullResp[] {
    return this.#downlinks;
  }

  counts(): SimulatedGatewayCounts {
    return { ...this.#counts };
  }

  /** Resolves true once the server acknowledged a PULL_DATA, false after `timeoutMs`. */
  ready(timeoutMs = 2000): Promise<boolean> {
    if (this.#pullAcked) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        const index = this.#readyWaiters.indexOf(done);
        if (index >= 0) this.#readyWaiters.splice(index, 1);
        resolve(false);
      }, timeoutMs);
      const done = (ready: boolean) => {
        clearTimeout(timer);
        resolve(ready);
      };
      this.#readyWaiters.push(done);
    });
  }

  sendPullData(): void {
    this.#counts.pullDataSent++;
    this.#send({
      type: 'PULL_DATA',
      version: this.#version,
      token: this.#random.int(0, 0xffff),
      gatewayId: this.gatewayId,
    });
  }

  /**
   * A `stat` report. Like the Semtech packet forwarder, the counters cover the interval since the
   * previous report (the server adds them up), and `ackr` is the share of acknowledged PUSH_DATA.
   */
  sendStat(): void {
    const counts = this.#counts;
    const last = this.#lastStatCounts;
    const stat: Stat = {
      time: statTime(this.#now()),
      rxnb: counts.rxReceived - last.rxReceived,
      rxok: counts.rxReceived - last.rxReceived,
      rxfw: counts.rxForwarded - last.rxForwarded,
      ackr:
        counts.pushDataSent === 0
          ? 100
          : Math.round((1000 * counts.pushAcks) / counts.pushDataSent) / 10,
      dwnb: counts.pullResps - last.pullResps,
      txnb: counts.txEmitted - last.txEmitted,
    };
    this.#lastStatCounts = { ...counts };
    if (this.#location !== undefined) {
      stat.lati = this.#location.latitude;
      stat.long = this.#location.longitude;
      stat.alti = this.#location.altitude;
    }
    this.#pushData([], stat);
  }

  /**
   * Forwards a frame this gateway heard, stamped with its counter now; `deliver` receives the
   * downlinks that fit the transmission's receive windows. Returns the rxpk's tmst.
   */
  forwardUplink(
    transmission: DeviceTransmission,
    link: LinkQuality,
    deliver?: DownlinkDelivery,
  ): number {
    const timestampUs = this.counterUs();
    const rxpk = this.#rxpkFor(transmission, link, timestampUs);
    this.#recent.push({ timestampUs, transmission, link, deliver });
    this.#pruneRecent(timestampUs);
    this.#counts.rxReceived++;
    this.#counts.rxForwarded++;
    this.#pushData([rxpk], undefined);
    return timestampUs;
  }

  /**
   * Makes a device reachable by downlinks outside class A windows while its
   * `continuousWindow()` names a window (class C), replacing an earlier registration of the same
   * DevEUI. Returns the function that unregisters it.
   */
  registerClassC(receiver: ContinuousReceiver, registration: ClassCRegistration = {}): () => void {
    const listener: ClassCListener = {
      receiver,
      link: registration.link ?? DEFAULT_CLASS_C_LINK,
      deliver:
        registration.deliver ??
        ((phyPayload, window, link) => {
          const { status } = receiver.receive(phyPayload, { window: window.name, snr: link.snr });
          return status === 'accepted' || status === 'joined';
        }),
    };
    this.#classC.set(receiver.devEui, listener);
    return () => {
      if (this.#classC.get(receiver.devEui) === listener) this.#classC.delete(receiver.devEui);
    };
  }

  #rxpkFor(transmission: DeviceTransmission, link: LinkQuality, timestampUs: number): Rxpk {
    const dataRate = this.#region.dataRate(transmission.dataRate);
    const modulation: Modulation =
      dataRate.modulation === 'LORA'
        ? {
            lora: {
              spreadingFactor: dataRate.spreadingFactor,
              bandwidthHz: dataRate.bandwidthKhz * 1000,
              codeRate: 'CR_4_5',
            },
          }
        : { fsk: { datarate: dataRate.bitRate } };
    return uplinkToRxpk({
      phyPayload: transmission.phyPayload,
      txInfo: { frequencyHz: transmission.frequencyHz, modulation },
      rxInfo: {
        gatewayId: this.gatewayId,
        uplinkId: 0,
        timestampUs,
        gwTime: new Date(this.#now()).toISOString(),
        rssi: Math.round(link.rssi),
        snr: Math.round(link.snr * 10) / 10,
        channel: transmission.channel,
        rfChain: 0,
        crcStatus: 'ok',
        receivedAtMs: 0,
      },
    });
  }

  #pruneRecent(nowUs: number): void {
    while (this.#recent.length > 0) {
      const oldest = this.#recent[0]!;
      const ageUs = (nowUs - oldest.timestampUs + COUNTER_MODULO) % COUNTER_MODULO;
      if (ageUs <= RECENT_UPLINK_US && this.#recent.length <= MAX_RECENT_UPLINKS) break;
      this.#recent.shift();
    }
  }

  #pushData(rxpk: Rxpk[], stat: Stat | undefined): void {
    this.#counts.pushDataSent++;
    this.#send({
      type: 'PUSH_DATA',
      version: this.#version,
      token: this.#random.int(0, 0xffff),
      gatewayId: this.gatewayId,
      rxpk,
      ...(stat === undefined ? {} : { stat }),
    });
  }

  #send(packet: Parameters<typeof encodePacket>[0]): void {
    if (this.#closed !== undefined) return;
    this.#socket.send(encodePacket(packet), this.#server.port, this.#server.host, (error) => {
      if (error) this.#error(`send failed: ${error.message}`);
    });
  }

  #error(message: string): void {
    this.#onEvent({ type: 'error', gatewayId: this.gatewayId, message });
  }

  #receive(datagram: Uint8Array): void {
    if (this.#closed !== undefined) return;
    let packet: ReturnType<typeof parsePacket>;
    try {
      packet = parsePacket(datagram);
    } catch (error) {
      if (!isSemtechUdpError(error)) throw error;
      this.#error(`malformed datagram from the server: ${error.message}`);
      return;
    }
    switch (packet.type) {
      case 'PULL_ACK':
        this.#counts.pullAcks++;
        this.#pullAcked = true;
        for (const done of this.#readyWaiters.splice(0)) done(true);
        this.#onEvent({ type: 'pullAck' });
        return;
      case 'PUSH_ACK':
        this.#counts.pushAcks++;
        this.#onEvent({ type: 'pushAck' });
        return;
      case 'PULL_RESP':
        this.#counts.pullResps++;
        this.#transmit(packet.token, packet.txpk);
        return;
      default:
        this.#error(`unexpected ${packet.type} from the server`);
    }
  }

  #transmit(token: number, txpk: Txpk): void {
    const arrivedAtCounterUs = this.counterUs();
    const record: ReceivedPullResp = {
      token,
      txpk,
      arrivedAtCounterUs,
      txAckStatus: 'NONE',
      delivered: false,
    };
    if (txpk.tmst !== undefined) record.leadUs = signed32(txpk.tmst - arrivedAtCounterUs);
    const match = txpk.tmst === undefined ? undefined : this.#matchWindow(txpk, txpk.tmst);
    // Class C: what fits no class A window reaches the devices listening on its channel.
    const listeners = match === undefined ? this.#matchClassC(txpk) : [];
    if (match !== undefined) {
      record.uplinkTimestampUs = match.uplink.timestampUs;
      record.devEui = match.uplink.transmission.devEui;
      record.offsetUs = match.offsetUs;
      record.arrivedAfterUplinkUs =
        (arrivedAtCounterUs - match.uplink.timestampUs + COUNTER_MODULO) % COUNTER_MODULO;
      record.window = match.window.name;
    } else if (listeners.length > 0) {
      record.window = 'rxc';
    }
    const automatic: TxAckStatus =
      record.leadUs !== undefined && record.leadUs < this.#minimumLeadUs ? 'TOO_LATE' : 'NONE';
    record.txAckStatus = this.#txAckStatus?.(record) ?? automatic;
    if (record.txAckStatus === 'NONE') {
      this.#counts.txEmitted++;
      const phyPayload = new Uint8Array(Buffer.from(txpk.data, 'base64'));
      if (match?.uplink.deliver !== undefined) {
        record.delivered = match.uplink.deliver(phyPayload, match.window, match.uplink.link);
        // A device that took a frame in RX1 does not open RX2 (LoRaWAN 1.0.4 §3.3.2).
        if (record.delivered) this.#recent.splice(this.#recent.indexOf(match.uplink), 1);
      }
      // Every class C device on the channel hears the frame; its DevAddr and MIC pick one.
      for (const { listener, window } of listeners) {
        if (listener.deliver(Uint8Array.from(phyPayload), window, listener.link)) {
          record.delivered = true;
          record.devEui = listener.receiver.devEui;
        }
      }
    }
    if (this.#version === 2) {
      this.#send({
        type: 'TX_ACK',
        version: this.#version,
        token,
        gatewayId: this.gatewayId,
        txpkAck: { error: record.txAckStatus },
      });
    }
    this.#downlinks.push(record);
    if (this.#downlinks.length > this.#maxRecords) this.#downlinks.shift();
    this.#onEvent({ type: 'downlink', gatewayId: this.gatewayId, record });
  }

  /** The registered class C devices listening on the frequency and data rate of a txpk. */
  #matchClassC(txpk: Txpk): { listener: ClassCListener; window: ReceiveWindow }[] {
    if (txpk.ipol !== true || this.#classC.size === 0) return [];
    let dataRate: number;
    try {
      dataRate = this.#region.dataRateFromRx(txpk.datr, 'downlink');
    } catch {
      return [];
    }
    const frequencyHz = Math.round(txpk.freq * 1e6);
    const found: { listener: ClassCListener; window: ReceiveWindow }[] = [];
    for (const listener of this.#classC.values()) {
      const window = listener.receiver.continuousWindow();
      if (window?.frequencyHz === frequencyHz && window.dataRate === dataRate) {
        found.push({ listener, window });
      }
    }
    return found;
  }

  /** The newest heard uplink with a receive window at this counter time, frequency and DR. */
  #matchWindow(txpk: Txpk, timestampUs: number) {
    if (txpk.ipol !== true) return undefined;
    let dataRate: number;
    try {
      dataRate = this.#region.dataRateFromRx(txpk.datr, 'downlink');
    } catch {
      return undefined;
    }
    const frequencyHz = Math.round(txpk.freq * 1e6);
    for (let i = this.#recent.length - 1; i >= 0; i--) {
      const uplink = this.#recent[i]!;
      const offsetUs = (timestampUs - uplink.timestampUs + COUNTER_MODULO) % COUNTER_MODULO;
      for (const window of uplink.transmission.receiveWindows) {
        if (
          window.delayUs === offsetUs &&
          window.frequencyHz === frequencyHz &&
          window.dataRate === dataRate
        ) {
          return { uplink, window, offsetUs };
        }
      }
    }
    return undefined;
  }

  /** Stops the timers and closes the socket. */
  close(): Promise<void> {
    this.#closed ??= new Promise((resolve) => {
      for (const timer of this.#timers) clearInterval(timer);
      this.#timers.length = 0;
      for (const done of this.#readyWaiters.splice(0)) done(false);
      this.#socket.close(() => resolve());
    });
    return this.#closed;
  }
}

function zeroCounts(): SimulatedGatewayCounts {
  return {
    rxReceived: 0,
    rxForwarded: 0,
    pushDataSent: 0,
    pushAcks: 0,
    pullDataSent: 0,
    pullAcks: 0,
    pullResps: 0,
    txEmitted: 0,
  };
}
