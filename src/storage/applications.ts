import { randomUUID } from 'node:crypto';
import type { Selectable } from 'kysely';
import type { GaletDatabase } from './database.js';
import { constraintViolation, StorageError } from './errors.js';
import type { ApplicationsTable, IsoTimestamp } from './schema.js';
import type { SecretBox } from './secret-box.js';
import { clock, type ListOptions, page, type RepositoryOptions, toName } from './values.js';

export interface Application {
  id: string;
  name: string;
  createdAt: IsoTimestamp;
  updatedAt: IsoTimestamp;
}

export interface NewApplication {
  /** Default: a new UUID. A provider's copy of a linked application keeps the network's id. */
  id?: string;
  name: string;
}

/** Applications: the owner-side grouping of devices. */
export class ApplicationRepository {
  readonly #db: GaletDatabase['db'];
  readonly #now: () => IsoTimestamp;

  constructor(database: GaletDatabase, _secrets: SecretBox, options?: RepositoryOptions) {
    this.#db = database.db;
    this.#now = clock(options);
  }

  async create(input: NewApplication): Promise<Application> {
    const now = this.#now();
    const row = {
      id: input.id === undefined ? randomUUID() : toName(input.id, 'application id', 64),
      name: toName(input.name, 'application name'),
      created_at: now,
      updated_at: now,
    };
    await this.#db.insertInto('applications').values(row).execute();
    return toApplication(row);
  }

  async get(id: string): Promise<Application | undefined> {
    const row = await this.#db
      .selectFrom('applications')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    return row && toApplication(row);
  }

  /** Oldest first. */
  async list(options?: ListOptions): Promise<Application[]> {
    const { limit, offset } = page(options);
    const rows = await this.#db
      .selectFrom('applications')
      .selectAll()
      .orderBy('created_at')
      .orderBy('id')
      .limit(limit)
      .offset(offset)
      .execute();
    return rows.map(toApplication);
  }

  /** False when there was no such application; `STILL_REFERENCED` while it has devices. */
  async delete(id: string): Promise<boolean> {
    try {
      const result = await this.#db
        .deleteFrom('applications')
        .where('id', '=', id)
        .executeTakeFirst();
      return result.numDeletedRows > 0n;
    } catch (error) {
      if (constraintViolation(error) === 'foreign-key') {
        throw new StorageError(
          'STILL_REFERENCED',
          `application ${id} still has devices: delete them first`,
          { cause: error },
        );
      }
      throw error;
    }
  }
}

function toApplication(row: Selectable<ApplicationsTable>): Application {
  return { id: row.id, name: row.name, createdAt: row.created_at, updatedAt: row.updated_at };
}
