import type { Kysely } from 'kysely';
import type { GaletDatabase } from './database.js';
import { StorageError } from './errors.js';
import type { DatabaseDialect, IsoTimestamp, Schema } from './schema.js';
import type { SecretBox } from './secret-box.js';
import { assertInteger, clock, type RepositoryOptions, toEui, UINT32_MAX } from './values.js';

/** Sessions of a device whose keystreams are remembered: the latest its join server issued. */
export const KEPT_KEYSTREAM_SESSIONS = 3;
/** Counters remembered one by one per session; below the oldest of them, every one is refused. */
export const KEPT_KEYSTREAMS_PER_SESSION = 256;

const SESSION_KEY_ID = /^[0-9a-f]{32}$/;
const ITEM_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** What became of a claim of one keystream (session, downlink counter) for one queue item. */
export type KeystreamClaim =
  /** The keystream is this item's: new, or claimed by it before (`again`). */
  | { outcome: 'claimed'; again: boolean }
  /** It encrypted another item. */
  | { outcome: 'taken'; queueItemId: string }
  /** Older than every counter remembered for the session: it may have encrypted another item. */
  | { outcome: 'belowFloor'; floor: number }
  /**
   * A session this store does not know for the device: one its join server issued before the
   * ones kept (pruned), one of another device, or one it never issued.
   */
  | { outcome: 'unknownSession' };

export interface KeystreamClaimRequest {
  devEui: string;
  /** The network's name of the session (`appSessionKeyId`: 32 hex digits). */
  sessionKeyId: string;
  fCntDown: number;
  queueItemId: string;
}

/**
 * The provider's memory of downlink keystreams (operator-blind downlinks, migration 0014). An
 * FRMPayload is AES-CTR under the session's AppSKey with the downlink counter in the counter
 * block: two items encrypted for one (session, counter) would give their XOR to whoever holds
 * both ciphertexts (the network). So each keystream is claimed for one queue item, in the
 * database, and the claim survives restarts.
 *
 * Bounded, by design:
 * - **Sessions.** `startSession` records each session the provider's join server issues; a
 *   device keeps its latest `KEPT_KEYSTREAM_SESSIONS`, older ones are deleted with their
 *   counters. A claim for a session not recorded for the device is refused (`unknownSession`):
 *   the network can never make the provider encrypt again for a session that was forgotten.
 *   One exception keeps the sessions issued before this memory existed working: a device with
 *   no session recorded at all adopts the first one claimed.
 * - **Counters.** A session keeps its `KEPT_KEYSTREAMS_PER_SESSION` highest counters; when a
 *   claim adds one more, the lowest are deleted and the session's floor rises to the lowest
 *   kept: every counter below it is refused (`belowFloor`), as if used. A network's downlink
 *   counter only moves forward, so refusing those costs nothing.
 * So a device holds at most 3 × 256 rows, and they go with it (ON DELETE CASCADE).
 *
 * Atomic on both engines: a claim is one transaction that first locks the device's row
 * (PostgreSQL `FOR NO KEY UPDATE`; SQLite transactions are serial, `BEGIN IMMEDIATE`), so two
 * concurrent claims of one keystream for two items have exactly one winner, and a claim cannot
 * slip under a floor being raised.
 */
export class DownlinkKeystreamRepository {
  readonly #db: GaletDatabase['db'];
  readonly #dialect: DatabaseDialect;
  readonly #now: () => IsoTimestamp;

  constructor(database: GaletDatabase, _secrets: SecretBox, options?: RepositoryOptions) {
    this.#db = database.db;
    this.#dialect = database.dialect;
    this.#now = clock(options);
  }

  /**
   * A session the join server issued for the device (at its JoinAccept): remembered, and the
   * device's sessions beyond the latest `KEPT_KEYSTREAM_SESSIONS` forgotten with their counters.
   * `MISSING_REFERENCE` for an unknown device.
   */
  async startSession(devEui: string, sessionKeyId: string): Promise<void> {
    const eui = toEui(devEui, 'DevEUI');
    checkSessionKeyId(sessionKeyId);
    await this.#db.transaction().execute(async (trx) => {
      await this.#lockDevice(trx, eui);
      const existing = await trx
        .selectFrom('downlink_keystream_sessions')
        .select('dev_eui')
        .where('session_key_id', '=', sessionKeyId)
        .executeTakeFirst();
      if (existing !== undefined) {
        if (existing.dev_eui !== eui) {
          throw new StorageError(
            'ALREADY_EXISTS',
            `session ${sessionKeyId} belongs to another device`,
          );
        }
        return;
      }
      await trx
        .insertInto('downlink_keystream_sessions')
        .values({ session_key_id: sessionKeyId, dev_eui: eui, started_at: this.#now() })
        .execute();
      const older = await trx
        .selectFrom('downlink_keystream_sessions')
        .select('session_key_id')
        .where('dev_eui', '=', eui)
        .orderBy('started_at', 'desc')
        .orderBy('session_key_id')
        .offset(KEPT_KEYSTREAM_SESSIONS)
        .limit(1000)
        .execute();
      const ended = older.map((row) => row.session_key_id).filter((id) => id !== sessionKeyId);
      if (ended.length > 0) {
        // Their counters go with them (ON DELETE CASCADE).
        await trx
          .deleteFrom('downlink_keystream_sessions')
          .where('session_key_id', 'in', ended)
          .execute();
      }
    });
  }

