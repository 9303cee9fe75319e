import type { Server } from 'node:http';
import { BackendJoinServerClient } from '../join/backend-join.js';
import type {
  JoinAnswer,
  JoinRequestMessage,
  JoinServer,
  RejoinRequestMessage,
} from '../join/join-server.js';
import type { JoinServerDirectory } from '../join/join-server-directory.js';
import {
  DOWNLINK_EVENT_TOPIC,
  DOWNLINK_SESSION_METHOD,
  type DownlinkEventDelivery,
  type DownlinkSessionAnswer,
  isLinkError,
  LinkAnswerError,
  LinkServer,
  QUEUE_DOWNLINK_METHOD,
  type QueueDownlinkAnswer,
  REENCRYPT_DOWNLINK_METHOD,
  type ReencryptDownlinkRequest,
  readDownlinkSessionRequest,
  readQueueDownlinkRequest,
  readReencryptDownlinkAnswer,
  readWithdrawDownlinksRequest,
  WITHDRAW_DOWNLINKS_METHOD,
  type WithdrawDownlinksAnswer,
  type WithdrawnDownlink,
} from '../link/index.js';
import { linkKekLabel, linkTokenHash, parseLinkToken } from '../link/link-token.js';
import type { Logger } from '../logger.js';
import { decodePhyPayloadWithMicInput } from '../lorawan/phy-payload.js';
import {
  appSessionKeyId,
  type BlindDownlinkRelay,
  type HandBackRequest,
  MAX_SKIPPED_FCNT_DOWN,
  nextApplicationFCntDown,
} from '../network/downlink/blind-downlinks.js';
import type { GaletEvent } from '../network/events.js';
import type { EncryptedUplink } from '../network/forward.js';
import type { Storage } from '../storage/index.js';
import { type Device, isStorageError, MAC_VERSIONS } from '../storage/index.js';

/** Counters of operator-blind downlinks on the network's side, all zero. */
export function newDownlinkCounters() {
  return {
    blindDownlinksQueued: 0,
    blindDownlinksReencrypted: 0,
    blindDownlinkHandBacksFailed: 0,
    /** Items a provider withdrew before they went out (or that it no longer had at a hand-back). */
    blindDownlinksWithdrawn: 0,
    /** Items a provider tried to withdraw after they were transmitted: left as they were. */
    blindDownlinkWithdrawalsTooLate: 0,
    downlinkRequestsRefused: 0,
    downlinkEventsForwarded: 0,
    downlinkEventsForwardFailed: 0,
  };
}

/** The delivery topic of forwarded uplinks. */
export const UPLINK_TOPIC = 'uplink';
const JOIN_TIMEOUT_MS = 3000;
const REENCRYPT_TIMEOUT_MS = 5000;
const DEVICE_FIELDS = new Set(['devEui', 'joinEui', 'name', 'macVersion', 'deviceClass']);

/**
 * The network role's side of provider links (issue 5): the link server on the API's HTTP port,
 * authenticated by link tokens; provider requests (`hello`, `registerDevice`, `deleteDevice`);
 * joins of a linked application's devices through its provider's join server (Backend
 * Interfaces JoinReq over the link); and uplinks forwarded encrypted, durably (outbox).
 */
export class NetworkLinks {
  readonly server: LinkServer;
  readonly #storage: Storage;
  readonly #logger: Logger;
  /** Link KEKs by KEKLabel, learnt when their token authenticates. */
  readonly #keks = new Map<string, Uint8Array>();
  #onDeviceChanged: (devEui: string) => void = () => {};
  #onDownlinkQueued: (devEui: string) => void = () => {};
  /** Items handed back to their provider, waiting for the new ciphertext. */
  readonly #handingBack = new Set<string>();
  readonly #downlinkCounters = newDownlinkCounters();
  /** Hand-backs and reports of operator-blind downlinks (the network server's hook). */
  readonly blindDownlinks: BlindDownlinkRelay = {
    handBack: (request) => this.#handBack(request),
    report: (event) => this.#report(event),
  };

