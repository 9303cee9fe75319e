import type { FastifyInstance, FastifyRequest, FastifySchemaValidationError } from 'fastify';
import {
  CodecError,
  type DecodeOutcome,
  type EncodeOutcome,
  type JsonValue,
} from '../../application/codecs/index.js';
import {
  type ActiveCodecSettings,
  type ApplicationCodecs,
  isActiveCodec,
} from '../../application/stage/index.js';
import { getRegion, regionNames } from '../../lorawan/regions/index.js';
import { isGlobal, tenantsWhere } from '../../platform/roles.js';
import {
  CODEC_TYPES,
  type CodecSettings,
  DEVICE_PROFILE_SORT,
  type DeviceProfile,
  type DeviceProfileUpdate,
  MAC_VERSIONS,
  MAX_CODEC_SOURCE_CHARS,
  MAX_DL_CHANNEL_INDEX,
  MAX_EXTRA_CHANNELS,
  type NewDeviceProfile,
} from '../../storage/index.js';
import { forbidden, principalOf } from '../auth.js';
import { type ApiError, badRequest, conflict, notFound } from '../errors.js';
import { listPage, type PageQuery, pagedListSchema, searchSchema } from '../paging.js';
import { authorizedTenantOfNew, authorizeObject, scopedListFilters } from '../scope.js';
import type { ApiContext } from '../server.js';
import { idSchema, nameSchema } from './schemas.js';

/**
 * Device profiles: `/device-profiles`. The schema checks each field's type and range; the
 * storage layer checks what spans fields (minDr <= maxDr, ...) on the merged result of a PATCH,
 * and `checkRegionalParameters` what the region's channel plan allows.
 *
 * Every field of the settings accepts `null`, which resets it to its default (or removes a
 * setting that has none), as in a JSON merge patch; a PATCH merges nested objects field by field
 * and replaces `extraChannels` and `dlChannels` as a whole.
 *
 * A profile belongs to a tenant, or to no tenant: the operator's catalogue, which every tenant
 * reads and gives its devices, and only the operator changes.
 */

const nullableInteger = (minimum: number, maximum: number) =>
  ({ type: ['integer', 'null'], minimum, maximum }) as const;
const dataRate = nullableInteger(0, 15);
const frequencyHz = { type: 'integer', minimum: 100_000_000, maximum: 1_000_000_000 } as const;

const settingsProperties = {
  macVersion: { type: ['string', 'null'], enum: [...MAC_VERSIONS, null] },
  adr: {
    type: ['object', 'null'],
    additionalProperties: false,
    properties: {
      enabled: { type: ['boolean', 'null'] },
      minDr: dataRate,
      maxDr: dataRate,
      installationMarginDb: { type: ['number', 'null'], minimum: 0, maximum: 30 },
    },
  },
  rx1DelaySeconds: nullableInteger(1, 15),
  rx1DrOffset: nullableInteger(0, 5),
  rx2Dr: dataRate,
  rx2FrequencyHz: { ...frequencyHz, type: ['integer', 'null'] },
  extraChannels: {
    type: ['array', 'null'],
    maxItems: MAX_EXTRA_CHANNELS,
    items: {
      type: 'object',
      required: ['frequencyHz'],
      additionalProperties: false,
      properties: { frequencyHz, minDr: dataRate, maxDr: dataRate },
    },
  },
  dlChannels: {
    type: ['array', 'null'],
    maxItems: MAX_DL_CHANNEL_INDEX + 1,
    items: {
      type: 'object',
      required: ['index', 'frequencyHz'],
      additionalProperties: false,
      properties: {
        index: { type: 'integer', minimum: 0, maximum: MAX_DL_CHANNEL_INDEX },
        frequencyHz,
      },
    },
  },
  maxDutyCycle: nullableInteger(0, 15),
  // 1 to 59 is refused by the storage layer, with a message saying why.
  devStatusIntervalSeconds: nullableInteger(0, 31_536_000),
  confirmedDownlink: {
    type: ['object', 'null'],
    additionalProperties: false,
    properties: {
      maxAttempts: nullableInteger(1, 10),
      classCTimeoutSeconds: nullableInteger(1, 3600),
    },
  },
  adrAckLimitExp: nullableInteger(0, 15),
  adrAckDelayExp: nullableInteger(0, 15),
  rejoin: {
    type: ['object', 'null'],
    additionalProperties: false,
    properties: { maxTimeN: nullableInteger(0, 15), maxCountN: nullableInteger(0, 15) },
  },
  uplinkIntervalSeconds: nullableInteger(1, 604_800),
  codec: {
    type: ['object', 'null'],
    required: ['type'],
    additionalProperties: false,
    properties: {
      type: { type: 'string', enum: [...CODEC_TYPES] },
      source: { type: 'string', minLength: 1, maxLength: MAX_CODEC_SOURCE_CHARS },
    },
  },
} as const;

