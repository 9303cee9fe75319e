// Messages between SemtechUdpWorkerBackend (main thread) and its worker (worker-main.ts).
// Everything here crosses a MessagePort by structured clone: plain data only.
import type {
  DeduplicatedUplink,
  GatewayDownlink,
  GatewayStats,
  GatewayTxAck,
  GatewayUplink,
} from '../types.js';
import type { SemtechUdpErrorCode } from './errors.js';
import type { SemtechUdpBackendOptions, SemtechUdpCounters } from './server.js';

/** The SemtechUdpBackendOptions that are data, handed to the worker's backend as they are. */
export type UdpSocketOptions = Pick<
  SemtechUdpBackendOptions,
  | 'host'
  | 'port'
  | 'receiveBufferBytes'
  | 'downlinkPathTtlMs'
  | 'maxPendingTxAcks'
  | 'malformedLogIntervalMs'
  | 'unknownGatewayLogIntervalMs'
>;

/** What the worker needs to open its socket. */
export interface UdpWorkerOptions {
  socket: UdpSocketOptions;
  /** Whether the main thread decides which gateways are allowed (false: every gateway is). */
  checkGateways: boolean;
  /**
   * When set, the worker merges the copies of each frame over this window (ms) and posts one
   * `frame` per frame instead of one `uplink` per copy.
   */
  deduplicationWindowMs?: number;
  /**
   * URL of a module exporting `createFrameAnnotator()` (gateway/types.ts `FrameAnnotator`),
   * loaded in the worker to annotate each merged frame (needs `deduplicationWindowMs`).
   */
  frameAnnotatorModule?: string;
}

export type GatewayEvent =
  | { kind: 'uplink'; uplink: GatewayUplink }
  | { kind: 'frame'; uplink: DeduplicatedUplink }
  | { kind: 'stats'; stats: GatewayStats }
  | { kind: 'txAck'; ack: GatewayTxAck };

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export type FromWorker =
  | { type: 'listening'; address: string; port: number }
  | { type: 'listenFailed'; message: string; code?: string }
  /** The gateway events of one turn of the worker's event loop, in arrival order. */
  | { type: 'events'; events: GatewayEvent[] }
  | { type: 'sent'; requestId: number; ok: boolean }
  /** The downlink itself was invalid (SemtechUdpBackend.sendDownlink rejected). */
  | { type: 'sendRefused'; requestId: number; code: SemtechUdpErrorCode; message: string }
  | { type: 'checkGateway'; requestId: number; gatewayId: string }
  | { type: 'counters'; counters: SemtechUdpCounters }
  | { type: 'log'; level: LogLevel; fields: Record<string, unknown>; message: string }
  | { type: 'closed'; counters: SemtechUdpCounters }
  /** Every frame whose window was open has been posted (answer to `flushDeduplication`). */
  | { type: 'deduplicationFlushed'; requestId: number };

export type ToWorker =
  | { type: 'send'; requestId: number; downlink: GatewayDownlink }
  | { type: 'gatewayVerdict'; requestId: number; allowed: boolean }
  /** Emit every open deduplication window now. */
  | { type: 'flushDeduplication'; requestId: number }
  /** The gateway was deleted: ask the main thread again about its next datagram. */
  | { type: 'forgetGateway'; gatewayId: string }
  /** Data for the frame annotator (`FrameAnnotatorLink.update`). */
  | { type: 'annotatorUpdate'; message: unknown }
  /** Asks for a `counters` message now. */
  | { type: 'reportCounters' }
  | { type: 'close' };