  /**
   * Claims the keystream of (session, counter) for a queue item (see the class comment for the
   * outcomes). `MISSING_REFERENCE` for an unknown device, `INVALID_INPUT` for a malformed value.
   */
  async claim(request: KeystreamClaimRequest): Promise<KeystreamClaim> {
    const eui = toEui(request.devEui, 'DevEUI');
    checkSessionKeyId(request.sessionKeyId);
    assertInteger(request.fCntDown, 0, UINT32_MAX, 'FCntDown');
    if (typeof request.queueItemId !== 'string' || !ITEM_ID.test(request.queueItemId)) {
      throw new StorageError('INVALID_INPUT', 'a downlink id is a lower-case UUID');
    }
    const { sessionKeyId, fCntDown, queueItemId } = request;
    return this.#db.transaction().execute(async (trx): Promise<KeystreamClaim> => {
      await this.#lockDevice(trx, eui);
      let session = await trx
        .selectFrom('downlink_keystream_sessions')
        .select(['dev_eui', 'f_cnt_down_floor'])
        .where('session_key_id', '=', sessionKeyId)
        .executeTakeFirst();
      if (session === undefined) {
        const recorded = await trx
          .selectFrom('downlink_keystream_sessions')
          .select('session_key_id')
          .where('dev_eui', '=', eui)
          .limit(1)
          .executeTakeFirst();
        if (recorded !== undefined) return { outcome: 'unknownSession' };
        // A session issued before this memory existed: the device's first one is adopted.
        await trx
          .insertInto('downlink_keystream_sessions')
          .values({ session_key_id: sessionKeyId, dev_eui: eui, started_at: this.#now() })
          .execute();
        session = { dev_eui: eui, f_cnt_down_floor: 0 };
      }
      if (session.dev_eui !== eui) return { outcome: 'unknownSession' };
      const floor = Number(session.f_cnt_down_floor);
      if (fCntDown < floor) return { outcome: 'belowFloor', floor };
      const owner = await trx
        .selectFrom('downlink_keystreams')
        .select('queue_item_id')
        .where('session_key_id', '=', sessionKeyId)
        .where('f_cnt_down', '=', fCntDown)
        .executeTakeFirst();
      if (owner !== undefined) {
        return owner.queue_item_id === queueItemId
          ? { outcome: 'claimed', again: true }
          : { outcome: 'taken', queueItemId: owner.queue_item_id };
      }
      await trx
        .insertInto('downlink_keystreams')
        .values({
          session_key_id: sessionKeyId,
          f_cnt_down: fCntDown,
          queue_item_id: queueItemId,
          created_at: this.#now(),
        })
        .execute();
      await this.#prune(trx, sessionKeyId);
      return { outcome: 'claimed', again: false };
    });
  }

  /** The sessions remembered for a device, newest first, with their floor and counters kept. */
  async sessionsOf(
    devEui: string,
  ): Promise<{ sessionKeyId: string; floor: number; counters: number }[]> {
    const eui = toEui(devEui, 'DevEUI');
    const sessions = await this.#db
      .selectFrom('downlink_keystream_sessions')
      .select(['session_key_id', 'f_cnt_down_floor'])
      .where('dev_eui', '=', eui)
      .orderBy('started_at', 'desc')
      .orderBy('session_key_id')
      .execute();
    const result = [];
    for (const session of sessions) {
      const row = await this.#db
        .selectFrom('downlink_keystreams')
        .select((eb) => eb.fn.countAll<number | string | bigint>().as('count'))
        .where('session_key_id', '=', session.session_key_id)
        .executeTakeFirstOrThrow();
      result.push({
        sessionKeyId: session.session_key_id,
        floor: Number(session.f_cnt_down_floor),
        counters: Number(row.count),
      });
    }
    return result;
  }

  /** Serialises every change of one device's memory (PostgreSQL; SQLite is serial already). */
  async #lockDevice(trx: Kysely<Schema>, devEui: string): Promise<void> {
    let query = trx.selectFrom('devices').select('dev_eui').where('dev_eui', '=', devEui);
    if (this.#dialect === 'postgres') query = query.forNoKeyUpdate();
    if ((await query.executeTakeFirst()) === undefined) {
      throw new StorageError('MISSING_REFERENCE', `device ${devEui} does not exist`);
    }
  }

  /** Keeps the session's highest counters; the floor rises to the lowest of them. */
  async #prune(trx: Kysely<Schema>, sessionKeyId: string): Promise<void> {
    const edge = await trx
      .selectFrom('downlink_keystreams')
      .select('f_cnt_down')
      .where('session_key_id', '=', sessionKeyId)
      .orderBy('f_cnt_down', 'desc')
      .offset(KEPT_KEYSTREAMS_PER_SESSION - 1)
      .limit(2)
      .execute();
    if (edge.length < 2) return;
    const floor = Number(edge[0]!.f_cnt_down);
    await trx
      .deleteFrom('downlink_keystreams')
      .where('session_key_id', '=', sessionKeyId)
      .where('f_cnt_down', '<', floor)
      .execute();
    await trx
      .updateTable('downlink_keystream_sessions')
      .set({ f_cnt_down_floor: floor })
      .where('session_key_id', '=', sessionKeyId)
      .execute();
  }
}

function checkSessionKeyId(sessionKeyId: string): void {
  if (typeof sessionKeyId !== 'string' || !SESSION_KEY_ID.test(sessionKeyId)) {
    throw new StorageError('INVALID_INPUT', 'a session key id is 32 lower-case hex digits');
  }
}
