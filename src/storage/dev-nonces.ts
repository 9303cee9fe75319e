import type { GaletDatabase } from './database.js';
import { constraintViolation, StorageError } from './errors.js';
import type { IsoTimestamp } from './schema.js';
import type { SecretBox } from './secret-box.js';
import { assertInteger, clock, type RepositoryOptions, toEui } from './values.js';

/** Whether a JoinRequest's DevNonce is seen for the first time. */
export type DevNonceOutcome = 'new' | 'replayed';

/**
 * DevNonces used by each device's JoinRequests (join server side), so a replayed JoinRequest
 * is refused (LoRaWAN 1.0.4 §6.2.5, 1.1 §6.2.5). They go with the device when it is deleted.
 */
export class DevNonceRepository {
  readonly #db: GaletDatabase['db'];
  readonly #now: () => IsoTimestamp;

  constructor(database: GaletDatabase, _secrets: SecretBox, options?: RepositoryOptions) {
    this.#db = database.db;
    this.#now = clock(options);
  }

  /**
   * Records a DevNonce: 'new' the first time, 'replayed' after. One INSERT ... ON CONFLICT DO
   * NOTHING (both engines): the primary key decides, so of two concurrent JoinRequests with the
   * same DevNonce exactly one is 'new', and no transaction is left aborted by an error.
   * `MISSING_REFERENCE` for an unknown device.
   */
  async record(devEui: string, devNonce: number): Promise<DevNonceOutcome> {
    const eui = toEui(devEui, 'DevEUI');
    assertInteger(devNonce, 0, 0xffff, 'DevNonce');
    try {
      const result = await this.#db
        .insertInto('dev_nonces')
        .values({ dev_eui: eui, dev_nonce: devNonce, created_at: this.#now() })
        .onConflict((oc) => oc.columns(['dev_eui', 'dev_nonce']).doNothing())
        .executeTakeFirst();
      return (result.numInsertedOrUpdatedRows ?? 0n) > 0n ? 'new' : 'replayed';
    } catch (error) {
      if (constraintViolation(error) === 'foreign-key') {
        throw new StorageError('MISSING_REFERENCE', `device ${eui} does not exist`, {
          cause: error,
        });
      }
      throw error;
    }
  }

  /** The highest DevNonce recorded (LoRaWAN 1.0.4/1.1 DevNonces are counters), null if none. */
  async maxFor(devEui: string): Promise<number | null> {
    const row = await this.#db
      .selectFrom('dev_nonces')
      .select((eb) => eb.fn.max('dev_nonce').as('max'))
      .where('dev_eui', '=', toEui(devEui, 'DevEUI'))
      .executeTakeFirst();
    return row?.max ?? null;
  }
}
