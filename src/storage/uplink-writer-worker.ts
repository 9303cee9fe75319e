// The uplink writer thread (see uplink-writer.ts): its own connection to the SQLite file, the
// uplink commits and last_seen_at writes, one request at a time.

import { parentPort, workerData } from 'node:worker_threads';
import SqliteDatabase from 'better-sqlite3';
import { SqliteUplinkStatements } from './sqlite-uplink-statements.js';
import type {
  UplinkWriterRequest,
  UplinkWriterResponse,
  UplinkWriterSetup,
} from './uplink-writer.js';

const port = parentPort;
if (port === null) throw new Error('uplink-writer-worker runs only as a worker thread');
const setup = workerData as UplinkWriterSetup;

function reply(message: UplinkWriterResponse): void {
  port!.postMessage(message);
}

let sqlite: SqliteDatabase.Database;
let statements: SqliteUplinkStatements;
try {
  sqlite = new SqliteDatabase(setup.path, { fileMustExist: true });
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('synchronous = NORMAL');
  sqlite.pragma('foreign_keys = ON');
  sqlite.pragma(`busy_timeout = ${Math.max(0, Math.trunc(setup.busyTimeoutMs))}`);
  statements = new SqliteUplinkStatements(sqlite);
  reply({ type: 'ready' });
} catch (error) {
  reply({ type: 'failed', id: 0, message: (error as Error).message });
  process.exit(1);
}

port.on('message', (request: UplinkWriterRequest) => {
  try {
    switch (request.type) {
      case 'commit':
        reply({
          type: 'committed',
          id: request.id,
          won: statements.commitBatch(request.items, request.now),
        });
        return;
      case 'touch':
        statements.touchDevices(request.seen);
        reply({ type: 'touched', id: request.id });
        return;
      case 'close':
        sqlite.close();
        port!.close();
        return;
    }
  } catch (error) {
    const failure = error as { message?: string; code?: string };
    reply({
      type: 'failed',
      id: request.type === 'close' ? 0 : request.id,
      message: String(failure.message ?? error),
      ...(failure.code === undefined ? {} : { code: failure.code }),
    });
  }
});
