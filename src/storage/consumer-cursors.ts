import type { GaletDatabase } from './database.js';
import { StorageError } from './errors.js';
import type { SecretBox } from './secret-box.js';
import { assertInteger, clock, type RepositoryOptions } from './values.js';

const CURSOR_NAME = /^[a-z0-9][a-z0-9:._-]{0,127}$/;

function checkedName(name: string): string {
  if (typeof name !== 'string' || !CURSOR_NAME.test(name)) {
    throw new StorageError(
      'INVALID_INPUT',
      'a consumer cursor name is 1-128 characters of a-z, 0-9, ":", ".", "_" and "-"',
    );
  }
  return name;
}

/** The last event id each consumer of the event log handled (0: none yet). */
export class ConsumerCursorRepository {
  readonly #db: GaletDatabase['db'];
  readonly #now: () => string;

  constructor(database: GaletDatabase, _secrets: SecretBox, options?: RepositoryOptions) {
    this.#db = database.db;
    this.#now = clock(options);
  }

  async get(name: string): Promise<number> {
    const row = await this.#db
      .selectFrom('consumer_cursors')
      .select('last_event_id')
      .where('name', '=', checkedName(name))
      .executeTakeFirst();
    return row === undefined ? 0 : Number(row.last_event_id);
  }

  /** Stores the position (an upsert; a position never moves back). */
  async save(name: string, lastEventId: number): Promise<void> {
    assertInteger(lastEventId, 0, Number.MAX_SAFE_INTEGER, 'lastEventId');
    const now = this.#now();
    await this.#db
      .insertInto('consumer_cursors')
      .values({ name: checkedName(name), last_event_id: lastEventId, updated_at: now })
      .onConflict((oc) =>
        oc
          .column('name')
          .doUpdateSet({ last_event_id: lastEventId, updated_at: now })
          .where('consumer_cursors.last_event_id', '<', lastEventId),
      )
      .execute();
  }

  async remove(name: string): Promise<void> {
    await this.#db.deleteFrom('consumer_cursors').where('name', '=', checkedName(name)).execute();
  }
}
