// The audit log's only delete: a tenant's entries past its settings.retention.auditDays, by the
// audit retention job, on SQLite and PostgreSQL. Other tenants' and the operator's stay.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { silentLogger } from '../../src/logger.js';
import { AuditRetentionJob } from '../../src/server/audit-retention.js';
import { createStorage, SecretBox, type Storage } from '../../src/storage/index.js';
import { testEngines } from '../helpers/test-engines.js';

const NOW = new Date('2026-11-30T12:00:00.000Z');
const daysAgo = (days: number) => new Date(NOW.getTime() - days * 86_400_000).toISOString();

async function entry(storage: Storage, tenantId: string | null, time: string): Promise<number> {
  const appended = await storage.auditLog.append({
    time,
    actor: { type: 'admin-token' },
    action: 'device.create',
    objectType: 'device',
    tenantId,
    outcome: 'success',
  });
  return appended.id;
}

for (const engine of testEngines('galet-audit-retention')) {
  describe(`audit retention on ${engine.name}`, () => {
    it("purges a tenant's entries past its auditDays, in batches; keeps the others", async (t) => {
      const database = await engine.open(t);
      if (database === undefined) return;
      const storage = createStorage(database, SecretBox.fromKey(randomBytes(32)));
      const commune = await storage.tenants.create({
        name: 'Saint-Galmier',
        settings: { retention: { auditDays: 30 } },
      });
      const forever = await storage.tenants.create({ name: 'Montbrison' });
      const old = [];
      for (const days of [400, 90, 45, 31])
        old.push(await entry(storage, commune.id, daysAgo(days)));
      const kept = [
        await entry(storage, commune.id, daysAgo(29)),
        await entry(storage, commune.id, daysAgo(0)),
        await entry(storage, forever.id, daysAgo(400)),
        await entry(storage, null, daysAgo(400)),
      ];
      const job = new AuditRetentionJob(storage, silentLogger, { batchRows: 2, now: () => NOW });
      assert.equal(await job.runOnce(), old.length);
      const left = (await storage.auditLog.list({ limit: 100 }))
        .map((e) => e.id)
        .sort((a, b) => a - b);
      assert.deepEqual(
        left,
        kept.sort((a, b) => a - b),
      );
      assert.deepEqual(job.counters, { runs: 1, entriesPurged: 4, failures: 0 });
      // Nothing more to do; a tenant that sets a retention later is purged on the next pass.
      assert.equal(await job.runOnce(), 0);
      await storage.tenants.update(forever.id, { settings: { retention: { auditDays: 365 } } });
      assert.equal(await job.runOnce(), 1);
      await job.close();
    });

    it('refuses a bad batch size, and a failing pass is counted, not thrown', async (t) => {
      const database = await engine.open(t);
      if (database === undefined) return;
      const storage = createStorage(database, SecretBox.fromKey(randomBytes(32)));
      await assert.rejects(
        storage.auditLog.purgeBefore('x', daysAgo(1), 0),
        (error: Error & { code?: string }) => error.code === 'INVALID_INPUT',
      );
      await storage.tenants.create({ name: 'Feurs', settings: { retention: { auditDays: 1 } } });
      const job = new AuditRetentionJob(storage, silentLogger, { batchRows: 0, now: () => NOW });
      assert.equal(await job.runOnce(), undefined);
      assert.equal(job.counters.failures, 1);
    });
  });
}
