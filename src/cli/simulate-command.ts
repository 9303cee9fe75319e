import type { Command } from 'commander';
import { clientOf } from './api-client.js';
import { connectionOptions } from './connection.js';
import { CliInputError } from './fail.js';
import { readInteger } from './frame-inputs.js';

function hostPort(value: string): { host: string; port: number } {
  const match = /^(.+):(\d+)$/.exec(value);
  if (match === null) throw new CliInputError(`--server must be host:port, got ${value}`);
  return { host: match[1]!, port: readInteger(match[2], 16, '--server port') };
}

export function registerSimulateCommand(program: Command): void {
  program
    .command('simulate')
    .description(
      'run simulated gateways and OTAA sensors (one per use case, in turn) against a network server over Semtech UDP',
    )
    .option('--server <host:port>', 'network server UDP address', '127.0.0.1:1700')
    .option('--gateways <n>', 'simulated gateways', '3')
    .option('--devices <n>', 'simulated devices', '8')
    .option('--interval-ms <ms>', 'uplink interval per device', '10000')
    .option('--duration-s <s>', 'stop after this many seconds', '60')
    .option('--confirmed-ratio <r>', 'share of confirmed uplinks, 0 to 1', '0.1')
    .option('--seed <n>', 'random seed', '1')
    .option('--prefix <hex>', "two hex digits that make this fleet's EUIs unique", 'a1')
    .option(
      '--provision',
      'register the application, gateways and devices through the HTTP API first',
    )
    .option('--url <url>', 'HTTP API for --provision (default $GALET_URL or http://127.0.0.1:8080)')
    .option(
      '--token <token>',
      'API token for --provision (default $GALET_TOKEN or ./data/admin.token)',
    )
    .action(async (o: Record<string, unknown>) => {
      // Loaded here, not by every `galet` command.
      const { demoFleet, demoGatewayIds, provisionFleet, simulatorConfig } = await import(
        '../server/demo-fleet.js'
      );
      const { runSimulation } = await import('../sim/simulation.js');
      const prefix = String(o['prefix']);
      if (!/^[0-9a-fA-F]{2}$/.test(prefix))
        throw new CliInputError('--prefix must be two hex digits');
      const ratio = Number(o['confirmedRatio']);
      if (!(ratio >= 0 && ratio <= 1))
        throw new CliInputError('--confirmed-ratio must be between 0 and 1');
      const fleet = demoFleet(readInteger(o['devices'], 16, '--devices'), prefix.toLowerCase());
      const gatewayIds = demoGatewayIds(
        Math.max(1, readInteger(o['gateways'], 8, '--gateways')),
        prefix.toLowerCase(),
      );
      if (o['provision'] === true) {
        const client = clientOf(connectionOptions(o));
        const { created } = await provisionFleet(client, `Simulation ${prefix}`, gatewayIds, fleet);
        process.stderr.write(`provisioned ${created} new gateways and devices\n`);
      }
      const durationS = readInteger(o['durationS'], 31, '--duration-s');
      const stats = await runSimulation({
        server: hostPort(String(o['server'])),
        gateways: gatewayIds.length,
        gatewayIds,
        devices: fleet.map((device) => simulatorConfig(device, 0)),
        uplinkIntervalMs: readInteger(o['intervalMs'], 31, '--interval-ms'),
        durationMs: durationS * 1000,
        confirmedRatio: ratio,
        seed: readInteger(o['seed'], 31, '--seed'),
        onEvent: (event) => {
          if (
            event.type === 'joined' ||
            event.type === 'downlink' ||
            event.type === 'downlinkRejected'
          ) {
            process.stderr.write(
              `${JSON.stringify(event, (_k, v) => (v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v))}\n`,
            );
          }
        },
      });
      process.stdout.write(`${JSON.stringify(stats)}\n`);
    });
}