  constructor(options: { httpServer: Server; storage: Storage; logger: Logger }) {
    this.#storage = options.storage;
    this.#logger = options.logger;
    this.server = new LinkServer({
      server: options.httpServer,
      outbox: options.storage.linkOutbox,
      logger: options.logger,
      authenticate: (token) => this.#authenticate(token),
    });
    this.server.onRequest('hello', (linkId) => this.#hello(linkId));
    this.server.onRequest('registerDevice', (linkId, body) => this.#registerDevice(linkId, body));
    this.server.onRequest('deleteDevice', (linkId, body) => this.#deleteDevice(linkId, body));
    this.server.onRequest(DOWNLINK_SESSION_METHOD, (linkId, body) =>
      this.#refusalsCounted(DOWNLINK_SESSION_METHOD, () => this.#downlinkSession(linkId, body)),
    );
    this.server.onRequest(QUEUE_DOWNLINK_METHOD, (linkId, body) =>
      this.#refusalsCounted(QUEUE_DOWNLINK_METHOD, () => this.#queueDownlink(linkId, body)),
    );
    this.server.onRequest(WITHDRAW_DOWNLINKS_METHOD, (linkId, body) =>
      this.#refusalsCounted(WITHDRAW_DOWNLINKS_METHOD, () => this.#withdrawDownlinks(linkId, body)),
    );
  }

  /** The network server sends a device's queue when a provider queued or re-encrypted an item. */
  onDownlinkQueued(listener: (devEui: string) => void): void {
    this.#onDownlinkQueued = listener;
  }

  /** Counters of operator-blind downlinks (for the metrics). */
  downlinkCounters(): Record<string, number> {
    return { ...this.#downlinkCounters };
  }

  /** The network server reads devices again when a provider registers or deletes one. */
  onDeviceChanged(listener: (devEui: string) => void): void {
    this.#onDeviceChanged = listener;
  }

  /** Whether an application's devices join through its provider (it has a live link token). */
  async isLinked(applicationId: string): Promise<boolean> {
    const tokens = await this.#storage.linkTokens.listForApplication(applicationId);
    return tokens.some((token) => token.revokedAt === null);
  }

  /**
   * A join server that reaches the provider of `applicationId` over its link: JoinRequests as
   * Backend Interfaces JoinReq, LoRaWAN 1.1 RejoinRequests as RejoinReq (link methods of the
   * same names; a provider too old for rejoins answers UNKNOWN_METHOD, and the rejoin is
   * refused).
   */
  joinServerFor(applicationId: string): JoinServer {
    return new BackendJoinServerClient({
      rejoins: true,
      send: (message) =>
        this.server.request(
          applicationId,
          message['MessageType'] === 'RejoinReq' ? 'RejoinReq' : 'JoinReq',
          message,
          { timeoutMs: JOIN_TIMEOUT_MS },
        ),
      networkKeks: (label) => this.#keks.get(label),
      device: async (devEui) => {
        const device = await this.#storage.devices.get(devEui);
        return device === undefined || device.applicationId !== applicationId
          ? undefined
          : { macVersion: device.macVersion, joinEui: device.joinEui };
      },
    });
  }

  /** Stores the uplink in the application's outbox; it reaches the provider when connected. */
  async forwardUplink(uplink: EncryptedUplink): Promise<void> {
    // The operator's event shows the encrypted FRMPayload too: it travels once, at the top.
    const { frmPayload: _shown, ...event } = uplink.event;
    await this.server.deliver(uplink.applicationId, UPLINK_TOPIC, {
      devEui: uplink.devEui,
      devAddr: uplink.devAddr.toString(16).padStart(8, '0'),
      fCnt: uplink.fCnt,
      fPort: uplink.fPort,
      frmPayload: Buffer.from(uplink.frmPayload).toString('base64'),
      appSKey: {
        kekLabel: uplink.appSKeyEnvelope.kekLabel,
        aesKey: Buffer.from(uplink.appSKeyEnvelope.aesKey).toString('hex'),
      },
      event,
    });
  }

  close(): Promise<void> {
    return this.server.close();
  }

  /** A provider's bad downlink request is answered INVALID_INPUT (or else), counted and logged. */
  async #refusalsCounted(method: string, handle: () => Promise<unknown>): Promise<unknown> {
    try {
      return await handle();
    } catch (error) {
      if (error instanceof LinkAnswerError) {
        this.#downlinkCounters.downlinkRequestsRefused++;
        this.#logger.warn(
          { method, code: error.code, reason: error.message },
          'link request refused',
        );
      }
      throw error;
    }
  }

  /** A linked device's operator-blind session: what its provider needs to encrypt downlinks. */
  async #blindSession(linkId: string, devEui: string) {
    const device = await this.#storage.devices.get(devEui);
    if (device === undefined || device.applicationId !== linkId) {
      throw new LinkAnswerError('NOT_FOUND', `device ${devEui} is not in this application`);
    }
    const session = await this.#storage.deviceSessions.get(devEui);
    if (session === undefined) {
      throw new LinkAnswerError('NO_SESSION', `device ${devEui} has not joined`);
    }
    const envelope = session.keys.appSKeyEnvelope;
    if (envelope === undefined) {
      throw new LinkAnswerError('CONFLICT', `device ${devEui} has no operator-blind session`);
    }
    return { session, envelope, sessionKeyId: appSessionKeyId(envelope) };
  }

  async #downlinkSession(linkId: string, body: unknown): Promise<DownlinkSessionAnswer> {
    const { devEui } = readDownlinkSessionRequest(body);
    const { session, envelope, sessionKeyId } = await this.#blindSession(linkId, devEui);
    // Sent ones too: a provider that has not had their txack yet must not send them again.
    const held = (
      await this.#storage.downlinkQueue.list(devEui, { statuses: ['pending', 'sent'] })
    ).filter((item) => item.encryptedFor !== undefined);
    // A new item goes after those still waiting, already encrypted for this session.
    let fCntDown = nextApplicationFCntDown(session);
    for (const item of held) {
      if (item.status === 'pending' && item.encryptedFor?.sessionKeyId === sessionKeyId) {
        fCntDown = Math.max(fCntDown, item.encryptedFor.fCntDown + 1);
      }
    }
    return {
      devAddr: session.devAddr.toString(16).padStart(8, '0'),
      sessionKeyId,
      fCntDown,
      appSKey: {
        kekLabel: envelope.kekLabel,
        aesKey: Buffer.from(envelope.aesKey).toString('hex'),
      },
      queuedIds: held.map((item) => item.id),
    };
  }

