import type { Command } from 'commander';
import { client } from './api-client.js';
import { optional, segment } from './command-inputs.js';
import { withConnection } from './connection.js';
import { CliInputError } from './fail.js';
import { runList, withListing } from './list-command.js';
import { field, printJson } from './output.js';
import { askSecret, readStdinLines } from './prompt.js';

interface UserRow {
  memberships?: { tenantId: string; role: string; applicationId: string | null }[];
}

const USER_COLUMNS = [
  field<UserRow>('id'),
  field<UserRow>('email'),
  field<UserRow>('operatorAdmin'),
  field<UserRow>('disabled'),
  field<UserRow>('totpEnabled', 'totp'),
  {
    heading: 'memberships',
    value: (u: UserRow) =>
      (u.memberships ?? [])
        .map(
          (m) => `${m.tenantId}:${m.role}${m.applicationId === null ? '' : `@${m.applicationId}`}`,
        )
        .join(' '),
  },
  field<UserRow>('lastLoginAt'),
];

/** A password from standard input (`--password-stdin`) or, at a terminal, asked twice. */
async function newPassword(
  o: Record<string, unknown>,
): Promise<{ password: string; current?: string }> {
  if (o['passwordStdin'] === true) {
    const [password, current] = await readStdinLines(2, '--password-stdin');
    return { password: password as string, ...(current ? { current } : {}) };
  }
  const password = await askSecret('new password: ', 'a password (--password-stdin)');
  if ((await askSecret('again: ', 'a password (--password-stdin)')) !== password) {
    throw new CliInputError('the two passwords differ');
  }
  return { password };
}

export function registerUserCommands(program: Command): void {
  const user = program
    .command('user')
    .description('manage console users and their roles in tenants');
  withConnection(
    user
      .command('add')
      .description(
        'create a user with a role in a tenant, or an operator-admin (--operator-admin)',
      ),
  )
    .requiredOption('--email <address>', 'e-mail address (the login)')
    .option('--tenant <id>', 'the tenant of the role')
    .option('--role <role>', 'owner, admin, operator, viewer or integration (with --application)')
    .option('--application <id>', 'the one application of an integration role')
    .option('--operator-admin', "the network operator's global role (the operator only)")
    .option('--password-stdin', 'read the password from standard input (else asked twice)')
    .action(async (o: Record<string, unknown>) => {
      const { password } = await newPassword(o);
      const body = {
        email: o['email'],
        password,
        ...optional('tenantId', o['tenant']),
        ...optional('role', o['role']),
        ...optional('applicationId', o['application']),
        ...(o['operatorAdmin'] === true ? { operatorAdmin: true } : {}),
      };
      printJson(await client(o).request('POST', '/users', body));
    });
  withListing(
    withConnection(user.command('list').description('list the users of the tenants you manage')),
    'createdAt or email, -field for descending',
  )
    .option('--tenant <id>', 'only the users of this tenant')
    .option('--search <text>', 'part of the e-mail address')
    .action((o: Record<string, unknown>) =>
      runList(
        client(o),
        {
          path: '/users',
          query: {
            tenantId: o['tenant'] as string | undefined,
            search: o['search'] as string | undefined,
          },
          itemsKey: 'users',
          columns: USER_COLUMNS,
          what: 'users',
        },
        o,
      ),
    );
  withConnection(user.command('show').description('show a user').argument('<id>')).action(
    async (id: string, o: Record<string, unknown>) =>
      printJson(await client(o).request('GET', `/users/${segment(id)}`)),
  );
  withConnection(
    user
      .command('update')
      .description('change a password, disable or enable an account, reset its TOTP')
      .argument('<id>'),
  )
    .option(
      '--password-stdin',
      'a new password from standard input; your own takes your current one on the second line',
    )
    .option('--password', 'ask a new password at the terminal')
    .option('--disable', 'disable the account (its sessions end)')
    .option('--enable', 'enable it again')
    .option('--operator-admin', 'make it an operator-admin (the operator only)')
    .option('--no-operator-admin', 'no longer an operator-admin')
    .option('--reset-totp', 'remove its second factor')
    .action(async (id: string, o: Record<string, unknown>) => {
      if (o['disable'] === true && o['enable'] === true) {
        throw new CliInputError('--disable and --enable go one at a time');
      }
      const secret =
        o['passwordStdin'] === true || o['password'] === true ? await newPassword(o) : undefined;
      const body = {
        ...(secret === undefined ? {} : { password: secret.password }),
        ...(secret?.current === undefined ? {} : { currentPassword: secret.current }),
        ...(o['disable'] === true
          ? { disabled: true }
          : o['enable'] === true
            ? { disabled: false }
            : {}),
        ...optional('operatorAdmin', o['operatorAdmin']),
        ...(o['resetTotp'] === true ? { resetTotp: true } : {}),
      };
      if (Object.keys(body).length === 0) throw new CliInputError('nothing to change: see --help');
      printJson(await client(o).request('PATCH', `/users/${segment(id)}`, body));
    });
  withConnection(user.command('rm').description('delete a user').argument('<id>')).action(
    async (id: string, o: Record<string, unknown>) => {
      await client(o).request('DELETE', `/users/${segment(id)}`);
      printJson({ deleted: id });
    },
  );
  withConnection(
    user
      .command('grant')
      .description('give a user a role in a tenant (or change it)')
      .argument('<id>'),
  )
    .requiredOption('--tenant <id>', 'the tenant')
    .requiredOption('--role <role>', 'owner, admin, operator, viewer or integration')
    .option('--application <id>', 'the one application of an integration role')
    .action(async (id: string, o: Record<string, unknown>) =>
      printJson(
        await client(o).request(
          'PUT',
          `/users/${segment(id)}/memberships/${segment(String(o['tenant']))}`,
          {
            role: o['role'],
            ...optional('applicationId', o['application']),
          },
        ),
      ),
    );
  withConnection(
    user.command('revoke').description("remove a user's role in a tenant").argument('<id>'),
  )
    .requiredOption('--tenant <id>', 'the tenant')
    .action(async (id: string, o: Record<string, unknown>) => {
      await client(o).request(
        'DELETE',
        `/users/${segment(id)}/memberships/${segment(String(o['tenant']))}`,
      );
      printJson({ userId: id, tenantId: o['tenant'], revoked: true });
    });
}
