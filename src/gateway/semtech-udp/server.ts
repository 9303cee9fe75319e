import { randomInt } from 'node:crypto';
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { lookup as dnsLookup, type LookupOptions } from 'node:dns';
import { isIP, isIPv6 } from 'node:net';
import { LogThrottle } from '../../log-throttle.js';
import type {
  GatewayBackend,
  GatewayDownlink,
  GatewayLocation,
  GatewayStats,
  GatewayTxAck,
  GatewayUplink,
  TxAckStatus,
} from '../types.js';
import {
  ackFor,
  downlinkToTxpk,
  encodePacket,
  isSemtechUdpError,
  PACKET_TYPE_NAMES,
  type PacketType,
  type ProtocolVersion,
  type PullData,
  type PushData,
  parsePacket,
  rxpkToUplink,
  SEMTECH_UDP_ERROR_CODES,
  type SemtechUdpErrorCode,
  statLocation,
  statToGatewayStats,
  type TxAck,
  txAckStatusOf,
} from './packets.js';

/** The logging the backend needs; a pino logger fits it. */
export interface GatewayLogger {
  debug(fields: Record<string, unknown>, message: string): void;
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
}

export const SILENT_LOGGER: GatewayLogger = {
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
};

/** 8 MiB; Linux grants at most net.core.rmem_max (raise it for large networks). */
export const DEFAULT_RECEIVE_BUFFER_BYTES = 8 * 1024 * 1024;

export interface SemtechUdpBackendOptions {
  /** Socket receive buffer (SO_RCVBUF) asked for; default DEFAULT_RECEIVE_BUFFER_BYTES. */
  receiveBufferBytes?: number;
  /** Default '0.0.0.0'; an IPv6 address binds an IPv6 socket. */
  host?: string;
  /** Default 1700; 0 picks a free port (see `address()`). */
  port?: number;
  /**
   * Whether a gateway is registered. Default: every gateway is. Datagrams of other gateways are
   * acknowledged but carry nothing further (no uplink, no stats, no downlink path).
   */
  isGatewayAllowed?: (gatewayId: string) => boolean | Promise<boolean>;
  logger?: GatewayLogger;
  /** Wall clock in ms since the Unix epoch (default Date.now). */
  now?: () => number;
  /** A 16-bit PULL_RESP token (default: node:crypto randomInt). */
  randomToken?: () => number;
  /**
   * How long a PULL_DATA address stays usable for downlinks (default 60 s; forwarders send
   * PULL_DATA every 5 s by default, and NAT mappings for UDP expire within minutes).
   */
  downlinkPathTtlMs?: number;
  /** Downlinks awaiting their TX_ACK; the oldest is forgotten beyond this (default 10 000). */
  maxPendingTxAcks?: number;
  /** At most one log line per malformed source per this interval (default 10 s). */
  malformedLogIntervalMs?: number;
  /** At most one log line per unknown gateway per this interval (default 60 s). */
  unknownGatewayLogIntervalMs?: number;
}

/** Counters since the backend started; `counters()` returns a copy for the metrics layer. */
export interface SemtechUdpCounters {
  datagramsReceived: number;
  /** Well-formed datagrams by packet type (including those of unknown gateways). */
  packetsReceived: Record<PacketType, number>;
  /** Datagrams refused as a whole, by reason. */
  malformedDatagrams: Record<SemtechUdpErrorCode, number>;
  /** rxpk entries refused inside an otherwise valid PUSH_DATA, by reason. */
  invalidRxpk: Record<SemtechUdpErrorCode, number>;
  /** Frames emitted to the network server (CRC ok). */
  uplinks: number;
  /** rxpk with stat -1, dropped. */
  crcFailed: number;
  /** rxpk with stat 0 (no CRC: not a LoRaWAN uplink), dropped. */
  crcMissing: number;
  stats: number;
  /** Datagrams of gateways that `isGatewayAllowed` refused. */
  unknownGatewayDatagrams: number;
  /** `isGatewayAllowed` threw or rejected; the datagram was treated as from an unknown gateway. */
  gatewayCheckFailures: number;
  /** Server-to-gateway packet types (PUSH_ACK, PULL_RESP, PULL_ACK) received: ignored. */
  unexpectedPackets: number;
  downlinksSent: number;
  /** sendDownlink calls for a gateway without a recent PULL_DATA address. */
  downlinksWithoutPath: number;
  sendErrors: number;
  txAcks: Record<TxAckStatus, number>;
  /** TX_ACKs whose token matches no pending downlink (late, duplicated, or forged). */
  txAcksUnmatched: number;
  /** Exceptions thrown by onUplink/onStats/onTxAck handlers (caught and logged). */
  handlerErrors: number;
  /** Exceptions of the backend itself while handling a datagram (bugs; caught and logged). */
  internalErrors: number;
}