const newDeviceProfileSchema = {
  type: 'object',
  required: ['name'],
  additionalProperties: false,
  properties: {
    name: nameSchema,
    region: { type: 'string', enum: [...regionNames] },
    tenantId: idSchema,
    ...settingsProperties,
  },
} as const;

const deviceProfileUpdateSchema = {
  type: 'object',
  additionalProperties: false,
  properties: { name: nameSchema, ...settingsProperties },
} as const;

const TYPE_NAMES: Record<string, string> = {
  integer: 'an integer',
  number: 'a number',
  boolean: 'true or false',
  string: 'a string',
  object: 'an object',
  array: 'an array',
  null: 'null',
};

/**
 * A validation error as one sentence per failing field, with the field's path
 * (`body.extraChannels[2].frequencyHz must be <= 1000000000`) and the name of an unknown field.
 */
export function schemaErrorMessage(errors: FastifySchemaValidationError[], dataVar: string): Error {
  const sentences = errors.map((error) => {
    const path = `${dataVar}${error.instancePath.replace(/\/(\d+)/g, '[$1]').replaceAll('/', '.')}`;
    const params = error.params as Record<string, unknown>;
    switch (error.keyword) {
      case 'additionalProperties':
        return `${path} has an unknown field ${JSON.stringify(params['additionalProperty'])}`;
      case 'type': {
        const types = String(params['type']).split(',');
        return `${path} must be ${types.map((type) => TYPE_NAMES[type] ?? type).join(' or ')}`;
      }
      case 'enum':
        return `${path} must be one of ${(params['allowedValues'] as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
      default:
        return `${path} ${error.message ?? 'is invalid'}`;
    }
  });
  return new Error(sentences.join('; '));
}

/** What a profile's region allows: its data rates, frequency range and channel count. */
export function checkRegionalParameters(profile: DeviceProfile): void {
  const region = getRegion(profile.region);
  const name = region.name;
  const refuse = (message: string): never => {
    throw badRequest(message);
  };
  const checkDr = (dr: number, what: string) => {
    if (region.dataRates[dr] === undefined) refuse(`${what}: DR${dr} is not defined in ${name}`);
  };
  const checkFrequency = (frequency: number, what: string) => {
    const { min, max } = region.frequencyRangeHz;
    if (frequency < min || frequency > max) {
      refuse(`${what}: ${frequency} Hz is outside ${name} (${min} to ${max} Hz)`);
    }
  };
  checkDr(profile.adr.minDr, 'adr.minDr');
  checkDr(profile.adr.maxDr, 'adr.maxDr');
  checkDr(profile.rx2Dr, 'rx2Dr');
  if (profile.rx1DrOffset > region.maxRx1DrOffset) {
    refuse(`rx1DrOffset: ${name} allows 0 to ${region.maxRx1DrOffset}, got ${profile.rx1DrOffset}`);
  }
  checkFrequency(profile.rx2FrequencyHz, 'rx2FrequencyHz');
  const room = region.maxChannels - region.defaultChannels.length;
  if (profile.extraChannels.length > room) {
    refuse(`extraChannels: ${name} has room for ${room}, got ${profile.extraChannels.length}`);
  }
  profile.extraChannels.forEach((channel, i) => {
    const what = `extraChannels[${i}]`;
    checkFrequency(channel.frequencyHz, `${what}.frequencyHz`);
    checkDr(channel.minDr, `${what}.minDr`);
    checkDr(channel.maxDr, `${what}.maxDr`);
    const fixed = region.defaultChannels.findIndex((c) => c.frequencyHz === channel.frequencyHz);
    if (fixed !== -1) {
      refuse(
        `${what}.frequencyHz: ${channel.frequencyHz} Hz is default channel ${fixed} of ${name}`,
      );
    }
  });
  // Extra channels take indices 3, 4, ... in order. Without any, a device's channels beyond the
  // defaults come from its JoinAccept's CFList, which the profile does not know.
  const defined = region.defaultChannels.length + profile.extraChannels.length;
  profile.dlChannels.forEach((channel, i) => {
    const what = `dlChannels[${i}]`;
    if (channel.index >= region.maxChannels) {
      refuse(
        `${what}.index: ${name} has channels 0 to ${region.maxChannels - 1}, got ${channel.index}`,
      );
    }
    if (profile.extraChannels.length > 0 && channel.index >= defined) {
      refuse(
        `${what}.index: channel ${channel.index} is not defined: the default channels and ` +
          `extraChannels define channels 0 to ${defined - 1}`,
      );
    }
    checkFrequency(channel.frequencyHz, `${what}.frequencyHz`);
  });
}

/**
 * The profile if the principal may do `action` on it; else 404 or 403. A catalogue profile (no
 * tenant) is read by every principal with a tenant role and changed by global ones only.
 */
export async function deviceProfileFor(
  { storage }: Pick<ApiContext, 'storage'>,
  request: FastifyRequest,
  id: string,
  action: 'device-profiles:read' | 'device-profiles:write',
): Promise<DeviceProfile> {
  const profile = await storage.deviceProfiles.get(id);
  if (profile === undefined) throw notFound(`device profile ${id}`);
  const principal = principalOf(request);
  if (profile.tenantId === null && !isGlobal(principal)) {
    if ((tenantsWhere(principal, 'device-profiles:read') as string[]).length === 0) {
      throw notFound(`device profile ${id}`);
    }
    if (action === 'device-profiles:write') {
      throw forbidden(
        `device profile ${id} is in the operator's catalogue: only the operator changes it`,
      );
    }
    return profile;
  }
  authorizeObject(request, action, { tenantId: profile.tenantId }, `device profile ${id}`);
  return profile;
}

