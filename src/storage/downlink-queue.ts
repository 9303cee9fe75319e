import type { Expression, ExpressionBuilder, Selectable } from 'kysely';
import type { GaletDatabase } from './database.js';
import { constraintViolation, StorageError } from './errors.js';
import { newTimeOrderedId } from './ids.js';
import type {
  DatabaseDialect,
  DownlinkQueueTable,
  DownlinkStatus,
  IsoTimestamp,
  Schema,
} from './schema.js';
import type { SecretBox } from './secret-box.js';
import {
  assertInteger,
  clock,
  fromDbBoolean,
  fromDbBytes,
  oneOf,
  type RepositoryOptions,
  toDbBoolean,
  toDbBytes,
  toEui,
  UINT32_MAX,
} from './values.js';

export const DOWNLINK_STATUSES: readonly DownlinkStatus[] = [
  'pending',
  'sent',
  'acked',
  'failed',
  'expired',
];

/** The largest FRMPayload any region allows (MACPayload 250 − FHDR 7 − FPort 1). */
export const MAX_DOWNLINK_PAYLOAD_BYTES = 242;

export interface DownlinkQueueItem {
  id: string;
  devEui: string;
  fPort: number;
  /** FRMPayload before encryption. */
  data: Uint8Array;
  confirmed: boolean;
  status: DownlinkStatus;
  /** The FCntDown it was last sent with; null until sent. */
  fCntDown: number | null;
  /** How many times it was sent. */
  attempts: number;
  lastError: string | null;
  createdAt: IsoTimestamp;
  updatedAt: IsoTimestamp;
  /**
   * Operator-blind: `data` is the FRMPayload the provider's application role encrypted for this
   * downlink counter of the session with this key id; absent: `data` is plaintext.
   */
  encryptedFor?: EncryptedFor;
}

/** The session (its key id) and downlink counter an FRMPayload was encrypted for. */
export interface EncryptedFor {
  fCntDown: number;
  sessionKeyId: string;
}

const SESSION_KEY_ID = /^[0-9a-f]{16,64}$/;
const ITEM_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export interface NewDownlink {
  devEui: string;
  /** 1 to 223 (LoRaWAN 1.0.4 §4.3.2: 0 carries MAC commands only, 224 is the test port). */
  fPort: number;
  data: Uint8Array;
  confirmed: boolean;
  /** The provider's item id (a UUID), kept so that both sides name the item alike. */
  id?: string;
  /** `data` is already encrypted (operator-blind). */
  encryptedFor?: EncryptedFor;
}

/**
 * Each device's downlink queue, in enqueue order (created_at, then a time-ordered id so items
 * enqueued in the same millisecond keep their order).
 *
 * States: pending → sent → acked; pending|sent → failed or expired. `sent` → `sent` again is a
 * retransmission.
 */
export class DownlinkQueueRepository {
  readonly #db: GaletDatabase['db'];
  readonly #dialect: DatabaseDialect;
  readonly #now: () => IsoTimestamp;

  constructor(database: GaletDatabase, _secrets: SecretBox, options?: RepositoryOptions) {
    this.#db = database.db;
    this.#dialect = database.dialect;
    this.#now = clock(options);
  }