const TX_ACK_STATUSES: readonly TxAckStatus[] = [
  'NONE',
  'TOO_LATE',
  'TOO_EARLY',
  'COLLISION_PACKET',
  'COLLISION_BEACON',
  'TX_FREQ',
  'TX_POWER',
  'GPS_UNLOCKED',
  'UNKNOWN',
];

function zeroes<K extends string>(keys: readonly K[]): Record<K, number> {
  return Object.fromEntries(keys.map((key) => [key, 0])) as Record<K, number>;
}

/** Every counter at zero. */
export function newSemtechUdpCounters(): SemtechUdpCounters {
  return {
    datagramsReceived: 0,
    packetsReceived: zeroes(PACKET_TYPE_NAMES),
    malformedDatagrams: zeroes(SEMTECH_UDP_ERROR_CODES),
    invalidRxpk: zeroes(SEMTECH_UDP_ERROR_CODES),
    uplinks: 0,
    crcFailed: 0,
    crcMissing: 0,
    stats: 0,
    unknownGatewayDatagrams: 0,
    gatewayCheckFailures: 0,
    unexpectedPackets: 0,
    downlinksSent: 0,
    downlinksWithoutPath: 0,
    sendErrors: 0,
    txAcks: zeroes(TX_ACK_STATUSES),
    txAcksUnmatched: 0,
    handlerErrors: 0,
    internalErrors: 0,
  };
}

interface DownlinkPath {
  address: string;
  port: number;
  version: ProtocolVersion;
  pullDataAtMs: number;
}

interface GatewayState {
  lastSeenAtMs: number;
  path?: DownlinkPath;
  location?: GatewayLocation;
}

interface PendingTxAck {
  gatewayId: string;
  downlinkId: number;
}

/**
 * The Semtech UDP packet forwarder protocol over one UDP socket: acknowledges PUSH_DATA and
 * PULL_DATA, emits uplinks and stats, sends downlinks as PULL_RESP to each gateway's latest
 * PULL_DATA address and maps TX_ACKs back to downlinks by token.
 */
export class SemtechUdpBackend implements GatewayBackend {
  readonly #socket: Socket;
  readonly #isGatewayAllowed: SemtechUdpBackendOptions['isGatewayAllowed'];
  readonly #logger: GatewayLogger;
  readonly #now: () => number;
  readonly #randomToken: () => number;
  readonly #downlinkPathTtlMs: number;
  readonly #maxPendingTxAcks: number;
  readonly #malformedLog: LogThrottle;
  readonly #unknownGatewayLog: LogThrottle;
  readonly #gateways = new Map<string, GatewayState>();
  /** Key: gatewayId:token. Insertion order is sending order, so the first key is the oldest. */
  readonly #pendingTxAcks = new Map<string, PendingTxAck>();
  readonly #uplinkHandlers: ((uplink: GatewayUplink) => void)[] = [];
  readonly #statsHandlers: ((stats: GatewayStats) => void)[] = [];
  readonly #txAckHandlers: ((ack: GatewayTxAck) => void)[] = [];
  #counters = newSemtechUdpCounters();
  #nextUplinkId = 1;
  #lastSweepAtMs: number;
  #closed: Promise<void> | undefined;

