import type { Worker } from 'node:worker_threads';
import { startWorker } from '../start-worker.js';
import { StorageError } from './errors.js';
import type { PreparedCommit } from './sqlite-uplink-statements.js';

export interface UplinkWriterSetup {
  /** The SQLite file (already migrated by the main connection). */
  path: string;
  busyTimeoutMs: number;
}

export type UplinkWriterRequest =
  | { type: 'commit'; id: number; items: PreparedCommit[]; now: string }
  | { type: 'touch'; id: number; seen: [string, string][] }
  | { type: 'close' };

export type UplinkWriterResponse =
  | { type: 'ready' }
  | { type: 'committed'; id: number; won: boolean[] }
  | { type: 'touched'; id: number }
  | { type: 'failed'; id: number; message: string; code?: string };

interface Pending {
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

/**
 * The SQLite uplink writes (FCnt compare-and-set + event, last_seen_at) on a thread of their own,
 * with their own connection to the same file: the network server's event loop hands over a batch
 * and goes on with the next uplinks while SQLite writes its pages. The transactions and their
 * guarantees are those of the main connection (the same statements); SQLite's lock orders the
 * two connections' writes. A thread that dies fails the requests under way (their uplinks are
 * refused, not half-stored) and the next request starts a new one.
 */
export class SqliteUplinkWriter {
  readonly #setup: UplinkWriterSetup;
  readonly #pending = new Map<number, Pending>();
  readonly #inFlight = new Set<Promise<unknown>>();
  #worker: Worker | undefined;
  #ready: Promise<void> | undefined;
  #nextId = 1;
  #closed = false;

  constructor(setup: UplinkWriterSetup) {
    this.#setup = setup;
  }

  commit(items: PreparedCommit[], now: string): Promise<boolean[]> {
    return this.#request((id) => ({ type: 'commit', id, items, now })) as Promise<boolean[]>;
  }

  touch(seen: [string, string][]): Promise<void> {
    return this.#request((id) => ({ type: 'touch', id, seen })) as Promise<void>;
  }

  /** Stops the thread abruptly, as a crash would (fault-injection tests). */
  async killForTest(): Promise<void> {
    await this.#worker?.terminate();
  }

  /** Lets the requests under way finish, then closes the thread's connection. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.allSettled([...this.#inFlight]);
    const worker = this.#worker;
    if (worker === undefined) return;
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    worker.ref();
    worker.postMessage({ type: 'close' } satisfies UplinkWriterRequest);
    await exited;
  }

  async #request(build: (id: number) => UplinkWriterRequest): Promise<unknown> {
    if (this.#closed) throw new StorageError('DATABASE_UNAVAILABLE', 'the uplink writer is closed');
    await this.#start();
    const id = this.#nextId++;
    const worker = this.#worker!;
    const request = new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      worker.postMessage(build(id));
    });
    // Referenced while a request waits on it, so that the process stays up for the answer.
    if (this.#inFlight.size === 0) worker.ref();
    this.#inFlight.add(request);
    const settled = () => {
      this.#inFlight.delete(request);
      if (this.#inFlight.size === 0) worker.unref();
    };
    void request.then(settled, settled);
    return request;
  }

  #start(): Promise<void> {
    this.#ready ??= new Promise<void>((resolve, reject) => {
      const worker = startWorker(import.meta.url, './uplink-writer-worker', {
        workerData: this.#setup,
      });
      // An idle thread must not keep a process alive that is otherwise done (tests, commands);
      // the start itself is awaited, so it stays referenced until ready.
      this.#worker = worker;
      worker.on('message', (message: UplinkWriterResponse) => {
        if (message.type === 'ready') {
          if (this.#inFlight.size === 0) worker.unref();
          resolve();
          return;
        }
        const pending = this.#pending.get(message.id);
        if (message.type === 'failed' && pending === undefined) {
          reject(new StorageError('DATABASE_UNAVAILABLE', `uplink writer: ${message.message}`));
          return;
        }
        if (pending === undefined) return;
        this.#pending.delete(message.id);
        if (message.type === 'committed') pending.resolve(message.won);
        else if (message.type === 'touched') pending.resolve(undefined);
        else pending.reject(writerError(message));
      });
      worker.on('error', (error) => reject(error));
      worker.on('exit', () => {
        if (this.#worker !== worker) return;
        this.#worker = undefined;
        this.#ready = undefined;
        const failure = new StorageError(
          'DATABASE_UNAVAILABLE',
          'the uplink writer thread stopped',
        );
        for (const pending of this.#pending.values()) pending.reject(failure);
        this.#pending.clear();
        reject(failure);
      });
    });
    return this.#ready;
  }
}

function writerError(message: { message: string; code?: string }): StorageError {
  return new StorageError(
    'DATABASE_UNAVAILABLE',
    `uplink write failed${message.code === undefined ? '' : ` (${message.code})`}: ${message.message}`,
  );
}
