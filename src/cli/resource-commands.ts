import type { Command } from 'commander';
import { hexToBytes } from '../lorawan/bytes.js';
import { client } from './api-client.js';
import {
  collectTag,
  idOrNone,
  jsonObject,
  location,
  number,
  optional,
  segment,
  tagsField,
} from './command-inputs.js';
import { withConnection } from './connection.js';
import { registerDeviceBulkCommands } from './device-bulk-commands.js';
import { CliInputError } from './fail.js';
import { readInteger } from './frame-inputs.js';
import { runList, withListing } from './list-command.js';
import { type Column, field, printJson as print } from './output.js';

const APPLICATION_COLUMNS = [
  field('id'),
  field('name'),
  field('tenantId', 'tenant'),
  field('createdAt'),
];

interface GatewayRow {
  location?: { latitude: number; longitude: number } | null;
}
const GATEWAY_COLUMNS = [
  field<GatewayRow>('gatewayId'),
  field<GatewayRow>('name'),
  field<GatewayRow>('tenantId', 'tenant'),
  field<GatewayRow>('shared'),
  {
    heading: 'location',
    value: (g: GatewayRow) =>
      g.location == null ? null : `${g.location.latitude},${g.location.longitude}`,
  },
  field<GatewayRow>('lastSeenAt'),
];

interface DeviceProfileRow {
  adr?: { enabled: boolean };
}
const DEVICE_PROFILE_COLUMNS = [
  field<DeviceProfileRow>('id'),
  field<DeviceProfileRow>('name'),
  field<DeviceProfileRow>('tenantId', 'tenant'),
  field<DeviceProfileRow>('region'),
  field<DeviceProfileRow>('macVersion'),
  { heading: 'adr', value: (p: DeviceProfileRow) => p.adr?.enabled },
];

const DEVICE_COLUMNS = [
  field('devEui'),
  field('name'),
  field('applicationId', 'application'),
  field('macVersion'),
  field('deviceClass', 'class'),
  field('activation'),
  field('lastSeenAt'),
];

/** `--tag key=value` filter of a list: one tag, as the API's `tag=key:value`. */
function tagFilter(o: Record<string, unknown>): string | undefined {
  const tags = Object.entries((o['tag'] as Record<string, string> | undefined) ?? {});
  if (tags.length > 1) throw new CliInputError('--tag filters on one tag at a time');
  return tags[0] === undefined ? undefined : `${tags[0][0]}:${tags[0][1]}`;
}

const text = (o: Record<string, unknown>, name: string): string | undefined =>
  typeof o[name] === 'string' ? (o[name] as string) : undefined;

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
    ...optional('name', o['name']),
    ...(Object.keys(adrOptions).length === 0 ? {} : { adr }),
    ...integer('rx1Delay', 'rx1DelaySeconds', '--rx1-delay', 8),
    ...integer('rx2Dr', 'rx2Dr', '--rx2-dr', 8),
    ...integer('rx2Frequency', 'rx2FrequencyHz', '--rx2-frequency'),
    ...integer('devStatusInterval', 'devStatusIntervalSeconds', '--dev-status-interval'),
  };
}

export function registerResourceCommands(program: Command): void {
  registerApplicationCommands(program);
  registerGatewayCommands(program);
  registerDeviceProfileCommands(program);
  registerDeviceCommands(program);
}

function registerApplicationCommands(program: Command): void {
  const application = program.command('application').description('manage applications');
  withConnection(application.command('add').description('create an application'))
    .requiredOption('--name <name>', 'application name')
    .option('--tenant <id>', 'its tenant (default: yours, when you have one)')
    .action(async (o: Record<string, unknown>) =>
      print(
        await client(o).request('POST', '/applications', {
          name: o['name'],
          ...optional('tenantId', o['tenant']),
        }),
      ),
    );
  addListAndShow(application, {
    path: '/applications',
    itemsKey: 'applications',
    columns: APPLICATION_COLUMNS,
    plural: 'applications',
    show: 'show an application',
  });
  withConnection(
    application
      .command('update')
      .description('rename an application, or move it with its devices to a tenant')
      .argument('<id>'),
  )
    .option('--name <name>', 'new name')
    .option('--tenant <id>', "the tenant it goes to, or none (the operator's; operator only)")
    .action(async (id: string, o: Record<string, unknown>) =>
      print(
        await client(o).request('PATCH', `/applications/${segment(id)}`, {
          ...optional('name', o['name']),
          ...(o['tenant'] === undefined ? {} : { tenantId: idOrNone(o['tenant']) }),
        }),
      ),
    );
  withConnection(
    application.command('rm').description('delete an application without devices').argument('<id>'),
  ).action(async (id: string, o: Record<string, unknown>) => {
    await client(o).request('DELETE', `/applications/${segment(id)}`);
    print({ deleted: id });
  });
}

