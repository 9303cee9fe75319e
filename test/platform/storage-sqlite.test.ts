import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe } from 'node:test';
import { openDatabase } from '../../src/storage/index.js';
import type { TestDatabasePlace } from '../storage/storage-suite.js';
import { platformStorageSuite } from './storage-suite.js';

/** A new data directory per test: a SQLite file costs nothing to create. */
async function newPlace(): Promise<TestDatabasePlace> {
  const dataDir = await mkdtemp(join(tmpdir(), 'galet-platform-'));
  return {
    open: (logger) => openDatabase({ dataDir, logger }),
    dispose: () => rm(dataDir, { recursive: true, force: true }),
  };
}

describe('platform storage on SQLite', () => {
  platformStorageSuite({ fresh: newPlace, pristine: newPlace });
});