interface DeviceProfileListQuery extends PageQuery {
  tenantId?: string;
  search?: string;
}

export function registerDeviceProfileRoutes(api: FastifyInstance, context: ApiContext): void {
  const { storage, network } = context;
  const validate = checkRegionalParameters;

  api.post<{ Body: NewDeviceProfile & { tenantId?: string } }>(
    '/device-profiles',
    {
      schema: { summary: 'Create a device profile', body: newDeviceProfileSchema },
      schemaErrorFormatter: schemaErrorMessage,
    },
    async (request, reply) => {
      const tenantId = authorizedTenantOfNew(
        request,
        'device-profiles:write',
        request.body.tenantId,
        'device profiles',
      );
      await checkCodec(context, request.body.codec);
      const profile = await storage.deviceProfiles.create(
        { ...request.body, tenantId },
        { validate },
      );
      network.deviceProfileChanged?.(profile.id);
      context.application?.codecs?.profileChanged(profile.id);
      return reply.status(201).send(profile);
    },
  );

  api.get<{ Querystring: DeviceProfileListQuery }>(
    '/device-profiles',
    {
      schema: {
        summary: "List device profiles (the tenant's and the operator's catalogue)",
        querystring: pagedListSchema(Object.keys(DEVICE_PROFILE_SORT.fields), {
          tenantId: idSchema,
          search: searchSchema,
        }),
      },
    },
    async (request) => {
      const { tenantId, search, ...paging } = request.query;
      const filters = scopedListFilters(request, 'device-profiles:read', tenantId, {
        untenanted: true,
        applications: false,
      });
      const { items, nextCursor } = await listPage(
        paging,
        DEVICE_PROFILE_SORT.defaultField,
        'id',
        (options) =>
          storage.deviceProfiles.list({
            ...options,
            ...filters,
            ...(search === undefined ? {} : { search }),
          }),
      );
      return { deviceProfiles: items.map(listedProfile), nextCursor };
    },
  );

  api.get<{ Params: { id: string } }>(
    '/device-profiles/:id',
    { schema: { summary: 'Get a device profile' } },
    async (request) =>
      deviceProfileFor(context, request, request.params.id, 'device-profiles:read'),
  );

  api.patch<{ Params: { id: string }; Body: DeviceProfileUpdate }>(
    '/device-profiles/:id',
    {
      schema: { summary: 'Change a device profile', body: deviceProfileUpdateSchema },
      schemaErrorFormatter: schemaErrorMessage,
    },
    async (request) => {
      await deviceProfileFor(context, request, request.params.id, 'device-profiles:write');
      await checkCodec(context, request.body.codec);
      const profile = await storage.deviceProfiles.update(request.params.id, request.body, {
        validate,
      });
      if (profile === undefined) throw notFound(`device profile ${request.params.id}`);
      // The network server caches profiles: it applies the new settings only once told.
      network.deviceProfileChanged?.(profile.id);
      context.application?.codecs?.profileChanged(profile.id);
      return profile;
    },
  );

  api.delete<{ Params: { id: string } }>(
    '/device-profiles/:id',
    { schema: { summary: 'Delete a device profile no device uses' } },
    async (request, reply) => {
      await deviceProfileFor(context, request, request.params.id, 'device-profiles:write');
      if (!(await storage.deviceProfiles.delete(request.params.id))) {
        throw notFound(`device profile ${request.params.id}`);
      }
      network.deviceProfileChanged?.(request.params.id);
      context.application?.codecs?.profileChanged(request.params.id);
      return reply.status(204).send();
    },
  );

  registerCodecBenchRoutes(api, context);
}