function registerGatewayCommands(program: Command): void {
  const gateway = program.command('gateway').description('manage gateways');
  withConnection(gateway.command('add').description('register a gateway'))
    .requiredOption('--id <eui>', 'gateway EUI (16 hex digits)')
    .requiredOption('--name <name>', 'gateway name')
    .option('--latitude <deg>', 'latitude')
    .option('--longitude <deg>', 'longitude')
    .option('--altitude <m>', 'altitude in metres')
    .option('--tenant <id>', 'its tenant (default: yours, when you have one)')
    .option('--shared', 'visible to every tenant, read-only')
    .option('--tag <key=value>', 'a tag (repeat for more)', collectTag)
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
        ...optional('tenantId', o['tenant']),
        ...(o['shared'] === true ? { shared: true } : {}),
        ...optional('tags', o['tag']),
      };
      print(await client(o).request('POST', '/gateways', body));
    });
  withListing(
    withConnection(gateway.command('list').description('list gateways')),
    'gatewayId, name, createdAt or updatedAt; -field for descending',
  )
    .option('--tenant <id>', 'only this tenant')
    .option('--shared', 'only shared gateways')
    .option('--tag <key=value>', 'only the gateways with this tag', collectTag)
    .option('--search <text>', 'part of a name or EUI')
    .action((o: Record<string, unknown>) =>
      runList(
        client(o),
        {
          path: '/gateways',
          query: {
            tenantId: text(o, 'tenant'),
            ...(o['shared'] === true ? { shared: true } : {}),
            tag: tagFilter(o),
            search: text(o, 'search'),
          },
          itemsKey: 'gateways',
          columns: GATEWAY_COLUMNS,
          what: 'gateways',
        },
        o,
      ),
    );
  withConnection(
    gateway.command('show').description('show a gateway and its counters').argument('<gatewayId>'),
  ).action(async (id: string, o: Record<string, unknown>) =>
    print(await client(o).request('GET', `/gateways/${segment(id)}`)),
  );
  withConnection(
    gateway
      .command('update')
      .description('change a gateway (only the options given)')
      .argument('<gatewayId>'),
  )
    .option('--name <name>', 'new name')
    .option('--location <lat,lon[,alt]>', 'where it is, or none')
    .option('--shared', 'visible to every tenant, read-only')
    .option('--no-shared', 'private to its tenant')
    .option('--tag <key=value>', 'its tags: every --tag replaces them all', collectTag)
    .option('--no-tags', 'remove every tag')
    .option('--tenant <id>', "the tenant it goes to, or none (the operator's; operator only)")
    .action(async (id: string, o: Record<string, unknown>) => {
      const body = {
        ...optional('name', o['name']),
        ...(o['location'] === undefined ? {} : { location: location(o['location'], '--location') }),
        ...optional('shared', o['shared']),
        ...tagsField(o),
        ...(o['tenant'] === undefined ? {} : { tenantId: idOrNone(o['tenant']) }),
      };
      print(await client(o).request('PATCH', `/gateways/${segment(id)}`, body));
    });
  withConnection(
    gateway.command('rm').description('delete a gateway').argument('<gatewayId>'),
  ).action(async (id: string, o: Record<string, unknown>) => {
    await client(o).request('DELETE', `/gateways/${segment(id)}`);
    print({ deleted: id });
  });
}

/** The options of `device-profile add` and `update`. */
function withDeviceProfileOptions(command: Command): Command {
  return command
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
    );
}

function registerDeviceProfileCommands(program: Command): void {
  const profile = program
    .command('device-profile')
    .description('manage device profiles: the MAC settings of a kind of device');
  withDeviceProfileOptions(
    withConnection(profile.command('add').description('create a device profile')),
  )
    .requiredOption('--name <name>', 'profile name')
    .option(
      '--tenant <id>',
      'its tenant (default: yours; none given by the operator: the catalogue)',
    )
    .action(async (o: Record<string, unknown>) =>
      print(
        await client(o).request('POST', '/device-profiles', {
          ...deviceProfileBody(o),
          ...optional('tenantId', o['tenant']),
        }),
      ),
    );
  addListAndShow(profile, {
    path: '/device-profiles',
    itemsKey: 'deviceProfiles',
    columns: DEVICE_PROFILE_COLUMNS,
    plural: 'device profiles',
    show: 'show a device profile',
  });
  withDeviceProfileOptions(
    withConnection(
      profile
        .command('update')
        .description('change the settings given; the others stay (ADR settings merge)')
        .argument('<id>'),
    ),
  )
    .option('--name <name>', 'new name')
    .action(async (id: string, o: Record<string, unknown>) => {
      const body = deviceProfileBody(o);
      if (Object.keys(body).length === 0) throw new CliInputError('nothing to change: see --help');
      print(await client(o).request('PATCH', `/device-profiles/${segment(id)}`, body));
    });
  withConnection(
    profile.command('rm').description('delete a device profile no device uses').argument('<id>'),
  ).action(async (id: string, o: Record<string, unknown>) => {
    await client(o).request('DELETE', `/device-profiles/${segment(id)}`);
    print({ deleted: id });
  });
}

