// `npm run bench -- pipeline`: uplinks per second from UDP to a delivered MQTT event, with a
// vendor-style JavaScript codec on every device and storage on. The `uplink` suite's harness
// (its own load generator process, 100,000 ABP devices, 3 gateway copies per uplink) drives
// `galet start` (SQLite) configured with the MQTT integration towards the broker at
// GALET_BENCH_MQTT_URL (default mqtt://127.0.0.1:1883); every device's profile has the codec, so
// each uplink is stored, decoded by the application stage (in the codec process), recorded as
// measurements and published on `<prefix>/{applicationId}/device/{devEui}/event/up`. A
// subscriber in this process counts the `up` events that arrive with their decoded `object`,
// and their latency from the first gateway copy's reception (`rxInfo[].nsTime`) to arrival.
//
// Settings (environment): those of `uplink` (GALET_BENCH_DEVICES, _GATEWAYS, _SECONDS,
// _TEMPLATE), GALET_BENCH_RATES ("1000,2500,5000"), GALET_BENCH_MQTT_URL.
import { randomBytes } from 'node:crypto';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import {
  createStorage,
  loadOrCreateMasterKey,
  openDatabase,
  SecretBox,
} from '../src/storage/index.js';
import {
  buildGalet,
  DEDUP_WINDOW_MS,
  freePort,
  metrics,
  provisionedTemplate,
  runGenerator,
  setting,
  startGalet,
} from './uplink.js';

/** The bench devices send 12 bytes on FPort 2, the first four an uplink counter. */
const CODEC = `
function decodeUplink(input) {
  var b = input.bytes;
  if (b.length !== 12) return { errors: ['expected 12 bytes, got ' + b.length] };
  var view = new DataView(new Uint8Array(b).buffer);
  var flags = b[10];
  return {
    data: {
      counter: view.getUint32(0),
      temperature: 20 + view.getInt16(4) / 100,
      humidity: 40 + b[6] / 2,
      batteryVoltage: 3.6 - b[7] / 100,
      waterLevelCm: view.getUint16(8),
      alarms: { leak: (flags & 1) === 1, tamper: (flags & 2) === 2 },
    },
    warnings: [],
    errors: [],
  };
}`;

interface Delivered {
  withObject: number;
  withoutObject: number;
  /** From the first copy's reception to arrival here, minus the deduplication window. */
  beyondWindowMs: number[];
}

/** Gives every device a profile with the bench codec (on the copy the run starts from). */
async function addCodec(dataDir: string): Promise<void> {
  const env = { ...process.env, GALET_MASTER_KEY: undefined };
  const secrets = SecretBox.fromKey(await loadOrCreateMasterKey({ dataDir, env }));
  const database = await openDatabase({ dataDir });
  try {
    const storage = createStorage(database, secrets);
    const profile = await storage.deviceProfiles.create({
      name: 'bench water meter',
      codec: { type: 'javascript', source: CODEC },
    });
    await database.db.updateTable('devices').set({ device_profile_id: profile.id }).execute();
  } finally {
    await database.close();
  }
}

async function subscribe(
  url: string,
  prefix: string,
): Promise<{
  delivered: Delivered;
  close(): Promise<void>;
}> {
  const delivered: Delivered = { withObject: 0, withoutObject: 0, beyondWindowMs: [] };
  const client = await mqtt.connectAsync(url, { clientId: `galet-bench-${prefix}` });
  client.on('message', (_topic, payload) => {
    const arrivedAt = Date.now();
    const event = JSON.parse(payload.toString()) as {
      object?: unknown;
      rxInfo?: { nsTime?: string }[];
    };
    if (event.object === undefined) {
      delivered.withoutObject += 1;
      return;
    }
    delivered.withObject += 1;
    const received = Math.min(
      ...(event.rxInfo ?? []).map((rx) => Date.parse(rx.nsTime ?? '')).filter(Number.isFinite),
    );
    if (Number.isFinite(received)) {
      delivered.beyondWindowMs.push(arrivedAt - received - DEDUP_WINDOW_MS);
    }
  });
  await client.subscribeAsync(`${prefix}/+/device/+/event/up`, { qos: 1 });
  return { delivered, close: () => client.endAsync() };
}

function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}

export async function runPipelineBench(): Promise<void> {
  const devices = Number(setting('DEVICES', '100000'));
  const gateways = Number(setting('GATEWAYS', '10'));
  const rates = setting('RATES', '1000,2500,5000').split(',').map(Number);
  const seconds = Number(setting('SECONDS', '10'));
  const mqttUrl = setting('MQTT_URL', 'mqtt://127.0.0.1:1883');
  console.log(
    `pipeline: ${devices} devices with a JavaScript codec, ${gateways} gateways, 3 copies per uplink, ${seconds} s per rate, SQLite, MQTT at ${mqttUrl}`,
  );
  buildGalet();
  const { template, kept } = await provisionedTemplate(devices, gateways);
  const rows: Array<Record<string, string | number>> = [];
  try {
    for (const [step, rate] of rates.entries()) {
      const dataDir = await mkdtemp(join(tmpdir(), 'galet-bench-pipeline-'));
      await cp(template, dataDir, { recursive: true });
      await addCodec(dataDir);
      const prefix = `galet-bench-${randomBytes(4).toString('hex')}`;
      const subscriber = await subscribe(mqttUrl, prefix);
      const udpPort = freePort(24_000, step * 2);
      const httpPort = freePort(24_000, step * 2 + 1);
      const galet = await startGalet(dataDir, udpPort, httpPort, [
        '--mqtt-url',
        mqttUrl,
        '--mqtt-topic-prefix',
        prefix,
      ]);
      try {
        const sent = await runGenerator({
          port: udpPort,
          gateways,
          copies: 3,
          deviceCount: devices,
          ratePerSecond: rate,
          durationSeconds: seconds,
          fCntStart: 0,
        });
        // Until every uplink arrived over MQTT, or nothing moved for 5 s.
        const { delivered } = subscriber;
        let arrived = -1;
        let still = Date.now();
        while (Date.now() - still < 5000 && delivered.withObject < sent.uplinks) {
          const now = delivered.withObject + delivered.withoutObject;
          if (now !== arrived) still = Date.now();
          arrived = now;
          await new Promise((resolve) => setTimeout(resolve, 250));
        }
        const m = await metrics(httpPort);
        rows.push({
          'offered/s': rate,
          'sent/s': Math.round(sent.achievedRate),
          sent: sent.uplinks,
          stored: m.get('galet_network_uplinks_accepted_total') ?? 0,
          decoded: m.get('galet_application_stage_decodes_total') ?? 0,
          'on MQTT with object': delivered.withObject,
          'on MQTT without object': delivered.withoutObject,
          'p50 UDP→MQTT beyond window ms': Math.round(quantile(delivered.beyondWindowMs, 0.5)),
          'p99 UDP→MQTT beyond window ms': Math.round(quantile(delivered.beyondWindowMs, 0.99)),
          'RSS MiB': Math.round((m.get('galet_process_resident_memory_bytes') ?? 0) / 2 ** 20),
          'galet CPU s': Math.round((m.get('galet_process_cpu_seconds_total') ?? 0) * 10) / 10,
        });
        console.table([rows.at(-1)]);
      } finally {
        galet.kill('SIGTERM');
        await new Promise((resolve) => galet.once('exit', resolve));
        await subscriber.close();
        await rm(dataDir, { recursive: true, force: true });
      }
    }
  } finally {
    if (kept === '') await rm(template, { recursive: true, force: true });
  }
  console.log('\nsummary (galet CPU: the server process only, not its codec child process)');
  console.table(rows);
}
