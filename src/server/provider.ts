import { createHash, hkdfSync } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DownlinkWithdrawal } from '../api/server.js';
import { unwrapKeyEnvelope, wrapKeyEnvelope } from '../join/backend-interfaces/index.js';
import { answerJoinReq } from '../join/backend-join.js';
import { type JoinAnswer, type JoinServer, LocalJoinServer } from '../join/join-server.js';
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
  readWithdrawDownlinksAnswer,
  WITHDRAW_DOWNLINKS_METHOD,
  type WithdrawDownlinksRequest,
  type WrappedAppSKey,
} from '../link/index.js';
import { linkKek, linkKekLabel, parseLinkToken } from '../link/link-token.js';
import type { Logger } from '../logger.js';
import { encryptFrmPayload } from '../lorawan/crypto/frm-payload.js';
import { appSessionKeyId, MAX_SKIPPED_FCNT_DOWN } from '../network/downlink/blind-downlinks.js';
import {
  type Device,
  isStorageError,
  type KeystreamClaim,
  type Storage,
} from '../storage/index.js';
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

/**
 * The provider's join server, remembering each session it issues in the downlink keystream
 * memory (storage/downlink-keystreams.ts) before the JoinAccept leaves: the keystreams of a
 * session are claimed from its start, and the device's older sessions are forgotten, so that
 * the network can never have this provider encrypt for them again. Every path that answers
 * joins with this application KEK (the link, an HTTP join endpoint) must go through it, or the
 * sessions it issues are refused for downlinks (`UNKNOWN_SESSION`) once the device has one
 * recorded.
 */
export function recordingIssuedSessions(
  joinServer: JoinServer,
  storage: Storage,
  applicationKek: ApplicationKek,
): JoinServer {
  const remember = async (answer: JoinAnswer): Promise<JoinAnswer> => {
    if (answer.result === 'Success' && answer.sessionKeys.appSKey !== undefined) {
      // RFC 3394 wrapping is deterministic: the very envelope the network will name.
      const envelope = wrapKeyEnvelope(answer.sessionKeys.appSKey, applicationKek);
      await storage.downlinkKeystreams.startSession(answer.devEui, appSessionKeyId(envelope));
    }
    return answer;
  };
  return {
    handleJoinRequest: async (request) => remember(await joinServer.handleJoinRequest(request)),
    handleRejoinRequest: async (request) => remember(await joinServer.handleRejoinRequest(request)),
  };
}

const CURSOR_FILE = 'link.cursor';
const WITHDRAW_TIMEOUT_MS = 5000;

