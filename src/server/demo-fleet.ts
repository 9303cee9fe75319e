import { createHash } from 'node:crypto';
import { PAYLOAD_KINDS, type PayloadKind } from '../sim/payloads.js';
import type { SimulationDeviceConfig } from '../sim/simulation.js';

/**
 * A demo commune's sensors: one device per use case, in turn, with keys derived from a public
 * label. These keys are published in the source: never use them for real devices.
 */
export interface FleetDevice {
  devEui: string;
  joinEui: string;
  name: string;
  kind: PayloadKind;
  macVersion: '1.0.2' | '1.0.3' | '1.0.4' | '1.1.0';
  appKey: string;
  nwkKey?: string;
}

export const DEMO_JOIN_EUI = '70b3d57ed0000000';

const MAC_VERSIONS = ['1.0.3', '1.0.4', '1.1.0', '1.0.2'] as const;

const KIND_NAMES: Record<PayloadKind, string> = {
  roadWeather: 'road-frost',
  streetLight: 'street-light',
  soil: 'soil-moisture',
  airQuality: 'school-co2',
  waterLevel: 'river-level',
  parkingSpot: 'ev-spot',
  waterMeter: 'water-meter',
  gpsTracker: 'pebble',
};

function derivedKey(label: string): string {
  return createHash('sha256').update(`galet-demo:${label}`).digest('hex').slice(0, 32);
}

export function demoFleet(count: number, prefix = 'de'): FleetDevice[] {
  return Array.from({ length: count }, (_, i) => {
    const kind = PAYLOAD_KINDS[i % PAYLOAD_KINDS.length]!;
    const macVersion = MAC_VERSIONS[i % MAC_VERSIONS.length]!;
    const devEui = `70b3d5${prefix}00${i.toString(16).padStart(6, '0')}`;
    return {
      devEui,
      joinEui: DEMO_JOIN_EUI,
      name: `${KIND_NAMES[kind]}-${i + 1}`,
      kind,
      macVersion,
      appKey: derivedKey(`${devEui}:app`),
      ...(macVersion === '1.1.0' ? { nwkKey: derivedKey(`${devEui}:nwk`) } : {}),
    };
  });
}

export function demoGatewayIds(count: number, prefix = 'de'): string[] {
  return Array.from(
    { length: count },
    (_, i) => `${prefix}0000fffe${(i + 1).toString(16).padStart(6, '0')}`,
  );
}

/** The simulator's view of a fleet device (OTAA, starting at the given DevNonce). */
export function simulatorConfig(device: FleetDevice, devNonce: number): SimulationDeviceConfig {
  return {
    devEui: device.devEui,
    lorawanVersion: device.macVersion === '1.1.0' ? '1.1' : device.macVersion,
    activation: {
      mode: 'otaa',
      joinEui: device.joinEui,
      appKey: Buffer.from(device.appKey, 'hex'),
      ...(device.nwkKey === undefined ? {} : { nwkKey: Buffer.from(device.nwkKey, 'hex') }),
      devNonce,
    },
    payload: device.kind,
  };
}

/** Something that answers API requests (the CLI's ApiClient, or a local fetch). */
export interface ApiRequester {
  requestRaw(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; body: unknown }>;
}

async function call(
  api: ApiRequester,
  method: string,
  path: string,
  body?: unknown,
): Promise<unknown> {
  const response = await api.requestRaw(method, path, body);
  if (response.status < 200 || response.status >= 300) {
    const message = (response.body as { message?: string } | undefined)?.message;
    throw new Error(`${method} ${path}: ${message ?? 'failed'} (HTTP ${response.status})`);
  }
  return response.body;
}

/**
 * Registers an application, the gateways and the devices through the HTTP API; what already
 * exists (a restart on the same data directory) is reused.
 */
export async function provisionFleet(
  api: ApiRequester,
  applicationName: string,
  gatewayIds: readonly string[],
  devices: readonly FleetDevice[],
): Promise<{ applicationId: string; created: number }> {
  const { applications } = (await call(api, 'GET', '/applications?limit=1000')) as {
    applications: Array<{ id: string; name: string }>;
  };
  const applicationId =
    applications.find((a) => a.name === applicationName)?.id ??
    ((await call(api, 'POST', '/applications', { name: applicationName })) as { id: string }).id;
  let created = 0;
  for (const [i, gatewayId] of gatewayIds.entries()) {
    created += await createIfMissing(api, `/gateways/${gatewayId}`, '/gateways', {
      gatewayId,
      name: `demo-gateway-${i + 1}`,
      location: { latitude: 45.55 + i * 0.01, longitude: 4.3 + i * 0.012, altitude: 400 },
    });
  }
  for (const device of devices) {
    created += await createIfMissing(api, `/devices/${device.devEui}`, '/devices', {
      devEui: device.devEui,
      joinEui: device.joinEui,
      name: device.name,
      applicationId,
      macVersion: device.macVersion,
      deviceClass: 'A',
      appKey: device.appKey,
      ...(device.nwkKey === undefined ? {} : { nwkKey: device.nwkKey }),
    });
  }
  return { applicationId, created };
}

async function createIfMissing(
  api: ApiRequester,
  getPath: string,
  postPath: string,
  body: object,
): Promise<number> {
  const existing = await api.requestRaw('GET', getPath);
  if (existing.status === 200) return 0;
  if (existing.status !== 404) await call(api, 'GET', getPath);
  await call(api, 'POST', postPath, body);
  return 1;
}
