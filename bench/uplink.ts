// `npm run bench -- uplink`: a UDP load generator (its own process) drives G gateways x D devices
// against `galet start` (its own process, SQLite, on loopback), each uplink heard by 3 gateways,
// with 100,000 registered devices. For each offered rate: uplinks sent and stored (loss), latency
// from the last copy's arrival and beyond the dedup window to the stored event, memory and CPU.
//
// Settings (environment): GALET_BENCH_DEVICES (100000), GALET_BENCH_GATEWAYS (10),
// GALET_BENCH_RATES ("2500,5000,10000,15000" uplinks/s), GALET_BENCH_SECONDS (10 per rate),
// GALET_BENCH_TEMPLATE (a directory that keeps the provisioned devices for the next runs).
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { cp, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import {
  createStorage,
  loadOrCreateMasterKey,
  openDatabase,
  SecretBox,
} from '../src/storage/index.js';
import { benchDevice, benchGatewayId } from './uplink-devices.js';

export const ROOT = new URL('..', import.meta.url).pathname;
export const TOKEN = 'bench-admin-token-0123456789';
export const DEDUP_WINDOW_MS = 200;

export function setting(name: string, fallback: string): string {
  return process.env[`GALET_BENCH_${name}`] ?? fallback;
}

async function provision(dir: string, devices: number, gateways: number): Promise<void> {
  const started = Date.now();
  const env = { ...process.env, GALET_MASTER_KEY: undefined };
  const secrets = SecretBox.fromKey(await loadOrCreateMasterKey({ dataDir: dir, env }));
  const database = await openDatabase({ dataDir: dir });
  const storage = createStorage(database, secrets);
  try {
    const application = await storage.applications.create({ name: 'bench' });
    for (let g = 0; g < gateways; g++) {
      await storage.gateways.create({ gatewayId: benchGatewayId(g), name: `bench-gw-${g}` });
    }
    for (let i = 0; i < devices; i++) {
      const device = benchDevice(i);
      await storage.devices.create({
        devEui: device.devEui,
        joinEui: '0000000000000000',
        name: `bench-${i}`,
        applicationId: application.id,
        macVersion: '1.0.4',
        deviceClass: 'A',
        activation: 'abp',
      });
      await storage.deviceSessions.upsert({
        devEui: device.devEui,
        devAddr: device.devAddr,
        macVersion: '1.0.4',
        keys: { lorawan: '1.0', nwkSKey: device.nwkSKey, appSKey: device.appSKey },
        fCntUp: null,
        nFCntDown: 0,
        aFCntDown: 0,
        rx1DelaySeconds: 1,
        rx1DrOffset: 0,
        rx2Dr: 0,
        rx2FrequencyHz: 869_525_000,
      });
      if ((i + 1) % 20_000 === 0) console.log(`  provisioned ${i + 1}/${devices} devices`);
    }
  } finally {
    await database.close();
  }
  console.log(`  provisioning took ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

export async function metrics(httpPort: number): Promise<Map<string, number>> {
  const response = await fetch(`http://127.0.0.1:${httpPort}/api/v1/metrics`, {
    headers: { authorization: `Bearer ${TOKEN}` },
  });
  const values = new Map<string, number>();
  for (const line of (await response.text()).split('\n')) {
    const match = /^([a-z0-9_]+)(?:\{[^}]*\})? ([0-9.e+-]+)$/.exec(line);
    if (match) values.set(match[1]!, (values.get(match[1]!) ?? 0) + Number(match[2]));
  }
  return values;
}

/** GALET_BENCH_SERVER_LOG=<file>: the server's standard output (e.g. with --trace-gc) goes there. */
function serverLog(): 'ignore' | number {
  const file = setting('SERVER_LOG', '');
  return file === '' ? 'ignore' : openSync(file, 'a');
}

export function freePort(base: number, offset: number): number {
  return base + (process.pid % 500) * 4 + offset;
}

