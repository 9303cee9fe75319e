// One task of the lorawan benchmark, alone in its worker: its own JIT state, as in a server that
// runs only its own code. Messages: {ms} in, {framesPerSecond} out.
import { parentPort, workerData } from 'node:worker_threads';
import { measure, taskByName } from './lorawan-tasks.js';

const run = taskByName((workerData as { task: string }).task);
parentPort!.on('message', (message: { ms: number }) => {
  parentPort!.postMessage({ framesPerSecond: measure(run, message.ms) });
});
