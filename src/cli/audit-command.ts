import type { Command } from 'commander';
import { client } from './api-client.js';
import { withConnection } from './connection.js';
import { CliInputError } from './fail.js';
import { runList, withListing } from './list-command.js';
import { field } from './output.js';

interface AuditRow {
  actor?: { type: string; id?: string | null };
  objectType?: string | null;
  objectId?: string | null;
}

const AUDIT_COLUMNS = [
  field<AuditRow>('id'),
  field<AuditRow>('time'),
  {
    heading: 'actor',
    value: (e: AuditRow) => (e.actor?.id == null ? e.actor?.type : `${e.actor.type}:${e.actor.id}`),
  },
  field<AuditRow>('action'),
  {
    heading: 'object',
    value: (e: AuditRow) => (e.objectId == null ? e.objectType : `${e.objectType}:${e.objectId}`),
  },
  field<AuditRow>('tenantId', 'tenant'),
  field<AuditRow>('outcome'),
  field<AuditRow>('sourceIp', 'from'),
];

export function registerAuditCommand(program: Command): void {
  withListing(
    withConnection(
      program.command('audit').description('read the audit log, newest first: GET /audit'),
    ),
  )
    .option('--tenant <id>', "only this tenant's entries")
    .option('--actor <id>', 'only what this user or API key did')
    .option('--action <action>', 'only this action, e.g. device.create')
    .option('--from <time>', 'from this ISO 8601 time (included)')
    .option('--to <time>', 'until this ISO 8601 time (excluded)')
    .option('--before-id <id>', 'only entries older than this one')
    .action((o: Record<string, unknown>) => {
      const text = (name: string) =>
        typeof o[name] === 'string' ? (o[name] as string) : undefined;
      const beforeId = text('beforeId');
      if (beforeId !== undefined && !/^[1-9]\d*$/.test(beforeId)) {
        throw new CliInputError(`--before-id must be an entry id, got ${beforeId}`);
      }
      return runList(
        client(o),
        {
          path: '/audit',
          query: {
            tenantId: text('tenant'),
            actorId: text('actor'),
            action: text('action'),
            from: text('from'),
            to: text('to'),
            beforeId,
          },
          itemsKey: 'entries',
          columns: AUDIT_COLUMNS,
          what: 'audit entries',
        },
        o,
      );
    });
}
