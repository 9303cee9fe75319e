import { describe, it } from 'node:test';
import { postgresTestTarget } from '../helpers/postgres-places.js';
import { postgresReachable, postgresTestHost, skipOrFail } from '../helpers/services.js';
import { tenancyStorageSuite } from './tenancy-suite.js';

const reachable = await postgresReachable();

describe('tenancy storage on PostgreSQL', () => {
  if (!reachable) {
    it('needs a PostgreSQL server', (t) => {
      skipOrFail(t, `PostgreSQL on ${postgresTestHost()} is not reachable`);
    });
    return;
  }

  // One database for the suite, emptied of every tenant-owned table (children first; what
  // refers to them goes by cascade) before each test.
  tenancyStorageSuite(
    postgresTestTarget(['devices', 'device_profiles', 'gateways', 'applications', 'tenants']),
  );
});
