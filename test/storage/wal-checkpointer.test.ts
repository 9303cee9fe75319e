import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { type GaletDatabase, openDatabase } from '../../src/storage/index.js';
import type { CheckpointResult } from '../../src/storage/wal-checkpointer.js';
import { capturingLogger, type LogEntry, metricSample } from '../helpers/capture.js';
import { removeDir, startTestGalet } from '../helpers/galet.js';

async function fileDatabase(
  t: TestContext,
  options: { walCheckpointThread: boolean; logger?: ReturnType<typeof capturingLogger> },
): Promise<{ database: GaletDatabase; dataDir: string }> {
  const dataDir = await mkdtemp(join(tmpdir(), 'galet-checkpoint-'));
  const database = await openDatabase({
    dataDir,
    walCheckpointThread: options.walCheckpointThread,
    ...(options.logger === undefined ? {} : { logger: options.logger }),
  });
  t.after(async () => {
    await database.close();
    await rm(dataDir, { recursive: true, force: true });
  });
  return { database, dataDir };
}

/** Enough rows of about 1 KB to fill a few thousand WAL pages, in many small commits. */
function writeRows(database: GaletDatabase, commits: number, rowsPerCommit = 10): void {
  const sqlite = database.sqlite as NonNullable<GaletDatabase['sqlite']>;
  sqlite.exec('create table if not exists filler (id integer primary key, body text not null)');
  const insert = sqlite.prepare('insert into filler (body) values (?)');
  const commit = sqlite.transaction((count: number) => {
    for (let i = 0; i < count; i++) insert.run('x'.repeat(1000));
  });
  for (let i = 0; i < commits; i++) commit(rowsPerCommit);
}

function autocheckpoint(database: GaletDatabase): number {
  return Number(database.sqlite?.pragma('wal_autocheckpoint', { simple: true }));
}

function nextCheckpoint(database: GaletDatabase): Promise<CheckpointResult> {
  let stop: (() => void) | undefined;
  let timer: NodeJS.Timeout | undefined;
  return new Promise<CheckpointResult>((resolve, reject) => {
    // Also what keeps this process alive meanwhile: the thread does not by itself.
    timer = setTimeout(() => reject(new Error('no checkpoint on the thread within 15 s')), 15_000);
    stop = database.checkpointer?.onCheckpoint((result) => {
      if (result.checkpointedFrames > 0) resolve(result);
    });
  }).finally(() => {
    clearTimeout(timer);
    stop?.();
  });
}

describe('WAL checkpoints on a thread of their own (SQLite)', () => {
  it('copies the WAL into the file on its thread while the main connection only writes', {
    timeout: 20_000,
  }, async (t) => {
    const { database, dataDir } = await fileDatabase(t, { walCheckpointThread: true });
    assert.ok(database.checkpointer, 'a file database with the option has a checkpointer');
    // The main connection keeps only a far threshold, as a safety net.
    assert.equal(autocheckpoint(database), 10_000);
    const checkpointed = nextCheckpoint(database);
    writeRows(database, 300);
    const result = await checkpointed;
    assert.ok(result.walFrames > 0);
    assert.ok(result.checkpointedFrames > 0);
    const stats = database.checkpointer.stats;
    assert.ok(stats.checkpoints >= 1 && stats.framesCheckpointed > 0 && stats.running);
    // The pages copied are in the database file itself (the WAL's 3 MB stay under the main
    // connection's 10,000-page threshold: only the thread copies them; a first checkpoint may
    // come while the rows are still being written, so wait for the rest), and nothing was lost.
    const deadline = Date.now() + 15_000;
    while ((await stat(join(dataDir, 'galet.sqlite'))).size <= 300 * 10 * 1000) {
      assert.ok(Date.now() < deadline, 'every row copied into the database file within 15 s');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const sqlite = database.sqlite as NonNullable<GaletDatabase['sqlite']>;
    assert.equal(
      (sqlite.prepare('select count(*) as n from filler').get() as { n: number }).n,
      3000,
    );
    assert.equal(sqlite.pragma('integrity_check', { simple: true }), 'ok');
  });

  it('keeps SQLite’s own checkpoints when off, and on a database in memory', async (t) => {
    const { database } = await fileDatabase(t, { walCheckpointThread: false });
    assert.equal(database.checkpointer, undefined);
    assert.equal(autocheckpoint(database), 1000);
    const memory = await openDatabase({ url: ':memory:', walCheckpointThread: true });
    t.after(() => memory.close());
    assert.equal(memory.checkpointer, undefined);
  });

  it('gives the main connection its checkpoints back when the thread dies, with a warning', async (t) => {
    const entries: LogEntry[] = [];
    const { database } = await fileDatabase(t, {
      walCheckpointThread: true,
      logger: capturingLogger(entries),
    });
    const checkpointer = database.checkpointer as NonNullable<GaletDatabase['checkpointer']>;
    await checkpointer.killForTest();
    assert.equal(checkpointer.stats.running, false);
    assert.equal(autocheckpoint(database), 1000);
    assert.ok(
      entries.some(
        (entry) => entry.level === 'warn' && /checkpoint thread stopped/.test(entry.message),
      ),
      'a warning says the thread stopped',
    );
    // Writes go on, checkpointed by the connection itself now.
    writeRows(database, 50);
    const sqlite = database.sqlite as NonNullable<GaletDatabase['sqlite']>;
    assert.equal(
      (sqlite.prepare('select count(*) as n from filler').get() as { n: number }).n,
      500,
    );
  });

  it('stops the thread at close, and a reopened database holds every row', async (t) => {
    const { database, dataDir } = await fileDatabase(t, { walCheckpointThread: true });
    writeRows(database, 100);
    await database.close();
    assert.equal(database.checkpointer?.stats.running, false);
    const reopened = await openDatabase({ dataDir, walCheckpointThread: true });
    t.after(() => reopened.close());
    const sqlite = reopened.sqlite as NonNullable<GaletDatabase['sqlite']>;
    assert.equal(
      (sqlite.prepare('select count(*) as n from filler').get() as { n: number }).n,
      1000,
    );
  });
});

describe('a Galet’s SQLite checkpoints', () => {
  it('run on their thread by default, counted in the metrics, and in the commits with the option off', async (t) => {
    for (const [sqliteCheckpointThread, running] of [
      [undefined, 1],
      [false, 0],
    ] as const) {
      const galet = await startTestGalet(
        sqliteCheckpointThread === undefined ? {} : { sqliteCheckpointThread },
      );
      t.after(async () => {
        await galet.stop();
        await removeDir(galet.dataDir);
      });
      assert.equal(
        await metricSample(galet.baseUrl, 'galet_sqlite_wal_checkpoint_thread_running'),
        running,
      );
      // Writes through the API reach the WAL; the thread (when it runs) copies them.
      for (let i = 0; i < 20; i++) {
        const created = await galet.request('POST', '/api/v1/applications', { name: `app-${i}` });
        assert.equal(created.status, 201);
      }
      if (running === 1) {
        const deadline = Date.now() + 10_000;
        while ((await metricSample(galet.baseUrl, 'galet_sqlite_wal_checkpoints_total')) === 0) {
          assert.ok(Date.now() < deadline, 'a checkpoint on the thread within 10 s');
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        assert.ok(
          (await metricSample(galet.baseUrl, 'galet_sqlite_wal_frames_checkpointed_total')) > 0,
        );
      } else {
        assert.equal(await metricSample(galet.baseUrl, 'galet_sqlite_wal_checkpoints_total'), 0);
      }
    }
  });
});
