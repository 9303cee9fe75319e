import type { Command } from 'commander';
import { client } from './api-client.js';
import { optional, segment } from './command-inputs.js';
import { withConnection } from './connection.js';
import { runList, withListing } from './list-command.js';
import { field, printJson } from './output.js';

const API_KEY_COLUMNS = [
  field('id'),
  field('name'),
  field('role'),
  field('tenantId', 'tenant'),
  field('applicationId', 'application'),
  field('readOnly'),
  field('expiresAt'),
  field('revokedAt'),
  field('lastUsedAt'),
];

export function registerApiKeyCommands(program: Command): void {
  const apiKey = program
    .command('api-key')
    .description('manage API keys (the token is shown once)');
  withConnection(
    apiKey
      .command('add')
      .description('create an API key; its token is printed once, never again: keep it safe'),
  )
    .requiredOption('--name <name>', 'what the key is for')
    .requiredOption(
      '--role <role>',
      'owner, admin, operator, viewer, integration or operator-admin',
    )
    .option('--tenant <id>', 'the tenant of a tenant role')
    .option('--application <id>', 'the application of an integration key')
    .option('--read-only', 'the key only reads')
    .option('--expires-at <time>', 'ISO 8601 time when it stops working')
    .action(async (o: Record<string, unknown>) => {
      const body = {
        name: o['name'],
        role: o['role'],
        ...optional('tenantId', o['tenant']),
        ...optional('applicationId', o['application']),
        ...(o['readOnly'] === true ? { readOnly: true } : {}),
        ...optional('expiresAt', o['expiresAt']),
      };
      const created = await client(o).request('POST', '/api-keys', body);
      process.stderr.write('galet: the token is shown this once: keep it now\n');
      printJson(created);
    });
  withListing(
    withConnection(apiKey.command('list').description('list API keys (never their tokens)')),
    'createdAt or name, -field for descending',
  )
    .option('--tenant <id>', 'only the keys of this tenant')
    .option('--application <id>', 'only the keys of this application')
    .option('--active', 'leave out revoked keys')
    .action((o: Record<string, unknown>) =>
      runList(
        client(o),
        {
          path: '/api-keys',
          query: {
            tenantId: o['tenant'] as string | undefined,
            applicationId: o['application'] as string | undefined,
            ...(o['active'] === true ? { includeRevoked: false } : {}),
          },
          itemsKey: 'apiKeys',
          columns: API_KEY_COLUMNS,
          what: 'API keys',
        },
        o,
      ),
    );
  withConnection(
    apiKey.command('show').description('show an API key (never its token)').argument('<id>'),
  ).action(async (id: string, o: Record<string, unknown>) =>
    printJson(await client(o).request('GET', `/api-keys/${segment(id)}`)),
  );
  withConnection(
    apiKey
      .command('rm')
      .description('revoke an API key: it stops working at once')
      .argument('<id>'),
  ).action(async (id: string, o: Record<string, unknown>) => {
    await client(o).request('DELETE', `/api-keys/${segment(id)}`);
    printJson({ revoked: id });
  });
}
