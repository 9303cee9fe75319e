import type { FastifyInstance } from 'fastify';
import type { JsonValue } from '../../application/codecs/index.js';
import { isActiveCodec } from '../../application/stage/index.js';
import { hexToBytes, parseHexUint, uint32ToHex } from '../../lorawan/bytes.js';
import type { Region } from '../../lorawan/regions/index.js';
import { sessionMacView } from '../../network/mac/session-mac.js';
import type { DeviceSession } from '../../network/store.js';
import {
  DEVICE_SORT,
  type Device,
  type DownlinkQueueItem,
  isStorageError,
  MAX_DOWNLINK_PAYLOAD_BYTES,
  type MacVersion,
} from '../../storage/index.js';
import { noteAudit } from '../auth.js';
import { ApiError, badRequest, conflict, notFound } from '../errors.js';
import {
  fieldKey,
  idCursor,
  idFromCursor,
  listPage,
  type PageQuery,
  pagedListSchema,
  pageInMemory,
  pageRequest,
} from '../paging.js';
import type { ApiContext, DownlinkWithdrawal } from '../server.js';
import {
  applicationForDevices,
  type DeviceListQuery,
  deviceFilterSchemas,
  deviceFor,
  deviceListFilters,
} from './device-access.js';
import { codecRefusal, schemaErrorMessage } from './device-profiles.js';
import { DEVADDR_PATTERN, EUI_PATTERN, KEY_PATTERN, nameSchema, tagsSchema } from './schemas.js';

interface AbpBody {
  devAddr: string;
  nwkSKey?: string;
  appSKey: string;
  fNwkSIntKey?: string;
  sNwkSIntKey?: string;
  nwkSEncKey?: string;
}

interface NewDeviceBody {
  devEui: string;
  joinEui?: string;
  name: string;
  applicationId: string;
  macVersion: MacVersion;
  deviceClass?: 'A' | 'C';
  appKey?: string;
  nwkKey?: string;
  abp?: AbpBody;
  deviceProfileId?: string;
  tags?: Record<string, string>;
}

interface DeviceUpdateBody {
  name?: string;
  deviceProfileId?: string | null;
  deviceClass?: 'A' | 'C';
  tags?: Record<string, string>;
}

const key = { type: 'string', pattern: KEY_PATTERN } as const;
const deviceProfileId = { type: 'string', minLength: 1, maxLength: 100 } as const;

const newDeviceSchema = {
  type: 'object',
  required: ['devEui', 'name', 'applicationId', 'macVersion'],
  additionalProperties: false,
  properties: {
    devEui: { type: 'string', pattern: EUI_PATTERN },
    joinEui: { type: 'string', pattern: EUI_PATTERN },
    name: nameSchema,
    applicationId: { type: 'string', minLength: 1, maxLength: 100 },
    macVersion: { type: 'string', enum: ['1.0.2', '1.0.3', '1.0.4', '1.1.0'] },
    deviceClass: { type: 'string', enum: ['A', 'C'] },
    appKey: key,
    nwkKey: key,
    deviceProfileId,
    tags: tagsSchema,
    abp: {
      type: 'object',
      required: ['devAddr', 'appSKey'],
      additionalProperties: false,
      properties: {
        devAddr: { type: 'string', pattern: DEVADDR_PATTERN },
        nwkSKey: key,
        appSKey: key,
        fNwkSIntKey: key,
        sNwkSIntKey: key,
        nwkSEncKey: key,
      },
    },
  },
} as const;

const deviceUpdateSchema = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: {
    name: nameSchema,
    deviceProfileId: { ...deviceProfileId, type: ['string', 'null'] },
    deviceClass: { type: 'string', enum: ['A', 'C'] },
    tags: tagsSchema,
  },
} as const;

/** LoRaWAN 1.1 ForceRejoinReq: rejoin type 0 or 2, its data rate, retries, period exponent. */
const forceRejoinSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    rejoinType: { type: 'integer', enum: [0, 2] },
    dataRate: { type: 'integer', minimum: 0, maximum: 7 },
    maxRetries: { type: 'integer', minimum: 0, maximum: 7 },
    period: { type: 'integer', minimum: 0, maximum: 7 },
  },
} as const;

