import { createHash, hkdfSync } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { unwrapKeyEnvelope } from '../join/backend-interfaces/index.js';
import { answerJoinReq } from '../join/backend-join.js';
import { LocalJoinServer } from '../join/join-server.js';
import {
  DOWNLINK_EVENT_TOPIC,
  DOWNLINK_SESSION_METHOD,
  isLinkError,
  LinkAnswerError,
  LinkClient,
  type LinkDeliveryCursor,
  QUEUE_DOWNLINK_METHOD,
  type QueueDownlinkRequest,
  REENCRYPT_DOWNLINK_METHOD,
  type ReencryptDownlinkAnswer,
  readDownlinkEventDelivery,
  readDownlinkSessionAnswer,
  readQueueDownlinkAnswer,
  readReencryptDownlinkRequest,
  type WrappedAppSKey,
} from '../link/index.js';
import { linkKek, linkKekLabel, parseLinkToken } from '../link/link-token.js';
import type { Logger } from '../logger.js';
import { encryptFrmPayload } from '../lorawan/crypto/frm-payload.js';
import { appSessionKeyId } from '../network/downlink/blind-downlinks.js';
import { type Device, isStorageError, type Storage } from '../storage/index.js';
import { StorageJoinServerStore } from './stores.js';

/** The provider's application KEK: wraps the AppSKeys its join server hands out. */
export interface ApplicationKek {
  label: string;
  key: Uint8Array;
}

/** Derived from the role's master key, so that it needs no file or variable of its own. */
export function applicationKek(masterKey: Uint8Array): ApplicationKek {
  return applicationKekOf(
    new Uint8Array(hkdfSync('sha256', masterKey, 'galet', 'application role KEK', 16)),
  );
}

/** The application KEK from its bytes: the derived one, or the one a master key rotation kept. */
export function applicationKekOf(key: Uint8Array): ApplicationKek {
  const fingerprint = createHash('sha256').update(key).digest('hex').slice(0, 16);
  return { label: `galet-app:${fingerprint}`, key };
}

const CURSOR_FILE = 'link.cursor';
const MAX_REMEMBERED_KEYSTREAMS = 100_000;

/** The last delivery handled, kept in the data directory (written atomically). */
function fileCursor(dataDir: string): LinkDeliveryCursor {
  const path = join(dataDir, CURSOR_FILE);
  return {
    async load() {
      try {
        const value = Number.parseInt((await readFile(path, 'utf8')).trim(), 10);
        return Number.isSafeInteger(value) && value >= 0 ? value : 0;
      } catch {
        return 0;
      }
    },
    async save(seq) {
      const temporary = `${path}.tmp`;
      await writeFile(temporary, `${seq}\n`, { mode: 0o600 });
      await rename(temporary, path);
    },
  };
}

interface ForwardedUplinkBody {
  devEui: string;
  devAddr: string;
  fCnt: number;
  fPort: number;
  frmPayload: string;
  appSKey: { kekLabel: string; aesKey: string };
  event: Record<string, unknown>;
}

function forwardedUplink(body: unknown): ForwardedUplinkBody {
  const value = body as Partial<ForwardedUplinkBody> | null;
  const ok =
    typeof value === 'object' &&
    value !== null &&
    typeof value.devEui === 'string' &&
    /^[0-9a-f]{16}$/.test(value.devEui) &&
    typeof value.devAddr === 'string' &&
    /^[0-9a-f]{8}$/.test(value.devAddr) &&
    Number.isSafeInteger(value.fCnt) &&
    Number.isSafeInteger(value.fPort) &&
    typeof value.frmPayload === 'string' &&
    typeof value.appSKey?.kekLabel === 'string' &&
    typeof value.appSKey?.aesKey === 'string' &&
    /^[0-9a-f]{48}$/.test(value.appSKey.aesKey) &&
    typeof value.event === 'object' &&
    value.event !== null;
  if (!ok) throw new Error('malformed forwarded uplink');
  return value as ForwardedUplinkBody;
}

/**
 * The provider's side of the link (roles `join` and `application`): registers with the
 * network the devices created on this Galet (without keys), answers the network's JoinReqs with
 * the local join server (network keys wrapped with the link KEK, the AppSKey with this role's
 * application KEK), and turns each forwarded uplink into a decrypted `up` event stored here.
 */
