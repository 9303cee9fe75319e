/**
 * An API over a fresh SQLite database with a clock the test moves, driven through
 * `app.inject` (no sockets): for the platform routes (tenants, users, keys, sessions, audit).
 */
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { type ApiNetwork, type ApiOptions, buildApi } from '../../src/api/server.js';
import { getRegion } from '../../src/lorawan/regions/index.js';
import {
  createStorage,
  type GaletDatabase,
  openDatabase,
  SecretBox,
  type Storage,
} from '../../src/storage/index.js';

export const ADMIN_TOKEN = 'platform-admin-token-0123456789';

/** A password the policy accepts. */
export const PASSWORD = 'correct horse battery staple';

export interface Answer {
  status: number;
  // biome-ignore lint/suspicious/noExplicitAny: tests read response fields directly and assert on them
  json: any;
  headers: Record<string, string | string[] | number | undefined>;
}

export interface RequestOptions {
  /** Bearer token; default the admin token; null: none. */
  token?: string | null;
  cookie?: string;
  body?: unknown;
}

export interface PlatformApi {
  app: FastifyInstance;
  storage: Storage;
  database: GaletDatabase;
  /** The API's (and the repositories') clock. */
  clock: { now: Date; advance(ms: number): void };
  request(method: string, url: string, options?: RequestOptions): Promise<Answer>;
  close(): Promise<void>;
}

export async function startPlatformApi(options: Partial<ApiOptions> = {}): Promise<PlatformApi> {
  const clock = {
    now: new Date('2026-03-01T08:00:00.000Z'),
    advance(ms: number) {
      clock.now = new Date(clock.now.getTime() + ms);
    },
  };
  const now = () => clock.now;
  const database = await openDatabase({ url: ':memory:' });
  const storage = createStorage(database, SecretBox.fromKey(randomBytes(32)), { now });
  const app = await buildApi({
    storage,
    // The platform routes never reach the network.
    network: {} as ApiNetwork,
    region: getRegion('EU868'),
    adminToken: ADMIN_TOKEN,
    now,
    ...options,
  });
  return {
    app,
    storage,
    database,
    clock,
    async request(method, url, { token = ADMIN_TOKEN, cookie, body } = {}) {
      const headers: Record<string, string> = {};
      if (token !== null) headers['authorization'] = `Bearer ${token}`;
      if (cookie !== undefined) headers['cookie'] = cookie;
      const response = await app.inject({
        method: method as 'GET',
        url,
        headers,
        ...(body === undefined ? {} : { payload: body as object }),
      });
      const text = response.body;
      return {
        status: response.statusCode,
        json: text === '' ? undefined : JSON.parse(text),
        headers: response.headers,
      };
    },
    async close() {
      await app.close();
      await database.close();
    },
  };
}
