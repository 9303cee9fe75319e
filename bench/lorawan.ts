// `npm run bench -- lorawan`: frames per second for decode + MIC check + decrypt of a realistic
// LoRaWAN 1.0.x uplink (12-byte FRMPayload): Galet, the npm package lora-packet doing the same
// work, and the raw cost of the AES block operations that work needs (the floor). Each task runs
// in a worker thread of its own, so that one task's type feedback does not slow another (they
// share node:crypto's JavaScript); rounds are interleaved and the median reported.
import { cpus } from 'node:os';
import { Worker } from 'node:worker_threads';
import { frame } from './lorawan-tasks.js';

const TASKS: Array<[string, string]> = [
  ['galet', 'galet (session keys prepared)'],
  ['lora-packet', 'lora-packet 0.9.3'],
  ['floor', 'AES floor (2 calls: CBC 3 blocks + ECB 1 block)'],
  ['floor-per-block', 'AES floor (4 single-block ECB calls)'],
];
const ROUNDS = 9;
const ROUND_MS = 300;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function ask(worker: Worker, ms: number): Promise<number> {
  return new Promise((resolve, reject) => {
    worker.once('message', (message: { framesPerSecond: number }) =>
      resolve(message.framesPerSecond),
    );
    worker.once('error', reject);
    worker.postMessage({ ms });
  });
}

export async function runLorawanBench(): Promise<void> {
  console.log(
    `lorawan: decode + MIC check + decrypt of a ${frame.length}-byte 1.0.x uplink (12-byte FRMPayload)`,
  );
  console.log(
    `node ${process.version}, ${cpus()[0]?.model ?? 'unknown CPU'}; one worker per task, ` +
      `${ROUNDS} interleaved rounds of ${ROUND_MS} ms, median reported`,
  );
  const workers = TASKS.map(
    ([task]) =>
      new Worker(new URL('./lorawan-worker.mjs', import.meta.url), { workerData: { task } }),
  );
  try {
    for (const worker of workers) await ask(worker, 700); // warm-up
    const samples = TASKS.map(() => [] as number[]);
    const ratios: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const perSecond: number[] = [];
      for (const worker of workers) perSecond.push(await ask(worker, ROUND_MS));
      perSecond.forEach((value, i) => {
        samples[i]!.push(value);
      });
      ratios.push(perSecond[2]! / perSecond[0]!);
    }
    console.table(
      TASKS.map(([, label], i) => {
        const values = samples[i]!;
        const perSecond = median(values);
        return {
          task: label,
          'frames/s (median)': Math.round(perSecond).toLocaleString('en-US'),
          'µs/frame': (1e6 / perSecond).toFixed(3),
          'min-max frames/s': `${Math.round(Math.min(...values)).toLocaleString('en-US')}-${Math.round(Math.max(...values)).toLocaleString('en-US')}`,
        };
      }),
    );
    const galet = median(samples[0]!);
    console.log(`galet / lora-packet: ${(galet / median(samples[1]!)).toFixed(1)}x (goal >= 10x)`);
    console.log(
      `galet time / AES floor time: ${median(ratios).toFixed(2)}x against the 2-call floor ` +
        `(median of the per-round ratios, range ${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)}), ` +
        `${(median(samples[3]!) / galet).toFixed(2)}x against the per-block floor (goal <= 2x)`,
    );
  } finally {
    await Promise.all(workers.map((worker) => worker.terminate()));
  }
}
