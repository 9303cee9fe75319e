// `npm run bench -- commit`: the SQLite uplink commit (UplinkCommitRepository.commit, the
// network server's hottest write) with 100,000 device sessions, in three modes: the uplink
// counter compare-and-set written with each event (counterWriteBehind false, as PostgreSQL and
// the writer thread do), counters written behind (the SQLite default), flushes included, and
// the same with the WAL checkpoints on a thread of their own (as `galet start` opens its
// database). Each mode commits the same uplinks of random devices, in batches like the group
// commit's, on a fresh copy of the same database; it reports CPU time per uplink (user +
// system, this process, every thread), wall time, and how long each commit held the calling
// thread (p50 / p99 / max). The event body is a real `up` event's size (about 1 KB of JSON).
//
// Settings (environment): GALET_BENCH_DEVICES (100000), GALET_BENCH_UPLINKS (100000),
// GALET_BENCH_BATCH (50 uplinks per commit), GALET_BENCH_ROUNDS (3; the median is reported),
// GALET_BENCH_CHECKPOINT_INTERVAL_MS (20, the checkpoint thread's period, as `galet start`).
import { randomBytes } from 'node:crypto';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createStorage, openDatabase, SecretBox, type UplinkCommit } from '../src/storage/index.js';
import { benchDevice } from './uplink-devices.js';

function setting(name: string, fallback: string): number {
  return Number(process.env[`GALET_BENCH_${name}`] ?? fallback);
}

const secrets = SecretBox.fromKey(randomBytes(32));

/** Devices through the repository; sessions with one multi-row INSERT per 1,000 (fast). */
async function provision(dir: string, devices: number): Promise<string> {
  const database = await openDatabase({ dataDir: dir });
  const storage = createStorage(database, secrets);
  const application = await storage.applications.create({ name: 'bench' });
  for (let start = 0; start < devices; start += 1000) {
    await storage.devices.createMany(
      Array.from({ length: Math.min(1000, devices - start) }, (_, k) => ({
        devEui: benchDevice(start + k).devEui,
        joinEui: '0000000000000000',
        name: `bench-${start + k}`,
        applicationId: application.id,
        macVersion: '1.0.4' as const,
        deviceClass: 'A' as const,
        activation: 'abp' as const,
      })),
    );
  }
  // The commit path reads and writes only the counter columns of a session: the sealed keys
  // are random bytes of the right size here.
  const sqlite = database.sqlite as NonNullable<typeof database.sqlite>;
  const insert = sqlite.prepare(
    `insert into device_sessions (dev_eui, dev_addr, mac_version, keys_enc, f_cnt_up,
       n_f_cnt_down, a_f_cnt_down, rx1_delay_s, rx1_dr_offset, rx2_dr, rx2_frequency_hz,
       created_at, updated_at)
     values (?, ?, '1.0.4', ?, null, 0, 0, 1, 0, 0, 869525000, ?, ?)`,
  );
  const now = new Date().toISOString();
  sqlite.transaction(() => {
    for (let i = 0; i < devices; i++) {
      const device = benchDevice(i);
      insert.run(device.devEui, device.devAddr, randomBytes(78), now, now);
    }
  })();
  await database.close();
  return application.id;
}

function upEventBody(applicationId: string, devEui: string, fCnt: number): object {
  const time = new Date().toISOString();
  return {
    deduplicationId: '5a0d43cf-7f0e-4b8e-a0b2-2f6f3c1d9e11',
    time,
    deviceInfo: {
      applicationId,
      deviceName: `bench-${devEui}`,
      devEui,
      deviceClassEnabled: 'CLASS_A',
      tags: {},
    },
    devAddr: '26000123',
    adr: true,
    dr: 5,
    fCnt,
    fPort: 10,
    confirmed: false,
    rxInfo: [0, 1, 2].map((g) => ({
      gatewayId: `b0b0b0b0000000${g}0`,
      uplinkId: 40_000 + g,
      nsTime: time,
      rssi: -87 - g,
      snr: 7.5 - g,
      channel: 2,
      rfChain: 0,
      context: 'AAECAw==',
      crcStatus: 'CRC_OK',
    })),
    txInfo: {
      frequency: 868_100_000,
      modulation: { lora: { bandwidth: 125_000, spreadingFactor: 7, codeRate: 'CR_4_5' } },
    },
    data: 'AQIDBAUGBwgJCgsM',
  };
}

interface Run {
  cpuUsPerUplink: number;
  wallMs: number;
  flushMs: number;
  /** How long each commit held the calling thread, in ms. */
  commitMs: number[];
}

interface Mode {
  writeBehind: boolean;
  /** WAL checkpoints on their own thread (as `galet start` does) instead of inside commits. */
  checkpointThread: boolean;
}