export class ProviderLink {
  readonly client: LinkClient;
  readonly #storage: Storage;
  readonly #logger: Logger;
  readonly #applicationKek: ApplicationKek;
  readonly #ready: Promise<string>;
  #linked: (applicationId: string) => void = () => {};
  /** Per device, the hand-over of its pending downlinks under way. */
  readonly #submitting = new Map<string, Promise<void>>();
  /**
   * The item each keystream (session key id, downlink counter) encrypted. AES-CTR: two
   * plaintexts under one keystream give their XOR away, so a network asking to encrypt another
   * item for a counter already used is refused. Memory only (a restart forgets it), bounded.
   */
  readonly #keystreams = new Map<string, string>();
  readonly #eventStored: () => void;

  constructor(options: {
    networkUrl: string;
    token: string;
    dataDir: string;
    storage: Storage;
    applicationKek: ApplicationKek;
    logger: Logger;
    /** Called after an uplink was stored as an event (wakes the application-side feeds). */
    eventStored?: () => void;
  }) {
    const parsed = parseLinkToken(options.token);
    if (parsed === undefined) {
      throw new RangeError('the network token is not a Galet link token (galet_link_…)');
    }
    this.#storage = options.storage;
    this.#logger = options.logger;
    this.#ready = new Promise((resolve) => {
      this.#linked = resolve;
    });
    this.#applicationKek = options.applicationKek;
    this.#eventStored = options.eventStored ?? (() => {});
    const network = { label: linkKekLabel(parsed.id), key: linkKek(options.token) };
    const joinServer = new LocalJoinServer(new StorageJoinServerStore(options.storage));
    this.client = new LinkClient({
      networkUrl: options.networkUrl,
      token: options.token,
      logger: options.logger,
      deliveryCursor: fileCursor(options.dataDir),
      onStateChange: (change) => {
        if (change.state === 'connected') {
          this.#hello().catch((error: unknown) => {
            this.#logger.error({ err: error }, 'link hello failed');
          });
        }
      },
    });
    this.client.onRequest('JoinReq', async (body) => {
      const { answer, accepted } = await answerJoinReq(joinServer, body, {
        network,
        application: this.#applicationKek,
      });
      if (accepted !== undefined) {
        this.#logger.info({ devEui: accepted.devEui }, 'device joined through the network link');
      }
      return answer;
    });
    this.client.onDelivery('uplink', (body) => this.#uplink(body));
    this.client.onRequest(REENCRYPT_DOWNLINK_METHOD, (body) => this.#reencrypt(body));
    this.client.onDelivery(DOWNLINK_EVENT_TOPIC, (body) => this.#downlinkEvent(body));
  }

  /**
   * The API queued a downlink here: its plaintext stays in this Galet's queue; the network gets
   * it encrypted with the AppSKey for the counter it names (one device at a time, in order).
   */
  downlinkQueued(devEui: string): void {
    const previous = this.#submitting.get(devEui) ?? Promise.resolve();
    const next = previous
      .then(() => this.#submitPending(devEui))
      .catch((error: unknown) => {
        this.#logger.warn(
          { devEui, error: error instanceof Error ? error.message : String(error) },
          'queued downlinks not handed to the network yet (tried again at the next uplink or connection)',
        );
      })
      .finally(() => {
        if (this.#submitting.get(devEui) === next) this.#submitting.delete(devEui);
      });
    this.#submitting.set(devEui, next);
  }

  start(): void {
    this.client.start();
  }

  /** Resolves once connected and the linked application is known here. */
  ready(): Promise<string> {
    return this.#ready;
  }

  /** Tells the network about a device created here (no key leaves this process). */
  async registerDevice(device: Device): Promise<void> {
    await this.client.request(
      'registerDevice',
      {
        devEui: device.devEui,
        joinEui: device.joinEui,
        name: device.name,
        macVersion: device.macVersion,
        deviceClass: device.deviceClass,
      },
      { timeoutMs: 5000 },
    );
  }

  async deleteDevice(devEui: string): Promise<void> {
    await this.client.request('deleteDevice', { devEui }, { timeoutMs: 5000 });
  }

  close(): Promise<void> {
    return this.client.close();
  }

  async #hello(): Promise<void> {
    const answer = (await this.client.request('hello', {}, { timeoutMs: 5000 })) as {
      applicationId?: unknown;
      name?: unknown;
    };
    if (typeof answer.applicationId !== 'string' || typeof answer.name !== 'string') {
      throw new Error('the network answered hello without an application');
    }
    const existing = await this.#storage.applications.get(answer.applicationId);
    if (existing === undefined) {
      await this.#storage.applications.create({ id: answer.applicationId, name: answer.name });
      this.#logger.info({ applicationId: answer.applicationId }, 'linked application added');
    }
    this.#linked(answer.applicationId);
    // Whatever waited while the link was down (the network ignores the items it holds).
    for (const devEui of await this.#storage.downlinkQueue.devicesWithPending()) {
      this.downlinkQueued(devEui);
    }
  }

  /** False when this keystream already encrypted another item. */
  #claimKeystream(sessionKeyId: string, fCntDown: number, itemId: string): boolean {
    const key = `${sessionKeyId}:${fCntDown}`;
    const owner = this.#keystreams.get(key);
    if (owner !== undefined) return owner === itemId;
    if (this.#keystreams.size >= MAX_REMEMBERED_KEYSTREAMS) {
      const oldest = this.#keystreams.keys().next().value;
      if (oldest !== undefined) this.#keystreams.delete(oldest);
    }
    this.#keystreams.set(key, itemId);
    return true;
  }

  #unwrapAppSKey(wrapped: WrappedAppSKey): Uint8Array {
    return unwrapKeyEnvelope(
      { kekLabel: wrapped.kekLabel, aesKey: Buffer.from(wrapped.aesKey, 'hex') },
      (label) => (label === this.#applicationKek.label ? this.#applicationKek.key : undefined),
    );
  }

  async #submitPending(devEui: string): Promise<void> {
    const pending = await this.#storage.downlinkQueue.listPending(devEui);
    if (pending.length === 0) return;
    let session: ReturnType<typeof readDownlinkSessionAnswer>;
    try {
      session = readDownlinkSessionAnswer(
        await this.client.request(DOWNLINK_SESSION_METHOD, { devEui }, { timeoutMs: 5000 }),
      );
    } catch (error) {
      if (isLinkError(error, 'REMOTE_ERROR') && error.remote?.code === 'NO_SESSION') {
        this.#logger.debug({ devEui }, 'downlinks wait for the device to join');
        return;
      }
      throw error;
    }
    const envelope = {
      kekLabel: session.appSKey.kekLabel,
      aesKey: Buffer.from(session.appSKey.aesKey, 'hex'),
    };
    if (appSessionKeyId(envelope) !== session.sessionKeyId) {
      throw new Error('the network named another session key than the envelope it sent');
    }
    const appSKey = this.#unwrapAppSKey(session.appSKey);
    const devAddr = Number.parseInt(session.devAddr, 16);
    const held = new Set(session.queuedIds);
    let fCntDown = session.fCntDown;
    for (const item of pending) {
      if (held.has(item.id)) continue;
      while (!this.#claimKeystream(session.sessionKeyId, fCntDown, item.id)) fCntDown++;
      const request: QueueDownlinkRequest = {
        devEui,
        id: item.id,
        fPort: item.fPort,
        confirmed: item.confirmed,
        sessionKeyId: session.sessionKeyId,
        fCntDown,
        frmPayload: Buffer.from(
          encryptFrmPayload(appSKey, 'downlink', devAddr, fCntDown, item.data),
        ).toString('base64'),
      };
      readQueueDownlinkAnswer(
        await this.client.request(QUEUE_DOWNLINK_METHOD, request, { timeoutMs: 5000 }),
      );
      this.#logger.info(
        { devEui, queueItemId: item.id, fCntDown },
        'downlink handed to the network',
      );
      fCntDown++;
    }
  }

  /** The network's counter moved on: the item, encrypted again for the counter it names. */
  async #reencrypt(body: unknown): Promise<ReencryptDownlinkAnswer> {
    const request = readReencryptDownlinkRequest(body);
    const item = await this.#storage.downlinkQueue.get(request.id);
    if (
      item === undefined ||
      item.devEui !== request.devEui ||
      (item.status !== 'pending' && item.status !== 'sent')
    ) {
      throw new LinkAnswerError(
        'NOT_FOUND',
        `no downlink ${request.id} waiting for ${request.devEui}`,
      );
    }
    const envelope = {
      kekLabel: request.appSKey.kekLabel,
      aesKey: Buffer.from(request.appSKey.aesKey, 'hex'),
    };
    if (appSessionKeyId(envelope) !== request.sessionKeyId) {
      throw new LinkAnswerError('INVALID_INPUT', 'sessionKeyId does not name the envelope sent');
    }
    let appSKey: Uint8Array;
    try {
      appSKey = this.#unwrapAppSKey(request.appSKey);
    } catch {
      throw new LinkAnswerError('KEY_UNWRAP_FAILED', 'the AppSKey envelope does not open here');
    }
    if (!this.#claimKeystream(request.sessionKeyId, request.fCntDown, item.id)) {
      this.#logger.warn(
        { devEui: request.devEui, queueItemId: item.id, fCntDown: request.fCntDown },
        'the network asked to encrypt a downlink with a counter another one used: refused',
      );
      throw new LinkAnswerError('COUNTER_REUSED', 'this counter encrypted another downlink');
    }
    const devAddr = Number.parseInt(request.devAddr, 16);
    this.#logger.info(
      { devEui: request.devEui, queueItemId: item.id, fCntDown: request.fCntDown },
      'downlink encrypted again for a new counter',
    );
    return {
      frmPayload: Buffer.from(
        encryptFrmPayload(appSKey, 'downlink', devAddr, request.fCntDown, item.data),
      ).toString('base64'),
    };
  }

  /** A `txack` or `ack` of one of this Galet's downlinks: the queue item follows, the event is stored. */
  async #downlinkEvent(body: unknown): Promise<void> {
    const delivery = readDownlinkEventDelivery(body);
    const device = await this.#storage.devices.get(delivery.devEui);
    if (device === undefined) {
      this.#logger.warn({ devEui: delivery.devEui }, 'downlink event of an unknown device dropped');
      return;
    }
    const { queueItemId, fCntDown, time } = delivery.body;
    const recent = await this.#storage.events.listForDevice(device.devEui, { limit: 20 });
    const repeated = recent.some((event) => {
      const stored = event.body as Record<string, unknown> | null;
      return (
        event.type === delivery.type &&
        stored?.['queueItemId'] === queueItemId &&
        stored?.['time'] === time &&
        stored?.['fCntDown'] === fCntDown
      );
    });
    if (repeated) return;
    if (typeof queueItemId === 'string' && typeof fCntDown === 'number') {
      await this.#settleItem(device.devEui, queueItemId, fCntDown, delivery);
    }
    await this.#storage.events.append({
      devEui: device.devEui,
      applicationId: device.applicationId,
      type: delivery.type,
      time: delivery.time,
      body: delivery.body,
    });
    this.#eventStored();
  }

  async #settleItem(
    devEui: string,
    id: string,
    fCntDown: number,
    delivery: ReturnType<typeof readDownlinkEventDelivery>,
  ): Promise<void> {
    const queue = this.#storage.downlinkQueue;
    const item = await queue.get(id);
    if (item === undefined || item.devEui !== devEui) return;
    try {
      if (delivery.type === 'txack') {
        if (delivery.body['status'] === 'NONE') await queue.markSent(id, fCntDown);
      } else if (delivery.body['acknowledged'] === true) {
        if (item.status === 'pending') await queue.markSent(id, fCntDown);
        await queue.markAcked(id);
      } else {
        await queue.markFailed(id, 'not acknowledged by the device');
      }
    } catch (error) {
      // A repeated or late report about an item already settled here.
      if (!isStorageError(error) || error.code !== 'INVALID_STATE') throw error;
    }
  }

  async #uplink(body: unknown): Promise<void> {
    const uplink = forwardedUplink(body);
    const device = await this.#storage.devices.get(uplink.devEui);
    if (device === undefined) {
      // Deleted here: nothing to store, and nothing to retry.
      this.#logger.warn({ devEui: uplink.devEui }, 'uplink of an unknown device dropped');
      return;
    }
    const deduplicationId = uplink.event['deduplicationId'];
    if (
      typeof deduplicationId === 'string' &&
      (await this.#stored(uplink.devEui, deduplicationId))
    ) {
      return;
    }
    const appSKey = this.#unwrapAppSKey(uplink.appSKey);
    const data = encryptFrmPayload(
      appSKey,
      'uplink',
      Number.parseInt(uplink.devAddr, 16),
      uplink.fCnt,
      Buffer.from(uplink.frmPayload, 'base64'),
    );
    const event = uplink.event;
    const time = typeof event['time'] === 'string' ? event['time'] : new Date().toISOString();
    await this.#storage.events.append({
      devEui: device.devEui,
      applicationId: device.applicationId,
      type: 'up',
      time,
      body: { ...event, data: Buffer.from(data).toString('base64') },
    });
    this.#eventStored();
    // The device has a session and just listened: what waits for it goes to the network now.
    if ((await this.#storage.downlinkQueue.countPending(device.devEui)) > 0) {
      this.downlinkQueued(device.devEui);
    }
  }

  /** Whether a redelivered uplink was stored already (the cursor was not saved in time). */
  async #stored(devEui: string, deduplicationId: string): Promise<boolean> {
    const recent = await this.#storage.events.listForDevice(devEui, { limit: 20 });
    return recent.some(
      (event) =>
        (event.body as { deduplicationId?: unknown } | null)?.deduplicationId === deduplicationId,
    );
  }
}
