import { isCodecError } from '../errors.js';
import {
  type CatalogueEntry,
  type CodecReference,
  readCatalogue,
  readDefinition,
} from './catalogue.js';
import { type CodecFunction, type CodecPart, readCodecDefinition } from './codec-definition.js';
import { DeviceRepositoryError, type ImportFailure, RepositoryFileProblem } from './errors.js';
import { type ExampleCodec, runExample } from './example-runner.js';
import { RepositoryFiles } from './repository-files.js';

/**
 * Where codecs are compiled. The repository is third-party code, so the CLI passes a
 * `CodecProcess` (a codec that makes V8 abort takes down only the child); tests may pass one too.
 */
export interface CodecLoader {
  load(source: string): Promise<ExampleCodec>;
}

export interface ImportProgress {
  codecsDone: number;
  codecsTotal: number;
  examples: number;
  passed: number;
  failed: number;
}

export interface ImportOptions {
  loader: CodecLoader;
  /** Only this vendor (an id listed in `vendor/index.yaml`). */
  vendor?: string;
  /** Called after each codec. */
  onProgress?: (progress: ImportProgress) => void;
}

/** One codec's results, and the repository-relative files of its parts. */
export interface CodecSummary {
  codec: string;
  files: Partial<Record<CodecFunction, string>>;
  examples: number;
  passed: number;
}

export interface ImportReport {
  /** Distinct codecs the device profiles refer to. */
  codecs: number;
  /** Examples found in their definitions (wrong-shaped ones included: they fail). */
  examples: number;
  passed: number;
  /** Failed examples, then codecs and files that could not be used, in repository order. */
  failed: ImportFailure[];
  vendors: number;
  devices: number;
  /** Every device profile with its codec (`<vendor>/<codec id>`). */
  catalogue: CatalogueEntry[];
  codecSummaries: CodecSummary[];
}

/**
 * Reads a local checkout of the TTN Device Repository, maps its devices to codecs and runs
 * every example of every codec. Throws a DeviceRepositoryError only when `path` is not a
 * checkout or `vendor` is not listed; every other problem is a failure in the report.
 */
export async function importDeviceRepository(
  path: string,
  options: ImportOptions,
): Promise<ImportReport> {
  const files = await RepositoryFiles.open(path);
  if (files === undefined) {
    throw new DeviceRepositoryError('NOT_A_REPOSITORY', `${path} is not a folder`);
  }
  const catalogue = await readCatalogue(files, options.vendor);
  const report: ImportReport = {
    codecs: catalogue.codecs.length,
    examples: 0,
    passed: 0,
    failed: [],
    vendors: catalogue.vendors.length,
    devices: new Set(catalogue.entries.map((entry) => `${entry.vendor}/${entry.device}`)).size,
    catalogue: catalogue.entries,
    codecSummaries: [],
  };
  const codecFailures: ImportFailure[] = [];
  for (const [done, reference] of catalogue.codecs.entries()) {
    const summary = await importCodec(files, reference, options.loader, codecFailures);
    report.codecSummaries.push(summary);
    report.examples += summary.examples;
    report.passed += summary.passed;
    options.onProgress?.({
      codecsDone: done + 1,
      codecsTotal: catalogue.codecs.length,
      examples: report.examples,
      passed: report.passed,
      failed: catalogue.failures.length + codecFailures.length,
    });
  }
  report.failed = [...catalogue.failures, ...codecFailures];
  return report;
}

async function importCodec(
  files: RepositoryFiles,
  reference: CodecReference,
  loader: CodecLoader,
  failures: ImportFailure[],
): Promise<CodecSummary> {
  const summary: CodecSummary = { codec: reference.key, files: {}, examples: 0, passed: 0 };
  const folder = `vendor/${reference.vendor}`;
  const document = await readDefinition(
    files,
    `${folder}/${reference.codecId}.yaml`,
    failures,
    reference.key,
    'codec definition',
  );
  if (document === undefined) return summary;
  const { parts, problems } = readCodecDefinition(document);
  for (const problem of problems) {
    failures.push({
      codec: reference.key,
      description: problem.function,
      reason: problem.reason,
      code: 'DEFINITION_INVALID',
    });
  }
  const loaded = new Map<string, Promise<Loaded>>();
  for (const part of parts) {
    summary.files[part.function] = `${folder}/${part.fileName}`;
    summary.examples += part.examples.length;
    let codec = loaded.get(part.fileName);
    if (codec === undefined) {
      codec = loadCodec(files, folder, part, reference.key, loader);
      loaded.set(part.fileName, codec);
    }
    const loadedCodec = await codec;
    if (!loadedCodec.ok) {
      const { failure } = loadedCodec;
      if (part.examples.length === 0) failures.push({ ...failure, description: part.function });
      for (const example of part.examples) {
        const description = example.ok ? example.example.description : example.description;
        failures.push({ ...failure, description });
      }
      continue;
    }
    const ready = loadedCodec.codec;
    for (const example of part.examples) {
      if (!example.ok) {
        failures.push({
          codec: reference.key,
          description: example.description,
          reason: `the example has a wrong shape: ${example.reason}`,
          code: 'EXAMPLE_INVALID',
        });
        continue;
      }
      const result = await runExample(ready, example.example);
      if (result.passed) summary.passed++;
      else {
        failures.push({
          codec: reference.key,
          description: example.example.description,
          reason: result.reason,
          code: result.code,
        });
      }
    }
  }
  return summary;
}

type Loaded = { ok: true; codec: ExampleCodec } | { ok: false; failure: ImportFailure };

/** The part's codec, compiled; or the failure (with the part's name as description). */
async function loadCodec(
  files: RepositoryFiles,
  folder: string,
  part: CodecPart,
  key: string,
  loader: CodecLoader,
): Promise<Loaded> {
  let source: string;
  try {
    source = await files.readCodecSource(folder, part.fileName);
  } catch (error) {
    if (!(error instanceof RepositoryFileProblem)) throw error;
    const failure = {
      codec: key,
      description: part.function,
      reason: error.message,
      code: error.code,
    };
    return { ok: false, failure };
  }
  try {
    return { ok: true, codec: await loader.load(source) };
  } catch (error) {
    if (!isCodecError(error)) throw error;
    const reason = `${folder}/${part.fileName} does not load: ${error.code}: ${error.message}`;
    return {
      ok: false,
      failure: { codec: key, description: part.function, reason, code: 'CODEC_LOAD_FAILED' },
    };
  }
}
