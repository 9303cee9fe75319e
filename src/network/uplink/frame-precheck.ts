// The per-frame crypto of a data uplink (MIC check, FRMPayload decryption), done beside the UDP
// socket in the gateway worker thread, so that the network server's thread only checks the
// result. The worker loads this module by URL (`createFrameAnnotator`) and annotates each merged
// frame; the network server keeps the worker's session table in step (`FramePrecheckMirror`).
//
// Only LoRaWAN 1.0.x sessions are checked here: a 1.1 MIC depends on the network server's
// confirmation state (ConfFCnt), and a rejoin's previous session stays with the main thread.
// Whatever the worker cannot vouch for (unknown or stale session, replay, gap, 1.1) carries no
// annotation, and the main thread does the whole check as before.

import { type DataSessionKeys, decryptDataFrame, verifyDataMic } from '../../lorawan/data-frame.js';
import { checkFCnt, DEFAULT_MAX_FCNT_GAP } from '../../lorawan/fcnt.js';
import { type DataFrame, decodePhyPayloadWithMicInput } from '../../lorawan/phy-payload.js';
import { type PreparableKeys, PreparedKeysCache, preparedSessionKeys } from '../prepared-keys.js';
import type { SessionKeys } from '../session.js';
import type { SessionMirror } from '../session-cache.js';
import type { DeviceSession } from '../store.js';

/** A 1.0.x session as the worker holds it. */
export interface PrecheckSession {
  devEui: string;
  devAddr: number;
  /** Names the session's keys: a result for an older version is not used. */
  version: number;
  /** No AppSKey: an operator-blind session (FPort 0 is still decrypted, with the NwkSKey). */
  keys: { lorawan: '1.0'; nwkSKey: Uint8Array; appSKey?: Uint8Array };
  /** The last accepted counter when the session was sent; the worker moves it forward itself. */
  fCntUp: number | null;
  maxGap: number;
}

/**
 * Every session at once in a compact form: one byte array (`SLOT_BYTES` per session) and the
 * DevEUIs end to end (16 hex digits each). As objects, 100,000 sessions took about 300 ms to
 * serialise on the network server's thread and as long again to read in the worker, whose
 * socket waited meanwhile; this is two copies of a few megabytes.
 */
export interface PrecheckTable {
  count: number;
  devEuis: string;
  data: Uint8Array;
}

// Slot layout: devAddr u32 | version u32 | fCntUp u32 | flags u8 (+3) | NwkSKey 16 | AppSKey 16.
const SLOT_BYTES = 48;
const FLAG_NO_FCNT = 1;
const FLAG_NO_GAP_LIMIT = 2;
const FLAG_APP_SKEY = 4;
const EUI_CHARS = 16;
/**
 * Slots per table: the sorted index packs devAddr * SLOT_RANGE + slot into a double, exact up
 * to 2^53. Sessions beyond it (over two million) go to the worker one by one, as objects.
 */
const SLOT_RANGE = 2 ** 21;

export type PrecheckUpdate =
  /** Every session (after the worker started): replaces the table. */
  | { kind: 'reset'; table: PrecheckTable }
  | { kind: 'upsert'; sessions: PrecheckSession[] }
  | { kind: 'forget'; devEuis: string[] };

/** What the worker vouches for: this frame's MIC verifies under this session for this counter. */
export interface FramePrecheck {
  kind: 'framePrecheck';
  devEui: string;
  version: number;
  fCnt: number;
  /** The decrypted FRMPayload (FPort 0: NwkSKey; FPort > 0: AppSKey), when the key is held. */
  frmPayload?: Uint8Array;
}

/**
 * The worker's side: the session table and the check of each frame. Sessions of the last reset
 * stay in their table (bytes, no object per session: the worker's heap stays small and its
 * garbage collections short); the worker writes each one's counter there. Sessions sent one by
 * one afterwards (joins, changes) are objects beside it, and replace their table slot.
 */
export class FramePrechecker {
  #table: PrecheckTable | undefined;
  #view: DataView | undefined;
  /** devAddr * 2^20 + slot, sorted: the slots of a DevAddr by binary search. */
  #byDevAddr = new Float64Array(0);
  /** Slots replaced or forgotten since the reset. */
  #dead = new Uint8Array(0);
  #deadCount = 0;
  readonly #slotKeys = new PreparedKeysCache<number>();
  readonly #objectsByDevAddr = new Map<number, PrecheckSession[]>();
  readonly #objectsByDevEui = new Map<string, PrecheckSession>();