async function runMode(
  template: string,
  applicationId: string,
  mode: Mode,
  devices: number,
  uplinks: number,
  batch: number,
): Promise<Run> {
  const dir = await mkdtemp(join(tmpdir(), 'galet-bench-commit-'));
  try {
    await cp(template, dir, { recursive: true });
    const database = await openDatabase({
      dataDir: dir,
      walCheckpointThread: mode.checkpointThread,
      walCheckpointIntervalMs: setting('CHECKPOINT_INTERVAL_MS', '20'),
    });
    // No timer flush during the run: the flush is timed on its own at the end.
    const storage = createStorage(database, secrets, {
      counterWriteBehind: mode.writeBehind,
      lastSeenFlushMs: 3_600_000,
    });
    const counters = new Map<number, number>();
    // The same pseudo-random device sequence in every mode and round.
    let seed = 0x2545f491;
    const nextDevice = () => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) % devices;
    };
    const items: UplinkCommit[][] = [];
    for (let done = 0; done < uplinks; done += batch) {
      const chosen = new Set<number>();
      while (chosen.size < Math.min(batch, uplinks - done)) chosen.add(nextDevice());
      items.push(
        [...chosen].map((index) => {
          const devEui = benchDevice(index).devEui;
          const expected = counters.get(index) ?? null;
          const next = expected === null ? 0 : expected + 1;
          counters.set(index, next);
          return {
            devEui,
            expectedFCntUp: expected,
            nextFCntUp: next,
            event: {
              devEui,
              applicationId,
              type: 'up',
              time: new Date().toISOString(),
              body: upEventBody(applicationId, devEui, next),
            },
          };
        }),
      );
    }
    const commitMs: number[] = [];
    const cpuStart = process.cpuUsage();
    const wallStart = performance.now();
    for (const commit of items) {
      const started = performance.now();
      const won = await storage.uplinkCommits.commit(commit);
      commitMs.push(performance.now() - started);
      if (won.some((w) => !w)) throw new Error('a compare-and-set lost: the bench is wrong');
    }
    const flushStart = performance.now();
    await storage.uplinkCommits.flushLastSeen();
    const wallEnd = performance.now();
    const cpu = process.cpuUsage(cpuStart);
    await storage.uplinkCommits.close();
    await database.close();
    return {
      cpuUsPerUplink: (cpu.user + cpu.system) / uplinks,
      wallMs: wallEnd - wallStart,
      flushMs: wallEnd - flushStart,
      commitMs,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function median(values: readonly number[]): number {
  return quantile(values, 0.5);
}

function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))] as number;
}

export async function runCommitBench(): Promise<void> {
  const devices = setting('DEVICES', '100000');
  const uplinks = setting('UPLINKS', '100000');
  const batch = setting('BATCH', '50');
  const rounds = setting('ROUNDS', '3');
  console.log(
    `commit: ${uplinks} uplinks of random devices among ${devices}, ${batch} per commit, SQLite, median of ${rounds} rounds`,
  );
  const template = await mkdtemp(join(tmpdir(), 'galet-bench-commit-template-'));
  try {
    const started = Date.now();
    const applicationId = await provision(template, devices);
    console.log(`  provisioned in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    const results = new Map<string, Run[]>();
    const modes: [string, Mode][] = [
      ['counter with each event', { writeBehind: false, checkpointThread: false }],
      ['counter written behind', { writeBehind: true, checkpointThread: false }],
      ['behind + checkpoint thread (galet start)', { writeBehind: true, checkpointThread: true }],
    ];
    for (let round = 0; round < rounds; round++) {
      for (const [label, mode] of modes) {
        const run = await runMode(template, applicationId, mode, devices, uplinks, batch);
        results.set(label, [...(results.get(label) ?? []), run]);
        console.log(
          `  round ${round + 1} ${label}: ${run.cpuUsPerUplink.toFixed(1)} µs CPU per uplink, commit p99 ${quantile(run.commitMs, 0.99).toFixed(1)} ms`,
        );
      }
    }
    console.table(
      [...results].map(([mode, runs]) => ({
        mode,
        'CPU µs per uplink': median(runs.map((r) => r.cpuUsPerUplink)).toFixed(1),
        'uplinks per CPU-second': Math.round(1e6 / median(runs.map((r) => r.cpuUsPerUplink))),
        'wall ms': Math.round(median(runs.map((r) => r.wallMs))),
        'of which final flush ms': Math.round(median(runs.map((r) => r.flushMs))),
        // Per round, then the median round: how long one commit held the thread.
        'commit p50 ms': median(runs.map((r) => quantile(r.commitMs, 0.5))).toFixed(2),
        'commit p99 ms': median(runs.map((r) => quantile(r.commitMs, 0.99))).toFixed(2),
        'commit max ms': median(runs.map((r) => Math.max(...r.commitMs))).toFixed(1),
      })),
    );
  } finally {
    await rm(template, { recursive: true, force: true });
  }
}
