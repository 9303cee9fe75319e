import type { Kysely, Migration } from 'kysely';
import type { DatabaseDialect } from '../schema.js';
import { columnTypes, strictTables } from './column-types.js';

/**
 * Provider link tokens (issue 5): the credential a provider's server connects with, one
 * application each. Only the token's SHA-256 is kept, and the KEK both parties derive from it
 * (to wrap network session keys on the link), sealed under the network's master key.
 */
export function linkTokensMigration(dialect: DatabaseDialect): Migration {
  const t = columnTypes(dialect);
  const strict = strictTables(dialect);
  return {
    // biome-ignore lint/suspicious/noExplicitAny: a migration is independent of the current schema types.
    async up(db: Kysely<any>): Promise<void> {
      await strict(
        db.schema
          .createTable('link_tokens')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('application_id', 'text', (c) =>
            c.notNull().references('applications.id').onDelete('cascade'),
          )
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('token_hash', 'text', (c) => c.notNull().unique())
          .addColumn('kek_enc', t.bytes, (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('last_used_at', 'text')
          .addColumn('revoked_at', 'text'),
      ).execute();
      await db.schema
        .createIndex('link_tokens_application_idx')
        .on('link_tokens')
        .column('application_id')
        .execute();
    },
    // biome-ignore lint/suspicious/noExplicitAny: see above.
    async down(db: Kysely<any>): Promise<void> {
      await db.schema.dropTable('link_tokens').execute();
    },
  };
}
