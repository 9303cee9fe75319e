/**
 * External services for tests (PostgreSQL now). A test that needs one skips, with a message
 * naming it, when the service is not reachable; with GALET_REQUIRE_SERVICES=1 (CI) it fails
 * instead, so a broken CI service cannot pass silently.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { TestContext } from 'node:test';
import pg from 'pg';

export const DEFAULT_POSTGRES_ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
const TEST_DATABASE_NAME = /^galet_test_\d+_[0-9a-f]+$/;

/** True when every service a test needs must be there (CI sets GALET_REQUIRE_SERVICES=1). */
export function requireServices(): boolean {
  return process.env.GALET_REQUIRE_SERVICES === '1';
}

/** Skips the test with `message`, or fails it when services are required. Return after it. */
export function skipOrFail(t: TestContext, message: string): void {
  if (requireServices()) {
    assert.fail(`${message} (GALET_REQUIRE_SERVICES=1: a missing service fails the test)`);
  }
  t.skip(message);
}

/** The server that holds the test databases (a superuser connection to an existing database). */
export function postgresAdminUrl(): string {
  return process.env.GALET_TEST_POSTGRES_URL ?? DEFAULT_POSTGRES_ADMIN_URL;
}

/** `host:port` of the test server, for messages. */
export function postgresTestHost(): string {
  const url = new URL(postgresAdminUrl());
  return `${url.hostname}:${url.port || '5432'}`;
}

async function withAdminClient<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({
    connectionString: postgresAdminUrl(),
    connectionTimeoutMillis: 3000,
  });
  // An error event on an idle client (server gone) must not end the test process.
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** Whether the test server answers. */
export async function postgresReachable(): Promise<boolean> {
  try {
    await withAdminClient((client) => client.query('select 1'));
    return true;
  } catch {
    return false;
  }
}

/**
 * Creates a fresh, empty database `galet_test_<pid>_<random>` and returns its URL, or
 * undefined when the server is not reachable. Drop it with `dropPostgresTestDatabase`.
 */
export async function postgresTestUrl(): Promise<string | undefined> {
  const name = `galet_test_${process.pid}_${randomBytes(4).toString('hex')}`;
  try {
    // The name is made above from digits and hex only, so quoting it is enough.
    await withAdminClient((client) => client.query(`create database "${name}"`));
  } catch (error) {
    if (isConnectionFailure(error)) return undefined;
    throw error;
  }
  const url = new URL(postgresAdminUrl());
  url.pathname = `/${name}`;
  return url.toString();
}

/** Drops a database made by `postgresTestUrl` (and nothing else), closing its connections. */
export async function dropPostgresTestDatabase(url: string): Promise<void> {
  const name = decodeURIComponent(new URL(url).pathname.slice(1));
  if (!TEST_DATABASE_NAME.test(name)) {
    throw new Error(`refusing to drop ${JSON.stringify(name)}: not a test database`);
  }
  await withAdminClient((client) => client.query(`drop database if exists "${name}" with (force)`));
}

function isConnectionFailure(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') {
    // pg reports a connection timeout as a plain Error.
    return error instanceof Error && /timeout|terminated/i.test(error.message);
  }
  // Network errors, and SQLSTATE class 08 (connection exception), 28 (authorisation),
  // 57P03 (cannot connect now: starting up).
  return (
    ['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EHOSTUNREACH', 'ETIMEDOUT', 'EAI_AGAIN'].includes(
      code,
    ) ||
    code.startsWith('08') ||
    code.startsWith('28') ||
    code === '57P03'
  );
}
