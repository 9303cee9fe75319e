import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type GaletOptions, type RunningGalet, startGalet } from '../../src/server/galet.js';
import { apiRequest } from './api.js';

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
    request: (method, path, body) => apiRequest(baseUrl, TEST_ADMIN_TOKEN, method, path, body),
    async stop() {
      await running.close();
    },
  };
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}
