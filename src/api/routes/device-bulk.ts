import type { FastifyInstance, FastifyRequest } from 'fastify';
import {
  type Device,
  isStorageError,
  MAC_VERSIONS,
  MAX_TAG_VALUE_LENGTH,
  MAX_TAGS,
  type MacVersion,
  type NewDevice,
  TAG_KEY,
} from '../../storage/index.js';
import { noteAudit } from '../auth.js';
import { CsvError, csvLine, parseCsv } from '../csv.js';
import { ApiError, badRequest, notFound } from '../errors.js';
import { listScope } from '../scope.js';
import type { ApiContext } from '../server.js';
import { unknownReference } from './applications.js';
import {
  applicationForDevices,
  type DeviceFilterQuery,
  deviceFilterSchemas,
  deviceFor,
  deviceListFilters,
} from './device-access.js';
import { idSchema } from './schemas.js';

/**
 * Devices in bulk: `POST /devices/import` (CSV or JSON, all or nothing, with a report per bad
 * line and a dry run), `GET /devices/export` (CSV or JSON, never a key) and
 * `POST /devices/{devEui}/move` (to another application, keeping the session: no re-join).
 *
 * An import checks every line first (fields, application and profile the caller may use,
 * DevEUIs free and not repeated, the tenants' `maxDevices`), then writes every device in one
 * transaction with batched INSERTs, or none: a file with one bad line writes nothing and the
 * answer lists every bad line.
 */

/** Lines (devices) one import may hold. */
export const MAX_IMPORT_DEVICES = 100_000;
/** An import's body: 100,000 devices of ~200 bytes, with room. */
const IMPORT_BODY_LIMIT = 32 * 1_048_576;

/** What a line may hold, as JSON fields or CSV columns (tags: `tag.<key>` columns). */
const IMPORT_FIELDS = [
  'devEui',
  'joinEui',
  'name',
  'applicationId',
  'macVersion',
  'deviceClass',
  'appKey',
  'nwkKey',
  'deviceProfileId',
  'tags',
] as const;
type ImportField = (typeof IMPORT_FIELDS)[number];
/** Export columns an import accepts and ignores, so that an export with keys added goes back. */
const IGNORED_COLUMNS = new Set(['tenantId', 'activation', 'lastSeenAt', 'createdAt', 'updatedAt']);

const HEX16 = /^[0-9a-fA-F]{16}$/;
const HEX32 = /^[0-9a-fA-F]{32}$/;

interface ImportLine {
  /** JSON: the position in `devices` (1-based); CSV: the physical line. */
  line: number;
  values: Partial<Record<ImportField, unknown>>;
  /** Problems found while reading the line (unknown fields). */
  problems: string[];
}

export interface ImportReport {
  dryRun: boolean;
  format: 'csv' | 'json';
  total: number;
  valid: number;
  invalid: number;
  /** Devices written: 0 for a dry run or a refused import. */
  created: number;
  /** Every bad line, in order. */
  errors: { line: number; devEui: string | null; messages: string[] }[];
}

interface ImportQuery {
  dryRun?: boolean;
  applicationId?: string;
}

interface JsonImportBody {
  devices: unknown[];
  applicationId?: string;
  dryRun?: boolean;
}

interface ExportQuery extends DeviceFilterQuery {
  format?: 'csv' | 'json';
}

const EXPORT_COLUMNS = [
  'devEui',
  'joinEui',
  'name',
  'applicationId',
  'tenantId',
  'macVersion',
  'deviceClass',
  'activation',
  'deviceProfileId',
  'lastSeenAt',
  'createdAt',
  'updatedAt',
] as const satisfies readonly (keyof Device)[];

