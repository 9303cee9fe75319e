import { describe, it } from 'node:test';
import { postgresTestTarget } from '../helpers/postgres-places.js';
import { postgresReachable, postgresTestHost, skipOrFail } from '../helpers/services.js';
import { platformStorageSuite } from './storage-suite.js';

const reachable = await postgresReachable();

describe('platform storage on PostgreSQL', () => {
  if (!reachable) {
    it('needs a PostgreSQL server', (t) => {
      skipOrFail(t, `PostgreSQL on ${postgresTestHost()} is not reachable`);
    });
    return;
  }

  // The tables these tests write, children first (applications: for integration scopes).
  platformStorageSuite(
    postgresTestTarget([
      'audit_log',
      'oidc_logout_tokens',
      'console_sessions',
      'api_keys',
      'memberships',
      'users',
      'tenants',
      'applications',
    ]),
  );
});
