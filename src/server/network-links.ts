import type { Server } from 'node:http';
import { BackendJoinServerClient } from '../join/backend-join.js';
import type {
  JoinAnswer,
  JoinRequestMessage,
  JoinServer,
  RejoinRequestMessage,
} from '../join/join-server.js';
import { LinkAnswerError, LinkServer } from '../link/index.js';
import { linkKekLabel, linkTokenHash, parseLinkToken } from '../link/link-token.js';
import type { Logger } from '../logger.js';
import { decodePhyPayloadWithMicInput } from '../lorawan/phy-payload.js';
import type { EncryptedUplink } from '../network/forward.js';
import type { Storage } from '../storage/index.js';
import { isStorageError, MAC_VERSIONS } from '../storage/index.js';

/** The delivery topic of forwarded uplinks. */
export const UPLINK_TOPIC = 'uplink';
const JOIN_TIMEOUT_MS = 3000;
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

  /** A join server that reaches the provider of `applicationId` over its link. */
  joinServerFor(applicationId: string): JoinServer {
    return new BackendJoinServerClient({
      send: (message) =>
        this.server.request(applicationId, 'JoinReq', message, { timeoutMs: JOIN_TIMEOUT_MS }),
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
 * The network's join server: a device of a linked application joins through its provider's
 * join server (over the link); every other device through the local one.
 */
export class RoutingJoinServer implements JoinServer {
  constructor(
    private readonly local: JoinServer,
    /** Absent until the API (which carries the links) is up: then every join is local. */
    private readonly links: () => NetworkLinks | undefined,
    private readonly storage: Storage,
  ) {}

  async handleJoinRequest(request: JoinRequestMessage): Promise<JoinAnswer> {
    return (await this.#route(request.phyPayload)).handleJoinRequest(request);
  }

  async handleRejoinRequest(request: RejoinRequestMessage): Promise<JoinAnswer> {
    return (await this.#route(request.phyPayload)).handleRejoinRequest(request);
  }

  async #route(phyPayload: Uint8Array): Promise<JoinServer> {
    let devEui: string | undefined;
    try {
      const { payload } = decodePhyPayloadWithMicInput(phyPayload);
      if (payload.mType === 'JoinRequest') devEui = payload.devEui;
      else if (payload.mType === 'RejoinRequest' && 'devEui' in payload) devEui = payload.devEui;
    } catch {
      return this.local; // it answers MalformedRequest
    }
    const links = this.links();
    if (devEui === undefined || links === undefined) return this.local;
    const device = await this.storage.devices.get(devEui);
    if (device === undefined || !(await links.isLinked(device.applicationId))) return this.local;
    return links.joinServerFor(device.applicationId);
  }
}
