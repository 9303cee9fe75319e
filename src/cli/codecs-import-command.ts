import { writeFile } from 'node:fs/promises';
import { type Command, CommanderError } from 'commander';
// Types only: the codecs module (isolated-vm, yaml) is loaded by the command's action, not by
// every `galet` command.
import type {
  CodecLoader,
  CodecProcess,
  ImportProgress,
  ImportReport,
} from '../application/codecs/index.js';

/** Progress goes to stderr after every this many codecs (and once at the end). */
const PROGRESS_EVERY_CODECS = 25;
const MAX_TIMEOUT_MS = 60_000;

/**
 * `galet codecs import <path>`. Exit codes: 0 when every example passed and every file could be
 * used, 1 when something failed (listed in the report), 2 on a usage error (bad option, a path
 * that is not a checkout, an unknown vendor, a catalogue file that cannot be written).
 */
export function registerCodecsImportCommand(program: Command): void {
  const codecs = program.command('codecs').description('work with collections of payload codecs');
  codecs
    .command('import')
    .description(
      'read a local checkout of the TTN Device Repository (lorawan-devices), map its devices to ' +
        'codecs and run every codec example in the sandbox. With --json prints ' +
        '{"codecs": n, "examples": n, "passed": n, "failed": [{"codec", "description", "reason"}]}. ' +
        'Exit code 0: all passed; 1: some failed; 2: usage error.',
    )
    .argument('<path>', 'the checkout (the folder that holds vendor/)')
    .option('--json', 'print the report as JSON on stdout')
    .option('--vendor <id>', 'only this vendor')
    .option('--timeout-ms <ms>', 'time cap of one codec call', '100')
    .option('--catalogue <file>', 'write the device-to-codec catalogue as JSON to this file')
    // commander's own usage errors (unknown option, missing argument) exit with 2 too.
    .exitOverride((error) => {
      throw error.exitCode === 0 ? error : new CommanderError(2, error.code, error.message);
    })
    .action((path: string, options: Record<string, unknown>) => runImport(path, options));
}

async function runImport(path: string, options: Record<string, unknown>): Promise<void> {
  const { CodecProcess, DeviceRepositoryError, importDeviceRepository } = await import(
    '../application/codecs/index.js'
  );
  const timeoutMs = readTimeout(options['timeoutMs']);
  const vendor = typeof options['vendor'] === 'string' ? options['vendor'] : undefined;
  // The codec process starts with the first codec: a usage error costs no child process.
  let host: Promise<CodecProcess> | undefined;
  const loader: CodecLoader = {
    load: async (source) => {
      host ??= CodecProcess.start({ timeoutMs });
      return (await host).load(source);
    },
  };
  let report: ImportReport;
  try {
    report = await importDeviceRepository(path, {
      loader,
      ...(vendor === undefined ? {} : { vendor }),
      onProgress: printProgress,
    });
  } catch (error) {
    if (error instanceof DeviceRepositoryError) usageError(error.message);
    throw error;
  } finally {
    if (host !== undefined) await (await host).close();
  }
  const catalogue = options['catalogue'];
  if (typeof catalogue === 'string') await writeCatalogue(catalogue, report);
  if (options['json'] === true) {
    process.stdout.write(
      `${JSON.stringify({
        codecs: report.codecs,
        examples: report.examples,
        passed: report.passed,
        failed: report.failed.map(({ codec, description, reason }) => ({
          codec,
          description,
          reason,
        })),
      })}\n`,
    );
  } else {
    process.stdout.write(humanSummary(path, report));
  }
  if (report.failed.length > 0) {
    // The report is printed already; main() only needs the exit code.
    throw new CommanderError(1, 'galet.codecs.failed', '');
  }
}

function printProgress(progress: ImportProgress): void {
  const { codecsDone, codecsTotal } = progress;
  if (codecsDone % PROGRESS_EVERY_CODECS !== 0 && codecsDone !== codecsTotal) return;
  process.stderr.write(
    `galet: codecs ${codecsDone}/${codecsTotal}, examples ${progress.examples}, ` +
      `passed ${progress.passed}, failures ${progress.failed}\n`,
  );
}

function humanSummary(path: string, report: ImportReport): string {
  const lines = [
    `Device Repository ${path}: ${report.vendors} vendors, ${report.devices} devices, ` +
      `${report.catalogue.length} profiles, ${report.codecs} codecs`,
    `examples: ${report.examples}, passed: ${report.passed}, ` +
      `failed: ${report.examples - report.passed}`,
  ];
  if (report.failed.length === 0) lines.push('every example passed');
  else {
    lines.push(`failures (${report.failed.length}):`);
    for (const failure of report.failed) {
      lines.push(`  ${failure.codec}  ${JSON.stringify(failure.description)}: ${failure.reason}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

/**
 * The catalogue file: `{"devices": [{vendor, device, name, firmwareVersion, hardwareVersions,
 * region, profile, lorawanCertified, codec}], "codecs": {"<vendor>/<codec id>": {files,
 * examples, passed, failures}}}`.
 */
async function writeCatalogue(file: string, report: ImportReport): Promise<void> {
  const failures = new Map<string, number>();
  for (const failure of report.failed) {
    failures.set(failure.codec, (failures.get(failure.codec) ?? 0) + 1);
  }
  const codecs = Object.fromEntries(
    report.codecSummaries.map((summary) => [
      summary.codec,
      {
        files: summary.files,
        examples: summary.examples,
        passed: summary.passed,
        failures: failures.get(summary.codec) ?? 0,
      },
    ]),
  );
  try {
    await writeFile(file, `${JSON.stringify({ devices: report.catalogue, codecs }, null, 2)}\n`);
  } catch (error) {
    usageError(`cannot write the catalogue to ${file}: ${(error as Error).message}`);
  }
}

function readTimeout(value: unknown): number {
  const text = String(value);
  const ms = /^\d{1,6}$/.test(text) ? Number(text) : Number.NaN;
  if (!(ms >= 1 && ms <= MAX_TIMEOUT_MS)) {
    usageError(`--timeout-ms must be an integer from 1 to ${MAX_TIMEOUT_MS}, got ${text}`);
  }
  return ms;
}

function usageError(message: string): never {
  process.stderr.write(`galet: ${message}\n`);
  throw new CommanderError(2, 'galet.usage', message);
}