  /** Binds the socket; resolves once it listens. */
  static async listen(options: SemtechUdpBackendOptions = {}): Promise<SemtechUdpBackend> {
    const host = options.host ?? '0.0.0.0';
    // A large receive buffer absorbs bursts (many gateways forwarding the same frames) while the
    // event loop is busy; the kernel caps it at net.core.rmem_max.
    const socket = createSocket({
      type: isIPv6(host) ? 'udp6' : 'udp4',
      recvBufferSize: options.receiveBufferBytes ?? DEFAULT_RECEIVE_BUFFER_BYTES,
      lookup: literalAddressLookup,
    });
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.bind(options.port ?? 1700, host, () => {
          socket.off('error', reject);
          resolve();
        });
      });
    } catch (error) {
      socket.close();
      throw error;
    }
    return new SemtechUdpBackend(socket, options);
  }

  private constructor(socket: Socket, options: SemtechUdpBackendOptions) {
    this.#socket = socket;
    this.#isGatewayAllowed = options.isGatewayAllowed;
    this.#logger = options.logger ?? SILENT_LOGGER;
    this.#now = options.now ?? Date.now;
    this.#randomToken = options.randomToken ?? (() => randomInt(0, 0x1_0000));
    this.#downlinkPathTtlMs = options.downlinkPathTtlMs ?? 60_000;
    this.#maxPendingTxAcks = options.maxPendingTxAcks ?? 10_000;
    this.#malformedLog = new LogThrottle(options.malformedLogIntervalMs ?? 10_000);
    this.#unknownGatewayLog = new LogThrottle(options.unknownGatewayLogIntervalMs ?? 60_000);
    this.#lastSweepAtMs = this.#now();
    socket.on('message', (datagram, remote) => {
      try {
        this.#receive(datagram, remote);
      } catch (error) {
        // A bug of ours, not bad input (that is a SemtechUdpError): log it, keep serving.
        this.#counters.internalErrors++;
        this.#logger.error({ err: error }, 'Semtech UDP datagram handling failed');
      }
    });
    socket.on('error', (error) => {
      this.#logger.error({ err: error }, 'Semtech UDP socket error');
    });
  }

  /** The bound address (the port is the real one when listening on port 0). */
  address(): { address: string; port: number } {
    const { address, port } = this.#socket.address();
    return { address, port };
  }

  counters(): SemtechUdpCounters {
    return structuredClone(this.#counters);
  }

  onUplink(handler: (uplink: GatewayUplink) => void): void {
    this.#uplinkHandlers.push(handler);
  }

  onStats(handler: (stats: GatewayStats) => void): void {
    this.#statsHandlers.push(handler);
  }

  onTxAck(handler: (ack: GatewayTxAck) => void): void {
    this.#txAckHandlers.push(handler);
  }

  /**
   * Sends a PULL_RESP to the gateway's latest PULL_DATA address, in the protocol version of
   * that PULL_DATA. Resolves false when there is no recent address or sending fails; rejects
   * with a SemtechUdpError when the downlink itself is invalid (a caller's bug).
   */
  async sendDownlink(downlink: GatewayDownlink): Promise<boolean> {
    const txpk = downlinkToTxpk(downlink);
    const path = this.#closed === undefined ? this.#pathTo(downlink.gatewayId) : undefined;
    if (path === undefined) {
      this.#counters.downlinksWithoutPath++;
      return false;
    }
    const token = this.#freeToken(downlink.gatewayId);
    const key = `${downlink.gatewayId}:${token}`;
    this.#pendingTxAcks.set(key, {
      gatewayId: downlink.gatewayId,
      downlinkId: downlink.downlinkId,
    });
    if (this.#pendingTxAcks.size > this.#maxPendingTxAcks) {
      const oldest = this.#pendingTxAcks.keys().next();
      if (oldest.done !== true) this.#pendingTxAcks.delete(oldest.value);
    }
    const datagram = encodePacket({ type: 'PULL_RESP', version: path.version, token, txpk });
    try {
      await this.#send(datagram, path.port, path.address);
    } catch (error) {
      this.#pendingTxAcks.delete(key);
      this.#counters.sendErrors++;
      this.#logger.warn(
        { err: error, gatewayId: downlink.gatewayId, downlinkId: downlink.downlinkId },
        'could not send PULL_RESP',
      );
      return false;
    }
    this.#counters.downlinksSent++;
    return true;
  }

  close(): Promise<void> {
    this.#closed ??= new Promise((resolve) => {
      this.#socket.close(() => resolve());
      this.#pendingTxAcks.clear();
      this.#gateways.clear();
    });
    return this.#closed;
  }

  // -------------------------------------------------------------------------------------------

  #pathTo(gatewayId: string): DownlinkPath | undefined {
    const path = this.#gateways.get(gatewayId)?.path;
    if (path === undefined || this.#now() - path.pullDataAtMs > this.#downlinkPathTtlMs) {
      return undefined;
    }
    return path;
  }

  #freeToken(gatewayId: string): number {
    let token = this.#randomToken() & 0xffff;
    // A 16-bit token can collide with a downlink still awaiting its TX_ACK on a busy gateway.
    for (
      let attempt = 0;
      attempt < 8 && this.#pendingTxAcks.has(`${gatewayId}:${token}`);
      attempt++
    ) {
      token = this.#randomToken() & 0xffff;
    }
    return token;
  }

  #send(datagram: Uint8Array, port: number, address: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#socket.send(datagram, port, address, (error) => (error ? reject(error) : resolve()));
    });
  }

  #sendAck(packet: PushData | PullData, remote: RemoteInfo): void {
    this.#socket.send(ackFor(packet), remote.port, remote.address, (error) => {
      if (error) {
        this.#counters.sendErrors++;
        this.#logger.warn({ err: error, gatewayId: packet.gatewayId }, 'could not send ACK');
      }
    });
  }

  #receive(datagram: Buffer, remote: RemoteInfo): void {
    if (this.#closed !== undefined) return;
    this.#counters.datagramsReceived++;
    const receivedAtMs = this.#now();
    let packet: ReturnType<typeof parsePacket>;
    try {
      packet = parsePacket(datagram);
    } catch (error) {
      if (!isSemtechUdpError(error)) throw error;
      this.#counters.malformedDatagrams[error.code]++;
      this.#logMalformed(remote, receivedAtMs, error.code, error.message);
      return;
    }
    this.#counters.packetsReceived[packet.type]++;
    switch (packet.type) {
      case 'PUSH_DATA':
        // Every well-formed PUSH_DATA and PULL_DATA is acknowledged, from known gateways or not,
        // as ChirpStack's gateway bridge does: a gateway registered a minute later works at
        // once, and the forwarder's ackr statistic tells its installer that the server is
        // reachable. Malformed datagrams get no ACK, which shows in the same statistic.
        this.#sendAck(packet, remote);
        this.#countInvalidRxpk(packet, remote, receivedAtMs);
        this.#ifGatewayAllowed(packet.gatewayId, remote, receivedAtMs, () =>
          this.#acceptPushData(packet, receivedAtMs),
        );
        return;
      case 'PULL_DATA':
        this.#sendAck(packet, remote);
        this.#ifGatewayAllowed(packet.gatewayId, remote, receivedAtMs, () =>
          this.#acceptPullData(packet, remote, receivedAtMs),
        );
        return;
      case 'TX_ACK':
        this.#acceptTxAck(packet);
        return;
      case 'PUSH_ACK':
      case 'PULL_RESP':
      case 'PULL_ACK':
        this.#counters.unexpectedPackets++;
        return;
    }
  }

  #logMalformed(remote: RemoteInfo, nowMs: number, code: SemtechUdpErrorCode, reason: string) {
    const source = `${remote.address}:${remote.port}`;
    const allowed = this.#malformedLog.take(source, nowMs);
    if (allowed === undefined) return;
    this.#logger.warn(
      { source, code, reason, suppressed: allowed.suppressed },
      'malformed Semtech UDP datagram dropped',
    );
  }

  #countInvalidRxpk(packet: PushData, remote: RemoteInfo, nowMs: number): void {
    for (const error of packet.invalidRxpk ?? []) {
      this.#counters.invalidRxpk[error.code]++;
      this.#logMalformed(remote, nowMs, error.code, error.message);
    }
  }

  #ifGatewayAllowed(
    gatewayId: string,
    remote: RemoteInfo,
    receivedAtMs: number,
    accept: () => void,
  ): void {
    if (this.#isGatewayAllowed === undefined) {
      accept();
      return;
    }
    const decide = (allowed: boolean) => {
      if (this.#closed !== undefined) return;
      if (allowed) {
        accept();
        return;
      }
      this.#counters.unknownGatewayDatagrams++;
      const log = this.#unknownGatewayLog.take(gatewayId, receivedAtMs);
      if (log !== undefined) {
        this.#logger.warn(
          { gatewayId, source: `${remote.address}:${remote.port}`, suppressed: log.suppressed },
          'datagram from an unknown gateway ignored',
        );
      }
    };
    const fail = (error: unknown) => {
      this.#counters.gatewayCheckFailures++;
      this.#logger.error({ err: error, gatewayId }, 'gateway check failed');
      decide(false);
    };
    let verdict: boolean | Promise<boolean>;
    try {
      verdict = this.#isGatewayAllowed(gatewayId);
    } catch (error) {
      fail(error);
      return;
    }
    if (typeof verdict === 'boolean') decide(verdict);
    else verdict.then((allowed) => decide(allowed === true), fail);
  }

  #gatewayState(gatewayId: string, nowMs: number): GatewayState {
    this.#sweep(nowMs);
    let state = this.#gateways.get(gatewayId);
    if (state === undefined) {
      state = { lastSeenAtMs: nowMs };
      this.#gateways.set(gatewayId, state);
    }
    state.lastSeenAtMs = nowMs;
    return state;
  }

  /** Forgets gateways silent for longer than the path TTL, at most once per TTL. */
  #sweep(nowMs: number): void {
    if (nowMs - this.#lastSweepAtMs < this.#downlinkPathTtlMs) return;
    this.#lastSweepAtMs = nowMs;
    for (const [gatewayId, state] of this.#gateways) {
      if (nowMs - state.lastSeenAtMs > this.#downlinkPathTtlMs) this.#gateways.delete(gatewayId);
    }
  }

  #acceptPullData(packet: PullData, remote: RemoteInfo, receivedAtMs: number): void {
    const state = this.#gatewayState(packet.gatewayId, receivedAtMs);
    const previous = state.path;
    if (
      previous === undefined ||
      previous.address !== remote.address ||
      previous.port !== remote.port ||
      previous.version !== packet.version
    ) {
      this.#logger.info(
        {
          gatewayId: packet.gatewayId,
          address: remote.address,
          port: remote.port,
          protocolVersion: packet.version,
        },
        'gateway downlink path',
      );
    }
    state.path = {
      address: remote.address,
      port: remote.port,
      version: packet.version,
      pullDataAtMs: receivedAtMs,
    };
  }

  #acceptPushData(packet: PushData, receivedAtMs: number): void {
    const { gatewayId } = packet;
    const state = this.#gatewayState(gatewayId, receivedAtMs);
    // The stat first: its position then goes with the frames of the same datagram.
    if (packet.stat !== undefined) {
      const location = statLocation(packet.stat);
      if (location !== undefined) state.location = location;
      this.#counters.stats++;
      this.#emit(this.#statsHandlers, statToGatewayStats(packet.stat, { gatewayId, receivedAtMs }));
    }
    for (const rxpk of packet.rxpk) {
      if (rxpk.stat === -1) {
        this.#counters.crcFailed++;
        continue;
      }
      if (rxpk.stat === 0) {
        this.#counters.crcMissing++;
        continue;
      }
      const uplink = rxpkToUplink(rxpk, {
        gatewayId,
        uplinkId: this.#nextUplinkId++,
        receivedAtMs,
        ...(state.location === undefined ? {} : { location: state.location }),
      });
      this.#counters.uplinks++;
      this.#emit(this.#uplinkHandlers, uplink);
    }
  }

  #acceptTxAck(packet: TxAck): void {
    const key = `${packet.gatewayId}:${packet.token}`;
    const pending = this.#pendingTxAcks.get(key);
    if (pending === undefined) {
      this.#counters.txAcksUnmatched++;
      this.#logger.debug(
        { gatewayId: packet.gatewayId, token: packet.token },
        'TX_ACK matches no pending downlink',
      );
      return;
    }
    this.#pendingTxAcks.delete(key);
    const status = txAckStatusOf(packet.txpkAck);
    this.#counters.txAcks[status]++;
    if (status !== 'NONE') {
      this.#logger.info(
        { gatewayId: pending.gatewayId, downlinkId: pending.downlinkId, status },
        'gateway refused a downlink',
      );
    }
    this.#emit(this.#txAckHandlers, { ...pending, status });
  }

  #emit<T>(handlers: readonly ((value: T) => void)[], value: T): void {
    for (const handler of handlers) {
      try {
        handler(value);
      } catch (error) {
        this.#counters.handlerErrors++;
        this.#logger.error({ err: error }, 'gateway event handler threw');
      }
    }
  }
}

/**
 * Every address this socket sends to came from a datagram's sender (a numeric IP), so it needs
 * no resolution: the default lookup would still go through dns.lookup and a deferred callback
 * for each PUSH_ACK. Names (never used here) still go to the resolver.
 */
function literalAddressLookup(
  hostname: string,
  options: LookupOptions | number,
  callback: (error: NodeJS.ErrnoException | null, address: string, family: number) => void,
): void {
  const family = isIP(hostname);
  if (family !== 0) {
    callback(null, hostname, family);
    return;
  }
  const lookupOptions = typeof options === 'number' ? { family: options } : options;
  dnsLookup(hostname, { ...lookupOptions, all: false }, (error, address, resolvedFamily) =>
    callback(error, address, resolvedFamily),
  );
}