  get size(): number {
    return (this.#table?.count ?? 0) - this.#deadCount + this.#objectsByDevEui.size;
  }

  apply(update: PrecheckUpdate): void {
    switch (update.kind) {
      case 'reset':
        this.#objectsByDevAddr.clear();
        this.#objectsByDevEui.clear();
        this.#load(update.table);
        return;
      case 'upsert':
        for (const session of update.sessions) this.#set(session);
        return;
      case 'forget':
        for (const devEui of update.devEuis) this.#delete(devEui);
        return;
    }
  }

  /** The annotation of a merged frame, or undefined when the worker cannot vouch for it. */
  check(phyPayload: Uint8Array): FramePrecheck | undefined {
    if (phyPayload.length < 12) return undefined;
    const mType = phyPayload[0]! >>> 5;
    // UnconfirmedDataUp (2) and ConfirmedDataUp (4) only.
    if (mType !== 2 && mType !== 4) return undefined;
    const devAddr =
      (phyPayload[1]! | (phyPayload[2]! << 8) | (phyPayload[3]! << 16) | (phyPayload[4]! << 24)) >>>
      0;
    const objects = this.#objectsByDevAddr.get(devAddr);
    const first = this.#firstSlotIndex(devAddr);
    if (objects === undefined && first === -1) return undefined;
    let decoded: ReturnType<typeof decodePhyPayloadWithMicInput>;
    try {
      decoded = decodePhyPayloadWithMicInput(phyPayload);
    } catch {
      return undefined;
    }
    const frame = decoded.payload;
    if (frame.mType !== 'UnconfirmedDataUp' && frame.mType !== 'ConfirmedDataUp') return undefined;
    for (const session of objects ?? []) {
      const check = checkFCnt(frame.fCnt, session.fCntUp ?? undefined, {
        maxGap: session.maxGap,
      });
      if (check.status !== 'new' && check.status !== 'retransmission') continue;
      const keys = preparedSessionKeys(session.keys);
      if (!verifyDataMic(frame, decoded.micInput, keys, check.fCnt)) continue;
      if (check.status === 'new') session.fCntUp = check.fCnt;
      return precheckOf(frame, keys, session.devEui, session.version, check.fCnt);
    }
    if (first === -1) return undefined;
    const view = this.#view!;
    for (let i = first; i < this.#byDevAddr.length; i++) {
      const entry = this.#byDevAddr[i]!;
      if (Math.floor(entry / SLOT_RANGE) !== devAddr) break;
      const slot = entry % SLOT_RANGE;
      if (this.#dead[slot] === 1) continue;
      const at = slot * SLOT_BYTES;
      const flags = view.getUint8(at + 12);
      const check = checkFCnt(
        frame.fCnt,
        flags & FLAG_NO_FCNT ? undefined : view.getUint32(at + 8),
        { maxGap: flags & FLAG_NO_GAP_LIMIT ? Number.POSITIVE_INFINITY : DEFAULT_MAX_FCNT_GAP },
      );
      if (check.status !== 'new' && check.status !== 'retransmission') continue;
      const keys = this.#slotKeys.get(slot, this.#keysOfSlot);
      if (!verifyDataMic(frame, decoded.micInput, keys, check.fCnt)) continue;
      if (check.status === 'new') {
        view.setUint32(at + 8, check.fCnt);
        view.setUint8(at + 12, flags & ~FLAG_NO_FCNT);
      }
      const devEui = this.#table!.devEuis.slice(slot * EUI_CHARS, (slot + 1) * EUI_CHARS);
      return precheckOf(frame, keys, devEui, view.getUint32(at + 4), check.fCnt);
    }
    return undefined;
  }

  #load(table: PrecheckTable): void {
    if (
      table.count >= SLOT_RANGE ||
      table.data.length !== table.count * SLOT_BYTES ||
      table.devEuis.length !== table.count * EUI_CHARS
    ) {
      throw new RangeError('frame precheck: malformed session table');
    }
    // Keys prepared for the slots of the previous table name other sessions now.
    for (let slot = 0; slot < (this.#table?.count ?? 0); slot++) this.#slotKeys.delete(slot);
    this.#table = table;
    const view = new DataView(table.data.buffer, table.data.byteOffset, table.data.byteLength);
    this.#view = view;
    const index = new Float64Array(table.count);
    for (let slot = 0; slot < table.count; slot++) {
      index[slot] = view.getUint32(slot * SLOT_BYTES) * SLOT_RANGE + slot;
    }
    this.#byDevAddr = index.sort();
    this.#dead = new Uint8Array(table.count);
    this.#deadCount = 0;
  }

  /** The first position of `devAddr` in the sorted index, or -1. */
  #firstSlotIndex(devAddr: number): number {
    const index = this.#byDevAddr;
    const target = devAddr * SLOT_RANGE;
    let low = 0;
    let high = index.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (index[middle]! < target) low = middle + 1;
      else high = middle;
    }
    return low < index.length && Math.floor(index[low]! / SLOT_RANGE) === devAddr ? low : -1;
  }

  readonly #keysOfSlot = (slot: number): PreparableKeys => {
    const data = this.#table!.data;
    const at = slot * SLOT_BYTES;
    const nwkSKey = data.slice(at + 16, at + 32);
    return this.#view!.getUint8(at + 12) & FLAG_APP_SKEY
      ? { lorawan: '1.0', nwkSKey, appSKey: data.slice(at + 32, at + 48) }
      : { lorawan: '1.0', nwkSKey };
  };

