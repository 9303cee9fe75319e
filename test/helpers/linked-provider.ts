/** A provider's Galet in the test process, linked to a `ScenarioNetwork` running the network role. */
import assert from 'node:assert/strict';
import type { Logger } from '../../src/logger.js';
import { bytesToHex } from '../../src/lorawan/index.js';
import type { ApplicationServiceSettings } from '../../src/server/application-services.js';
import { type RunningProvider, startProvider } from '../../src/server/start-provider.js';
import { APP_KEY, JOIN_EUI, type ScenarioNetwork } from '../scenarios/helpers.js';
import { apiRequest } from './api.js';

export const PROVIDER_TOKEN = 'provider-admin-token-0123456789';

export function providerRequest(
  provider: RunningProvider,
  method: string,
  path: string,
  body?: unknown,
) {
  return apiRequest(`http://127.0.0.1:${provider.httpPort}`, PROVIDER_TOKEN, method, path, body);
}

/**
 * Starts a provider in `dataDir` linked to an application of `net` (its own by default) with
 * `token` (a new link token when none is given), and returns it once its link reports that
 * application.
 */
export async function linkProvider(
  net: ScenarioNetwork,
  dataDir: string,
  options: {
    token?: string;
    application?: ApplicationServiceSettings;
    applicationId?: string;
    logger?: Logger;
  } = {},
): Promise<{ provider: RunningProvider; token: string }> {
  const applicationId = options.applicationId ?? net.applicationId;
  let token = options.token;
  if (token === undefined) {
    const link = await net.galet.request(
      'POST',
      `/api/v1/applications/${applicationId}/link-tokens`,
      {},
    );
    assert.equal(link.status, 201);
    token = link.json.token as string;
  }
  const provider = await startProvider({
    ...(options.application === undefined ? {} : { application: options.application }),
    ...(options.logger === undefined ? {} : { logger: options.logger }),
    dataDir,
    host: '127.0.0.1',
    httpPort: 0,
    region: 'EU868',
    networkUrl: net.galet.baseUrl,
    networkToken: token,
    env: { GALET_ADMIN_TOKEN: PROVIDER_TOKEN },
  });
  try {
    assert.equal(await provider.link.ready(), applicationId);
  } catch (error) {
    await provider.close();
    throw error;
  }
  return { provider, token };
}

/**
 * A provider linked to a new application of `net`, with one OTAA device registered on the
 * provider with its AppKey (so the network holds no key of it). Close `provider` and remove
 * `dataDir` after the test.
 */
export async function startLinkedProvider(
  net: ScenarioNetwork,
  options: { dataDir: string; applicationName: string; device: { devEui: string; name: string } },
): Promise<{ provider: RunningProvider; applicationId: string }> {
  const application = await net.galet.request('POST', '/api/v1/applications', {
    name: options.applicationName,
  });
  assert.equal(application.status, 201, JSON.stringify(application.json));
  const applicationId = application.json.id as string;
  const { provider } = await linkProvider(net, options.dataDir, { applicationId });
  try {
    const created = await providerRequest(provider, 'POST', '/api/v1/devices', {
      devEui: options.device.devEui,
      joinEui: JOIN_EUI,
      name: options.device.name,
      applicationId,
      macVersion: '1.0.4',
      appKey: bytesToHex(APP_KEY),
    });
    assert.equal(created.status, 201, JSON.stringify(created.json));
  } catch (error) {
    await provider.close();
    throw error;
  }
  return { provider, applicationId };
}
