import type { GaletEvent } from '../network/events.js';
import { decodeSensorPayload } from '../sim/payloads.js';
import { Simulation } from '../sim/simulation.js';
import {
  type ApiRequester,
  demoFleet,
  demoGatewayIds,
  type FleetDevice,
  provisionFleet,
  simulatorConfig,
} from './demo-fleet.js';
import type { RunningGalet } from './galet.js';

export interface DemoOptions {
  out: NodeJS.WritableStream;
  devices?: number;
  gateways?: number;
  uplinkIntervalMs?: number;
}

export const DEMO_APPLICATION = 'Demo commune (simulated sensors)';

/** Requests to this Galet's own API, as a client would make them. */
function localApi(galet: RunningGalet): ApiRequester {
  const base = `http://127.0.0.1:${galet.httpPort}/api/v1`;
  return {
    async requestRaw(method, path, body) {
      const response = await fetch(`${base}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${galet.adminToken.token}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await response.text();
      return { status: response.status, body: text === '' ? undefined : JSON.parse(text) };
    },
  };
}

function clock(): string {
  return new Date().toISOString().slice(11, 19);
}

function describeEvent(event: GaletEvent, fleet: Map<string, FleetDevice>): string {
  const device = fleet.get(event.devEui);
  const name = (device?.name ?? event.devEui).padEnd(16);
  const body = event.body;
  switch (event.type) {
    case 'up': {
      const rxInfo = (body['rxInfo'] as Array<{ snr: number }> | undefined) ?? [];
      const bestSnr = Math.max(...rxInfo.map((rx) => rx.snr));
      let decoded = '';
      if (
        device !== undefined &&
        typeof body['data'] === 'string' &&
        typeof body['fPort'] === 'number'
      ) {
        try {
          const bytes = new Uint8Array(Buffer.from(body['data'], 'base64'));
          decoded = JSON.stringify(
            decodeSensorPayload(device.kind, { fPort: body['fPort'], bytes }),
          );
        } catch {
          decoded = `data ${String(body['data'])}`;
        }
      }
      const confirmed = body['confirmed'] === true ? ' confirmed' : '';
      return `${clock()}  up     ${name} fCnt ${String(body['fCnt']).padEnd(4)} DR${String(body['dr'])}  ${rxInfo.length} gw, best SNR ${bestSnr.toFixed(1)} dB${confirmed}  ${decoded}`;
    }
    case 'join':
      return `${clock()}  join   ${name} DevAddr ${String(body['devAddr'])}`;
    case 'txack':
      return `${clock()}  txack  ${name} ${String(body['status'])} in ${String(body['window'])} via ${String(body['gatewayId'])}`;
    case 'ack':
      return `${clock()}  ack    ${name} downlink ${body['acknowledged'] === true ? 'acknowledged' : 'NOT acknowledged'}`;
    default:
      return `${clock()}  ${event.type.padEnd(6)} ${name} ${String(body['description'] ?? '')}`;
  }
}

/**
 * `galet start --demo`: registers a demo commune (application, gateways, one OTAA sensor per
 * use case) through this server's own API, then runs simulated gateways and devices against its
 * UDP port and prints every event as it is stored. Returns a function that stops the demo.
 */
export async function runDemo(
  galet: RunningGalet,
  options: DemoOptions,
): Promise<() => Promise<void>> {
  const out = options.out;
  const fleet = demoFleet(options.devices ?? 8);
  const gatewayIds = demoGatewayIds(options.gateways ?? 3);
  const { created } = await provisionFleet(localApi(galet), DEMO_APPLICATION, gatewayIds, fleet);
  out.write(
    `Demo: ${fleet.length} simulated sensors and ${gatewayIds.length} gateways (${created} registered now). ` +
      'Their keys are public demo keys: never reuse them.\n',
  );
  const configs = [];
  for (const device of fleet) {
    // After a restart on the same data directory, the devices go on counting their DevNonce.
    const lastNonce = await galet.storage.devNonces.maxFor(device.devEui);
    configs.push(simulatorConfig(device, lastNonce === null ? 0 : lastNonce + 1));
  }
  const byEui = new Map(fleet.map((device) => [device.devEui, device]));
  const unsubscribe = galet.network.bus.subscribe((event) => {
    if (byEui.has(event.devEui)) out.write(`${describeEvent(event, byEui)}\n`);
  });
  const simulation = await Simulation.start({
    server: { host: '127.0.0.1', port: galet.udpPort },
    gateways: gatewayIds.length,
    gatewayIds,
    devices: configs,
    uplinkIntervalMs: options.uplinkIntervalMs ?? 10_000,
    confirmedRatio: 0.1,
    gatewaysPerDevice: Math.min(2, gatewayIds.length),
    seed: 42,
    // Until stopped: the longest timer Node allows (about 24 days).
    durationMs: 2 ** 31 - 1,
  });
  // Now and then, a dimming order for the street lights: downlinks flow too.
  const streetLights = fleet.filter((device) => device.kind === 'streetLight');
  const api = localApi(galet);
  let level = 40;
  const downlinks = setInterval(() => {
    level = level === 40 ? 80 : 40;
    for (const light of streetLights) {
      void api
        .requestRaw('POST', `/devices/${light.devEui}/queue`, {
          fPort: 20,
          data: Buffer.from([0x01, level]).toString('base64'),
          confirmed: true,
        })
        .then(() =>
          out.write(`${clock()}  queue  ${light.name.padEnd(16)} dimming to ${level} %\n`),
        )
        .catch(() => undefined);
    }
  }, 25_000);
  return async () => {
    clearInterval(downlinks);
    unsubscribe();
    await simulation.stop();
  };
}