const queueItemSchema = {
  type: 'object',
  required: ['fPort'],
  additionalProperties: false,
  properties: {
    fPort: { type: 'integer', minimum: 1, maximum: 223 },
    data: { type: 'string', maxLength: 1024 },
    // Codecs (issue 7): the payload as an object, encoded by the device profile's codec.
    object: { type: 'object' },
    confirmed: { type: 'boolean' },
  },
} as const;

function sessionKeysFromAbp(macVersion: MacVersion, abp: AbpBody): DeviceSession['keys'] {
  const appSKey = hexToBytes(abp.appSKey);
  if (macVersion === '1.1.0') {
    if (
      abp.fNwkSIntKey === undefined ||
      abp.sNwkSIntKey === undefined ||
      abp.nwkSEncKey === undefined
    ) {
      throw badRequest(
        'a LoRaWAN 1.1 ABP device needs abp.fNwkSIntKey, abp.sNwkSIntKey and abp.nwkSEncKey',
      );
    }
    return {
      lorawan: '1.1',
      fNwkSIntKey: hexToBytes(abp.fNwkSIntKey),
      sNwkSIntKey: hexToBytes(abp.sNwkSIntKey),
      nwkSEncKey: hexToBytes(abp.nwkSEncKey),
      appSKey,
    };
  }
  if (abp.nwkSKey === undefined)
    throw badRequest(`a LoRaWAN ${macVersion} ABP device needs abp.nwkSKey`);
  return { lorawan: '1.0', nwkSKey: hexToBytes(abp.nwkSKey), appSKey };
}

function decodeBase64(data: string): Uint8Array {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(data) || data.length % 4 === 1) {
    throw badRequest('data must be base64');
  }
  return new Uint8Array(Buffer.from(data, 'base64'));
}

// --- Codecs (issue 7): a queued downlink given as an object ---
interface QueueItemBody {
  fPort: number;
  data?: string;
  object?: { [key: string]: JsonValue };
  confirmed?: boolean;
}

/**
 * The bytes and FPort of a queued downlink: `data` as given, or `object` encoded by the device
 * profile's codec (which may choose another FPort); 400 with the codec's message when it fails.
 */
async function queuedPayload(
  context: ApiContext,
  device: Device,
  body: QueueItemBody,
): Promise<{ data: Uint8Array; fPort: number }> {
  if ((body.data === undefined) === (body.object === undefined)) {
    throw badRequest('give the payload as either data (base64) or object, not both or neither');
  }
  if (body.data !== undefined) return { data: decodeBase64(body.data), fPort: body.fPort };
  const profile =
    device.deviceProfileId === null
      ? undefined
      : await context.storage.deviceProfiles.get(device.deviceProfileId);
  const codec = profile?.codec;
  if (!isActiveCodec(codec)) {
    throw badRequest(
      `device ${device.devEui} has no codec (in its device profile) to encode object`,
    );
  }
  const codecs = context.application?.codecs;
  if (codecs === undefined) {
    throw badRequest('this Galet runs no application services (network role alone): give data');
  }
  const outcome = await codecs.encodeDownlink(codec, {
    data: body.object ?? {},
    fPort: body.fPort,
  });
  if (!outcome.ok) throw codecRefusal('the codec could not encode object', outcome);
  return { data: outcome.bytes, fPort: outcome.fPort };
}
// --- end codecs ---

/** The session state a device's own view and its list item share. */
interface SessionState {
  devAddr: number;
  macVersion: MacVersion;
  fCntUp: number | null;
  nFCntDown: number;
  aFCntDown: number;
}

function sessionFields(session: SessionState | undefined): Record<string, unknown> {
  return {
    devAddr: session === undefined ? null : uint32ToHex(session.devAddr),
    fCntUp: session?.fCntUp ?? null,
    fCntDown: session?.nFCntDown ?? null,
    ...(session?.macVersion === '1.1.0' ? { aFCntDown: session.aFCntDown } : {}),
    activated: session !== undefined,
  };
}

/**
 * Whether this Galet can read the device's payloads: it holds its AppSKey (or the root keys it
 * will derive one from). Not so for a device whose provider's join server activates it.
 */