// --- Codecs (issue 7): checks on write, list view, test bench ---

/** How a list shows a codec: its type and source size, not the source (up to 512 KiB each). */
function listedProfile(profile: DeviceProfile): Record<string, unknown> {
  if (profile.codec?.source === undefined) return { ...profile };
  return {
    ...profile,
    codec: { type: profile.codec.type, sourceChars: profile.codec.source.length },
  };
}

/**
 * A JavaScript codec in a create or an update is compiled once (in the codec process the stage
 * uses) before it is stored: a codec that cannot serve any call is refused with its error.
 */
async function checkCodec(
  context: ApiContext,
  codec: CodecSettings | null | undefined,
): Promise<void> {
  if (codec?.type !== 'javascript' || typeof codec.source !== 'string') return;
  const codecs = context.application?.codecs;
  if (codecs === undefined) {
    throw badRequest(
      'this Galet runs no application services (network role alone) and cannot check or run ' +
        "javascript codecs: set codecs on the provider's Galet, where payloads are decrypted",
    );
  }
  try {
    await codecs.check({ type: 'javascript', source: codec.source });
  } catch (error) {
    if (!(error instanceof CodecError)) throw error;
    throw badRequest(`codec.source does not load: ${error.message}`, { code: error.code });
  }
}

interface DecodeBenchBody {
  fPort: number;
  hex?: string;
  data?: string;
  recvTime?: string;
}

interface EncodeBenchBody {
  fPort?: number;
  data: Record<string, unknown>;
}

const decodeBenchSchema = {
  type: 'object',
  required: ['fPort'],
  additionalProperties: false,
  properties: {
    fPort: { type: 'integer', minimum: 1, maximum: 255 },
    hex: { type: 'string', pattern: '^([0-9a-fA-F]{2})*$', maxLength: 1024 },
    data: { type: 'string', pattern: '^[A-Za-z0-9+/]*={0,2}$', maxLength: 684 },
    recvTime: { type: 'string', format: 'date-time' },
  },
} as const;