export function registerDeviceBulkRoutes(api: FastifyInstance, context: ApiContext): void {
  const { storage, network } = context;

  api.addContentTypeParser(
    'text/csv',
    { parseAs: 'string', bodyLimit: IMPORT_BODY_LIMIT },
    (_request, body, done) => done(null, body),
  );

  api.post<{ Querystring: ImportQuery; Body: JsonImportBody | string }>(
    '/devices/import',
    {
      bodyLimit: IMPORT_BODY_LIMIT,
      schema: {
        summary: 'Import devices from CSV or JSON: all or nothing, with a report per bad line',
        consumes: ['application/json', 'text/csv'],
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { dryRun: { type: 'boolean' }, applicationId: idSchema },
        },
        body: {
          content: {
            'application/json': {
              schema: {
                type: 'object',
                required: ['devices'],
                additionalProperties: false,
                properties: {
                  devices: {
                    type: 'array',
                    maxItems: MAX_IMPORT_DEVICES,
                    items: { type: 'object' },
                  },
                  applicationId: idSchema,
                  dryRun: { type: 'boolean' },
                },
              },
            },
            'text/csv': { schema: { type: 'string' } },
          },
        },
      },
    },
    async (request, reply) => {
      if (context.roles.operatorBlind === true) {
        throw badRequest(
          "this Galet runs the network role only and never holds application keys: import the devices on their provider's Galet",
        );
      }
      if (context.roles.deviceCreated !== undefined) {
        throw badRequest(
          "a provider's Galet registers each device with the network: create them one by one",
        );
      }
      // A principal that may create devices nowhere is refused at once, not line by line.
      listScope(request, 'devices:write');
      const body = request.body;
      const format = typeof body === 'string' ? 'csv' : 'json';
      const dryRun =
        request.query.dryRun ?? (typeof body === 'string' ? undefined : body.dryRun) ?? false;
      const defaultApplication =
        request.query.applicationId ?? (typeof body === 'string' ? undefined : body.applicationId);
      const lines = typeof body === 'string' ? csvLines(body) : jsonLines(body.devices);
      if (lines.length === 0) throw badRequest('the import holds no device');
      if (lines.length > MAX_IMPORT_DEVICES) {
        throw badRequest(
          `an import holds at most ${MAX_IMPORT_DEVICES} devices, got ${lines.length}`,
        );
      }

      const checked = await checkLines(context, request, lines, defaultApplication);
      const report: ImportReport = {
        dryRun,
        format,
        total: lines.length,
        valid: checked.devices.length,
        invalid: checked.errors.length,
        created: 0,
        errors: checked.errors,
      };
      const tenants = [...new Set(checked.tenants)];
      noteAudit(request, {
        ...(tenants.length === 1 ? { tenantId: tenants[0] ?? null } : {}),
        details: { format, dryRun, total: lines.length, invalid: checked.errors.length },
      });
      if (checked.errors.length > 0) {
        if (dryRun) return report;
        throw new ApiError(
          422,
          'IMPORT_REJECTED',
          `${checked.errors.length} of ${lines.length} lines are invalid: nothing was written`,
          report,
        );
      }
      if (dryRun) return report;
      try {
        report.created = await storage.devices.createMany(checked.devices);
      } catch (error) {
        // Quota or a DevEUI taken meanwhile: nothing was written; say why, with the report.
        if (isStorageError(error, 'QUOTA_EXCEEDED') || isStorageError(error, 'ALREADY_EXISTS')) {
          throw new ApiError(409, error.code, `${error.message}`, {
            ...report,
            ...(error.details === undefined ? {} : { quota: error.details }),
          });
        }
        throw error;
      }
      noteAudit(request, { details: { created: report.created } });
      for (const device of checked.devices) network.deviceChanged?.(device.devEui.toLowerCase());
      return reply.status(201).send(report);
    },
  );

  api.get<{ Querystring: ExportQuery }>(
    '/devices/export',
    {
      schema: {
        summary: 'Export the devices the caller sees, as CSV or JSON (never a key)',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            format: { type: 'string', enum: ['csv', 'json'] },
            ...deviceFilterSchemas,
          },
        },
      },
    },
    async (request, reply) => {
      const { format = 'csv', ...filters } = request.query;
      const options = deviceListFilters(request, filters);
      const devices = await storage.devices.listAll(options);
      reply.header(
        'content-disposition',
        `attachment; filename="devices.${format === 'csv' ? 'csv' : 'json'}"`,
      );
      if (format === 'json') return { devices };
      const tagKeys = [...new Set(devices.flatMap((device) => Object.keys(device.tags)))].sort();
      let text = csvLine([...EXPORT_COLUMNS, ...tagKeys.map((key) => `tag.${key}`)]);
      for (const device of devices) {
        text += csvLine([
          ...EXPORT_COLUMNS.map((column) => device[column]),
          ...tagKeys.map((key) => device.tags[key]),
        ]);
      }
      return reply.type('text/csv; charset=utf-8').send(text);
    },
  );

  api.post<{ Params: { devEui: string }; Body: { applicationId: string } }>(
    '/devices/:devEui/move',
    {
      schema: {
        summary: 'Move a device to another application, keeping its session (no re-join)',
        body: {
          type: 'object',
          required: ['applicationId'],
          additionalProperties: false,
          properties: { applicationId: idSchema },
        },
      },
    },
    async (request) => {
      const device = await deviceFor(storage, request, request.params.devEui, 'devices:write');
      const target = await applicationForDevices(storage, request, request.body.applicationId);
      noteAudit(request, {
        details: { from: device.applicationId, to: target.id, toTenantId: target.tenantId },
      });
      const moved = await storage.devices.move(device.devEui, target.id);
      if (moved === undefined) throw notFound(`device ${request.params.devEui}`);
      network.deviceChanged?.(moved.devEui);
      return moved;
    },
  );
}

