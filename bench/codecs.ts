// `npm run bench -- codecs`: frames per second for a realistic vendor-style codec (TS013
// decodeUplink, 20 lines of bit twiddling over a 15-byte payload) through the sandbox: single
// calls, batches (decodeMany, sync and async), batches through the codec child process, and the
// same codec run unsandboxed as the floor. Tasks take turns in rounds; the median is reported,
// with frames per CPU-second of this process next to it (a fairer "per core" figure on a busy
// machine; for the child process, only the parent's share is counted).
import { cpus } from 'node:os';
import {
  CodecEngine,
  CodecProcess,
  type DecodeOutcome,
  type UplinkInput,
} from '../src/application/codecs/index.js';

const CODEC = `
function decodeUplink(input) {
  var b = input.bytes;
  if (b.length !== 15) return { errors: ['expected 15 bytes, got ' + b.length] };
  var data = {};
  data.battery = ((b[0] << 8) | b[1]) / 1000;
  var t = (b[2] << 8) | b[3];
  if (t & 0x8000) t -= 0x10000;
  data.temperature = t / 10;
  data.humidity = b[4] / 2;
  data.pressure = ((b[5] << 16) | (b[6] << 8) | b[7]) / 100;
  data.flags = { open: !!(b[8] & 1), alarm: !!(b[8] & 2), lowBattery: !!(b[8] & 4) };
  data.counter = ((b[9] << 24) >>> 0) + ((b[10] << 16) | (b[11] << 8) | b[12]);
  data.co2 = (b[13] << 8) | b[14];
  var warnings = [];
  if (data.co2 > 2000) warnings.push('CO2 above 2000 ppm');
  return { data: data, warnings: warnings, errors: [] };
}`;

const PAYLOAD = Uint8Array.from([
  0x0c, 0xe4, 0x00, 0xeb, 0x5a, 0x01, 0x8b, 0x2c, 0x05, 0x00, 0x01, 0x02, 0x03, 0x01, 0xc2,
]);
const BATCH = 256;
const ROUNDS = 7;
const ROUND_MS = 400;

interface Task {
  label: string;
  /** Runs frames for about `ms`; resolves to the number of frames done. */
  run(ms: number): Promise<number>;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function check(outcome: DecodeOutcome | undefined): void {
  if (outcome === undefined || !outcome.ok) {
    throw new Error(`the bench codec failed: ${JSON.stringify(outcome)}`);
  }
}

function syncTask(label: string, perCall: number, call: () => void): Task {
  return {
    label,
    run: (ms) => {
      let frames = 0;
      const until = performance.now() + ms;
      while (performance.now() < until) {
        for (let i = 0; i < 16; i++) call();
        frames += 16 * perCall;
      }
      return Promise.resolve(frames);
    },
  };
}

function asyncTask(label: string, perCall: number, call: () => Promise<unknown>): Task {
  return {
    label,
    run: async (ms) => {
      let frames = 0;
      const until = performance.now() + ms;
      while (performance.now() < until) {
        await call();
        frames += perCall;
      }
      return frames;
    },
  };
}

export async function runCodecsBench(): Promise<void> {
  console.log(
    `codecs: a TS013 vendor-style codec on a ${PAYLOAD.length}-byte payload; batches of ${BATCH}`,
  );
  console.log(
    `node ${process.version}, ${cpus()[0]?.model ?? 'unknown CPU'} x ${cpus().length}; ` +
      `${ROUNDS} rounds of ${ROUND_MS} ms per task, median reported`,
  );
  const engine = new CodecEngine();
  const host = await CodecProcess.start();
  try {
    const codec = engine.load(CODEC);
    const remote = await host.load(CODEC);
    const input: UplinkInput = { bytes: PAYLOAD, fPort: 2, recvTime: Date.now() };
    const frames = new Array<UplinkInput>(BATCH).fill(input);
    check(codec.decodeUplink(input));
    check(codec.decodeMany(frames)[BATCH - 1]);
    check((await remote.decodeMany(frames))[BATCH - 1]);
    const unsandboxed = new Function(`${CODEC}; return decodeUplink;`)() as (
      input: unknown,
    ) => unknown;

    const tasks: Task[] = [
      syncTask('sandbox, single calls (decodeUplink)', 1, () => codec.decodeUplink(input)),
      syncTask(`sandbox, batches (decodeMany, ${BATCH})`, BATCH, () => codec.decodeMany(frames)),
      asyncTask(`sandbox, async batches (decodeManyAsync, ${BATCH})`, BATCH, () =>
        codec.decodeManyAsync(frames),
      ),
      asyncTask(`codec process, batches (${BATCH}, 4 in flight)`, 4 * BATCH, () =>
        Promise.all([1, 2, 3, 4].map(() => remote.decodeMany(frames))),
      ),
      syncTask('floor: unsandboxed, same output work (JSON round trip)', 1, () =>
        JSON.parse(
          JSON.stringify(
            unsandboxed({ bytes: Array.from(PAYLOAD), fPort: 2, recvTime: new Date() }),
          ),
        ),
      ),
      syncTask('floor: unsandboxed, bare call', 1, () =>
        unsandboxed({ bytes: Array.from(PAYLOAD), fPort: 2, recvTime: new Date() }),
      ),
    ];
    for (const task of tasks) await task.run(500); // warm-up
    const wall = tasks.map(() => [] as number[]);
    const cpu = tasks.map(() => [] as number[]);
    for (let round = 0; round < ROUNDS; round++) {
      for (const [i, task] of tasks.entries()) {
        const startedCpu = process.cpuUsage();
        const started = performance.now();
        const done = await task.run(ROUND_MS);
        const seconds = (performance.now() - started) / 1000;
        const used = process.cpuUsage(startedCpu);
        wall[i]!.push(done / seconds);
        cpu[i]!.push(done / ((used.user + used.system) / 1e6));
      }
    }
    const format = (n: number) => Math.round(n).toLocaleString('en-US');
    console.table(
      tasks.map((task, i) => ({
        task: task.label,
        'frames/s (median)': format(median(wall[i]!)),
        'µs/frame': (1e6 / median(wall[i]!)).toFixed(2),
        'frames per CPU-second': format(median(cpu[i]!)),
        'min-max frames/s': `${format(Math.min(...wall[i]!))}-${format(Math.max(...wall[i]!))}`,
      })),
    );
    const single = median(wall[0]!);
    const batched = median(wall[1]!);
    console.log(
      `single calls: ${format(single)} frames/s, batches: ${format(batched)} frames/s ` +
        `(goal >= 100,000 per core); batches are ${(batched / single).toFixed(1)}x single calls ` +
        `and reach ${Math.round((100 * batched) / median(wall[4]!))}% of the unsandboxed floor ` +
        'with the same output work',
    );
  } finally {
    engine.dispose();
    await host.close();
  }
}
