/**
 * Shared by the two-process operator-blind tests: start `galet start …` from source as a real
 * process, talk to its API, and scan files and logs for secrets.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { apiRequest } from '../helpers/api.js';
import {
  type GaletProcess,
  startGaletProcess,
  stopGaletProcess,
} from '../helpers/galet-process.js';
import { ScenarioNetwork, waitFor } from '../scenarios/helpers.js';

export const OPERATOR_TOKEN = 'operator-admin-token-0123456789';
export const PROVIDER_TOKEN = 'provider-admin-token-0123456789';

export { type GaletProcess, startGaletProcess };

/** A clean stop (SIGTERM), waiting for the exit. */
export async function stop(galet: GaletProcess): Promise<void> {
  await stopGaletProcess(galet, 'SIGTERM');
}

/**
 * The operator's side of the two-process tests: `galet start --roles network` in a process of
 * its own, with simulated gateway `gatewayId` attached to it; the provider's data directory is
 * made too. Returns the `galet start` options both processes share.
 */
export async function startOperator(
  gatewayId: string,
  /** PostgreSQL instead of the SQLite file in the data directory. */
  databaseUrl?: string,
): Promise<{
  opDir: string;
  provDir: string;
  common: string[];
  operator: GaletProcess;
  net: ScenarioNetwork;
}> {
  const opDir = await mkdtemp(join(tmpdir(), 'galet-op-'));
  const provDir = await mkdtemp(join(tmpdir(), 'galet-prov-'));
  const common = ['--host', '127.0.0.1', '--http-port', '0', '--dedup-window-ms', '100'];
  const operator = await startGaletProcess(
    [
      '--roles',
      'network',
      '--data-dir',
      opDir,
      '--udp-port',
      '0',
      ...(databaseUrl === undefined ? [] : ['--database-url', databaseUrl]),
      ...common,
    ],
    OPERATOR_TOKEN,
  );
  try {
    const net = await ScenarioNetwork.attach(
      {
        baseUrl: `http://127.0.0.1:${operator.httpPort}`,
        udpPort: operator.udpPort as number,
        adminToken: OPERATOR_TOKEN,
        dataDir: opDir,
      },
      [{ gatewayId }],
    );
    return { opDir, provDir, common, operator, net };
  } catch (error) {
    await stop(operator);
    throw error;
  }
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

/**
 * Every row of every table of a PostgreSQL database as JSON text (bytea as `\\x` hex), for the
 * same scan as the files of a SQLite data directory.
 */
export async function postgresDump(url: string): Promise<Buffer> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const tables = await client.query<{ tablename: string }>(
      'select tablename from pg_tables where schemaname = current_schema() order by tablename',
    );
    const parts: string[] = [];
    for (const { tablename } of tables.rows) {
      const rows = await client.query<{ row: string }>(
        `select row_to_json(t)::text as row from ${client.escapeIdentifier(tablename)} t`,
      );
      for (const { row } of rows.rows) parts.push(`${tablename}: ${row}`);
    }
    return Buffer.from(parts.join('\n'));
  } finally {
    await client.end();
  }
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

/**
 * The provider's side: a link token for the operator's application, then `galet start --roles
 * join,application` with it, returned once the provider lists the linked application. `args`
 * start it again.
 */
export async function startProviderProcess(
  side: { operator: GaletProcess; net: ScenarioNetwork; provDir: string; common: string[] },
  /** PostgreSQL instead of the SQLite file in the data directory. */
  databaseUrl?: string,
): Promise<{ provider: GaletProcess; args: string[] }> {
  const { applicationId } = side.net;
  const link = await side.net.galet.request(
    'POST',
    `/api/v1/applications/${applicationId}/link-tokens`,
    {},
  );
  assert.equal(link.status, 201);
  const args = [
    '--roles',
    'join,application',
    '--data-dir',
    side.provDir,
    '--network-url',
    `http://127.0.0.1:${side.operator.httpPort}`,
    '--network-token',
    link.json.token,
    ...(databaseUrl === undefined ? [] : ['--database-url', databaseUrl]),
    ...side.common.slice(0, 4),
  ];
  const provider = await startGaletProcess(args, PROVIDER_TOKEN);
  try {
    await waitFor('the provider lists the linked application', async () => {
      const listed = await request(
        provider.httpPort,
        PROVIDER_TOKEN,
        'GET',
        '/api/v1/applications',
      );
      return listed.json.applications.some((a: { id: string }) => a.id === applicationId)
        ? true
        : undefined;
    });
  } catch (error) {
    await stop(provider);
    throw error;
  }
  return { provider, args };
}