/** Counters of the provider's side of the link (for the metrics), all zero. */
export function newProviderLinkCounters() {
  return {
    /** Pending items deleted here and taken back from the network (or never handed over). */
    downlinksWithdrawn: 0,
    /** Items a deletion found transmitted already (here or on the network): kept. */
    downlinkWithdrawalsTooLate: 0,
    /** Deletions refused because the network could not be asked (link down, no answer). */
    downlinkWithdrawalsUnavailable: 0,
    /** Requests to encrypt with a keystream another item used, or that is not remembered. */
    keystreamClaimsRefused: 0,
  };
}

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
  readonly #eventStored: () => void;
  readonly #counters = newProviderLinkCounters();

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
    const joinServer = recordingIssuedSessions(
      new LocalJoinServer(new StorageJoinServerStore(options.storage)),
      options.storage,
      options.applicationKek,
    );
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
    // RejoinReq (LoRaWAN 1.1 RejoinRequests) reads the same fields and is answered alike.
    const activation = async (body: unknown) => {
      const { answer, accepted } = await answerJoinReq(joinServer, body, {
        network,
        application: this.#applicationKek,
      });
      if (accepted !== undefined) {
        this.#logger.info({ devEui: accepted.devEui }, 'device joined through the network link');
      }
      return answer;
    };
    this.client.onRequest('JoinReq', activation);
    this.client.onRequest('RejoinReq', activation);
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

  /** Counters for the metrics (`galet_provider_link_*`). */
  counters(): Record<string, number> {
    return { ...this.#counters };
  }

  /**
   * Pending items deleted on this Galet's API: taken back from the network first, over the
   * link, in the device's turn (never while its items are being handed over, so an item cannot
   * reach the network after it was withdrawn). An item the network transmitted already is kept
   * here and answered in `sent`. The link down or not answering: `{unavailable}`, nothing
   * deleted (a retry is harmless).
   */
  withdrawDownlinks(
    devEui: string,
    ids: readonly string[],
  ): Promise<DownlinkWithdrawal | { unavailable: string }> {
    const previous = this.#submitting.get(devEui) ?? Promise.resolve();
    const result = previous.then(() => this.#withdraw(devEui, ids));
    const next = result.then(
      () => {},
      () => {},
    );
    this.#submitting.set(devEui, next);
    void next.finally(() => {
      if (this.#submitting.get(devEui) === next) this.#submitting.delete(devEui);
    });
    return result;
  }

  async #withdraw(
    devEui: string,
    ids: readonly string[],
  ): Promise<DownlinkWithdrawal | { unavailable: string }> {
    const outcome: DownlinkWithdrawal = { withdrawn: [], sent: [] };
    const queue = this.#storage.downlinkQueue;
    const asked: string[] = [];
    for (const id of ids) {
      const item = await queue.get(id);
      if (item === undefined || item.devEui !== devEui) continue;
      if (item.status === 'pending') asked.push(id);
      else if (item.status === 'sent' || item.status === 'acked') {
        outcome.sent.push({ id, fCntDown: item.fCntDown });
      }
    }
    if (asked.length === 0) return this.#withdrawn(devEui, outcome);
    const request: WithdrawDownlinksRequest = { devEui, ids: asked };
    let answer: ReturnType<typeof readWithdrawDownlinksAnswer>;
    try {
      answer = readWithdrawDownlinksAnswer(
        await this.client.request(WITHDRAW_DOWNLINKS_METHOD, request, {
          timeoutMs: WITHDRAW_TIMEOUT_MS,
        }),
        request,
      );
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      this.#counters.downlinkWithdrawalsUnavailable++;
      this.#logger.warn(
        { devEui, queueItemIds: asked, error: reason },
        'downlinks not withdrawn: the network did not answer (nothing deleted)',
      );
      return { unavailable: reason };
    }
    for (const item of answer.items) {
      if (item.status === 'sent') {
        outcome.sent.push({ id: item.id, fCntDown: item.fCntDown });
        continue;
      }
      try {
        await queue.withdraw(item.id, 'deleted through the API (withdrawn from the network)');
        outcome.withdrawn.push(item.id);
      } catch (error) {
        if (!isStorageError(error, 'INVALID_STATE')) throw error;
        // Its txack came meanwhile (the network answered before it was recorded here).
        const current = await queue.get(item.id);
        outcome.sent.push({ id: item.id, fCntDown: current?.fCntDown ?? null });
      }
    }
    return this.#withdrawn(devEui, outcome);
  }

  #withdrawn(devEui: string, outcome: DownlinkWithdrawal): DownlinkWithdrawal {
    this.#counters.downlinksWithdrawn += outcome.withdrawn.length;
    this.#counters.downlinkWithdrawalsTooLate += outcome.sent.length;
    for (const id of outcome.withdrawn) {
      this.#logger.info(
        { devEui, queueItemId: id },
        'downlink deleted and withdrawn from the network',
      );
    }
    for (const { id, fCntDown } of outcome.sent) {
      this.#logger.info(
        { devEui, queueItemId: id, fCntDown },
        'downlink not deleted: the network transmitted it already',
      );
    }
    return outcome;
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

  /**
   * Claims the keystream (session, downlink counter) for an item, in the store: AES-CTR, two
   * plaintexts under one keystream would give their XOR to the network, so each keystream
   * encrypts one item ever, across restarts (storage/downlink-keystreams.ts).
   */
  #claimKeystream(
    devEui: string,
    sessionKeyId: string,
    fCntDown: number,
    itemId: string,
  ): Promise<KeystreamClaim> {
    return this.#storage.downlinkKeystreams.claim({
      devEui,
      sessionKeyId,
      fCntDown,
      queueItemId: itemId,
    });
  }

  #unwrapAppSKey(wrapped: WrappedAppSKey): Uint8Array {
    return unwrapKeyEnvelope(
      { kekLabel: wrapped.kekLabel, aesKey: Buffer.from(wrapped.aesKey, 'hex') },
      (label) => (label === this.#applicationKek.label ? this.#applicationKek.key : undefined),
    );
  }

  /**
   * Claims the first counter from `fCntDown` up to `last` whose keystream this item may use: a
   * counter that encrypted another item is passed, one below those remembered jumps to them.
   * The refusal of the last counter tried when none is free.
   */
  async #claimFirstFree(
    devEui: string,
    sessionKeyId: string,
    fCntDown: number,
    itemId: string,
    last: number,
  ): Promise<{ fCntDown: number } | { refused: Exclude<KeystreamClaim, { outcome: 'claimed' }> }> {
    let counter = fCntDown;
    for (;;) {
      const claim = await this.#claimKeystream(devEui, sessionKeyId, counter, itemId);
      if (claim.outcome === 'claimed') return { fCntDown: counter };
      if (claim.outcome === 'unknownSession') return { refused: claim };
      const next = claim.outcome === 'belowFloor' ? claim.floor : counter + 1;
      if (next > last) return { refused: claim };
      counter = next;
    }
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
      // A counter used by another item (one withdrawn, say) is skipped: the network skips it
      // too when it sends this one.
      const claimed = await this.#claimFirstFree(
        devEui,
        session.sessionKeyId,
        fCntDown,
        item.id,
        Math.min(session.fCntDown + MAX_SKIPPED_FCNT_DOWN, 0xffff_ffff),
      );
      if ('refused' in claimed) {
        this.#counters.keystreamClaimsRefused++;
        throw new Error(
          claimed.refused.outcome === 'unknownSession'
            ? `the network named session ${session.sessionKeyId}, which this provider did not issue or no longer serves`
            : `no unused downlink counter within ${MAX_SKIPPED_FCNT_DOWN} of ${session.fCntDown}`,
        );
      }
      fCntDown = claimed.fCntDown;
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
    // The counter asked, or (when the network skips counters) the next one this item may use.
    const claimed = await this.#claimFirstFree(
      request.devEui,
      request.sessionKeyId,
      request.fCntDown,
      item.id,
      request.laterFCntDownAccepted === true
        ? Math.min(request.fCntDown + MAX_SKIPPED_FCNT_DOWN, 0xffff_ffff)
        : request.fCntDown,
    );
    if ('refused' in claimed) {
      const claim = claimed.refused;
      this.#counters.keystreamClaimsRefused++;
      const context = { devEui: request.devEui, queueItemId: item.id, fCntDown: request.fCntDown };
      if (claim.outcome === 'unknownSession') {
        this.#logger.warn(
          { ...context, sessionKeyId: request.sessionKeyId },
          'the network asked to encrypt a downlink for a session this provider does not serve: refused',
        );
        throw new LinkAnswerError(
          'UNKNOWN_SESSION',
          'this provider did not issue this session or no longer serves it',
        );
      }
      this.#logger.warn(
        { ...context, reason: claim.outcome },
        'the network asked to encrypt a downlink with a counter another one used: refused',
      );
      throw new LinkAnswerError(
        'COUNTER_REUSED',
        claim.outcome === 'taken'
          ? 'this counter encrypted another downlink'
          : `counters below ${claim.floor} of this session are no longer remembered: refused as used`,
      );
    }
    const { fCntDown } = claimed;
    const devAddr = Number.parseInt(request.devAddr, 16);
    this.#logger.info(
      { devEui: request.devEui, queueItemId: item.id, fCntDown, asked: request.fCntDown },
      'downlink encrypted again for a new counter',
    );
    return {
      frmPayload: Buffer.from(
        encryptFrmPayload(appSKey, 'downlink', devAddr, fCntDown, item.data),
      ).toString('base64'),
      ...(fCntDown === request.fCntDown ? {} : { fCntDown }),
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