export async function startGalet(
  dataDir: string,
  udpPort: number,
  httpPort: number,
  extraArgs: readonly string[] = [],
): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    [
      ...setting('NODE_FLAGS', '')
        .split(' ')
        .filter((flag) => flag !== ''),
      ...(setting('PROFILE', '') === ''
        ? []
        : ['--cpu-prof', '--cpu-prof-dir', setting('PROFILE', '')]),
      join(ROOT, 'dist/cli/main.js'),
      'start',
      '--data-dir',
      dataDir,
      '--host',
      '127.0.0.1',
      '--udp-port',
      String(udpPort),
      '--http-port',
      String(httpPort),
      '--dedup-window-ms',
      String(DEDUP_WINDOW_MS),
      ...extraArgs,
    ],
    {
      env: { ...process.env, GALET_ADMIN_TOKEN: TOKEN, GALET_LOG_LEVEL: 'warn' },
      stdio: ['ignore', serverLog(), 'inherit'],
    },
  );
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    try {
      const response = await fetch(`http://127.0.0.1:${httpPort}/api/v1/health`);
      if (response.ok) return child;
    } catch {
      // not up yet
    }
    if (child.exitCode !== null) throw new Error(`galet exited with ${child.exitCode}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  child.kill('SIGKILL');
  throw new Error('galet did not start within 60 s');
}

export async function runGenerator(
  args: object,
): Promise<{ uplinks: number; achievedRate: number; prepareMs: number }> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(ROOT, 'bench/uplink-load-generator.ts'), JSON.stringify(args)],
    {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  let prepareMs = 0;
  for await (const line of createInterface({ input: child.stdout! })) {
    const message = JSON.parse(line) as { phase: string; [key: string]: unknown };
    if (message.phase === 'prepared') prepareMs = message['prepareMs'] as number;
    if (message.phase === 'error') throw new Error(`load generator: ${String(message['message'])}`);
    if (message.phase === 'sent') {
      return {
        uplinks: message['uplinks'] as number,
        achievedRate: message['achievedRate'] as number,
        prepareMs,
      };
    }
  }
  throw new Error('load generator ended without a result');
}

/**
 * The provisioned data directory the runs copy: GALET_BENCH_TEMPLATE keeps it for the next runs
 * (same devices and gateways settings), since provisioning 100,000 devices takes minutes.
 */
export async function provisionedTemplate(
  devices: number,
  gateways: number,
): Promise<{ template: string; kept: string }> {
  const kept = setting('TEMPLATE', '');
  const template = kept === '' ? await mkdtemp(join(tmpdir(), 'galet-bench-template-')) : kept;
  if (kept !== '' && existsSync(join(kept, 'provisioned.json'))) {
    const recorded = JSON.parse(readFileSync(join(kept, 'provisioned.json'), 'utf8'));
    if (recorded.devices !== devices || recorded.gateways !== gateways) {
      throw new Error(
        `${kept} holds ${recorded.devices} devices and ${recorded.gateways} gateways`,
      );
    }
    console.log(`reusing the provisioned data directory ${template}`);
  } else {
    console.log(`provisioning ${devices} ABP devices and ${gateways} gateways in ${template}`);
    await mkdir(template, { recursive: true });
    await provision(template, devices, gateways);
    writeFileSync(join(template, 'provisioned.json'), JSON.stringify({ devices, gateways }));
  }

  return { template, kept };
}

/** The runs start `dist/cli/main.js`: built first unless GALET_BENCH_SKIP_BUILD=1. */
export function buildGalet(): void {
  if (setting('SKIP_BUILD', '0') === '1') return;
  const build = spawnSync('npm', ['run', 'build', '--silent'], { cwd: ROOT, stdio: 'inherit' });
  if (build.status !== 0) throw new Error('build failed');
}

/** The load of every run: devices and gateways provisioned, rates offered, seconds per rate. */
export interface BenchLoad {
  devices: number;
  gateways: number;
  rates: number[];
  seconds: number;
}

/** GALET_BENCH_DEVICES, _GATEWAYS, _RATES (`defaultRates` without it) and _SECONDS. */
export function benchLoad(defaultRates: string): BenchLoad {
  return {
    devices: Number(setting('DEVICES', '100000')),
    gateways: Number(setting('GATEWAYS', '10')),
    rates: setting('RATES', defaultRates).split(',').map(Number),
    seconds: Number(setting('SECONDS', '10')),
  };
}

export type SentUplinks = Awaited<ReturnType<typeof runGenerator>>;

/** One rate's load from the generator process: every uplink heard by 3 gateways. */
export function sendUplinks(udpPort: number, load: BenchLoad, rate: number): Promise<SentUplinks> {
  return runGenerator({
    port: udpPort,
    gateways: load.gateways,
    copies: 3,
    deviceCount: load.devices,
    ratePerSecond: rate,
    durationSeconds: load.seconds,
    fCntStart: 0,
  });
}

export interface BenchRun {
  udpPort: number;
  httpPort: number;
  /** Stops the server and removes its data directory. */
  stop(): Promise<void>;
}

/**
 * One rate's server: `galet start` on a copy of the provisioned template (`prepare` may change
 * the copy first), on ports from `basePort` and the run's `step`, with `extraArgs` added.
 */
export async function startRun(run: {
  template: string;
  step: number;
  basePort: number;
  dirPrefix: string;
  prepare?: (dataDir: string) => Promise<void>;
  extraArgs?: readonly string[];
}): Promise<BenchRun> {
  const dataDir = await mkdtemp(join(tmpdir(), run.dirPrefix));
  const removeDataDir = () => rm(dataDir, { recursive: true, force: true });
  try {
    await cp(run.template, dataDir, { recursive: true });
    await run.prepare?.(dataDir);
    const udpPort = freePort(run.basePort, run.step * 2);
    const httpPort = freePort(run.basePort, run.step * 2 + 1);
    const galet = await startGalet(dataDir, udpPort, httpPort, run.extraArgs);
    return {
      udpPort,
      httpPort,
      async stop() {
        galet.kill('SIGTERM');
        await new Promise((resolve) => galet.once('exit', resolve));
        await removeDataDir();
      },
    };
  } catch (error) {
    await removeDataDir();
    throw error;
  }
}

/**
 * Reads `progress` every 250 ms until `done` or until it stayed the same for `quietMs`; returns
 * its last value.
 */
export async function waitWhileMoving(
  progress: () => number | Promise<number>,
  done: (value: number) => boolean,
  quietMs: number,
): Promise<number> {
  let last = Number.NaN;
  let movedAt = Date.now();
  for (;;) {
    const value = await progress();
    if (value !== last) movedAt = Date.now();
    last = value;
    if (done(value) || Date.now() - movedAt >= quietMs) return value;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** The first columns of a result row: what was offered and what the generator sent. */
export function offeredColumns(rate: number, sent: SentUplinks): Record<string, number> {
  return { 'offered/s': rate, 'sent/s': Math.round(sent.achievedRate), sent: sent.uplinks };
}

/** The server process's memory and CPU time, from its metrics, as result-row columns. */
export function processColumns(m: Map<string, number>): Record<string, number> {
  return {
    'RSS MiB': Math.round((m.get('galet_process_resident_memory_bytes') ?? 0) / 2 ** 20),
    'galet CPU s': round(m.get('galet_process_cpu_seconds_total')),
  };
}

export async function runUplinkBench(): Promise<void> {
  const load = benchLoad('2500,5000,10000,15000');
  const { devices, gateways, seconds } = load;
  console.log(
    `uplink: ${devices} devices, ${gateways} gateways, 3 copies per uplink, ${seconds} s per rate, SQLite`,
  );
  buildGalet();

  const { template, kept } = await provisionedTemplate(devices, gateways);

  const rows: Array<Record<string, string | number>> = [];
  for (const [step, rate] of load.rates.entries()) {
    const run = await startRun({ template, step, basePort: 20_000, dirPrefix: 'galet-bench-run-' });
    const { udpPort, httpPort } = run;
    try {
      const sent = await sendUplinks(udpPort, load, rate);
      // Wait until every accepted uplink is stored, or nothing moves for 3 s.
      const accepted = await waitWhileMoving(
        async () => (await metrics(httpPort)).get('galet_network_uplinks_accepted_total') ?? 0,
        (stored) => stored >= sent.uplinks,
        3000,
      );
      const m = await metrics(httpPort);
      rows.push({
        ...offeredColumns(rate, sent),
        stored: accepted,
        lost: sent.uplinks - accepted,
        'p50 after last copy ms': round(
          m.get('galet_network_uplink_latency_since_last_copy_p50_ms'),
        ),
        'p99 after last copy ms': round(
          m.get('galet_network_uplink_latency_since_last_copy_p99_ms'),
        ),
        'p50 beyond window ms': round(m.get('galet_network_uplink_latency_beyond_window_p50_ms')),
        'p99 beyond window ms': round(m.get('galet_network_uplink_latency_beyond_window_p99_ms')),
        'max beyond window ms': round(m.get('galet_network_uplink_latency_beyond_window_max_ms')),
        ...processColumns(m),
        'datagrams lost':
          sent.uplinks * 3 + gateways - (m.get('galet_semtech_udp_datagrams_received_total') ?? 0),
        'dropped by NS': [
          'uplinks_mic_failed',
          'uplinks_f_cnt_race',
          'uplinks_replayed',
          'uplinks_f_cnt_gap_too_large',
          'uplinks_unknown_dev_addr',
          'uplinks_from_unknown_gateway',
        ]
          .map((name) => m.get(`galet_network_${name}_total`) ?? 0)
          .reduce((a, b) => a + b, 0),
        malformed:
          (m.get('galet_semtech_udp_malformed_datagrams_total') ?? 0) +
          (m.get('galet_network_uplinks_malformed_total') ?? 0),
      });
    } finally {
      await run.stop();
    }
    console.table([rows.at(-1)]);
  }
  if (kept === '') await rm(template, { recursive: true, force: true });
  console.log(
    '\nsummary (dedup window 200 ms; goal: 10,000 uplinks/s with no loss and p99 < 50 ms beyond the window)',
  );
  console.table(rows);
  const passing = rows.filter(
    (row) => row['lost'] === 0 && Number(row['p99 beyond window ms']) < 50,
  );
  const best = passing.at(-1);
  console.log(
    best === undefined
      ? 'no rate met the goal'
      : `highest offered rate with zero loss and p99 < 50 ms beyond the window: ${best['offered/s']} uplinks/s`,
  );
}

function round(value: number | undefined): number {
  return Math.round((value ?? 0) * 10) / 10;
}