  /** The table slot of a DevEUI still in use, or -1 (rare: joins and removals only). */
  #slotOf(devEui: string): number {
    const table = this.#table;
    if (table === undefined || devEui.length !== EUI_CHARS) return -1;
    let at = table.devEuis.indexOf(devEui);
    while (at !== -1) {
      if (at % EUI_CHARS === 0 && this.#dead[at / EUI_CHARS] !== 1) return at / EUI_CHARS;
      at = table.devEuis.indexOf(devEui, at + 1);
    }
    return -1;
  }

  #set(session: PrecheckSession): void {
    this.#delete(session.devEui);
    this.#objectsByDevEui.set(session.devEui, session);
    const list = this.#objectsByDevAddr.get(session.devAddr);
    if (list === undefined) this.#objectsByDevAddr.set(session.devAddr, [session]);
    else list.push(session);
  }

  #delete(devEui: string): void {
    const slot = this.#slotOf(devEui);
    if (slot !== -1) {
      this.#dead[slot] = 1;
      this.#deadCount += 1;
      this.#slotKeys.delete(slot);
    }
    const existing = this.#objectsByDevEui.get(devEui);
    if (existing === undefined) return;
    this.#objectsByDevEui.delete(devEui);
    const list = this.#objectsByDevAddr.get(existing.devAddr);
    if (list === undefined) return;
    const remaining = list.filter((entry) => entry !== existing);
    if (remaining.length === 0) this.#objectsByDevAddr.delete(existing.devAddr);
    else this.#objectsByDevAddr.set(existing.devAddr, remaining);
  }
}

function precheckOf(
  frame: DataFrame,
  keys: DataSessionKeys,
  devEui: string,
  version: number,
  fCnt: number,
): FramePrecheck {
  const result: FramePrecheck = { kind: 'framePrecheck', devEui, version, fCnt };
  if (frame.fPort !== undefined) {
    const { frmPayload } = decryptDataFrame(frame, keys, fCnt);
    if (frmPayload !== undefined) result.frmPayload = frmPayload;
  }
  return result;
}

/**
 * The compact table of these sessions, and those left out of it (a DevEUI that is not 16 hex
 * digits, more sessions than a table holds), to be sent as objects.
 */
export function precheckTableOf(sessions: readonly PrecheckSession[]): {
  table: PrecheckTable;
  others: PrecheckSession[];
} {
  const fitting: PrecheckSession[] = [];
  const others: PrecheckSession[] = [];
  for (const session of sessions) {
    if (session.devEui.length === EUI_CHARS && fitting.length < SLOT_RANGE - 1) {
      fitting.push(session);
    } else {
      others.push(session);
    }
  }
  const data = new Uint8Array(fitting.length * SLOT_BYTES);
  const view = new DataView(data.buffer);
  const devEuis: string[] = [];
  for (const [slot, session] of fitting.entries()) {
    const at = slot * SLOT_BYTES;
    view.setUint32(at, session.devAddr);
    view.setUint32(at + 4, session.version);
    view.setUint32(at + 8, session.fCntUp ?? 0);
    view.setUint8(
      at + 12,
      (session.fCntUp === null ? FLAG_NO_FCNT : 0) |
        (session.maxGap === Number.POSITIVE_INFINITY ? FLAG_NO_GAP_LIMIT : 0) |
        (session.keys.appSKey === undefined ? 0 : FLAG_APP_SKEY),
    );
    data.set(session.keys.nwkSKey, at + 16);
    if (session.keys.appSKey !== undefined) data.set(session.keys.appSKey, at + 32);
    devEuis.push(session.devEui);
  }
  return { table: { count: fitting.length, devEuis: devEuis.join(''), data }, others };
}