  async #queueDownlink(linkId: string, body: unknown): Promise<QueueDownlinkAnswer> {
    const request = readQueueDownlinkRequest(body);
    await this.#blindSession(linkId, request.devEui);
    const data = Buffer.from(request.frmPayload, 'base64');
    const encryptedFor = { fCntDown: request.fCntDown, sessionKeyId: request.sessionKeyId };
    let queued = true;
    try {
      await this.#storage.downlinkQueue.enqueue({
        id: request.id,
        devEui: request.devEui,
        fPort: request.fPort,
        data,
        confirmed: request.confirmed,
        encryptedFor,
      });
    } catch (error) {
      if (!isStorageError(error)) throw error;
      if (error.code === 'INVALID_INPUT') throw new LinkAnswerError('INVALID_INPUT', error.message);
      if (error.code !== 'ALREADY_EXISTS') throw error;
      // Sent again (a reconnection): a pending item takes the newer ciphertext.
      const existing = await this.#storage.downlinkQueue.get(request.id);
      if (existing?.devEui !== request.devEui) {
        throw new LinkAnswerError('CONFLICT', `downlink ${request.id} belongs to another device`);
      }
      if (existing.status === 'pending' && existing.encryptedFor !== undefined) {
        await this.#storage.downlinkQueue.reencrypt(request.id, data, encryptedFor);
      }
      queued = false;
    }
    if (queued) this.#downlinkCounters.blindDownlinksQueued++;
    this.#logger.info(
      {
        devEui: request.devEui,
        queueItemId: request.id,
        fCntDown: request.fCntDown,
        bytes: data.length,
        queued,
      },
      'encrypted downlink queued by its provider',
    );
    this.#onDownlinkQueued(request.devEui);
    return { queued };
  }

  /**
   * The provider deleted items of its queue: each one the network holds pending fails at once
   * (one pending → failed transition, so that it cannot go out afterwards; a transmission that
   * won the race makes it `sent`). An item transmitted already is left as it is and answered
   * `sent` with its counter; an item never handed over is `unknown`.
   */
  async #withdrawDownlinks(linkId: string, body: unknown): Promise<WithdrawDownlinksAnswer> {
    const request = readWithdrawDownlinksRequest(body);
    const device = await this.#storage.devices.get(request.devEui);
    if (device === undefined || device.applicationId !== linkId) {
      throw new LinkAnswerError('NOT_FOUND', `device ${request.devEui} is not in this application`);
    }
    const queue = this.#storage.downlinkQueue;
    const items: WithdrawnDownlink[] = [];
    for (const id of request.ids) {
      let item = await queue.get(id);
      // Only the provider's own (encrypted) items of this device: anything else is not its.
      if (item === undefined || item.devEui !== device.devEui || item.encryptedFor === undefined) {
        items.push({ id, status: 'unknown' });
        continue;
      }
      if (item.status === 'pending' && item.attempts === 0) {
        try {
          await queue.withdraw(id, 'withdrawn by the provider');
          this.#downlinkCounters.blindDownlinksWithdrawn++;
          this.#logger.info(
            { devEui: device.devEui, queueItemId: id, applicationId: linkId },
            'downlink withdrawn by its provider',
          );
          items.push({ id, status: 'withdrawn' });
          continue;
        } catch (error) {
          if (!isStorageError(error, 'INVALID_STATE')) throw error;
          // Sent meanwhile (the transmission won the race).
          item = (await queue.get(id)) ?? item;
        }
      }
      if (item.attempts === 0 && item.status !== 'pending') {
        // Failed or expired without ever going out (withdrawn before, refused): it never will.
        items.push({ id, status: 'withdrawn' });
        continue;
      }
      // Transmitted at least once (a confirmed one back in the queue for a retransmission too):
      // left as it is, its retries, ACK and events go on.
      this.#downlinkCounters.blindDownlinkWithdrawalsTooLate++;
      this.#logger.info(
        { devEui: device.devEui, queueItemId: id, status: item.status, fCntDown: item.fCntDown },
        'downlink not withdrawn: transmitted already',
      );
      items.push({ id, status: 'sent', fCntDown: item.fCntDown });
    }
    return { items };
  }

  #handBack(request: HandBackRequest): void {
    if (this.#handingBack.has(request.itemId)) return;
    this.#handingBack.add(request.itemId);
    this.#reencrypt(request)
      .catch(async (error: unknown) => {
        if (
          isLinkError(error) &&
          error.code === 'REMOTE_ERROR' &&
          error.remote?.code === 'NOT_FOUND'
        ) {
          // The provider no longer has it pending (deleted, or already settled there).
          this.#downlinkCounters.blindDownlinksWithdrawn++;
          await this.#storage.downlinkQueue
            .markFailed(request.itemId, 'withdrawn by the provider')
            .catch(() => {});
          return;
        }
        this.#downlinkCounters.blindDownlinkHandBacksFailed++;
        this.#logger.warn(
          {
            devEui: request.devEui,
            queueItemId: request.itemId,
            error: error instanceof Error ? error.message : String(error),
          },
          'operator-blind downlink not re-encrypted (tried again at the next window)',
        );
      })
      .finally(() => this.#handingBack.delete(request.itemId));
  }

  async #reencrypt(request: HandBackRequest): Promise<void> {
    const sessionKeyId = appSessionKeyId(request.appSKeyEnvelope);
    const body: ReencryptDownlinkRequest = {
      devEui: request.devEui,
      id: request.itemId,
      devAddr: request.devAddr.toString(16).padStart(8, '0'),
      sessionKeyId,
      fCntDown: request.fCntDown,
      appSKey: {
        kekLabel: request.appSKeyEnvelope.kekLabel,
        aesKey: Buffer.from(request.appSKeyEnvelope.aesKey).toString('hex'),
      },
      // The network server skips to a later counter (blind-downlinks.ts), so the provider may
      // pick the next one it has not used when this one encrypted another item.
      laterFCntDownAccepted: true,
    };
    this.#logger.info(
      {
        devEui: request.devEui,
        queueItemId: request.itemId,
        fCntDown: request.fCntDown,
        reason: request.reason,
      },
      'operator-blind downlink handed back to its provider for re-encryption',
    );
    const answer = readReencryptDownlinkAnswer(
      await this.server.request(request.applicationId, REENCRYPT_DOWNLINK_METHOD, body, {
        timeoutMs: REENCRYPT_TIMEOUT_MS,
      }),
      body,
    );
    const fCntDown = answer.fCntDown ?? request.fCntDown;
    if (fCntDown - request.fCntDown > MAX_SKIPPED_FCNT_DOWN) {
      throw new Error(
        `the provider encrypted for FCntDown ${fCntDown}, more than ${MAX_SKIPPED_FCNT_DOWN} past ${request.fCntDown}`,
      );
    }
    try {
      await this.#storage.downlinkQueue.reencrypt(
        request.itemId,
        Buffer.from(answer.frmPayload, 'base64'),
        { fCntDown, sessionKeyId },
      );
    } catch (error) {
      if (!isStorageError(error, 'INVALID_STATE')) throw error;
      // Withdrawn by the provider (or settled) while it was being encrypted again: dropped.
      this.#logger.info(
        { devEui: request.devEui, queueItemId: request.itemId },
        'operator-blind downlink re-encrypted after it was withdrawn or settled: ciphertext dropped',
      );
      return;
    }
    this.#downlinkCounters.blindDownlinksReencrypted++;
    this.#onDownlinkQueued(request.devEui);
  }

  async #report(event: GaletEvent): Promise<void> {
    if (event.type !== 'txack' && event.type !== 'ack') return;
    const delivery: DownlinkEventDelivery = {
      type: event.type,
      devEui: event.devEui,
      time: event.time,
      body: event.body,
    };
    try {
      await this.server.deliver(event.applicationId, DOWNLINK_EVENT_TOPIC, delivery);
      this.#downlinkCounters.downlinkEventsForwarded++;
    } catch (error) {
      // The operator's own event is stored; the provider's copy is lost (counted, logged).
      this.#downlinkCounters.downlinkEventsForwardFailed++;
      this.#logger.error(
        {
          devEui: event.devEui,
          type: event.type,
          error: error instanceof Error ? error.message : String(error),
        },
        'downlink event not forwarded to the provider',
      );
    }
  }

  async #authenticate(token: string): Promise<{ linkId: string } | undefined> {
    const parsed = parseLinkToken(token);
    if (parsed === undefined) return undefined;
    const found = await this.#storage.linkTokens.authenticate(linkTokenHash(token));
    if (found === undefined) return undefined;
    this.#keks.set(linkKekLabel(found.token.id), found.kek);
    return { linkId: found.token.applicationId };
  }

  async #hello(linkId: string): Promise<unknown> {
    const application = await this.#storage.applications.get(linkId);
    if (application === undefined) throw new LinkAnswerError('NOT_FOUND', 'application deleted');
    return { applicationId: application.id, name: application.name };
  }

  async #registerDevice(linkId: string, body: unknown): Promise<unknown> {
    const fields = deviceFields(body);
    try {
      const existing = await this.#storage.devices.get(fields.devEui);
      if (existing !== undefined) {
        if (existing.applicationId !== linkId) {
          throw new LinkAnswerError(
            'CONFLICT',
            `device ${fields.devEui} belongs to another application`,
          );
        }
        return { devEui: existing.devEui, created: false };
      }
      await this.#storage.devices.create({
        ...fields,
        applicationId: linkId,
        activation: 'otaa',
        rootKeysElsewhere: true,
      });
    } catch (error) {
      if (isStorageError(error) && error.code === 'INVALID_INPUT') {
        throw new LinkAnswerError('INVALID_INPUT', error.message);
      }
      throw error;
    }
    this.#logger.info(
      { devEui: fields.devEui, applicationId: linkId },
      'device registered by its provider',
    );
    this.#onDeviceChanged(fields.devEui);
    return { devEui: fields.devEui, created: true };
  }

  async #deleteDevice(linkId: string, body: unknown): Promise<unknown> {
    const devEui =
      typeof body === 'object' && body !== null ? (body as { devEui?: unknown }).devEui : undefined;
    if (typeof devEui !== 'string' || !/^[0-9a-fA-F]{16}$/.test(devEui)) {
      throw new LinkAnswerError('INVALID_INPUT', 'devEui must be 16 hex digits');
    }
    const device = await this.#storage.devices.get(devEui.toLowerCase());
    if (device === undefined || device.applicationId !== linkId) return { deleted: false };
    await this.#storage.devices.delete(device.devEui);
    this.#onDeviceChanged(device.devEui);
    return { deleted: true };
  }
}

