import type { JsonValue } from '../types.js';
import { DeviceRepositoryError, type ImportFailure, RepositoryFileProblem } from './errors.js';
import { isJsonObject, show } from './json-values.js';
import { isRepositoryId, type RepositoryFiles } from './repository-files.js';

/** One device profile of the repository: a device, a firmware version, a region. */
export interface CatalogueEntry {
  vendor: string;
  device: string;
  /** The device's `name`, when it has one. */
  name: string | null;
  firmwareVersion: string | null;
  hardwareVersions: string[];
  /** The region key of `profiles` (e.g. `EU863-870`). */
  region: string;
  /** The profile's `id` (a vendor-local LoRaWAN device profile). */
  profile: string | null;
  lorawanCertified: boolean;
  /** `<vendor>/<codec id>`, or null when the profile names no codec. */
  codec: string | null;
}

/** A codec definition some profile refers to. */
export interface CodecReference {
  /** `<vendor>/<codec id>`. */
  key: string;
  vendor: string;
  codecId: string;
}

export interface Catalogue {
  /** Vendors listed in `vendor/index.yaml` and read (after the `vendor` filter). */
  vendors: string[];
  entries: CatalogueEntry[];
  /** Distinct codecs in order of first reference. */
  codecs: CodecReference[];
  failures: ImportFailure[];
}

const VENDOR_INDEX = 'vendor/index.yaml';

/**
 * Reads the repository's layout: `vendor/index.yaml` lists vendors (`vendors: [{id}]`);
 * `vendor/<vendor>/index.yaml` lists the vendor's devices (`endDevices: [id]`); each
 * `vendor/<vendor>/<device>.yaml` has `firmwareVersions: [{version, hardwareVersions,
 * profiles: {<region>: {id, lorawanCertified, codec}}}]`. A vendor without a folder or without
 * an index has no devices (the real index lists many such vendors). Anything else that cannot
 * be read becomes a failure; the rest of the repository is still read.
 */
export async function readCatalogue(files: RepositoryFiles, vendor?: string): Promise<Catalogue> {
  if (!(await files.isFile(VENDOR_INDEX))) {
    throw new DeviceRepositoryError(
      'NOT_A_REPOSITORY',
      `${files.root} is not a Device Repository checkout: ${VENDOR_INDEX} not found`,
    );
  }
  const catalogue: Catalogue = { vendors: [], entries: [], codecs: [], failures: [] };
  // With a vendor filter, the other vendors' entries are not judged.
  const indexFailures = vendor === undefined ? catalogue.failures : [];
  const listed = await readList(files, VENDOR_INDEX, 'vendors', indexFailures, (item) =>
    isJsonObject(item) ? item['id'] : undefined,
  );
  if (vendor !== undefined && !listed.includes(vendor)) {
    throw new DeviceRepositoryError('UNKNOWN_VENDOR', `${VENDOR_INDEX} lists no vendor ${vendor}`);
  }
  const seenCodecs = new Set<string>();
  for (const id of vendor === undefined ? listed : [vendor]) {
    catalogue.vendors.push(id);
    const index = `vendor/${id}/index.yaml`;
    if (!(await files.isFile(index))) continue;
    const devices = await readList(files, index, 'endDevices', catalogue.failures, (item) => item);
    for (const device of devices) {
      for (const entry of await readDevice(files, id, device, catalogue.failures)) {
        catalogue.entries.push(entry);
        if (entry.codec === null || seenCodecs.has(entry.codec)) continue;
        seenCodecs.add(entry.codec);
        catalogue.codecs.push({
          key: entry.codec,
          vendor: id,
          codecId: entry.codec.slice(id.length + 1),
        });
      }
    }
  }
  return catalogue;
}

/** The ids of a YAML list (`<key>: [...]`); bad items are failures, the good ones are kept. */
async function readList(
  files: RepositoryFiles,
  path: string,
  key: string,
  failures: ImportFailure[],
  idOf: (item: JsonValue) => JsonValue | undefined,
): Promise<string[]> {
  const document = await readDefinition(files, path, failures);
  if (document === undefined) return [];
  const list = isJsonObject(document) ? document[key] : undefined;
  if (!Array.isArray(list)) {
    failures.push(definitionFailure(path, `${key} is not a list`));
    return [];
  }
  const ids: string[] = [];
  list.forEach((item, i) => {
    const id = idOf(item);
    if (isRepositoryId(id)) ids.push(id);
    else failures.push(definitionFailure(path, `${key}[${i}] is not a valid id: ${show(id)}`));
  });
  return ids;
}

async function readDevice(
  files: RepositoryFiles,
  vendor: string,
  device: string,
  failures: ImportFailure[],
): Promise<CatalogueEntry[]> {
  const path = `vendor/${vendor}/${device}.yaml`;
  const definition = await readDefinition(files, path, failures);
  if (definition === undefined) return [];
  if (!isJsonObject(definition) || !Array.isArray(definition['firmwareVersions'])) {
    failures.push(definitionFailure(path, 'firmwareVersions is not a list'));
    return [];
  }
  const name = typeof definition['name'] === 'string' ? definition['name'] : null;
  const entries: CatalogueEntry[] = [];
  definition['firmwareVersions'].forEach((firmware, i) => {
    const where = `firmwareVersions[${i}]`;
    if (!isJsonObject(firmware) || !isJsonObject(firmware['profiles'])) {
      failures.push(definitionFailure(path, `${where}.profiles is not a map`));
      return;
    }
    const version = firmware['version'];
    const hardware = firmware['hardwareVersions'];
    for (const [region, profile] of Object.entries(firmware['profiles'])) {
      if (!isJsonObject(profile)) {
        failures.push(definitionFailure(path, `${where}.profiles.${region} is not a map`));
        continue;
      }
      const codec = profile['codec'];
      if (codec !== undefined && codec !== null && !isRepositoryId(codec)) {
        failures.push(
          definitionFailure(
            path,
            `${where}.profiles.${region}.codec is not a valid id: ${show(codec)}`,
          ),
        );
        continue;
      }
      entries.push({
        vendor,
        device,
        name,
        firmwareVersion:
          typeof version === 'string' || typeof version === 'number' ? String(version) : null,
        hardwareVersions: Array.isArray(hardware) ? hardware.map(String) : [],
        region,
        profile: typeof profile['id'] === 'string' ? profile['id'] : null,
        lorawanCertified: profile['lorawanCertified'] === true,
        codec: typeof codec === 'string' ? `${vendor}/${codec}` : null,
      });
    }
  });
  return entries;
}

/** A YAML definition, or undefined after recording why it cannot be read. */
export async function readDefinition(
  files: RepositoryFiles,
  path: string,
  failures: ImportFailure[],
  codec = path,
  description = 'definition',
): Promise<JsonValue | undefined> {
  try {
    return await files.readYaml(path);
  } catch (error) {
    if (!(error instanceof RepositoryFileProblem)) throw error;
    failures.push({ codec, description, reason: error.message, code: error.code });
    return undefined;
  }
}

function definitionFailure(path: string, reason: string): ImportFailure {
  return {
    codec: path,
    description: 'definition',
    reason: `${path}: ${reason}`,
    code: 'DEFINITION_INVALID',
  };
}
