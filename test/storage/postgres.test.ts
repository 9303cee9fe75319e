import { describe, it } from 'node:test';
import { postgresTestTarget } from '../helpers/postgres-places.js';
import { postgresReachable, postgresTestHost, skipOrFail } from '../helpers/services.js';
import { storageSuite } from './storage-suite.js';

const reachable = await postgresReachable();

describe('storage on PostgreSQL', () => {
  if (!reachable) {
    it('needs a PostgreSQL server', (t) => {
      skipOrFail(t, `PostgreSQL on ${postgresTestHost()} is not reachable`);
    });
    return;
  }

  // Every table, children first.
  storageSuite(
    postgresTestTarget([
      'webhook_deliveries',
      'webhooks',
      'consumer_cursors',
      'measurements',
      'events',
      'downlink_queue',
      'dev_nonces',
      'device_sessions',
      'devices',
      'device_profiles',
      'gateways',
      'applications',
    ]),
  );
});