function deviceFields(body: unknown) {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new LinkAnswerError('INVALID_INPUT', 'registerDevice takes an object');
  }
  const fields = body as Record<string, unknown>;
  for (const key of Object.keys(fields)) {
    if (!DEVICE_FIELDS.has(key)) throw new LinkAnswerError('INVALID_INPUT', `unknown field ${key}`);
  }
  const text = (key: string, pattern: RegExp) => {
    const value = fields[key];
    if (typeof value !== 'string' || !pattern.test(value)) {
      throw new LinkAnswerError('INVALID_INPUT', `${key} is missing or malformed`);
    }
    return value;
  };
  const macVersion = text('macVersion', /^[0-9.]+$/);
  if (!(MAC_VERSIONS as readonly string[]).includes(macVersion)) {
    throw new LinkAnswerError('INVALID_INPUT', `macVersion ${macVersion} is not supported`);
  }
  const deviceClass = fields['deviceClass'] ?? 'A';
  if (deviceClass !== 'A' && deviceClass !== 'C') {
    throw new LinkAnswerError('INVALID_INPUT', 'deviceClass is A or C');
  }
  return {
    devEui: text('devEui', /^[0-9a-fA-F]{16}$/).toLowerCase(),
    joinEui: text('joinEui', /^[0-9a-fA-F]{16}$/).toLowerCase(),
    name: text('name', /^.{1,200}$/s),
    macVersion: macVersion as (typeof MAC_VERSIONS)[number],
    deviceClass: deviceClass as 'A' | 'C',
  };
}

