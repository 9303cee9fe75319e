import { createHash, hkdfSync } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { unwrapKeyEnvelope } from '../join/backend-interfaces/index.js';
import { answerJoinReq } from '../join/backend-join.js';
import { LocalJoinServer } from '../join/join-server.js';
import { LinkClient, type LinkDeliveryCursor } from '../link/index.js';
import { linkKek, linkKekLabel, parseLinkToken } from '../link/link-token.js';
import type { Logger } from '../logger.js';
import { encryptFrmPayload } from '../lorawan/crypto/frm-payload.js';
import type { Device, Storage } from '../storage/index.js';
import { StorageJoinServerStore } from './stores.js';

/** The provider's application KEK: wraps the AppSKeys its join server hands out. */
export interface ApplicationKek {
  label: string;
  key: Uint8Array;
}

/** Derived from the role's master key, so that it needs no file or variable of its own. */
export function applicationKek(masterKey: Uint8Array): ApplicationKek {
  const key = new Uint8Array(hkdfSync('sha256', masterKey, 'galet', 'application role KEK', 16));
  const fingerprint = createHash('sha256').update(key).digest('hex').slice(0, 16);
  return { label: `galet-app:${fingerprint}`, key };
}

const CURSOR_FILE = 'link.cursor';

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
    const appSKey = unwrapKeyEnvelope(
      { kekLabel: uplink.appSKey.kekLabel, aesKey: Buffer.from(uplink.appSKey.aesKey, 'hex') },
      (label) => (label === this.#applicationKek.label ? this.#applicationKek.key : undefined),
    );
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