const encodeBenchSchema = {
  type: 'object',
  required: ['data'],
  additionalProperties: false,
  properties: {
    fPort: { type: 'integer', minimum: 1, maximum: 223 },
    data: { type: 'object' },
  },
} as const;

/** The profile's codec, or 409 when it has none, 400 when this Galet runs no codecs. */
function codecOf(
  context: ApiContext,
  profile: DeviceProfile,
): { settings: ActiveCodecSettings; codecs: ApplicationCodecs } {
  if (!isActiveCodec(profile.codec)) throw conflict(`device profile ${profile.id} has no codec`);
  const codecs = context.application?.codecs;
  if (codecs === undefined) {
    throw badRequest(
      'this Galet runs no application services (network role alone): no codecs run here',
    );
  }
  return { settings: profile.codec, codecs };
}

/** A codec outcome as the test bench answers it (200 either way: the outcome is the result). */
function decodeView(outcome: DecodeOutcome): Record<string, unknown> {
  return outcome.ok
    ? { ok: true, data: outcome.data, warnings: outcome.warnings }
    : { ok: false, error: outcome.error, warnings: outcome.warnings };
}

function encodeView(outcome: EncodeOutcome): Record<string, unknown> {
  if (!outcome.ok) return { ok: false, error: outcome.error, warnings: outcome.warnings };
  const bytes = Buffer.from(outcome.bytes);
  return {
    ok: true,
    fPort: outcome.fPort,
    hex: bytes.toString('hex'),
    data: bytes.toString('base64'),
    warnings: outcome.warnings,
  };
}

/**
 * The codec test bench: `POST /device-profiles/{id}/codec/decode` and `.../codec/encode` run the
 * profile's codec through the same sandbox as the application stage. Reading the profile is
 * enough: nothing is stored.
 */
function registerCodecBenchRoutes(api: FastifyInstance, context: ApiContext): void {
  api.post<{ Params: { id: string }; Body: DecodeBenchBody }>(
    '/device-profiles/:id/codec/decode',
    {
      schema: {
        summary: "Decode an uplink payload with the profile's codec",
        body: decodeBenchSchema,
      },
      schemaErrorFormatter: schemaErrorMessage,
    },
    async (request) => {
      const profile = await deviceProfileFor(
        context,
        request,
        request.params.id,
        'device-profiles:read',
      );
      const { hex, data, fPort, recvTime } = request.body;
      if ((hex === undefined) === (data === undefined)) {
        throw badRequest('give the payload as either hex or data (base64), not both or neither');
      }
      const bytes =
        hex === undefined ? Buffer.from(data as string, 'base64') : Buffer.from(hex, 'hex');
      const { settings, codecs } = codecOf(context, profile);
      const outcome = await codecs.decodeUplink(settings, {
        bytes: new Uint8Array(bytes),
        fPort,
        ...(recvTime === undefined ? {} : { recvTime: Date.parse(recvTime) }),
      });
      return decodeView(outcome);
    },
  );

  api.post<{ Params: { id: string }; Body: EncodeBenchBody }>(
    '/device-profiles/:id/codec/encode',
    {
      schema: {
        summary: "Encode a downlink object with the profile's codec",
        body: encodeBenchSchema,
      },
      schemaErrorFormatter: schemaErrorMessage,
    },
    async (request) => {
      const profile = await deviceProfileFor(
        context,
        request,
        request.params.id,
        'device-profiles:read',
      );
      const { settings, codecs } = codecOf(context, profile);
      const { fPort, data } = request.body;
      const outcome = await codecs.encodeDownlink(settings, {
        data: data as { [key: string]: JsonValue },
        ...(fPort === undefined ? {} : { fPort }),
      });
      return encodeView(outcome);
    },
  );
}

/** Refuses a codec failure as a 400 whose details carry the codec's code and errors. */
export function codecRefusal(
  what: string,
  outcome: Extract<EncodeOutcome, { ok: false }>,
): ApiError {
  return badRequest(`${what}: ${outcome.error.message}`, {
    code: outcome.error.code,
    ...(outcome.error.errors === undefined ? {} : { errors: outcome.error.errors }),
  });
}
// --- end codecs ---
