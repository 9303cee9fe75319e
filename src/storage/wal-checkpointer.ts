import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type SqliteDatabase from 'better-sqlite3';
import type { StorageLogger } from './database.js';

/**
 * WAL frames after which the main connection still checkpoints by itself while the thread is
 * running (SQLite's default is 1,000): a safety net if the thread falls behind, far enough not
 * to be reached in normal work (about 40 MB of WAL with 4 KiB pages).
 */
export const MAIN_CONNECTION_AUTOCHECKPOINT_PAGES = 10_000;
const SQLITE_DEFAULT_AUTOCHECKPOINT_PAGES = 1000;
/**
 * Often, so that each checkpoint copies little and the WAL rarely reaches the main connection's
 * threshold under steady writes (`npm run bench -- commit`: at 250 ms it did, and those
 * checkpoints on the writing thread made the longest commits longer). An idle check costs
 * microseconds.
 */
export const DEFAULT_CHECKPOINT_INTERVAL_MS = 20;

export interface WalCheckpointerOptions {
  /** How often the thread copies the WAL into the database file (default 20 ms). */
  intervalMs?: number;
  logger?: StorageLogger;
}

/** What one checkpoint did, as SQLite reports it (PRAGMA wal_checkpoint). */
export interface CheckpointResult {
  /** Frames in the WAL when the checkpoint ran. */
  walFrames: number;
  /** Frames copied into the database file so far (all of them when the WAL was drained). */
  checkpointedFrames: number;
  /** Whether another connection's lock kept it from running. */
  busy: boolean;
  durationMs: number;
}

export interface WalCheckpointerStats {
  checkpoints: number;
  framesCheckpointed: number;
  busy: number;
  /** The longest checkpoint so far (ms). */
  longestMs: number;
  running: boolean;
}

type FromThread =
  | { type: 'ready' }
  | ({ type: 'checkpointed' } & CheckpointResult)
  | { type: 'failed'; message: string };

/**
 * The thread's code. Plain JavaScript run with `eval` (nothing to compile and no TypeScript
 * loader to start: it is a few lines, and tests open many databases); better-sqlite3 comes from
 * the path the main thread resolved.
 */