function jsonLines(devices: unknown[]): ImportLine[] {
  return devices.map((item, index) => {
    const values: Partial<Record<ImportField, unknown>> = {};
    const problems: string[] = [];
    for (const [field, value] of Object.entries(item as Record<string, unknown>)) {
      if ((IMPORT_FIELDS as readonly string[]).includes(field)) {
        values[field as ImportField] = value;
      } else if (!IGNORED_COLUMNS.has(field)) {
        problems.push(`unknown field ${JSON.stringify(field).slice(0, 70)}`);
      }
    }
    return { line: index + 1, values, problems };
  });
}

function csvLines(text: string): ImportLine[] {
  let records: ReturnType<typeof parseCsv>;
  try {
    records = parseCsv(text);
  } catch (error) {
    if (error instanceof CsvError) throw badRequest(`the CSV cannot be read: ${error.message}`);
    throw error;
  }
  const [header, ...rows] = records;
  if (header === undefined) return [];
  const columns = header.fields.map((name) => name.trim());
  const unknown = columns.filter(
    (name) =>
      !(IMPORT_FIELDS as readonly string[]).includes(name) &&
      !IGNORED_COLUMNS.has(name) &&
      !name.startsWith('tag.'),
  );
  if (unknown.length > 0 || !columns.includes('devEui')) {
    throw badRequest(
      `the CSV header (line ${header.line}) must name its columns among ${IMPORT_FIELDS.filter((f) => f !== 'tags').join(', ')} and tag.<key>` +
        (unknown.length > 0
          ? `; unknown: ${unknown.slice(0, 5).join(', ')}`
          : '; devEui is missing'),
    );
  }
  return rows.map((record) => {
    const values: Partial<Record<ImportField, unknown>> = {};
    const problems: string[] = [];
    if (record.fields.length !== columns.length) {
      problems.push(`has ${record.fields.length} fields, the header ${columns.length}`);
    }
    const tags: Record<string, string> = {};
    columns.forEach((column, index) => {
      const value = record.fields[index];
      if (value === undefined || value === '') return;
      if (column.startsWith('tag.')) tags[column.slice(4)] = value;
      else if (!IGNORED_COLUMNS.has(column)) values[column as ImportField] = value;
    });
    if (Object.keys(tags).length > 0) values.tags = tags;
    return { line: record.line, values, problems };
  });
}

interface CheckedImport {
  devices: NewDevice[];
  /** The tenant of each valid device (null: none). */
  tenants: (string | null)[];
  errors: ImportReport['errors'];
}

