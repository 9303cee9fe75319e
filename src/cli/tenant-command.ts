import type { Command } from 'commander';
import { client } from './api-client.js';
import { integerOrNone, jsonObject, location, optional, segment } from './command-inputs.js';
import { withConnection } from './connection.js';
import { runList, withListing } from './list-command.js';
import { field, printJson } from './output.js';

interface TenantRow {
  quotas?: { maxDevices: number | null; maxGateways: number | null };
  settings?: { timeZone?: string };
}

const TENANT_COLUMNS = [
  field<TenantRow>('id'),
  field<TenantRow>('name'),
  field<TenantRow>('kind'),
  { heading: 'maxDevices', value: (t: TenantRow) => t.quotas?.maxDevices ?? 'none' },
  { heading: 'maxGateways', value: (t: TenantRow) => t.quotas?.maxGateways ?? 'none' },
  { heading: 'timeZone', value: (t: TenantRow) => t.settings?.timeZone },
  field<TenantRow>('createdAt'),
];

/** The options of `tenant add` and `tenant update`. */
function withTenantOptions(command: Command): Command {
  return command
    .option('--kind <kind>', 'operator, commune or provider (the operator only)')
    .option('--max-devices <n>', 'device quota, or none (the operator only)')
    .option('--max-gateways <n>', 'gateway quota, or none (the operator only)')
    .option('--time-zone <zone>', 'IANA time zone, e.g. Europe/Paris')
    .option('--location <lat,lon>', 'where the tenant is, or none')
    .option('--events-days <n>', 'days events are kept, or none')
    .option('--audit-days <n>', 'days audit entries are kept, or none')
    .option(
      '--json-settings <json>',
      'any settings as a JSON object; the options above override it',
    );
}

/** The body of `POST /tenants` or `PATCH /tenants/{id}`. */
function tenantBody(o: Record<string, unknown>): Record<string, unknown> {
  const quotas = {
    ...(o['maxDevices'] === undefined
      ? {}
      : { maxDevices: integerOrNone(o['maxDevices'], '--max-devices') }),
    ...(o['maxGateways'] === undefined
      ? {}
      : { maxGateways: integerOrNone(o['maxGateways'], '--max-gateways') }),
  };
  const retention = {
    ...(o['eventsDays'] === undefined
      ? {}
      : { eventsDays: integerOrNone(o['eventsDays'], '--events-days') }),
    ...(o['auditDays'] === undefined
      ? {}
      : { auditDays: integerOrNone(o['auditDays'], '--audit-days') }),
  };
  const given =
    o['jsonSettings'] === undefined ? {} : jsonObject(o['jsonSettings'], '--json-settings');
  const settings = {
    ...given,
    ...optional('timeZone', o['timeZone']),
    ...(o['location'] === undefined ? {} : { location: location(o['location'], '--location') }),
    ...(Object.keys(retention).length === 0
      ? {}
      : { retention: { ...(given['retention'] as object | undefined), ...retention } }),
  };
  return {
    ...optional('name', o['name']),
    ...optional('kind', o['kind']),
    ...(Object.keys(quotas).length === 0 ? {} : { quotas }),
    ...(Object.keys(settings).length === 0 ? {} : { settings }),
  };
}

export function registerTenantCommands(program: Command): void {
  const tenant = program
    .command('tenant')
    .description('manage tenants: the operator, communes, service providers');
  withTenantOptions(
    withConnection(tenant.command('add').description('create a tenant (the operator only)')),
  )
    .requiredOption('--name <name>', 'tenant name')
    .action(async (o: Record<string, unknown>) =>
      printJson(await client(o).request('POST', '/tenants', tenantBody(o))),
    );
  withListing(
    withConnection(tenant.command('list').description('list the tenants you see')),
    'createdAt or name, -field for descending',
  )
    .option('--kind <kind>', 'only tenants of this kind')
    .option('--search <text>', 'part of the name')
    .action((o: Record<string, unknown>) =>
      runList(
        client(o),
        {
          path: '/tenants',
          query: {
            kind: o['kind'] as string | undefined,
            search: o['search'] as string | undefined,
          },
          itemsKey: 'tenants',
          columns: TENANT_COLUMNS,
          what: 'tenants',
        },
        o,
      ),
    );
  withConnection(tenant.command('show').description('show a tenant').argument('<id>')).action(
    async (id: string, o: Record<string, unknown>) =>
      printJson(await client(o).request('GET', `/tenants/${segment(id)}`)),
  );
  withTenantOptions(
    withConnection(
      tenant
        .command('update')
        .description('change a tenant (only the options given)')
        .argument('<id>'),
    ),
  )
    .option('--name <name>', 'new name')
    .action(async (id: string, o: Record<string, unknown>) =>
      printJson(await client(o).request('PATCH', `/tenants/${segment(id)}`, tenantBody(o))),
    );
  withConnection(
    tenant
      .command('rm')
      .description('delete a tenant that owns nothing (the operator only)')
      .argument('<id>'),
  ).action(async (id: string, o: Record<string, unknown>) => {
    await client(o).request('DELETE', `/tenants/${segment(id)}`);
    printJson({ deleted: id });
  });
}
