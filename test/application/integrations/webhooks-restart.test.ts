// kill -9 during deliveries: the webhooks run in a real child process on a data directory; it
// is killed with SIGKILL while requests are in flight, started again, and every stored event
// reaches the receiver, in order per device, duplicated at most for the requests in flight.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  createStorage,
  loadOrCreateMasterKey,
  openDatabase,
  SecretBox,
} from '../../../src/storage/index.js';
import { WebhookReceiver, waitUntil } from './webhook-receiver.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const SCRIPT = 'test/application/integrations/webhook-process.ts';
const SETTINGS = {
  timeoutMs: 1000,
  leaseMarginMs: 200,
  retryInitialMs: 50,
  retryMaxMs: 200,
  pollIntervalMs: 20,
  concurrency: 4,
};

async function startProcess(dataDir: string): Promise<{ child: ChildProcess; output: string[] }> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', SCRIPT, dataDir, JSON.stringify(SETTINGS)],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const output: string[] = [];
  child.stdout!.setEncoding('utf8').on('data', (text: string) => output.push(text));
  child.stderr!.setEncoding('utf8').on('data', (text: string) => output.push(text));
  await waitUntil(
    () => {
      if (child.exitCode !== null) throw new Error(`exited ${child.exitCode}: ${output.join('')}`);
      return output.join('').includes('webhooks running');
    },
    'the webhook process starts',
    20_000,
  );
  return { child, output };
}

describe('webhooks across a kill -9', () => {
  it('delivers every stored event after a SIGKILL mid-delivery and a restart', async (t) => {
    const dataDir = await mkdtemp(join(tmpdir(), 'galet-webhook-kill-'));
    const database = await openDatabase({ dataDir });
    const storage = createStorage(
      database,
      SecretBox.fromKey(await loadOrCreateMasterKey({ dataDir })),
    );
    const receiver = new WebhookReceiver();
    await receiver.listen();
    let child: ChildProcess | undefined;
    t.after(async () => {
      if (child !== undefined && child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child!.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
      await receiver.close();
      await database.close();
      await rm(dataDir, { recursive: true, force: true });
    });

    const application = await storage.applications.create({ name: 'water' });
    const webhook = await storage.webhooks.create({
      applicationId: application.id,
      url: receiver.url,
      secret: 'kill-test-secret-0123456789',
    });
    // Before the kill: the first 12 requests are answered, then none is (they stay in flight).
    let answered = 0;
    receiver.answer = () => (answered++ < 12 ? 200 : 'hang');
    const devices = [
      '0000000000000f01',
      '0000000000000f02',
      '0000000000000f03',
      '0000000000000f04',
    ];
    const expected = new Map<string, number[]>(devices.map((devEui) => [devEui, []]));
    for (let fCnt = 0; fCnt < 10; fCnt++) {
      for (const devEui of devices) {
        const id = await storage.events.append({
          devEui,
          applicationId: application.id,
          type: 'up',
          time: new Date().toISOString(),
          body: { deviceInfo: { devEui }, fCnt },
        });
        expected.get(devEui)!.push(id);
      }
    }

    const first = await startProcess(dataDir);
    child = first.child;
    await waitUntil(() => receiver.received.length >= 16, 'requests in flight', 20_000);
    const killed = new Promise<NodeJS.Signals | null>((resolve) =>
      first.child.once('exit', (_code, signal) => resolve(signal)),
    );
    first.child.kill('SIGKILL');
    assert.equal(await killed, 'SIGKILL');
    const beforeRestart = receiver.received.length;
    const delivered = await storage.webhooks.listDeliveries(webhook.id, { status: 'delivered' });
    assert.ok(delivered.length < 40, `the kill came mid-delivery (${delivered.length} delivered)`);

    receiver.answer = () => 200;
    const second = await startProcess(dataDir);
    child = second.child;
    await waitUntil(
      async () =>
        (await storage.webhooks.listDeliveries(webhook.id, { status: 'delivered' })).length === 40,
      'every delivery after the restart',
      30_000,
    );

    const byDevice = receiver.idsByDevice();
    let duplicates = 0;
    for (const [devEui, ids] of expected) {
      const received = byDevice.get(devEui) ?? [];
      assert.deepEqual(
        received,
        [...received].sort((a, b) => a - b),
        `${devEui}: in order`,
      );
      assert.deepEqual([...new Set(received)], ids, `${devEui}: every event`);
      duplicates += received.length - new Set(received).size;
    }
    // Only requests that were in flight (unanswered or unrecorded) at the kill come again.
    assert.ok(duplicates >= 1, 'the hanging requests were sent again');
    assert.ok(duplicates <= SETTINGS.concurrency, `${duplicates} duplicates`);
    assert.ok(receiver.received.length > beforeRestart);
  });
});
