import type { Selectable } from 'kysely';
import type { GaletDatabase } from './database.js';
import { MAC_VERSIONS } from './devices.js';
import { constraintViolation, StorageError } from './errors.js';
import type { DeviceSessionsTable, IsoTimestamp, MacVersion } from './schema.js';
import { SecretBox } from './secret-box.js';
import type { PendingCounter } from './sqlite-uplink-statements.js';
import {
  assertInteger,
  assertKey,
  clock,
  oneOf,
  type RepositoryOptions,
  toDbBytes,
  toEui,
  toIsoTimestamp,
  UINT32_MAX,
} from './values.js';

/**
 * A session key wrapped (RFC 3394) under a KEK the network does not hold: the AppSKey of an
 * operator-blind session, for the application role only (Backend Interfaces KeyEnvelope).
 */
export interface WrappedSessionKey {
  kekLabel: string;
  /** 24 bytes. */
  aesKey: Uint8Array;
}

/**
 * The AppSKey of a session: in clear (all-in-one), or only wrapped for the provider's
 * application role (operator-blind: the network never holds it). Exactly one of the two.
 */
export type AppSessionKey =
  | { appSKey: Uint8Array; appSKeyEnvelope?: undefined }
  | { appSKey?: undefined; appSKeyEnvelope: WrappedSessionKey };

/** LoRaWAN 1.0.x session keys. */
export type SessionKeys10 = {
  lorawan: '1.0';
  nwkSKey: Uint8Array;
} & AppSessionKey;

/** LoRaWAN 1.1 session keys (§6.1.2, §6.1.3). */
export type SessionKeys11 = {
  lorawan: '1.1';
  fNwkSIntKey: Uint8Array;
  sNwkSIntKey: Uint8Array;
  nwkSEncKey: Uint8Array;
} & AppSessionKey;

export type SessionKeys = SessionKeys10 | SessionKeys11;

export interface DeviceSession {
  devEui: string;
  devAddr: number;
  macVersion: MacVersion;
  keys: SessionKeys;
  /** Last accepted 32-bit uplink counter; null before the session's first uplink. */
  fCntUp: number | null;
  /** Next NFCntDown (1.1) or FCntDown (1.0) to use. */
  nFCntDown: number;
  /** Next AFCntDown to use (1.1). */
  aFCntDown: number;
  rx1DelaySeconds: number;
  rx1DrOffset: number;
  rx2Dr: number;
  rx2FrequencyHz: number;
  /** The confirmed downlink the device has yet to acknowledge; null when none. */
  awaitingAck: AwaitingAck | null;
  /**
   * The network's MAC state for this session (device settings, pending MAC requests), a JSON
   * value this layer stores as is; null before the network wrote one.
   */
  macState: unknown;
  createdAt: IsoTimestamp;
  updatedAt: IsoTimestamp;
}

export interface AwaitingAck {
  queueItemId: string;
  fCntDown: number;
}

/**
 * What `upsert` stores. `createdAt` is optional: a new row gets now, an existing row keeps its
 * own unless one is given. Passing a whole `DeviceSession` back is fine.
 */
export type DeviceSessionInput = Omit<
  DeviceSession,
  'createdAt' | 'updatedAt' | 'awaitingAck' | 'macState'
> & {
  createdAt?: IsoTimestamp;
  /** Default null (a new session waits for nothing). */
  awaitingAck?: AwaitingAck | null;
  /** Default null (the network starts from the region's and profile's defaults). */
  macState?: unknown;
};

/**
 * What a list shows of a session: its address and counters, and whether this Galet holds the
 * AppSKey in clear (false: wrapped for a provider's application role only). No key material.
 */
export interface DeviceSessionSummary {
  devEui: string;
  devAddr: number;
  macVersion: MacVersion;
  fCntUp: number | null;
  nFCntDown: number;
  aFCntDown: number;
  appSKeyHeld: boolean;
}

/** Which downlink counter `takeFCntDown` takes: NFCntDown ('n', also 1.0's FCntDown) or AFCntDown ('a'). */
export type DownlinkCounter = 'n' | 'a';

/** Associated data of sealed session keys: binds them to their device. */
export function sessionKeysAssociatedData(devEui: string): string {
  return `device_session:${devEui}:keys`;
}