function registerDeviceCommands(program: Command): void {
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
    .option('--tag <key=value>', 'a tag (repeat for more)', collectTag)
    .action(async (o: Record<string, unknown>) => {
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
        ...optional('tags', o['tag']),
      };
      print(await client(o).request('POST', '/devices', body));
    });
  withListing(
    withConnection(device.command('list').description('list devices')),
    'devEui, name, createdAt or updatedAt; -field for descending',
  )
    .option('--application <id>', 'only this application')
    .option('--tenant <id>', 'only this tenant')
    .option('--device-profile <id>', 'only the devices with this profile')
    .option('--tag <key=value>', 'only the devices with this tag', collectTag)
    .option('--search <text>', 'part of a name or DevEUI')
    .action((o: Record<string, unknown>) =>
      runList(
        client(o),
        {
          path: '/devices',
          query: {
            applicationId: text(o, 'application'),
            tenantId: text(o, 'tenant'),
            deviceProfileId: text(o, 'deviceProfile'),
            tag: tagFilter(o),
            search: text(o, 'search'),
          },
          itemsKey: 'devices',
          columns: DEVICE_COLUMNS,
          what: 'devices',
        },
        o,
      ),
    );
  withConnection(
    device.command('show').description('show a device and its session').argument('<devEui>'),
  ).action(async (devEui: string, o: Record<string, unknown>) =>
    print(await client(o).request('GET', `/devices/${segment(devEui)}`)),
  );
  withConnection(
    device
      .command('update')
      .description('change a device (only the options given)')
      .argument('<devEui>'),
  )
    .option('--name <name>', 'new name')
    .option('--device-profile <id>', 'its profile, or none (the default MAC settings)')
    .option('--class <A|C>', 'device class; applies at once')
    .option('--tag <key=value>', 'its tags: every --tag replaces them all', collectTag)
    .option('--no-tags', 'remove every tag')
    .action(async (devEui: string, o: Record<string, unknown>) => {
      const body = {
        ...optional('name', o['name']),
        ...(o['deviceProfile'] === undefined
          ? {}
          : { deviceProfileId: idOrNone(o['deviceProfile']) }),
        ...optional('deviceClass', o['class']),
        ...tagsField(o),
      };
      if (Object.keys(body).length === 0) throw new CliInputError('nothing to change: see --help');
      print(await client(o).request('PATCH', `/devices/${segment(devEui)}`, body));
    });
  withConnection(device.command('rm').description('delete a device').argument('<devEui>')).action(
    async (devEui: string, o: Record<string, unknown>) => {
      await client(o).request('DELETE', `/devices/${segment(devEui)}`);
      print({ deleted: devEui });
    },
  );
  withConnection(
    device.command('events').description("a device's latest events").argument('<devEui>'),
  )
    .option('--limit <n>', 'how many', '20')
    .action(async (devEui: string, o: Record<string, unknown>) => {
      const limit = readInteger(o['limit'], 10, '--limit');
      print(await client(o).request('GET', `/devices/${segment(devEui)}/events?limit=${limit}`));
    });
  registerDeviceBulkCommands(device);

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

/** `list` (tenant and name filters, paging) and `show <id>` of a tenant-owned catalogue. */
function addListAndShow<T>(
  parent: Command,
  spec: {
    path: string;
    itemsKey: string;
    columns: readonly Column<T>[];
    plural: string;
    show: string;
  },
): void {
  withListing(
    withConnection(parent.command('list').description(`list ${spec.plural}`)),
    'createdAt, updatedAt, name or id; -field for descending',
  )
    .option('--tenant <id>', 'only this tenant')
    .option('--search <text>', 'part of the name')
    .action((o: Record<string, unknown>) =>
      runList(
        client(o),
        {
          path: spec.path,
          query: { tenantId: text(o, 'tenant'), search: text(o, 'search') },
          itemsKey: spec.itemsKey,
          columns: spec.columns,
          what: spec.plural,
        },
        o,
      ),
    );
  withConnection(parent.command('show').description(spec.show).argument('<id>')).action(
    async (id: string, o: Record<string, unknown>) =>
      print(await client(o).request('GET', `${spec.path}/${segment(id)}`)),
  );
}
