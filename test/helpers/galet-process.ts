import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { waitFor } from '../scenarios/helpers.js';

const ROOT = join(import.meta.dirname, '..', '..');

export interface GaletProcess {
  child: ChildProcess;
  /** Everything it printed (stdout and stderr), in order. */
  output: string[];
  httpPort: number;
  udpPort?: number;
}

/** Starts `galet start …` from source in a process of its own and waits until it serves. */
export async function startGaletProcess(
  args: readonly string[],
  adminToken: string,
): Promise<GaletProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'start', ...args], {
    cwd: ROOT,
    env: { ...process.env, GALET_ADMIN_TOKEN: adminToken, GALET_LOG_LEVEL: 'debug' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  child.stdout?.setEncoding('utf8').on('data', (text: string) => output.push(text));
  child.stderr?.setEncoding('utf8').on('data', (text: string) => output.push(text));
  const running = await waitFor(
    `galet ${args.join(' ')} starts`,
    () => {
      if (child.exitCode !== null) throw new Error(`exited ${child.exitCode}: ${output.join('')}`);
      const text = output.join('');
      const http = /HTTP API http:\/\/127\.0\.0\.1:(\d+)\/api\/v1/.exec(text);
      if (http === null) return undefined;
      const udp = /gateways on UDP port (\d+)/.exec(text);
      return { httpPort: Number(http[1]), ...(udp === null ? {} : { udpPort: Number(udp[1]) }) };
    },
    20_000,
  );
  return { child, output, ...running };
}

/** SIGTERM (a clean stop) or SIGKILL (a crash), and waits for the exit. */
export async function stopGaletProcess(
  galet: GaletProcess,
  signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM',
): Promise<void> {
  if (galet.child.exitCode !== null || galet.child.signalCode !== null) return;
  const exited = new Promise((resolve) => galet.child.once('exit', resolve));
  galet.child.kill(signal);
  await exited;
}