// Serialised keys: a layout byte, then the 16-byte keys in the order of the interfaces above.
const KEYS_LAYOUT_10 = 0x10;
const KEYS_LAYOUT_11 = 0x11;
/** The network keys only, and the AppSKey wrapped for the application role (operator-blind). */
const KEYS_LAYOUT_10_WRAPPED_APP = 0x12;
const KEYS_LAYOUT_11_WRAPPED_APP = 0x13;
/** Serialised length of the clear layouts: layout byte and 2 (1.0) or 4 (1.1) keys. */
const CLEAR_KEYS_LENGTH_10 = 1 + 16 * 2;
const CLEAR_KEYS_LENGTH_11 = 1 + 16 * 4;
/** Sessions read per query by `summariesOf`: a whole page of the largest list (1000) at once. */
const SUMMARY_BATCH = 1000;

export class DeviceSessionRepository {
  readonly #db: GaletDatabase['db'];
  readonly #secrets: SecretBox;
  readonly #now: () => IsoTimestamp;

  readonly #pendingCounter: (devEui: string) => PendingCounter | undefined;
  readonly #sessionWritten: (devEui: string) => void;

  /**
   * `pendingCounter`: an accepted uplink counter not written yet (the uplink path writes it
   * behind on SQLite, see UplinkCommitRepository); what this repository reads shows it.
   */
  constructor(
    database: GaletDatabase,
    secrets: SecretBox,
    options?: RepositoryOptions & {
      pendingCounter?: (devEui: string) => PendingCounter | undefined;
      /** Told before and after a session row is replaced or deleted (see upsert, delete). */
      sessionWritten?: (devEui: string) => void;
    },
  ) {
    this.#db = database.db;
    this.#secrets = secrets;
    this.#now = clock(options);
    this.#pendingCounter = options?.pendingCounter ?? (() => undefined);
    this.#sessionWritten = options?.sessionWritten ?? (() => {});
  }

  /**
   * Creates or replaces the device's session (there is one per device). Errors:
   * `INVALID_INPUT`, `MISSING_REFERENCE` (unknown device).
   */
  async upsert(session: DeviceSessionInput): Promise<DeviceSession> {
    const devEui = toEui(session.devEui, 'DevEUI');
    validate(session);
    const now = this.#now();
    const createdAt =
      session.createdAt !== undefined ? toIsoTimestamp(session.createdAt, 'createdAt') : undefined;
    const plaintext = serialiseKeys(session.keys);
    const sealed = this.#secrets.seal(plaintext, sessionKeysAssociatedData(devEui));
    plaintext.fill(0);
    const values = {
      dev_addr: session.devAddr,
      mac_version: session.macVersion,
      keys_enc: toDbBytes(sealed),
      f_cnt_up: session.fCntUp,
      n_f_cnt_down: session.nFCntDown,
      a_f_cnt_down: session.aFCntDown,
      rx1_delay_s: session.rx1DelaySeconds,
      rx1_dr_offset: session.rx1DrOffset,
      rx2_dr: session.rx2Dr,
      rx2_frequency_hz: session.rx2FrequencyHz,
      awaiting_ack_item_id: session.awaitingAck?.queueItemId ?? null,
      awaiting_ack_f_cnt_down: session.awaitingAck?.fCntDown ?? null,
      mac_state: macStateJson(session.macState),
      updated_at: now,
    };
    let row: { created_at: IsoTimestamp } | undefined;
    this.#sessionWritten(devEui);
    try {
      row = await this.#db
        .insertInto('device_sessions')
        .values({ dev_eui: devEui, ...values, created_at: createdAt ?? now })
        .onConflict((oc) =>
          oc.column('dev_eui').doUpdateSet((eb) => ({
            ...values,
            created_at: createdAt ?? eb.ref('device_sessions.created_at'),
          })),
        )
        .returning('created_at')
        .executeTakeFirst();
    } catch (error) {
      if (constraintViolation(error) === 'foreign-key') {
        throw new StorageError('MISSING_REFERENCE', `device ${devEui} does not exist`, {
          cause: error,
        });
      }
      throw error;
    } finally {
      this.#sessionWritten(devEui);
    }
    return {
      devEui,
      devAddr: session.devAddr,
      macVersion: session.macVersion,
      keys: copyKeys(session.keys),
      fCntUp: session.fCntUp,
      nFCntDown: session.nFCntDown,
      aFCntDown: session.aFCntDown,
      rx1DelaySeconds: session.rx1DelaySeconds,
      rx1DrOffset: session.rx1DrOffset,
      rx2Dr: session.rx2Dr,
      rx2FrequencyHz: session.rx2FrequencyHz,
      awaitingAck: session.awaitingAck ?? null,
      macState: session.macState ?? null,
      createdAt: row?.created_at ?? now,
      updatedAt: now,
    };
  }