/**
 * The network's join server. A JoinRequest whose JoinEUI is in the configured join servers
 * table (`joinServers`) goes there, as Backend Interfaces JoinReq over HTTP; else a device of a
 * linked application joins through its provider's join server (over the link); every other
 * device through the local one.
 */
export class RoutingJoinServer implements JoinServer {
  constructor(
    private readonly local: JoinServer,
    /** Absent until the API (which carries the links) is up: then every join is local. */
    private readonly links: () => NetworkLinks | undefined,
    private readonly storage: Storage,
    /** The configured join servers by JoinEUI; none: only links and the local one. */
    private readonly joinServers?: JoinServerDirectory,
  ) {}

  async handleJoinRequest(request: JoinRequestMessage): Promise<JoinAnswer> {
    return (await this.#route(request.phyPayload)).handleJoinRequest(request);
  }

  async handleRejoinRequest(request: RejoinRequestMessage): Promise<JoinAnswer> {
    return (await this.#route(request.phyPayload)).handleRejoinRequest(request);
  }

  async #route(phyPayload: Uint8Array): Promise<JoinServer> {
    let devEui: string | undefined;
    let joinEui: string | undefined;
    try {
      const { payload } = decodePhyPayloadWithMicInput(phyPayload);
      if (payload.mType === 'JoinRequest') {
        devEui = payload.devEui;
        joinEui = payload.joinEui;
      } else if (payload.mType === 'RejoinRequest' && 'devEui' in payload) {
        devEui = payload.devEui;
        // Types 0 and 2 carry the NetID instead: the device's registered JoinEUI then.
        if ('joinEui' in payload) joinEui = payload.joinEui;
      }
    } catch {
      return this.local; // it answers MalformedRequest
    }
    if (devEui === undefined) return this.local;
    const eui = devEui;
    let device: Device | undefined | null = null; // null: not read yet
    const known = async () => {
      if (device === null) device = await this.storage.devices.get(eui);
      return device;
    };
    if (this.joinServers !== undefined) {
      const routeBy = joinEui ?? (await known())?.joinEui;
      const routed = routeBy === undefined ? undefined : this.joinServers.forJoinEui(routeBy);
      if (routed !== undefined) return routed.joinServer;
    }
    const links = this.links();
    if (links === undefined) return this.local;
    const linked = await known();
    if (linked === undefined || !(await links.isLinked(linked.applicationId))) return this.local;
    return links.joinServerFor(linked.applicationId);
  }
}
