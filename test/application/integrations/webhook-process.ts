// A minimal Galet process for the kill -9 test: opens the data directory as Galet does (its
// SQLite database and master key) and runs the webhooks (dispatcher and sender) until stopped.
// Usage: node --import tsx webhook-process.ts <dataDir> '<WebhookSettings JSON>'
import { startWebhooks } from '../../../src/application/integrations/webhooks/index.js';
import { createLogger } from '../../../src/logger.js';
import {
  createStorage,
  loadOrCreateMasterKey,
  openDatabase,
  SecretBox,
} from '../../../src/storage/index.js';

const [dataDir, settingsJson] = process.argv.slice(2);
if (dataDir === undefined) throw new Error('usage: webhook-process.ts <dataDir> [settings]');
const logger = createLogger({ level: 'warn', name: 'webhook-process' });
const database = await openDatabase({ dataDir });
const storage = createStorage(
  database,
  SecretBox.fromKey(await loadOrCreateMasterKey({ dataDir })),
);
const webhooks = await startWebhooks({
  storage,
  logger,
  readyUpTo: () => Number.MAX_SAFE_INTEGER,
  onEventsReady: () => () => undefined,
  settings: settingsJson === undefined ? {} : JSON.parse(settingsJson),
  feedPollIntervalMs: 20,
});
process.stdout.write('webhooks running\n');
process.once('SIGTERM', () => {
  void webhooks
    .close()
    .then(() => database.close())
    .then(() => process.exit(0));
});