/** The module contract of a frame annotator loaded by the gateway worker. */
export function createFrameAnnotator(): {
  annotate(uplink: { phyPayload: Uint8Array }): FramePrecheck | undefined;
  update(message: unknown): void;
} {
  const prechecker = new FramePrechecker();
  return {
    annotate: (uplink) => prechecker.check(uplink.phyPayload),
    update: (message) => prechecker.apply(message as PrecheckUpdate),
  };
}

// --- The network server's side ---

const versions = new WeakMap<SessionKeys, number>();
let nextVersion = 1;

/** The version the worker knows a session's keys by (one per keys object). */
export function precheckVersion(keys: SessionKeys): number {
  let version = versions.get(keys);
  if (version === undefined) {
    version = nextVersion++;
    versions.set(keys, version);
  }
  return version;
}

/** LoRaWAN 1.0.4 dropped MAX_FCNT_GAP (the same rule as the main thread's session match). */
export function maxFCntGapOf(session: Pick<DeviceSession, 'macVersion'>): number {
  return session.macVersion === '1.0.4' || session.macVersion === '1.1.0'
    ? Number.POSITIVE_INFINITY
    : DEFAULT_MAX_FCNT_GAP;
}

/** The worker's copy of a session, or undefined when the worker does not check its frames. */
export function precheckSessionOf(session: DeviceSession): PrecheckSession | undefined {
  if (session.keys.lorawan !== '1.0') return undefined;
  return {
    devEui: session.devEui,
    devAddr: session.devAddr,
    version: precheckVersion(session.keys),
    keys:
      session.keys.appSKey === undefined
        ? { lorawan: '1.0', nwkSKey: session.keys.nwkSKey }
        : { lorawan: '1.0', nwkSKey: session.keys.nwkSKey, appSKey: session.keys.appSKey },
    fCntUp: session.fCntUp,
    maxGap: maxFCntGapOf(session),
  };
}

/** The annotation of a merged frame, if it is a precheck (it crossed a thread: plain data). */
export function framePrecheckOf(annotation: unknown): FramePrecheck | undefined {
  if (typeof annotation !== 'object' || annotation === null) return undefined;
  const candidate = annotation as Partial<FramePrecheck>;
  return candidate.kind === 'framePrecheck' &&
    typeof candidate.devEui === 'string' &&
    typeof candidate.version === 'number' &&
    typeof candidate.fCnt === 'number'
    ? (candidate as FramePrecheck)
    : undefined;
}

/**
 * Keeps the worker's table in step with the session cache, which hands each change over with
 * the session it replaces: a session goes to the worker when it is new or its keys or DevAddr
 * changed (not on a counter or MAC-state update: the worker follows the counter itself), and is
 * forgotten when removed. After `reset` the worker holds exactly the cache's 1.0.x sessions, so
 * nothing needs remembering here.
 */
export class FramePrecheckMirror implements SessionMirror {
  readonly #send: (update: PrecheckUpdate) => void;

  constructor(send: (update: PrecheckUpdate) => void) {
    this.#send = send;
  }

  /** Sends every session (the worker started or restarted). */
  reset(sessions: Iterable<DeviceSession>): void {
    const list: PrecheckSession[] = [];
    for (const session of sessions) {
      const copy = precheckSessionOf(session);
      if (copy !== undefined) list.push(copy);
    }
    const { table, others } = precheckTableOf(list);
    this.#send({ kind: 'reset', table });
    if (others.length > 0) this.#send({ kind: 'upsert', sessions: others });
  }

  set(session: DeviceSession, previous: DeviceSession | undefined): void {
    if (previous?.keys === session.keys && previous.devAddr === session.devAddr) return;
    const copy = precheckSessionOf(session);
    if (copy !== undefined) this.#send({ kind: 'upsert', sessions: [copy] });
    else if (previous !== undefined) this.delete(previous);
  }

  delete(previous: DeviceSession): void {
    if (previous.keys.lorawan !== '1.0') return;
    this.#send({ kind: 'forget', devEuis: [previous.devEui] });
  }
}
