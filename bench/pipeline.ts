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
import { rm } from 'node:fs/promises';
import mqtt from 'mqtt';
import {
  createStorage,
  loadOrCreateMasterKey,
  openDatabase,
  SecretBox,
} from '../src/storage/index.js';
import {
  benchLoad,
  buildGalet,
  DEDUP_WINDOW_MS,
  metrics,
  offeredColumns,
  processColumns,
  provisionedTemplate,
  sendUplinks,
  setting,
  startRun,
  waitWhileMoving,
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
  const load = benchLoad('1000,2500,5000');
  const { devices, gateways, seconds } = load;
  const mqttUrl = setting('MQTT_URL', 'mqtt://127.0.0.1:1883');
  console.log(
    `pipeline: ${devices} devices with a JavaScript codec, ${gateways} gateways, 3 copies per uplink, ${seconds} s per rate, SQLite, MQTT at ${mqttUrl}`,
  );
  buildGalet();
  const { template, kept } = await provisionedTemplate(devices, gateways);
  const rows: Array<Record<string, string | number>> = [];
  try {
    for (const [step, rate] of load.rates.entries()) {
      const prefix = `galet-bench-${randomBytes(4).toString('hex')}`;
      const subscriber = await subscribe(mqttUrl, prefix);
      try {
        const run = await startRun({
          template,
          step,
          basePort: 24_000,
          dirPrefix: 'galet-bench-pipeline-',
          prepare: addCodec,
          extraArgs: ['--mqtt-url', mqttUrl, '--mqtt-topic-prefix', prefix],
        });
        try {
          const sent = await sendUplinks(run.udpPort, load, rate);
          // Until every uplink arrived over MQTT, or nothing moved for 5 s.
          const { delivered } = subscriber;
          await waitWhileMoving(
            () => delivered.withObject + delivered.withoutObject,
            () => delivered.withObject >= sent.uplinks,
            5000,
          );
          const m = await metrics(run.httpPort);
          rows.push({
            ...offeredColumns(rate, sent),
            stored: m.get('galet_network_uplinks_accepted_total') ?? 0,
            decoded: m.get('galet_application_stage_decodes_total') ?? 0,
            'on MQTT with object': delivered.withObject,
            'on MQTT without object': delivered.withoutObject,
            'p50 UDP→MQTT beyond window ms': Math.round(quantile(delivered.beyondWindowMs, 0.5)),
            'p99 UDP→MQTT beyond window ms': Math.round(quantile(delivered.beyondWindowMs, 0.99)),
            ...processColumns(m),
          });
          console.table([rows.at(-1)]);
        } finally {
          await run.stop();
        }
      } finally {
        await subscriber.close();
      }
    }
  } finally {
    if (kept === '') await rm(template, { recursive: true, force: true });
  }
  console.log('\nsummary (galet CPU: the server process only, not its codec child process)');
  console.table(rows);
}