/** Every line checked; a line with any problem is left out of `devices` and reported. */
async function checkLines(
  { storage }: ApiContext,
  request: FastifyRequest,
  lines: readonly ImportLine[],
  defaultApplication: string | undefined,
): Promise<CheckedImport> {
  const errors: ImportReport['errors'] = [];
  const devices: NewDevice[] = [];
  const tenants: (string | null)[] = [];
  const firstLineOf = new Map<string, number>();
  /** Per application id: its tenant, or why a device cannot go there. */
  const applications = new Map<string, { tenantId: string | null } | { problem: string }>();
  /** Per profile id: its tenant, or undefined when it does not exist. */
  const profiles = new Map<string, { tenantId: string | null } | undefined>();
  const candidates: { line: ImportLine; device: NewDevice; tenantId: string | null }[] = [];

  for (const line of lines) {
    const messages = [...line.problems];
    const v = line.values;
    const text = (field: ImportField): string | undefined =>
      typeof v[field] === 'string' ? (v[field] as string).trim() : undefined;
    const expectText = (field: ImportField): void => {
      if (v[field] !== undefined && typeof v[field] !== 'string')
        messages.push(`${field} must be a text`);
    };
    for (const field of IMPORT_FIELDS) if (field !== 'tags') expectText(field);

    const devEui = text('devEui');
    if (devEui === undefined) messages.push('devEui is missing');
    else if (!HEX16.test(devEui)) messages.push('devEui must be 16 hex digits');
    else {
      const eui = devEui.toLowerCase();
      const first = firstLineOf.get(eui);
      if (first !== undefined) messages.push(`devEui ${eui} is also on line ${first}`);
      else firstLineOf.set(eui, line.line);
    }
    const joinEui = text('joinEui');
    if (joinEui === undefined)
      messages.push('joinEui is missing (an imported device joins by OTAA)');
    else if (!HEX16.test(joinEui)) messages.push('joinEui must be 16 hex digits');
    const name = text('name');
    if (name === undefined || name === '') messages.push('name is missing');
    else if (name.length > 200) messages.push('name must be at most 200 characters');
    const macVersion = text('macVersion');
    if (macVersion === undefined) messages.push('macVersion is missing');
    else if (!(MAC_VERSIONS as readonly string[]).includes(macVersion)) {
      messages.push(`macVersion must be one of ${MAC_VERSIONS.join(', ')}`);
    }
    const deviceClass = text('deviceClass') ?? 'A';
    if (deviceClass !== 'A' && deviceClass !== 'C') messages.push('deviceClass must be A or C');
    const appKey = text('appKey');
    if (appKey === undefined) messages.push('appKey is missing');
    else if (!HEX32.test(appKey)) messages.push('appKey must be 32 hex digits');
    const nwkKey = text('nwkKey');
    if (macVersion === '1.1.0' && nwkKey === undefined) {
      messages.push('nwkKey is missing (a LoRaWAN 1.1 device has two root keys)');
    } else if (nwkKey !== undefined && macVersion !== '1.1.0') {
      messages.push('nwkKey is for LoRaWAN 1.1 devices only');
    } else if (nwkKey !== undefined && !HEX32.test(nwkKey)) {
      messages.push('nwkKey must be 32 hex digits');
    }
    const tags = v.tags;
    if (tags !== undefined) messages.push(...tagProblems(tags));

    const applicationId = text('applicationId') ?? defaultApplication;
    let tenantId: string | null = null;
    if (applicationId === undefined) {
      messages.push('applicationId is missing (give it per line, or once in the query)');
    } else {
      let application = applications.get(applicationId);
      if (application === undefined) {
        try {
          const found = await applicationForDevices(storage, request, applicationId);
          application = { tenantId: found.tenantId };
        } catch (error) {
          if (!(error instanceof ApiError)) throw error;
          application = { problem: error.message };
        }
        applications.set(applicationId, application);
      }
      if ('problem' in application) messages.push(application.problem);
      else tenantId = application.tenantId;
    }
    const deviceProfileId = text('deviceProfileId');
    if (deviceProfileId !== undefined && deviceProfileId !== '') {
      if (!profiles.has(deviceProfileId)) {
        const profile = await storage.deviceProfiles.get(deviceProfileId);
        profiles.set(deviceProfileId, profile && { tenantId: profile.tenantId });
      }
      const profile = profiles.get(deviceProfileId);
      // A profile of another tenant than the device's is, for it, one that does not exist.
      if (profile === undefined || (profile.tenantId !== null && profile.tenantId !== tenantId)) {
        messages.push(unknownReference(`device profile ${deviceProfileId} does not exist`).message);
      }
    }

    if (messages.length > 0) {
      errors.push({ line: line.line, devEui: devEui ?? null, messages });
      continue;
    }
    candidates.push({
      line,
      tenantId,
      device: {
        devEui: devEui as string,
        joinEui: joinEui as string,
        name: name as string,
        applicationId: applicationId as string,
        macVersion: macVersion as MacVersion,
        deviceClass: deviceClass as 'A' | 'C',
        activation: 'otaa',
        appKey: new Uint8Array(Buffer.from(appKey as string, 'hex')),
        ...(nwkKey === undefined ? {} : { nwkKey: new Uint8Array(Buffer.from(nwkKey, 'hex')) }),
        ...(deviceProfileId === undefined || deviceProfileId === '' ? {} : { deviceProfileId }),
        ...(tags === undefined ? {} : { tags: tags as Record<string, string> }),
      },
    });
  }

  const taken = new Set(await storage.devices.existing(candidates.map((c) => c.device.devEui)));
  for (const candidate of candidates) {
    const eui = candidate.device.devEui.toLowerCase();
    if (taken.has(eui)) {
      errors.push({
        line: candidate.line.line,
        devEui: candidate.device.devEui,
        messages: [`device ${eui} exists already`],
      });
    } else {
      devices.push(candidate.device);
      tenants.push(candidate.tenantId);
    }
  }
  errors.sort((a, b) => a.line - b.line);
  return { devices, tenants, errors };
}

function tagProblems(tags: unknown): string[] {
  if (typeof tags !== 'object' || tags === null || Array.isArray(tags)) {
    return ['tags must be an object of texts'];
  }
  const entries = Object.entries(tags as Record<string, unknown>);
  const problems: string[] = [];
  if (entries.length > MAX_TAGS) problems.push(`at most ${MAX_TAGS} tags`);
  for (const [key, value] of entries) {
    if (!TAG_KEY.test(key))
      problems.push(`tag key ${JSON.stringify(key).slice(0, 70)} is not valid`);
    if (typeof value !== 'string' || value.length > MAX_TAG_VALUE_LENGTH) {
      problems.push(
        `tag ${key.slice(0, 64)} must be a text of at most ${MAX_TAG_VALUE_LENGTH} characters`,
      );
    }
  }
  return problems;
}
