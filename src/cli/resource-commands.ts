import type { Command } from 'commander';
import { hexToBytes } from '../lorawan/bytes.js';
import { ApiClient } from './api-client.js';
import { CliInputError } from './fail.js';
import { readInteger } from './frame-inputs.js';

function withConnection(command: Command): Command {
  return command
    .option('--url <url>', 'Galet HTTP API base URL (default $GALET_URL or http://127.0.0.1:8080)')
    .option('--token <token>', 'API token (default $GALET_TOKEN, or <data-dir>/admin.token)')
    .option('--data-dir <path>', 'where to find admin.token (default ./data)');
}

function client(options: Record<string, unknown>): ApiClient {
  return new ApiClient({
    ...(typeof options['url'] === 'string' ? { url: options['url'] } : {}),
    ...(typeof options['token'] === 'string' ? { token: options['token'] } : {}),
    ...(typeof options['dataDir'] === 'string' ? { dataDir: options['dataDir'] } : {}),
  });
}

function print(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

function number(value: unknown, what: string): number {
  const n = Number(value);
  if (typeof value !== 'string' || value.trim() === '' || !Number.isFinite(n)) {
    throw new CliInputError(`${what} must be a number, got ${String(value)}`);
  }
  return n;
}

/** A JSON object given on the command line (`--json-settings`). */
function jsonObject(value: unknown, what: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(String(value));
  } catch (error) {
    throw new CliInputError(`${what} must be a JSON object: ${(error as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new CliInputError(`${what} must be a JSON object, got ${String(value)}`);
  }
  return parsed as Record<string, unknown>;
}

/**
 * The body of `POST /device-profiles`: `--json-settings` first, the named options over it
 * (ADR options merged into its `adr` object). The API checks every value.
 */
function deviceProfileBody(o: Record<string, unknown>): Record<string, unknown> {
  const settings =
    o['jsonSettings'] === undefined ? {} : jsonObject(o['jsonSettings'], '--json-settings');
  // commander's camelCase option name, the API field, the flag for messages.
  const integer = (option: string, field: string, flag: string, bits = 32) =>
    o[option] === undefined ? {} : { [field]: readInteger(o[option], bits, flag) };
  const adrOptions = {
    ...(typeof o['adr'] === 'boolean' ? { enabled: o['adr'] } : {}),
    ...integer('minDr', 'minDr', '--min-dr', 8),
    ...integer('maxDr', 'maxDr', '--max-dr', 8),
    ...(o['marginDb'] === undefined
      ? {}
      : { installationMarginDb: number(o['marginDb'], '--margin-db') }),
  };
  const givenAdr = settings['adr'];
  const adr = {
    ...(typeof givenAdr === 'object' && givenAdr !== null ? givenAdr : {}),
    ...adrOptions,
  };
  return {
    ...settings,
    name: o['name'],
    ...(Object.keys(adrOptions).length === 0 ? {} : { adr }),
    ...integer('rx1Delay', 'rx1DelaySeconds', '--rx1-delay', 8),
    ...integer('rx2Dr', 'rx2Dr', '--rx2-dr', 8),
    ...integer('rx2Frequency', 'rx2FrequencyHz', '--rx2-frequency'),
    ...integer('devStatusInterval', 'devStatusIntervalSeconds', '--dev-status-interval'),
  };
}

export function registerResourceCommands(program: Command): void {
  const application = program.command('application').description('manage applications');
  withConnection(application.command('add').description('create an application'))
    .requiredOption('--name <name>', 'application name')
    .action(async (o: Record<string, unknown>) =>
      print(await client(o).request('POST', '/applications', { name: o['name'] })),
    );
  withConnection(application.command('list').description('list applications')).action(
    async (o: Record<string, unknown>) => print(await client(o).request('GET', '/applications')),
  );

  const gateway = program.command('gateway').description('manage gateways');
  withConnection(gateway.command('add').description('register a gateway'))
    .requiredOption('--id <eui>', 'gateway EUI (16 hex digits)')
    .requiredOption('--name <name>', 'gateway name')
    .option('--latitude <deg>', 'latitude')
    .option('--longitude <deg>', 'longitude')
    .option('--altitude <m>', 'altitude in metres')
    .action(async (o: Record<string, unknown>) => {
      const hasLocation = o['latitude'] !== undefined || o['longitude'] !== undefined;
      const body = {
        gatewayId: o['id'],
        name: o['name'],
        ...(hasLocation
          ? {
              location: {
                latitude: number(o['latitude'], '--latitude'),
                longitude: number(o['longitude'], '--longitude'),
                ...(o['altitude'] === undefined
                  ? {}
                  : { altitude: number(o['altitude'], '--altitude') }),
              },
            }
          : {}),
      };
      print(await client(o).request('POST', '/gateways', body));
    });
  withConnection(gateway.command('list').description('list gateways')).action(
    async (o: Record<string, unknown>) => print(await client(o).request('GET', '/gateways')),
  );

  const profile = program
    .command('device-profile')
    .description('manage device profiles: the MAC settings of a kind of device');
  withConnection(profile.command('add').description('create a device profile'))
    .requiredOption('--name <name>', 'profile name')
    .option('--adr', 'the network adapts data rate and power (the default)')
    .option('--no-adr', 'no ADR: devices keep the data rate they choose')
    .option('--min-dr <n>', 'lowest data rate ADR assigns (default 0)')
    .option('--max-dr <n>', 'highest data rate ADR assigns (default 5)')
    .option('--margin-db <dB>', 'ADR installation margin in dB (default 10)')
    .option('--rx1-delay <s>', 'RX1 delay in seconds, 1-15 (default 1)')
    .option('--rx2-dr <n>', 'RX2 data rate (default 0)')
    .option('--rx2-frequency <Hz>', 'RX2 frequency in Hz (default 869525000)')
    .option('--dev-status-interval <s>', 'seconds between DevStatusReq, 0 never (default 86400)')
    .option(
      '--json-settings <json>',
      'any settings of POST /device-profiles as a JSON object; the options above override it',
    )
    .action(async (o: Record<string, unknown>) =>
      print(await client(o).request('POST', '/device-profiles', deviceProfileBody(o))),
    );
  withConnection(profile.command('list').description('list device profiles')).action(
    async (o: Record<string, unknown>) => print(await client(o).request('GET', '/device-profiles')),
  );
  withConnection(
    profile.command('show').description('show a device profile').argument('<id>'),
  ).action(async (id: string, o: Record<string, unknown>) =>
    print(await client(o).request('GET', `/device-profiles/${encodeURIComponent(id)}`)),
  );
  withConnection(
    profile.command('rm').description('delete a device profile no device uses').argument('<id>'),
  ).action(async (id: string, o: Record<string, unknown>) => {
    await client(o).request('DELETE', `/device-profiles/${encodeURIComponent(id)}`);
    print({ deleted: id });
  });

  const device = program.command('device').description('manage devices');
  withConnection(
    device
      .command('add')
      .description(
        'register an OTAA device (root keys) or an ABP device (--dev-addr and session keys)',
      ),
  )
    .requiredOption('--dev-eui <eui>', 'DevEUI')
    .requiredOption('--name <name>', 'device name')
    .requiredOption('--application <id>', 'application id')
    .option('--join-eui <eui>', 'JoinEUI (OTAA)')
    .option('--mac-version <v>', '1.0.2, 1.0.3, 1.0.4 or 1.1.0', '1.0.3')
    .option('--class <A|C>', 'device class', 'A')
    .option('--app-key <hex>', 'AppKey (OTAA)')
    .option('--nwk-key <hex>', 'NwkKey (OTAA, LoRaWAN 1.1)')
    .option('--dev-addr <hex>', 'DevAddr (ABP)')
    .option('--nwk-s-key <hex>', 'NwkSKey (ABP 1.0)')
    .option('--app-s-key <hex>', 'AppSKey (ABP)')
    .option('--f-nwk-s-int-key <hex>', 'FNwkSIntKey (ABP 1.1)')
    .option('--s-nwk-s-int-key <hex>', 'SNwkSIntKey (ABP 1.1)')
    .option('--nwk-s-enc-key <hex>', 'NwkSEncKey (ABP 1.1)')
    .option('--device-profile <id>', 'device profile id (default none: the default MAC settings)')
    .action(async (o: Record<string, unknown>) => {
      const optional = (name: string, value: unknown) =>
        value === undefined ? {} : { [name]: value };
      const abp =
        o['devAddr'] === undefined
          ? undefined
          : {
              devAddr: o['devAddr'],
              ...optional('nwkSKey', o['nwkSKey']),
              ...optional('appSKey', o['appSKey']),
              ...optional('fNwkSIntKey', o['fNwkSIntKey']),
              ...optional('sNwkSIntKey', o['sNwkSIntKey']),
              ...optional('nwkSEncKey', o['nwkSEncKey']),
            };
      const body = {
        devEui: o['devEui'],
        name: o['name'],
        applicationId: o['application'],
        macVersion: o['macVersion'],
        deviceClass: o['class'],
        ...optional('joinEui', o['joinEui']),
        ...optional('appKey', o['appKey']),
        ...optional('nwkKey', o['nwkKey']),
        ...optional('deviceProfileId', o['deviceProfile']),
        ...optional('abp', abp),
      };
      print(await client(o).request('POST', '/devices', body));
    });
  withConnection(device.command('list').description('list devices'))
    .option('--application <id>', 'only this application')
    .action(async (o: Record<string, unknown>) => {
      const query =
        typeof o['application'] === 'string'
          ? `?applicationId=${encodeURIComponent(o['application'])}`
          : '';
      print(await client(o).request('GET', `/devices${query}`));
    });
  withConnection(
    device.command('show').description('show a device and its session').argument('<devEui>'),
  ).action(async (devEui: string, o: Record<string, unknown>) =>
    print(await client(o).request('GET', `/devices/${encodeURIComponent(devEui)}`)),
  );
  withConnection(device.command('rm').description('delete a device').argument('<devEui>')).action(
    async (devEui: string, o: Record<string, unknown>) => {
      await client(o).request('DELETE', `/devices/${encodeURIComponent(devEui)}`);
      print({ deleted: devEui });
    },
  );
  withConnection(
    device.command('events').description("a device's latest events").argument('<devEui>'),
  )
    .option('--limit <n>', 'how many', '20')
    .action(async (devEui: string, o: Record<string, unknown>) => {
      const limit = readInteger(o['limit'], 10, '--limit');
      print(
        await client(o).request(
          'GET',
          `/devices/${encodeURIComponent(devEui)}/events?limit=${limit}`,
        ),
      );
    });

  withConnection(
    device
      .command('force-rejoin')
      .description('ask a LoRaWAN 1.1 device to rejoin (ForceRejoinReq with its next downlink)')
      .argument('<devEui>'),
  )
    .option('--type <n>', 'rejoin type, 0 (new session) or 2 (new keys)', '0')
    .option('--dr <n>', "data rate of the RejoinRequest (default: the device's current one)")
    .option('--max-retries <n>', 'RejoinRequests after the first, 0-7', '1')
    .option('--period <n>', 'delay between them: 32 s x 2^period + random, 0-7', '0')
    .action(async (devEui: string, o: Record<string, unknown>) => {
      const rejoinType = readInteger(o['type'], 2, '--type');
      if (rejoinType !== 0 && rejoinType !== 2) {
        throw new CliInputError(`--type must be 0 or 2, got ${String(o['type'])}`);
      }
      const body = {
        rejoinType,
        maxRetries: readInteger(o['maxRetries'], 3, '--max-retries'),
        period: readInteger(o['period'], 3, '--period'),
        ...(o['dr'] === undefined ? {} : { dataRate: readInteger(o['dr'], 4, '--dr') }),
      };
      print(
        await client(o).request(
          'POST',
          `/devices/${encodeURIComponent(devEui)}/force-rejoin`,
          body,
        ),
      );
    });

  withConnection(
    program.command('downlink').description('queue a downlink for a device').argument('<devEui>'),
  )
    .requiredOption('--fport <n>', 'FPort, 1-223')
    .requiredOption('--hex <bytes>', 'payload in hex')
    .option('--confirmed', 'ask the device to acknowledge')
    .action(async (devEui: string, o: Record<string, unknown>) => {
      const data = Buffer.from(hexToBytes(String(o['hex']), '--hex')).toString('base64');
      const body = {
        fPort: readInteger(o['fport'], 8, '--fport'),
        data,
        confirmed: o['confirmed'] === true,
      };
      print(await client(o).request('POST', `/devices/${encodeURIComponent(devEui)}/queue`, body));
    });
}