function operatorCanDecrypt(
  device: Device,
  appSKeyHeld: boolean | undefined,
  hasRootKeys: boolean,
): boolean {
  return appSKeyHeld ?? (device.activation === 'abp' || hasRootKeys);
}

/** A device as the API shows it: no keys, with its session state when it has one. */
function deviceView(
  device: Device,
  session: DeviceSession | undefined,
  region: Region,
): Record<string, unknown> {
  const mac = session === undefined ? null : sessionMacView(region, session.macState);
  return {
    ...device,
    ...sessionFields(session),
    deviceStatus: mac?.deviceStatus ?? null,
    mac,
  };
}

const nullable = (type: string) => ({ type: [type, 'null'] });
const timestamp = { type: 'string', format: 'date-time' } as const;

/** A list item: the device, its session state and who can decrypt it (no MAC state). */
const deviceListItemSchema = {
  type: 'object',
  required: [
    'devEui',
    'joinEui',
    'name',
    'applicationId',
    'macVersion',
    'deviceClass',
    'activation',
    'deviceProfileId',
    'tenantId',
    'tags',
    'lastSeenAt',
    'createdAt',
    'updatedAt',
    'devAddr',
    'fCntUp',
    'fCntDown',
    'activated',
    'operatorCanDecrypt',
  ],
  additionalProperties: false,
  properties: {
    devEui: { type: 'string', pattern: EUI_PATTERN },
    joinEui: { type: 'string', pattern: EUI_PATTERN },
    name: { type: 'string' },
    applicationId: { type: 'string' },
    macVersion: { type: 'string', enum: ['1.0.2', '1.0.3', '1.0.4', '1.1.0'] },
    deviceClass: { type: 'string', enum: ['A', 'C'] },
    activation: { type: 'string', enum: ['otaa', 'abp'] },
    deviceProfileId: nullable('string'),
    tenantId: nullable('string'),
    tags: { type: 'object', additionalProperties: { type: 'string' } },
    lastSeenAt: { ...nullable('string'), format: 'date-time' },
    createdAt: timestamp,
    updatedAt: timestamp,
    devAddr: {
      ...nullable('string'),
      pattern: DEVADDR_PATTERN,
      description: 'null until the device has a session',
    },
    fCntUp: {
      ...nullable('integer'),
      description: 'The last accepted uplink counter; null before the first uplink of a session',
    },
    fCntDown: { ...nullable('integer'), description: 'The next NFCntDown (FCntDown in 1.0)' },
    aFCntDown: { type: 'integer', description: 'LoRaWAN 1.1 sessions only: the next AFCntDown' },
    activated: { type: 'boolean', description: 'Whether the device has a session' },
    operatorCanDecrypt: {
      type: 'boolean',
      description:
        "Whether this Galet holds the device's AppSKey (or the root keys to derive one); false for a device a linked provider's join server activates",
    },
  },
} as const;

const deviceListSchema = {
  type: 'object',
  required: ['devices', 'nextCursor'],
  additionalProperties: false,
  properties: {
    devices: { type: 'array', items: deviceListItemSchema },
    nextCursor: nullable('string'),
  },
} as const;

