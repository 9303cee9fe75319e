import type { Worker } from 'node:worker_threads';
import { startWorker } from '../../start-worker.js';
import type {
  DeduplicatedUplink,
  GatewayBackend,
  GatewayDownlink,
  GatewayStats,
  GatewayTxAck,
  GatewayUplink,
} from '../types.js';
import { SemtechUdpError } from './errors.js';
import {
  type GatewayLogger,
  newSemtechUdpCounters,
  type SemtechUdpBackendOptions,
  type SemtechUdpCounters,
  SILENT_LOGGER,
} from './server.js';
import type { FromWorker, GatewayEvent, ToWorker, UdpWorkerOptions } from './worker-protocol.js';

export interface SemtechUdpWorkerBackendOptions
  extends Omit<SemtechUdpBackendOptions, 'now' | 'randomToken'> {
  /** Delay before a worker that died is started again (default 1000 ms). */
  restartDelayMs?: number;
  /**
   * Merge the copies of each frame in the worker over this window (ms): the main thread then
   * gets one uplink per frame, after its window, through `deduplication` (not `onUplink`).
   */
  deduplicationWindowMs?: number;
  /**
   * URL of a frame annotator module to run in the worker (gateway/types.ts `FrameAnnotator`);
   * with `deduplicationWindowMs` only. Exposed to the main thread as `frameAnnotator`.
   */
  frameAnnotatorModule?: string;
}

/** Counters of the proxy itself, next to the worker's. */
export interface SemtechUdpWorkerCounters extends SemtechUdpCounters {
  /** Times the worker thread died and was started again. */
  workerRestarts: number;
}

interface PendingSend {
  resolve: (ok: boolean) => void;
  reject: (error: unknown) => void;
}

/**
 * The Semtech UDP backend in a worker thread: the socket, datagram parsing and the PUSH_ACK of
 * every datagram (a third of a busy server's work) run beside the network server instead of on
 * its event loop. Same GatewayBackend contract as SemtechUdpBackend, which the worker runs; the
 * gateway allow-list is still decided here (each gateway asked once per worker). `counters()`
 * is the worker's latest report: `refreshCounters()` asks for a fresh one (metrics scrapes do). A worker that dies is
 * started again on the same port, and logged; downlink paths come back with the gateways' next
 * PULL_DATA (every few seconds).
 */
export class SemtechUdpWorkerBackend implements GatewayBackend {
  readonly #options: SemtechUdpWorkerBackendOptions;
  readonly #logger: GatewayLogger;
  readonly #uplinkHandlers: ((uplink: GatewayUplink) => void)[] = [];
  readonly #statsHandlers: ((stats: GatewayStats) => void)[] = [];
  readonly #txAckHandlers: ((ack: GatewayTxAck) => void)[] = [];
  readonly #frameHandlers: ((uplink: DeduplicatedUplink) => void)[] = [];
  readonly #flushes = new Map<number, () => void>();
  readonly deduplication: GatewayBackend['deduplication'];
  readonly frameAnnotator: GatewayBackend['frameAnnotator'];
  readonly #annotatorStarted: (() => void)[] = [];
  readonly #sends = new Map<number, PendingSend>();
  #countersWaiters: (() => void)[] = [];
  #worker!: Worker;
  #address = { address: '', port: 0 };
  #counters: SemtechUdpCounters | undefined;
  #workerRestarts = 0;
  #handlerErrors = 0;
  #nextRequestId = 1;
  #closed: Promise<void> | undefined;
  #restartTimer: NodeJS.Timeout | undefined;

  /** Starts the worker; resolves once its socket listens (rejects if it cannot bind). */
  static async listen(
    options: SemtechUdpWorkerBackendOptions = {},
  ): Promise<SemtechUdpWorkerBackend> {
    const backend = new SemtechUdpWorkerBackend(options);
    await backend.#start(options.port ?? 1700);
    return backend;
  }

