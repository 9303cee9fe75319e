import type { Kysely, Migration } from 'kysely';
import type { DatabaseDialect } from '../schema.js';
import { strictTables } from './column-types.js';

/**
 * OIDC back-channel logout and the audit of shared measurement reads (issue 6).
 *
 * - `console_sessions` remembers where an OIDC login came from: the provider (`oidc_issuer`),
 *   the person there (`oidc_subject`, the ID token's `sub`) and the provider's session
 *   (`oidc_sid_hash`, SHA-256 of the ID token's `sid`), so that a logout token naming that
 *   session or that person ends it. All null for a password login.
 * - `oidc_logout_tokens` remembers the logout tokens accepted (SHA-256 of issuer and `jti`)
 *   until they would be refused as too old anyway: a replayed token is refused, on every
 *   instance that shares the database.
 * - `audit_log.related_tenant_id`: a second tenant an entry is about, whose owners and admins see
 *   it too (the receiving tenant of a measurement share, for the reads of shared measurements,
 *   whose entry belongs to the provider's tenant).
 */
export function oidcLogoutSharedReadsMigration(dialect: DatabaseDialect): Migration {
  const strict = strictTables(dialect);
  return {
    // biome-ignore lint/suspicious/noExplicitAny: a migration is independent of the current schema types.
    async up(db: Kysely<any>): Promise<void> {
      // One column per statement: SQLite adds one column per ALTER TABLE.
      for (const column of ['oidc_issuer', 'oidc_subject', 'oidc_sid_hash']) {
        await db.schema.alterTable('console_sessions').addColumn(column, 'text').execute();
      }
      await db.schema
        .createIndex('console_sessions_oidc_subject_idx')
        .on('console_sessions')
        .columns(['oidc_issuer', 'oidc_subject'])
        .execute();
      await db.schema
        .createIndex('console_sessions_oidc_sid_idx')
        .on('console_sessions')
        .columns(['oidc_issuer', 'oidc_sid_hash'])
        .execute();

      await strict(
        db.schema
          .createTable('oidc_logout_tokens')
          // SHA-256 of `<issuer>\n<jti>`, hex.
          .addColumn('token_hash', 'text', (c) => c.primaryKey())
          .addColumn('expires_at', 'text', (c) => c.notNull()),
      ).execute();
      await db.schema
        .createIndex('oidc_logout_tokens_expires_idx')
        .on('oidc_logout_tokens')
        .column('expires_at')
        .execute();

      await db.schema.alterTable('audit_log').addColumn('related_tenant_id', 'text').execute();
      await db.schema
        .createIndex('audit_log_related_tenant_idx')
        .on('audit_log')
        .columns(['related_tenant_id', 'id'])
        .execute();
    },
    // biome-ignore lint/suspicious/noExplicitAny: see above.
    async down(db: Kysely<any>): Promise<void> {
      await db.schema.dropIndex('audit_log_related_tenant_idx').execute();
      await db.schema.alterTable('audit_log').dropColumn('related_tenant_id').execute();
      await db.schema.dropTable('oidc_logout_tokens').execute();
      await db.schema.dropIndex('console_sessions_oidc_sid_idx').execute();
      await db.schema.dropIndex('console_sessions_oidc_subject_idx').execute();
      for (const column of ['oidc_sid_hash', 'oidc_subject', 'oidc_issuer']) {
        await db.schema.alterTable('console_sessions').dropColumn(column).execute();
      }
    },
  };
}