  async get(devEui: string): Promise<DeviceSession | undefined> {
    const row = await this.#db
      .selectFrom('device_sessions')
      .selectAll()
      .where('dev_eui', '=', toEui(devEui, 'DevEUI'))
      .executeTakeFirst();
    return row && this.#toSession(row);
  }

  /** Every session holding this DevAddr (the uplink path then checks MICs). One indexed query. */
  async listByDevAddr(devAddr: number): Promise<DeviceSession[]> {
    assertInteger(devAddr, 0, UINT32_MAX, 'DevAddr');
    const rows = await this.#db
      .selectFrom('device_sessions')
      .selectAll()
      .where('dev_addr', '=', devAddr)
      .execute();
    return rows.map((row) => this.#toSession(row));
  }

  /** Every session, ordered by DevEUI: for warming a cache at start-up. */
  async listAll(): Promise<DeviceSession[]> {
    const rows = await this.#db
      .selectFrom('device_sessions')
      .selectAll()
      .orderBy('dev_eui')
      .execute();
    return rows.map((row) => this.#toSession(row));
  }

  /**
   * The sessions of these devices, without their keys (devices without one are left out): one
   * query per 1000 devices. Whether the AppSKey is held in clear is told from the sealed keys'
   * length, which GCM keeps equal to the plaintext's: a clear layout has a fixed length that no
   * wrapped one (network keys, label, 24-byte envelope) can have for the same MAC version. So no
   * key is decrypted; a damaged row shows here and fails only where its keys are opened.
   */
  async summariesOf(devEuis: Iterable<string>): Promise<Map<string, DeviceSessionSummary>> {
    const euis = [...new Set([...devEuis].map((devEui) => toEui(devEui, 'DevEUI')))];
    const found = new Map<string, DeviceSessionSummary>();
    for (let start = 0; start < euis.length; start += SUMMARY_BATCH) {
      const rows = await this.#db
        .selectFrom('device_sessions')
        .select([
          'dev_eui',
          'dev_addr',
          'mac_version',
          'keys_enc',
          'f_cnt_up',
          'n_f_cnt_down',
          'a_f_cnt_down',
          'created_at',
        ])
        .where('dev_eui', 'in', euis.slice(start, start + SUMMARY_BATCH))
        .execute();
      for (const row of rows) {
        found.set(row.dev_eui, {
          devEui: row.dev_eui,
          devAddr: row.dev_addr,
          macVersion: row.mac_version,
          fCntUp: this.#currentFCntUp(row),
          nFCntDown: row.n_f_cnt_down,
          aFCntDown: row.a_f_cnt_down,
          appSKeyHeld:
            SecretBox.plaintextLength(row.keys_enc) ===
            (row.mac_version === '1.1.0' ? CLEAR_KEYS_LENGTH_11 : CLEAR_KEYS_LENGTH_10),
        });
      }
    }
    return found;
  }

  /**
   * Returns the counter's current value and increments it, atomically (one UPDATE ...
   * RETURNING): concurrent callers get distinct values. `atLeast`: a counter below it skips to
   * it first (an operator-blind item encrypted for a later counter; LoRaWAN allows gaps in
   * FCntDown). `COUNTER_EXHAUSTED` once 2^32 - 1 has been used (the device must rejoin),
   * `NOT_FOUND` without a session.
   */
  async takeFCntDown(devEui: string, counter: DownlinkCounter, atLeast?: number): Promise<number> {
    const eui = toEui(devEui, 'DevEUI');
    oneOf(counter, ['n', 'a'], 'downlink counter');
    if (atLeast !== undefined) {
      assertInteger(atLeast, 0, UINT32_MAX, 'FCntDown');
      return this.#takeFCntDownFrom(eui, counter, atLeast);
    }
    const query = this.#db.updateTable('device_sessions').where('dev_eui', '=', eui);
    const row =
      counter === 'n'
        ? await query
            .set((eb) => ({ n_f_cnt_down: eb('n_f_cnt_down', '+', 1) }))
            .where('n_f_cnt_down', '<=', UINT32_MAX)
            .returning('n_f_cnt_down as next')
            .executeTakeFirst()
        : await query
            .set((eb) => ({ a_f_cnt_down: eb('a_f_cnt_down', '+', 1) }))
            .where('a_f_cnt_down', '<=', UINT32_MAX)
            .returning('a_f_cnt_down as next')
            .executeTakeFirst();
    if (row) return row.next - 1;
    return this.#counterNotTaken(eui, counter);
  }

  /** `takeFCntDown` skipping to `atLeast` first: one UPDATE with a CASE, as atomic. */
  async #takeFCntDownFrom(eui: string, counter: DownlinkCounter, atLeast: number): Promise<number> {
    const query = this.#db.updateTable('device_sessions').where('dev_eui', '=', eui);
    const row =
      counter === 'n'
        ? await query
            .set((eb) => ({
              n_f_cnt_down: eb
                .case()
                .when('n_f_cnt_down', '<', atLeast)
                .then(atLeast + 1)
                .else(eb('n_f_cnt_down', '+', 1))
                .end(),
            }))
            .where('n_f_cnt_down', '<=', UINT32_MAX)
            .returning('n_f_cnt_down as next')
            .executeTakeFirst()
        : await query
            .set((eb) => ({
              a_f_cnt_down: eb
                .case()
                .when('a_f_cnt_down', '<', atLeast)
                .then(atLeast + 1)
                .else(eb('a_f_cnt_down', '+', 1))
                .end(),
            }))
            .where('a_f_cnt_down', '<=', UINT32_MAX)
            .returning('a_f_cnt_down as next')
            .executeTakeFirst();
    if (row) return row.next - 1;
    return this.#counterNotTaken(eui, counter);
  }

  async #counterNotTaken(eui: string, counter: DownlinkCounter): Promise<never> {
    const exists = await this.#db
      .selectFrom('device_sessions')
      .select('dev_eui')
      .where('dev_eui', '=', eui)
      .executeTakeFirst();
    if (!exists) throw new StorageError('NOT_FOUND', `device ${eui} has no session`);
    throw new StorageError(
      'COUNTER_EXHAUSTED',
      `device ${eui}: ${counter === 'n' ? 'NFCntDown' : 'AFCntDown'} has reached 2^32 - 1; the device must rejoin`,
    );
  }

