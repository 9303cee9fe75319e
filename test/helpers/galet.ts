import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type GaletOptions, type RunningGalet, startGalet } from '../../src/server/galet.js';

export const TEST_ADMIN_TOKEN = 'test-admin-token-0123456789';

export interface TestGalet extends RunningGalet {
  dataDir: string;
  baseUrl: string;
  /** fetch against the API with the admin token. */
  // biome-ignore lint/suspicious/noExplicitAny: tests read response fields directly and assert on them
  request(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }>;
  stop(): Promise<void>;
}

/** A real all-in-one Galet on 127.0.0.1 with ephemeral ports and a temporary data directory. */
export async function startTestGalet(
  options: Partial<GaletOptions> & { dataDir?: string } = {},
): Promise<TestGalet> {
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), 'galet-test-')));
  const running = await startGalet({
    dataDir,
    host: '127.0.0.1',
    udpPort: 0,
    httpPort: 0,
    region: 'EU868',
    netId: 0x000013,
    deduplicationWindowMs: 100,
    allowUnknownGateways: false,
    ...options,
    env: { GALET_ADMIN_TOKEN: TEST_ADMIN_TOKEN, ...options.env },
  });
  const baseUrl = `http://127.0.0.1:${running.httpPort}`;
  return {
    ...running,
    dataDir,
    baseUrl,
    async request(method, path, body) {
      const response = await fetch(`${baseUrl}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${TEST_ADMIN_TOKEN}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await response.text();
      return { status: response.status, json: text === '' ? undefined : JSON.parse(text) };
    },
    async stop() {
      await running.close();
    },
  };
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}
