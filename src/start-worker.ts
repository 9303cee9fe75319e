import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker, type WorkerOptions } from 'node:worker_threads';

/**
 * Starts a worker thread on one of Galet's modules, named without extension relative to the
 * caller's `import.meta.url`: the built `.js` directly; from source (tests, tsx), through a
 * bootstrap that registers tsx first, since Node 20 does not apply the parent's loader hooks to
 * workers.
 */
/**
 * The URL of one of Galet's modules, named without extension relative to `callerUrl`, with the
 * caller's extension (`.js` built, `.ts` from source): for a module a worker imports by URL.
 */
export function moduleUrl(callerUrl: string, relativePath: string): string {
  return new URL(`${relativePath}${extname(fileURLToPath(callerUrl))}`, callerUrl).href;
}

export function startWorker(
  callerUrl: string,
  relativePath: string,
  options: Pick<WorkerOptions, 'workerData'>,
): Worker {
  const extension = extname(fileURLToPath(callerUrl));
  const entry = new URL(`${relativePath}${extension}`, callerUrl);
  if (extension === '.js') return new Worker(entry, options);
  const tsx = import.meta.resolve('tsx/esm/api');
  const bootstrap = `import(${JSON.stringify(tsx)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry.href)}); })`;
  return new Worker(bootstrap, { ...options, eval: true });
}