  /**
   * Records the confirmed downlink the device now has to acknowledge, or clears it (null).
   * False when the device has no session.
   */
  async setAwaitingAck(devEui: string, awaiting: AwaitingAck | null): Promise<boolean> {
    if (awaiting !== null) assertInteger(awaiting.fCntDown, 0, UINT32_MAX, 'FCntDown');
    const result = await this.#db
      .updateTable('device_sessions')
      .set({
        awaiting_ack_item_id: awaiting?.queueItemId ?? null,
        awaiting_ack_f_cnt_down: awaiting?.fCntDown ?? null,
        updated_at: this.#now(),
      })
      .where('dev_eui', '=', toEui(devEui, 'DevEUI'))
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  /** Replaces the session's MAC state (a JSON value; null clears it). False without a session. */
  async setMacState(devEui: string, macState: unknown): Promise<boolean> {
    const result = await this.#db
      .updateTable('device_sessions')
      .set({ mac_state: macStateJson(macState), updated_at: this.#now() })
      .where('dev_eui', '=', toEui(devEui, 'DevEUI'))
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  /** False when there was no session. */
  async delete(devEui: string): Promise<boolean> {
    const eui = toEui(devEui, 'DevEUI');
    this.#sessionWritten(eui);
    try {
      const result = await this.#db
        .deleteFrom('device_sessions')
        .where('dev_eui', '=', eui)
        .executeTakeFirst();
      return result.numDeletedRows > 0n;
    } finally {
      this.#sessionWritten(eui);
    }
  }

  /** The stored counter, or a newer one of the same session still waiting to be written. */
  #currentFCntUp(
    row: Pick<Selectable<DeviceSessionsTable>, 'dev_eui' | 'created_at' | 'f_cnt_up'>,
  ): number | null {
    const pending = this.#pendingCounter(row.dev_eui);
    return pending !== undefined &&
      pending.sessionCreatedAt === row.created_at &&
      (row.f_cnt_up === null || row.f_cnt_up < pending.fCntUp)
      ? pending.fCntUp
      : row.f_cnt_up;
  }

  #toSession(row: Selectable<DeviceSessionsTable>): DeviceSession {
    const keys = parseKeys(
      this.#secrets.open(row.keys_enc, sessionKeysAssociatedData(row.dev_eui)),
      row.dev_eui,
    );
    return {
      devEui: row.dev_eui,
      devAddr: row.dev_addr,
      macVersion: row.mac_version,
      keys,
      fCntUp: this.#currentFCntUp(row),
      nFCntDown: row.n_f_cnt_down,
      aFCntDown: row.a_f_cnt_down,
      rx1DelaySeconds: row.rx1_delay_s,
      rx1DrOffset: row.rx1_dr_offset,
      rx2Dr: row.rx2_dr,
      rx2FrequencyHz: row.rx2_frequency_hz,
      awaitingAck:
        row.awaiting_ack_item_id === null || row.awaiting_ack_f_cnt_down === null
          ? null
          : { queueItemId: row.awaiting_ack_item_id, fCntDown: row.awaiting_ack_f_cnt_down },
      macState: parseMacState(row.mac_state, row.dev_eui),
      createdAt: row.created_at,
      updatedAt: row.updated_at,
    };
  }
}

/** Most bytes of MAC state JSON per session: far above a real one (channels, a few requests). */
const MAX_MAC_STATE_JSON = 64 * 1024;

function macStateJson(macState: unknown): string | null {
  if (macState === undefined || macState === null) return null;
  const json = JSON.stringify(macState);
  if (json === undefined || json.length > MAX_MAC_STATE_JSON) {
    throw new StorageError(
      'INVALID_INPUT',
      `MAC state must be a JSON value of at most ${MAX_MAC_STATE_JSON} characters`,
    );
  }
  return json;
}

/** A damaged MAC state is dropped (the network rebuilds one from defaults), never fatal. */
function parseMacState(json: string | null, devEui: string): unknown {
  if (json === null) return null;
  try {
    return JSON.parse(json) as unknown;
  } catch {
    process.emitWarning(`device ${devEui}: unreadable MAC state ignored`);
    return null;
  }
}

function validate(session: DeviceSessionInput): void {
  assertInteger(session.devAddr, 0, UINT32_MAX, 'DevAddr');
  oneOf(session.macVersion, MAC_VERSIONS, 'MAC version');
  const expected = session.macVersion === '1.1.0' ? '1.1' : '1.0';
  if (session.keys?.lorawan !== expected) {
    throw new StorageError(
      'INVALID_INPUT',
      `a LoRaWAN ${session.macVersion} session needs ${expected} session keys, got ${String(session.keys?.lorawan)}`,
    );
  }
  if (session.fCntUp !== null) assertInteger(session.fCntUp, 0, UINT32_MAX, 'FCntUp');
  // "Next to use": 2^32 means every value has been used.
  assertInteger(session.nFCntDown, 0, UINT32_MAX + 1, 'NFCntDown');
  assertInteger(session.aFCntDown, 0, UINT32_MAX + 1, 'AFCntDown');
  assertInteger(session.rx1DelaySeconds, 1, 15, 'RX1 delay (s)');
  assertInteger(session.rx1DrOffset, 0, 7, 'RX1 DR offset');
  assertInteger(session.rx2Dr, 0, 15, 'RX2 data rate');
  assertInteger(session.rx2FrequencyHz, 1, 10_000_000_000, 'RX2 frequency (Hz)');
}

function serialiseKeys(keys: SessionKeys): Uint8Array {
  const network =
    keys.lorawan === '1.0' ? [keys.nwkSKey] : [keys.fNwkSIntKey, keys.sNwkSIntKey, keys.nwkSEncKey];
  const names = keys.lorawan === '1.0' ? ['NwkSKey'] : ['FNwkSIntKey', 'SNwkSIntKey', 'NwkSEncKey'];
  for (const [index, key] of network.entries()) assertKey(key, names[index]!);
  const envelope = keys.appSKeyEnvelope;
  if (envelope === undefined) {
    assertKey(keys.appSKey, 'AppSKey');
    const bytes = new Uint8Array(1 + 16 * (network.length + 1));
    bytes[0] = keys.lorawan === '1.0' ? KEYS_LAYOUT_10 : KEYS_LAYOUT_11;
    for (const [index, key] of [...network, keys.appSKey].entries()) bytes.set(key, 1 + 16 * index);
    return bytes;
  }
  // Operator-blind: the network keys, then the AppSKey envelope (label length, label, 24 bytes).
  const label = Buffer.from(String(envelope.kekLabel), 'utf8');
  if (label.length === 0 || label.length > 0xffff) {
    throw new StorageError('INVALID_INPUT', 'an AppSKey envelope needs a KEK label');
  }
  if (!(envelope.aesKey instanceof Uint8Array) || envelope.aesKey.length !== 24) {
    throw new StorageError('INVALID_INPUT', 'a wrapped AppSKey is 24 bytes');
  }
  const offset = 1 + 16 * network.length;
  const bytes = new Uint8Array(offset + 2 + label.length + 24);
  bytes[0] = keys.lorawan === '1.0' ? KEYS_LAYOUT_10_WRAPPED_APP : KEYS_LAYOUT_11_WRAPPED_APP;
  for (const [index, key] of network.entries()) bytes.set(key, 1 + 16 * index);
  bytes[offset] = label.length >> 8;
  bytes[offset + 1] = label.length & 0xff;
  bytes.set(label, offset + 2);
  bytes.set(envelope.aesKey, offset + 2 + label.length);
  return bytes;
}

function parseKeys(bytes: Uint8Array, devEui: string): SessionKeys {
  const key = (index: number) => bytes.slice(1 + 16 * index, 17 + 16 * index);
  if (bytes[0] === KEYS_LAYOUT_10 && bytes.length === CLEAR_KEYS_LENGTH_10) {
    return { lorawan: '1.0', nwkSKey: key(0), appSKey: key(1) };
  }
  if (bytes[0] === KEYS_LAYOUT_11 && bytes.length === CLEAR_KEYS_LENGTH_11) {
    return {
      lorawan: '1.1',
      fNwkSIntKey: key(0),
      sNwkSIntKey: key(1),
      nwkSEncKey: key(2),
      appSKey: key(3),
    };
  }
  const networkKeys =
    bytes[0] === KEYS_LAYOUT_10_WRAPPED_APP ? 1 : bytes[0] === KEYS_LAYOUT_11_WRAPPED_APP ? 3 : 0;
  const offset = 1 + 16 * networkKeys;
  if (networkKeys > 0 && bytes.length >= offset + 2) {
    const labelLength = (bytes[offset]! << 8) | bytes[offset + 1]!;
    if (labelLength > 0 && bytes.length === offset + 2 + labelLength + 24) {
      const appSKeyEnvelope = {
        kekLabel: Buffer.from(bytes.subarray(offset + 2, offset + 2 + labelLength)).toString(
          'utf8',
        ),
        aesKey: bytes.slice(offset + 2 + labelLength),
      };
      return networkKeys === 1
        ? { lorawan: '1.0', nwkSKey: key(0), appSKeyEnvelope }
        : {
            lorawan: '1.1',
            fNwkSIntKey: key(0),
            sNwkSIntKey: key(1),
            nwkSEncKey: key(2),
            appSKeyEnvelope,
          };
    }
  }
  throw new StorageError(
    'SECRET_OPEN_FAILED',
    `session keys of device ${devEui} have an unknown layout (${bytes.length} bytes)`,
  );
}

function copyKeys(keys: SessionKeys): SessionKeys {
  const app: AppSessionKey =
    keys.appSKeyEnvelope === undefined
      ? { appSKey: keys.appSKey.slice() }
      : {
          appSKeyEnvelope: {
            kekLabel: keys.appSKeyEnvelope.kekLabel,
            aesKey: keys.appSKeyEnvelope.aesKey.slice(),
          },
        };
  return keys.lorawan === '1.0'
    ? { lorawan: '1.0', nwkSKey: keys.nwkSKey.slice(), ...app }
    : {
        lorawan: '1.1',
        fNwkSIntKey: keys.fNwkSIntKey.slice(),
        sNwkSIntKey: keys.sNwkSIntKey.slice(),
        nwkSEncKey: keys.nwkSEncKey.slice(),
        ...app,
      };
}
