/**
 * Shared by the two-process operator-blind tests: start `galet start …` from source as a real
 * process, talk to its API, and scan files and logs for secrets.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { apiRequest } from '../helpers/api.js';
import { waitFor } from '../scenarios/helpers.js';

const ROOT = join(import.meta.dirname, '..', '..');
export const OPERATOR_TOKEN = 'operator-admin-token-0123456789';
export const PROVIDER_TOKEN = 'provider-admin-token-0123456789';

export interface GaletProcess {
  child: ChildProcess;
  output: string[];
  httpPort: number;
  udpPort?: number;
}

/** Starts `galet start …` from source and waits for its "running" line. */
export async function startGaletProcess(args: string[], adminToken: string): Promise<GaletProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'start', ...args], {
    cwd: ROOT,
    env: { ...process.env, GALET_ADMIN_TOKEN: adminToken, GALET_LOG_LEVEL: 'debug' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  child.stdout!.setEncoding('utf8').on('data', (text: string) => output.push(text));
  child.stderr!.setEncoding('utf8').on('data', (text: string) => output.push(text));
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

export async function stop(galet: GaletProcess): Promise<void> {
  if (galet.child.exitCode !== null) return;
  const exited = new Promise((resolve) => galet.child.once('exit', resolve));
  galet.child.kill('SIGTERM');
  await exited;
}

export function request(port: number, token: string, method: string, path: string, body?: unknown) {
  return apiRequest(`http://127.0.0.1:${port}`, token, method, path, body);
}

export async function filesUnder(dir: string): Promise<Map<string, Buffer>> {
  const found = new Map<string, Buffer>();
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) {
      const path = join(entry.parentPath, entry.name);
      found.set(path, await readFile(path));
    }
  }
  return found;
}

/** Fails when `content` holds a secret raw, in hex or in base64. */
export function assertHoldsNone(
  where: string,
  content: Buffer,
  secrets: readonly (readonly [string, Buffer])[],
): void {
  for (const [what, secret] of secrets) {
    for (const form of [
      secret,
      Buffer.from(secret.toString('hex')),
      Buffer.from(secret.toString('base64')),
    ]) {
      assert.equal(content.includes(form), false, `${what} found in ${where}`);
    }
  }
}