  /** Errors: `INVALID_INPUT`, `MISSING_REFERENCE` (unknown device). */
  async enqueue(input: NewDownlink): Promise<DownlinkQueueItem> {
    const devEui = toEui(input.devEui, 'DevEUI');
    assertInteger(input.fPort, 1, 223, 'FPort');
    if (!(input.data instanceof Uint8Array) || input.data.length > MAX_DOWNLINK_PAYLOAD_BYTES) {
      throw new StorageError(
        'INVALID_INPUT',
        `downlink data must be at most ${MAX_DOWNLINK_PAYLOAD_BYTES} bytes, got ${input.data instanceof Uint8Array ? input.data.length : typeof input.data}`,
      );
    }
    if (typeof input.confirmed !== 'boolean') {
      throw new StorageError('INVALID_INPUT', 'confirmed must be true or false');
    }
    if (input.id !== undefined && !ITEM_ID.test(input.id)) {
      throw new StorageError('INVALID_INPUT', 'a downlink id is a lower-case UUID');
    }
    const encrypted = input.encryptedFor === undefined ? null : checkedFor(input.encryptedFor);
    const now = this.#now();
    const row = {
      id: input.id ?? newTimeOrderedId(),
      dev_eui: devEui,
      f_port: input.fPort,
      data: toDbBytes(input.data),
      confirmed: toDbBoolean(this.#dialect, input.confirmed),
      status: 'pending' as const,
      f_cnt_down: null,
      attempts: 0,
      last_error: null,
      created_at: now,
      updated_at: now,
      encrypted_f_cnt_down: encrypted?.fCntDown ?? null,
      encrypted_session_key_id: encrypted?.sessionKeyId ?? null,
    };
    try {
      await this.#db.insertInto('downlink_queue').values(row).execute();
    } catch (error) {
      if (constraintViolation(error) === 'foreign-key') {
        throw new StorageError('MISSING_REFERENCE', `device ${devEui} does not exist`, {
          cause: error,
        });
      }
      if (constraintViolation(error) === 'unique') {
        throw new StorageError('ALREADY_EXISTS', `downlink ${row.id} exists already`, {
          cause: error,
        });
      }
      throw error;
    }
    return toItem(row);
  }

  /** Pending items, oldest first. */
  /** How many items wait, in one count query. */
  async countPending(devEui: string): Promise<number> {
    const row = await this.#db
      .selectFrom('downlink_queue')
      .select((eb) => eb.fn.countAll<number>().as('count'))
      .where('dev_eui', '=', toEui(devEui, 'DevEUI'))
      .where('status', '=', 'pending')
      .executeTakeFirstOrThrow();
    return Number(row.count);
  }

  async listPending(devEui: string): Promise<DownlinkQueueItem[]> {
    return this.list(devEui, { statuses: ['pending'] });
  }

  /** One item by id, whatever its status. */
  async get(id: string): Promise<DownlinkQueueItem | undefined> {
    const row = await this.#db
      .selectFrom('downlink_queue')
      .selectAll()
      .where('id', '=', String(id))
      .executeTakeFirst();
    return row && toItem(row);
  }

  /** The oldest pending item. */
  async nextPending(devEui: string): Promise<DownlinkQueueItem | undefined> {
    const row = await this.#db
      .selectFrom('downlink_queue')
      .selectAll()
      .where('dev_eui', '=', toEui(devEui, 'DevEUI'))
      .where('status', '=', 'pending')
      .orderBy('created_at')
      .orderBy('id')
      .limit(1)
      .executeTakeFirst();
    return row && toItem(row);
  }

  /** A device's items, oldest first, optionally only some statuses. */
  async list(
    devEui: string,
    options?: { statuses?: readonly DownlinkStatus[] },
  ): Promise<DownlinkQueueItem[]> {
    let query = this.#db
      .selectFrom('downlink_queue')
      .selectAll()
      .where('dev_eui', '=', toEui(devEui, 'DevEUI'));
    const statuses = options?.statuses;
    if (statuses !== undefined) {
      if (statuses.length === 0) return [];
      for (const status of statuses) oneOf(status, DOWNLINK_STATUSES, 'downlink status');
      query = query.where('status', 'in', statuses);
    }
    const rows = await query.orderBy('created_at').orderBy('id').execute();
    return rows.map(toItem);
  }

  /** Sent (again) with this FCntDown: from pending or sent; counts an attempt. */
  async markSent(id: string, fCntDown: number): Promise<DownlinkQueueItem> {
    assertInteger(fCntDown, 0, UINT32_MAX, 'FCntDown');
    return this.#transition(id, ['pending', 'sent'], 'sent', (eb) => ({
      f_cnt_down: fCntDown,
      attempts: eb('attempts', '+', 1),
    }));
  }

  /**
   * Back to the queue, keeping the reason: it was taken for a transmission that did not happen
   * (no gateway path, the gateway refused it). From pending or sent; the next send counts again.
   */
  async requeue(id: string, reason: string): Promise<DownlinkQueueItem> {
    const lastError = String(reason).slice(0, 1000);
    return this.#transition(id, ['pending', 'sent'], 'pending', () => ({ last_error: lastError }));
  }

  /**
   * Operator-blind: the pending item's FRMPayload, encrypted again by the application role for
   * another counter or session. `INVALID_STATE` unless it is pending and was encrypted already.
   */
  async reencrypt(
    id: string,
    data: Uint8Array,
    encryptedFor: EncryptedFor,
  ): Promise<DownlinkQueueItem> {
    if (!(data instanceof Uint8Array) || data.length > MAX_DOWNLINK_PAYLOAD_BYTES) {
      throw new StorageError(
        'INVALID_INPUT',
        `downlink data must be at most ${MAX_DOWNLINK_PAYLOAD_BYTES} bytes`,
      );
    }
    const checked = checkedFor(encryptedFor);
    const row = await this.#db
      .updateTable('downlink_queue')
      .set({
        data: toDbBytes(data),
        encrypted_f_cnt_down: checked.fCntDown,
        encrypted_session_key_id: checked.sessionKeyId,
        updated_at: this.#now(),
      })
      .where('id', '=', String(id))
      .where('status', '=', 'pending')
      .where('encrypted_f_cnt_down', 'is not', null)
      .returningAll()
      .executeTakeFirst();
    if (row) return toItem(row);
    const current = await this.get(id);
    if (current === undefined) throw new StorageError('NOT_FOUND', `downlink ${id} does not exist`);
    throw new StorageError(
      'INVALID_STATE',
      `downlink ${id} is ${current.status}${current.encryptedFor === undefined ? ' and plaintext' : ''}; only a pending encrypted downlink can be encrypted again`,
    );
  }

  /** The devices that have at least one pending downlink (to warm a cache at start). */
  async devicesWithPending(): Promise<string[]> {
    const rows = await this.#db
      .selectFrom('downlink_queue')
      .select('dev_eui')
      .distinct()
      .where('status', '=', 'pending')
      .execute();
    return rows.map((row) => row.dev_eui);
  }

  /** Acknowledged by the device: from sent. */
  async markAcked(id: string): Promise<DownlinkQueueItem> {
    return this.#transition(id, ['sent'], 'acked', () => ({}));
  }

  /** Given up on, with the reason: from pending or sent. */
  async markFailed(id: string, error: string): Promise<DownlinkQueueItem> {
    const lastError = String(error).slice(0, 1000);
    return this.#transition(id, ['pending', 'sent'], 'failed', () => ({ last_error: lastError }));
  }

  /**
   * Taken back before it went out (deleted through the API, withdrawn by its provider): failed
   * with the reason, only while pending and never sent (no attempt: a confirmed downlink back
   * in the queue for a retransmission went out already), in one UPDATE, so that of a withdrawal
   * and a transmission racing for one item exactly one happens. `INVALID_STATE` otherwise,
   * `NOT_FOUND` for an unknown id.
   */
  async withdraw(id: string, reason: string): Promise<DownlinkQueueItem> {
    const row = await this.#db
      .updateTable('downlink_queue')
      .set({ status: 'failed', last_error: String(reason).slice(0, 1000), updated_at: this.#now() })
      .where('id', '=', String(id))
      .where('status', '=', 'pending')
      .where('attempts', '=', 0)
      .returningAll()
      .executeTakeFirst();
    if (row) return toItem(row);
    const current = await this.get(id);
    if (current === undefined) throw new StorageError('NOT_FOUND', `downlink ${id} does not exist`);
    throw new StorageError(
      'INVALID_STATE',
      `downlink ${id} is ${current.status}${current.attempts > 0 ? ` and was sent ${current.attempts} time(s)` : ''}; only a pending downlink never sent can be withdrawn`,
    );
  }

  /** No longer worth sending (e.g. the session it was meant for ended): from pending or sent. */
  async markExpired(id: string): Promise<DownlinkQueueItem> {
    return this.#transition(id, ['pending', 'sent'], 'expired', () => ({}));
  }

  /**
   * One UPDATE ... WHERE status IN (from) RETURNING *, so two callers cannot both move an item.
   * `NOT_FOUND` for an unknown id, `INVALID_STATE` when the item is in another state.
   */
  async #transition(
    id: string,
    from: readonly DownlinkStatus[],
    to: DownlinkStatus,
    extra: (eb: TransitionBuilder) => TransitionValues,
  ): Promise<DownlinkQueueItem> {
    const row = await this.#db
      .updateTable('downlink_queue')
      .set((eb) => ({ ...extra(eb), status: to, updated_at: this.#now() }))
      .where('id', '=', id)
      .where('status', 'in', from)
      .returningAll()
      .executeTakeFirst();
    if (row) return toItem(row);
    const current = await this.#db
      .selectFrom('downlink_queue')
      .select('status')
      .where('id', '=', id)
      .executeTakeFirst();
    if (!current) throw new StorageError('NOT_FOUND', `downlink ${id} does not exist`);
    throw new StorageError(
      'INVALID_STATE',
      `downlink ${id} is ${current.status}; only a ${from.join(' or ')} downlink can become ${to}`,
    );
  }
}

type TransitionBuilder = ExpressionBuilder<Schema, 'downlink_queue'>;
/** What a transition sets besides status and updated_at. */
interface TransitionValues {
  f_cnt_down?: number;
  attempts?: Expression<number>;
  last_error?: string;
}

function toItem(row: Selectable<DownlinkQueueTable>): DownlinkQueueItem {
  return {
    id: row.id,
    devEui: row.dev_eui,
    fPort: row.f_port,
    data: fromDbBytes(row.data),
    confirmed: fromDbBoolean(row.confirmed),
    status: row.status,
    fCntDown: row.f_cnt_down,
    attempts: row.attempts,
    lastError: row.last_error,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    ...(row.encrypted_f_cnt_down === null || row.encrypted_session_key_id === null
      ? {}
      : {
          encryptedFor: {
            fCntDown: row.encrypted_f_cnt_down,
            sessionKeyId: row.encrypted_session_key_id,
          },
        }),
  };
}

function checkedFor(encryptedFor: EncryptedFor): EncryptedFor {
  assertInteger(encryptedFor.fCntDown, 0, UINT32_MAX, 'FCntDown');
  if (
    typeof encryptedFor.sessionKeyId !== 'string' ||
    !SESSION_KEY_ID.test(encryptedFor.sessionKeyId)
  ) {
    throw new StorageError('INVALID_INPUT', 'a session key id is 16 to 64 lower-case hex digits');
  }
  return { fCntDown: encryptedFor.fCntDown, sessionKeyId: encryptedFor.sessionKeyId };
}