export function registerDeviceRoutes(api: FastifyInstance, context: ApiContext): void {
  const { storage, network, region, roles } = context;
  api.post<{ Body: NewDeviceBody }>(
    '/devices',
    { schema: { body: newDeviceSchema } },
    async (request, reply) => {
      const body = request.body;
      const devEui = body.devEui.toLowerCase();
      const is11 = body.macVersion === '1.1.0';
      await applicationForDevices(storage, request, body.applicationId);
      if (roles.operatorBlind === true) {
        throw badRequest(
          'this Galet runs the network role only and never holds application keys: create the ' +
            "device on its provider's Galet (roles join,application), which registers it here",
        );
      }
      if (roles.deviceCreated !== undefined && body.abp !== undefined) {
        throw badRequest('ABP devices cannot be served through a provider link yet: use OTAA');
      }
      if (body.abp === undefined) {
        if (body.appKey === undefined)
          throw badRequest('an OTAA device needs appKey (or give abp for ABP)');
        if (is11 && body.nwkKey === undefined)
          throw badRequest('a LoRaWAN 1.1 OTAA device needs nwkKey');
        if (body.joinEui === undefined) throw badRequest('an OTAA device needs joinEui');
      }
      const abpKeys =
        body.abp === undefined ? undefined : sessionKeysFromAbp(body.macVersion, body.abp);
      const device = await storage.devices.create({
        devEui,
        joinEui: (body.joinEui ?? '0000000000000000').toLowerCase(),
        name: body.name,
        applicationId: body.applicationId,
        macVersion: body.macVersion,
        deviceClass: body.deviceClass ?? 'A',
        activation: body.abp === undefined ? 'otaa' : 'abp',
        ...(body.appKey === undefined ? {} : { appKey: hexToBytes(body.appKey) }),
        ...(body.nwkKey === undefined ? {} : { nwkKey: hexToBytes(body.nwkKey) }),
        ...(body.deviceProfileId === undefined ? {} : { deviceProfileId: body.deviceProfileId }),
        ...(body.tags === undefined ? {} : { tags: body.tags }),
      });
      if (roles.deviceCreated !== undefined) {
        try {
          await roles.deviceCreated(device);
        } catch (error) {
          await storage.devices.delete(devEui);
          throw new ApiError(
            502,
            'NETWORK_UNAVAILABLE',
            `the network did not register the device: ${(error as Error).message}`,
          );
        }
      }
      network.deviceChanged?.(devEui);
      let session: DeviceSession | undefined;
      if (body.abp !== undefined && abpKeys !== undefined) {
        const config = network.config;
        session = await storage.deviceSessions.upsert({
          devEui,
          devAddr: parseHexUint(body.abp.devAddr, 4, 'abp.devAddr'),
          macVersion: body.macVersion,
          keys: abpKeys,
          fCntUp: null,
          nFCntDown: 0,
          aFCntDown: 0,
          rx1DelaySeconds: config.rx1DelaySeconds,
          rx1DrOffset: config.rx1DrOffset,
          rx2Dr: config.rx2Dr,
          rx2FrequencyHz: config.rx2FrequencyHz,
        });
        network.sessionChanged(session);
      }
      return reply.status(201).send(deviceView(device, session, region));
    },
  );

  api.get<{ Querystring: DeviceListQuery }>(
    '/devices',
    {
      schema: {
        querystring: pagedListSchema(Object.keys(DEVICE_SORT.fields), deviceFilterSchemas),
        response: { 200: deviceListSchema },
      },
    },
    async (request) => {
      const { items, nextCursor } = await listPage(
        request.query,
        DEVICE_SORT.defaultField,
        'devEui',
        (options) =>
          storage.devices.list({ ...options, ...deviceListFilters(request, request.query) }),
      );
      // Two queries for the whole page: the sessions, then the root keys of OTAA devices
      // without one (the only devices whose answer depends on them).
      const sessions = await storage.deviceSessions.summariesOf(items.map((d) => d.devEui));
      const unjoined = items.filter((d) => d.activation === 'otaa' && !sessions.has(d.devEui));
      const rooted =
        unjoined.length === 0
          ? new Set<string>()
          : await storage.devices.withRootKeys(unjoined.map((d) => d.devEui));
      return {
        devices: items.map((device) => {
          const session = sessions.get(device.devEui);
          return {
            ...device,
            ...sessionFields(session),
            operatorCanDecrypt: operatorCanDecrypt(
              device,
              session?.appSKeyHeld,
              rooted.has(device.devEui),
            ),
          };
        }),
        nextCursor,
      };
    },
  );

  api.get<{ Params: { devEui: string } }>('/devices/:devEui', async (request) => {
    const devEui = request.params.devEui.toLowerCase();
    const device = await deviceFor(storage, request, request.params.devEui, 'devices:read');
    const session = await storage.deviceSessions.get(devEui);
    const hasRootKeys =
      session === undefined &&
      device.activation === 'otaa' &&
      (await storage.devices.withRootKeys([devEui])).has(devEui);
    return {
      ...deviceView(device, session, region),
      operatorCanDecrypt: operatorCanDecrypt(
        device,
        session === undefined ? undefined : session.keys.appSKey !== undefined,
        hasRootKeys,
      ),
    };
  });

  api.patch<{ Params: { devEui: string }; Body: DeviceUpdateBody }>(
    '/devices/:devEui',
    { schema: { body: deviceUpdateSchema }, schemaErrorFormatter: schemaErrorMessage },
    async (request) => {
      const devEui = request.params.devEui.toLowerCase();
      await deviceFor(storage, request, request.params.devEui, 'devices:write');
      const device = await storage.devices.update(devEui, request.body);
      if (device === undefined) throw notFound(`device ${request.params.devEui}`);
      // The network server caches devices: a new profile applies only once it is told.
      network.deviceChanged?.(devEui);
      if (request.body.deviceClass !== undefined) {
        await network.deviceClassChanged?.(devEui, request.body.deviceClass);
      }
      return deviceView(device, await storage.deviceSessions.get(devEui), region);
    },
  );

  api.delete<{ Params: { devEui: string } }>('/devices/:devEui', async (request, reply) => {
    const devEui = request.params.devEui.toLowerCase();
    await deviceFor(storage, request, request.params.devEui, 'devices:write');
    if (!(await storage.devices.delete(devEui))) throw notFound(`device ${request.params.devEui}`);
    network.sessionRemoved(devEui);
    network.deviceChanged?.(devEui);
    return reply.status(204).send();
  });

  api.post<{
    Params: { devEui: string };
    Body: QueueItemBody;
  }>('/devices/:devEui/queue', { schema: { body: queueItemSchema } }, async (request, reply) => {
    const devEui = request.params.devEui.toLowerCase();
    const device = await deviceFor(storage, request, request.params.devEui, 'devices:write');
    const { data, fPort } = await queuedPayload(context, device, request.body);
    if (data.length > MAX_DOWNLINK_PAYLOAD_BYTES) {
      throw badRequest(
        `payload of ${data.length} bytes can never fit a downlink (at most ${MAX_DOWNLINK_PAYLOAD_BYTES} bytes at the fastest data rate)`,
      );
    }
    const item = await storage.downlinkQueue.enqueue({
      devEui,
      fPort,
      data,
      confirmed: request.body.confirmed ?? false,
    });
    // The network reads the queue only for devices it knows have pending items.
    network.downlinkQueued(devEui);
    return reply.status(201).send({ id: item.id });
  });

  api.delete<{ Params: { devEui: string; id: string } }>(
    '/devices/:devEui/queue/:id',
    async (request, reply) => {
      const devEui = request.params.devEui.toLowerCase();
      await deviceFor(storage, request, request.params.devEui, 'devices:write');
      noteAudit(request, {
        action: 'device.queue-delete',
        details: { queueItemId: request.params.id },
      });
      const item = await storage.downlinkQueue.get(request.params.id);
      if (item === undefined || item.devEui !== devEui) {
        throw notFound(`downlink ${request.params.id} of device ${request.params.devEui}`);
      }
      const outcome = await withdrawDownlinks(context, devEui, [item.id]);
      const sent = outcome.sent[0];
      if (sent !== undefined) {
        throw new ApiError(
          409,
          'ALREADY_SENT',
          `downlink ${item.id} was transmitted already${sent.fCntDown === null ? '' : ` with FCntDown ${sent.fCntDown}`}: it cannot be withdrawn`,
          { fCntDown: sent.fCntDown },
        );
      }
      if (outcome.withdrawn.length === 0) {
        throw new ApiError(
          409,
          'INVALID_STATE',
          `downlink ${item.id} is ${item.status}, not pending`,
        );
      }
      return reply.status(204).send();
    },
  );

  api.delete<{ Params: { devEui: string } }>('/devices/:devEui/queue', async (request) => {
    const devEui = request.params.devEui.toLowerCase();
    await deviceFor(storage, request, request.params.devEui, 'devices:write');
    noteAudit(request, { action: 'device.queue-flush' });
    const pending = await storage.downlinkQueue.listPending(devEui);
    const outcome =
      pending.length === 0
        ? { withdrawn: [], sent: [] }
        : await withdrawDownlinks(
            context,
            devEui,
            pending.map((item) => item.id),
          );
    noteAudit(request, {
      details: { withdrawn: outcome.withdrawn.length, sent: outcome.sent.length },
    });
    return outcome;
  });

  api.post<{
    Params: { devEui: string };
    Body: { rejoinType?: 0 | 2; dataRate?: number; maxRetries?: number; period?: number };
  }>(
    '/devices/:devEui/force-rejoin',
    { schema: { body: forceRejoinSchema } },
    async (request, reply) => {
      const devEui = request.params.devEui.toLowerCase();
      await deviceFor(storage, request, request.params.devEui, 'devices:write');
      if (network.forceRejoin === undefined) {
        throw conflict('this network role cannot send ForceRejoinReq');
      }
      const body = request.body;
      const asked = await network.forceRejoin(devEui, {
        rejoinType: body.rejoinType ?? 0,
        ...(body.dataRate === undefined ? {} : { dataRate: body.dataRate }),
        maxRetries: body.maxRetries ?? 1,
        period: body.period ?? 0,
      });
      if ('error' in asked) throw conflict(asked.error);
      return reply.status(202).send({ id: asked.id });
    },
  );

  api.get<{ Params: { devEui: string }; Querystring: PageQuery }>(
    '/devices/:devEui/queue',
    { schema: { querystring: pagedListSchema(['createdAt']) } },
    async (request) => {
      const devEui = request.params.devEui.toLowerCase();
      await deviceFor(storage, request, request.params.devEui, 'devices:read');
      // Pending items only, a few per device: paged in memory, oldest first.
      const { items, nextCursor } = pageInMemory(
        await storage.downlinkQueue.listPending(devEui),
        pageRequest(request.query, 'createdAt'),
        fieldKey<DownlinkQueueItem>('id'),
      );
      return {
        items: items.map((item) => ({ ...item, data: Buffer.from(item.data).toString('base64') })),
        nextCursor,
      };
    },
  );

  api.get<{ Params: { devEui: string }; Querystring: { limit?: number; cursor?: string } }>(
    '/devices/:devEui/events',
    {
      schema: {
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            limit: { type: 'integer', minimum: 1, maximum: 1000 },
            cursor: { type: 'string', minLength: 1, maxLength: 1000 },
          },
        },
      },
    },
    async (request) => {
      const devEui = request.params.devEui.toLowerCase();
      await deviceFor(storage, request, request.params.devEui, 'events:read');
      const limit = request.query.limit ?? 20;
      const cursor = request.query.cursor;
      const events = await storage.events.listForDevice(devEui, {
        limit,
        ...(cursor === undefined ? {} : { beforeId: idFromCursor(cursor) }),
      });
      const last = events.at(-1);
      return {
        events: events.map((event) => ({
          id: event.id,
          event: event.type,
          ...(event.body as object),
        })),
        nextCursor: last !== undefined && events.length === limit ? idCursor(last.id) : null,
      };
    },
  );
}