  private constructor(options: SemtechUdpWorkerBackendOptions) {
    this.#options = options;
    this.#logger = options.logger ?? SILENT_LOGGER;
    this.deduplication =
      options.deduplicationWindowMs === undefined
        ? undefined
        : {
            onUplink: (handler) => {
              this.#frameHandlers.push(handler);
            },
            flush: () => this.#flushDeduplication(),
          };
    this.frameAnnotator =
      options.frameAnnotatorModule === undefined || options.deduplicationWindowMs === undefined
        ? undefined
        : {
            update: (message) => {
              if (this.#closed === undefined) this.#post({ type: 'annotatorUpdate', message });
            },
            onStarted: (listener) => {
              this.#annotatorStarted.push(listener);
            },
          };
  }

  #flushDeduplication(): Promise<void> {
    if (this.#closed !== undefined) return Promise.resolve();
    const requestId = this.#nextRequestId++;
    return new Promise<void>((resolve) => {
      this.#flushes.set(requestId, resolve);
      this.#post({ type: 'flushDeduplication', requestId });
    });
  }

  address(): { address: string; port: number } {
    return { ...this.#address };
  }

  counters(): SemtechUdpWorkerCounters {
    const base = this.#counters === undefined ? undefined : structuredClone(this.#counters);
    return {
      ...(base ?? newSemtechUdpCounters()),
      handlerErrors: (base?.handlerErrors ?? 0) + this.#handlerErrors,
      workerRestarts: this.#workerRestarts,
    };
  }

  /**
   * Asks the worker for its counters now (for a metrics scrape); resolves once `counters()`
   * returns them. Concurrent calls share one question.
   */
  refreshCounters(): Promise<void> {
    if (this.#closed !== undefined) return Promise.resolve();
    if (this.#countersWaiters.length === 0) this.#post({ type: 'reportCounters' });
    return new Promise<void>((resolve) => this.#countersWaiters.push(resolve));
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

  sendDownlink(downlink: GatewayDownlink): Promise<boolean> {
    if (this.#closed !== undefined) return Promise.resolve(false);
    const requestId = this.#nextRequestId++;
    return new Promise<boolean>((resolve, reject) => {
      this.#sends.set(requestId, { resolve, reject });
      this.#post({ type: 'send', requestId, downlink });
    });
  }

  gatewayRemoved(gatewayId: string): void {
    if (this.#closed === undefined) this.#post({ type: 'forgetGateway', gatewayId });
  }

  /** Stops the worker thread abruptly, as a crash would (fault-injection tests). */
  async killWorkerForTest(): Promise<void> {
    await this.#worker.terminate();
  }

  close(): Promise<void> {
    this.#closed ??= new Promise<void>((resolve) => {
      clearTimeout(this.#restartTimer);
      const worker = this.#worker;
      const done = () => {
        this.#settleSends();
        resolve();
      };
      // The worker closes its socket, flushes what it read, reports, and exits.
      const fallback = setTimeout(() => void worker.terminate().then(done, done), 5000);
      worker.once('exit', () => {
        clearTimeout(fallback);
        done();
      });
      this.#post({ type: 'close' });
    });
    return this.#closed;
  }

  // -------------------------------------------------------------------------------------------

  #start(port: number): Promise<void> {
    const workerOptions: UdpWorkerOptions = {
      socket: {
        ...pick(this.#options, [
          'host',
          'receiveBufferBytes',
          'downlinkPathTtlMs',
          'maxPendingTxAcks',
          'malformedLogIntervalMs',
          'unknownGatewayLogIntervalMs',
        ]),
        port,
      },
      checkGateways: this.#options.isGatewayAllowed !== undefined,
      ...(this.#options.deduplicationWindowMs === undefined
        ? {}
        : { deduplicationWindowMs: this.#options.deduplicationWindowMs }),
      ...(this.frameAnnotator === undefined
        ? {}
        : { frameAnnotatorModule: this.#options.frameAnnotatorModule }),
    };
    const worker = startWorker(import.meta.url, './worker-main', { workerData: workerOptions });
    this.#worker = worker;
    return new Promise<void>((resolve, reject) => {
      let listening = false;
      worker.on('message', (message: FromWorker) => {
        if (message.type === 'listening') {
          listening = true;
          this.#address = { address: message.address, port: message.port };
          resolve();
          // A restarted worker's annotator starts empty: its owner sends its state again.
          for (const listener of this.#annotatorStarted) {
            try {
              listener();
            } catch (error) {
              this.#logger.error({ err: error }, 'frame annotator start listener failed');
            }
          }
          return;
        }
        if (message.type === 'listenFailed') {
          const error = Object.assign(new Error(message.message), { code: message.code });
          void worker.terminate();
          reject(error);
          return;
        }
        this.#receive(message);
      });
      worker.on('error', (error) => {
        this.#logger.error({ err: error }, 'Semtech UDP worker failed');
        if (!listening) reject(error);
      });
      worker.on('exit', (code) => {
        if (this.#worker !== worker) return;
        this.#settleSends();
        if (this.#closed !== undefined || !listening) return;
        this.#workerRestarts++;
        const delayMs = this.#options.restartDelayMs ?? 1000;
        this.#logger.error({ exitCode: code, restartInMs: delayMs }, 'Semtech UDP worker stopped');
        this.#restartTimer = setTimeout(() => {
          this.#start(this.#address.port).catch((error: unknown) => {
            this.#logger.error({ err: error }, 'Semtech UDP worker could not start again');
          });
        }, delayMs);
      });
    });
  }

  #post(message: ToWorker): void {
    this.#worker.postMessage(message);
  }

  #wakeCountersWaiters(): void {
    const waiters = this.#countersWaiters;
    this.#countersWaiters = [];
    for (const wake of waiters) wake();
  }

  /** Sends under way when the worker stops are reported as not sent; counter waiters wake. */
  #settleSends(): void {
    this.#wakeCountersWaiters();
    for (const resolve of this.#flushes.values()) resolve();
    this.#flushes.clear();
    for (const pending of this.#sends.values()) pending.resolve(false);
    this.#sends.clear();
  }

  #receive(message: FromWorker): void {
    switch (message.type) {
      case 'events':
        for (const event of message.events) this.#dispatch(event);
        return;
      case 'sent': {
        const pending = this.#sends.get(message.requestId);
        this.#sends.delete(message.requestId);
        pending?.resolve(message.ok);
        return;
      }
      case 'sendRefused': {
        const pending = this.#sends.get(message.requestId);
        this.#sends.delete(message.requestId);
        pending?.reject(new SemtechUdpError(message.code, message.message));
        return;
      }
      case 'deduplicationFlushed': {
        const resolve = this.#flushes.get(message.requestId);
        this.#flushes.delete(message.requestId);
        resolve?.();
        return;
      }
      case 'checkGateway':
        this.#checkGateway(message.requestId, message.gatewayId);
        return;
      case 'counters':
      case 'closed':
        this.#counters = message.counters;
        this.#wakeCountersWaiters();
        return;
      case 'log':
        this.#logger[message.level](message.fields, message.message);
        return;
      case 'listening':
      case 'listenFailed':
        return;
    }
  }

  #checkGateway(requestId: number, gatewayId: string): void {
    const answer = (allowed: boolean) => {
      if (this.#closed === undefined) {
        this.#post({ type: 'gatewayVerdict', requestId, allowed });
      }
    };
    const check = this.#options.isGatewayAllowed;
    try {
      const verdict = check === undefined ? true : check(gatewayId);
      if (typeof verdict === 'boolean') answer(verdict);
      else
        verdict.then(
          (allowed) => answer(allowed === true),
          (error: unknown) => {
            this.#logger.error({ err: error, gatewayId }, 'gateway check failed');
            answer(false);
          },
        );
    } catch (error) {
      this.#logger.error({ err: error, gatewayId }, 'gateway check failed');
      answer(false);
    }
  }

  #dispatch(event: GatewayEvent): void {
    switch (event.kind) {
      case 'uplink':
        this.#emit(this.#uplinkHandlers, event.uplink);
        return;
      case 'frame':
        this.#emit(this.#frameHandlers, event.uplink);
        return;
      case 'stats':
        this.#emit(this.#statsHandlers, event.stats);
        return;
      case 'txAck':
        this.#emit(this.#txAckHandlers, event.ack);
        return;
    }
  }

  #emit<T>(handlers: readonly ((value: T) => void)[], value: T): void {
    for (const handler of handlers) {
      try {
        handler(value);
      } catch (error) {
        this.#handlerErrors++;
        this.#logger.error({ err: error }, 'gateway event handler threw');
      }
    }
  }
}

function pick<T extends object, K extends keyof T>(source: T, keys: readonly K[]): Partial<T> {
  const picked: Partial<T> = {};
  for (const key of keys) if (source[key] !== undefined) picked[key] = source[key];
  return picked;
}