const THREAD_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driverPath);
let sqlite;
try {
  sqlite = new Database(workerData.path, { fileMustExist: true });
  sqlite.pragma('busy_timeout = 0');
  parentPort.postMessage({ type: 'ready' });
} catch (error) {
  parentPort.postMessage({ type: 'failed', message: String(error && error.message || error) });
  process.exit(1);
}
let lastWalFrames = -1;
const timer = setInterval(() => {
  const started = performance.now();
  let row;
  try {
    row = sqlite.pragma('wal_checkpoint(PASSIVE)')[0];
  } catch (error) {
    parentPort.postMessage({ type: 'failed', message: String(error && error.message || error) });
    return;
  }
  if (row.log === lastWalFrames && row.checkpointed === row.log) return;
  lastWalFrames = row.log;
  parentPort.postMessage({
    type: 'checkpointed',
    walFrames: row.log,
    checkpointedFrames: row.checkpointed,
    busy: row.busy === 1,
    durationMs: performance.now() - started,
  });
}, workerData.intervalMs);
parentPort.on('message', (message) => {
  if (message !== 'close') return;
  clearInterval(timer);
  sqlite.close();
  parentPort.close();
});
`;

/**
 * Copies the WAL into the database file on a thread of its own, with its own connection, so
 * that the network server's thread does not: by default SQLite checkpoints inside the commit
 * that crosses 1,000 WAL frames, which at thousands of uplinks per second is many times a
 * second, each one writing and syncing pages on the thread that takes the uplinks. A PASSIVE
 * checkpoint never blocks writers or readers; the main connection keeps a far higher automatic
 * threshold as a safety net, and gets SQLite's default back if the thread stops.
 */
export class WalCheckpointer {
  readonly #sqlite: SqliteDatabase.Database;
  readonly #logger: StorageLogger | undefined;
  readonly #worker: Worker;
  readonly #exited: Promise<void>;
  readonly #stats: WalCheckpointerStats = {
    checkpoints: 0,
    framesCheckpointed: 0,
    busy: 0,
    longestMs: 0,
    running: true,
  };
  readonly #listeners = new Set<(result: CheckpointResult) => void>();
  #closing = false;

  /** Starts the thread on `sqlite`'s file (a file database in WAL mode). */
  constructor(sqlite: SqliteDatabase.Database, options?: WalCheckpointerOptions) {
    this.#sqlite = sqlite;
    this.#logger = options?.logger;
    const intervalMs = Math.max(
      10,
      Math.trunc(options?.intervalMs ?? DEFAULT_CHECKPOINT_INTERVAL_MS),
    );
    sqlite.pragma(`wal_autocheckpoint = ${MAIN_CONNECTION_AUTOCHECKPOINT_PAGES}`);
    this.#worker = new Worker(THREAD_SOURCE, {
      eval: true,
      workerData: {
        path: sqlite.name,
        intervalMs,
        driverPath: createRequire(import.meta.url).resolve('better-sqlite3'),
      },
    });
    // It must never keep a process alive that has nothing else to do.
    this.#worker.unref();
    this.#worker.on('message', (message: FromThread) => this.#onMessage(message));
    this.#worker.on('error', (error) => this.#stopped(error.message));
    this.#exited = new Promise((resolve) => {
      this.#worker.once('exit', (code) => {
        if (!this.#closing) this.#stopped(`the checkpoint thread exited (code ${code})`);
        resolve();
      });
    });
  }

  get stats(): Readonly<WalCheckpointerStats> {
    return { ...this.#stats };
  }

  /** Called after each checkpoint that found frames to copy (metrics, tests). */
  onCheckpoint(listener: (result: CheckpointResult) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Stops the thread abruptly, as a crash would (fault-injection tests). */
  async killForTest(): Promise<void> {
    this.#worker.ref();
    await this.#worker.terminate();
    await this.#exited;
  }

  /** Stops the thread and closes its connection; the main connection's checkpoints resume. */
  async close(): Promise<void> {
    if (!this.#stats.running) return;
    this.#closing = true;
    // Unreferenced while it runs; the wait for its exit must keep the process alive.
    this.#worker.ref();
    this.#worker.postMessage('close');
    await this.#exited;
    this.#stats.running = false;
    this.#restoreMainCheckpoints();
  }

  #onMessage(message: FromThread): void {
    switch (message.type) {
      case 'ready':
        return;
      case 'checkpointed': {
        this.#stats.checkpoints += 1;
        this.#stats.framesCheckpointed += message.checkpointedFrames;
        if (message.busy) this.#stats.busy += 1;
        if (message.durationMs > this.#stats.longestMs) this.#stats.longestMs = message.durationMs;
        const { type: _type, ...result } = message;
        for (const listener of this.#listeners) listener(result);
        return;
      }
      case 'failed':
        this.#logger?.warn({ reason: message.message }, 'WAL checkpoint on its thread failed');
        return;
    }
  }

  #stopped(reason: string): void {
    if (!this.#stats.running) return;
    this.#stats.running = false;
    this.#logger?.warn(
      { reason },
      'the WAL checkpoint thread stopped: the database connection checkpoints by itself again',
    );
    this.#restoreMainCheckpoints();
  }

  #restoreMainCheckpoints(): void {
    if (!this.#sqlite.open) return;
    try {
      this.#sqlite.pragma(`wal_autocheckpoint = ${SQLITE_DEFAULT_AUTOCHECKPOINT_PAGES}`);
    } catch {
      // Closing: nothing left to checkpoint for.
    }
  }
}

/** The checkpoint thread's counters as metrics read them (zeros when there is no thread). */
export function checkpointCounters(checkpointer: WalCheckpointer | undefined): {
  checkpoints: number;
  framesCheckpointed: number;
  busy: number;
} {
  const stats = checkpointer?.stats;
  return {
    checkpoints: stats?.checkpoints ?? 0,
    framesCheckpointed: stats?.framesCheckpointed ?? 0,
    busy: stats?.busy ?? 0,
  };
}

/** The Prometheus gauge saying whether the checkpoint thread runs (1) or not (0). */
export function checkpointThreadGauge(checkpointer: WalCheckpointer | undefined): {
  help: string;
  read: () => number;
} {
  return {
    help: 'whether the SQLite WAL checkpoint thread is running (1) or the commits checkpoint by themselves (0)',
    read: () => (checkpointer?.stats.running === true ? 1 : 0),
  };
}