/**
 * Takes pending downlinks out of the queue: through the network role's hook when it has one (a
 * provider's Galet asks the operator's network over the link first), else here alone (one
 * pending → failed transition each, so a transmission racing with it wins or loses whole).
 * 503 `NETWORK_UNAVAILABLE` when the network could not be asked.
 */
async function withdrawDownlinks(
  context: ApiContext,
  devEui: string,
  ids: readonly string[],
): Promise<DownlinkWithdrawal> {
  const { network, storage } = context;
  if (network.withdrawDownlinks !== undefined) {
    const outcome = await network.withdrawDownlinks(devEui, ids);
    if ('unavailable' in outcome) {
      throw new ApiError(
        503,
        'NETWORK_UNAVAILABLE',
        `the network could not be asked to withdraw the downlinks (${outcome.unavailable}): nothing was deleted, try again`,
      );
    }
    return outcome;
  }
  const outcome: DownlinkWithdrawal = { withdrawn: [], sent: [] };
  for (const id of ids) {
    try {
      await storage.downlinkQueue.withdraw(id, 'deleted through the API');
      outcome.withdrawn.push(id);
    } catch (error) {
      if (!isStorageError(error, 'INVALID_STATE')) throw error;
      // Transmitted already: sent, acknowledged, or back in the queue for a retransmission.
      const item = await storage.downlinkQueue.get(id);
      if (
        item !== undefined &&
        (item.status === 'sent' ||
          item.status === 'acked' ||
          (item.status === 'pending' && item.attempts > 0))
      ) {
        outcome.sent.push({ id, fCntDown: item.fCntDown });
      }
    }
  }
  return outcome;
}
