import { readFile, writeFile } from 'node:fs/promises';
import { extname } from 'node:path';
import type { Command } from 'commander';
import { ApiError, client } from './api-client.js';
import { collectTag, segment } from './command-inputs.js';
import { withConnection } from './connection.js';
import { CliInputError } from './fail.js';
import { queryString } from './list-command.js';
import { printJson } from './output.js';

/** `galet device import`, `export` and `move`: the bulk routes of the API. */

interface ImportReport {
  dryRun: boolean;
  total: number;
  valid: number;
  invalid: number;
  created: number;
  errors: { line: number; devEui: string | null; messages: string[] }[];
}

export function registerDeviceBulkCommands(device: Command): void {
  withConnection(
    device
      .command('import')
      .description(
        'create devices from a CSV or JSON file, all or none, with a report of every bad line',
      )
      .argument(
        '<file>',
        'a .csv file (header line first) or a .json file ({devices: [...]} or [...]); - for standard input',
      ),
  )
    .option('--dry-run', 'check every line, write nothing')
    .option('--application <id>', 'the application of the lines that name none')
    .option(
      '--format <format>',
      'csv or json (default: from the file name; csv for standard input)',
    )
    .option('--json', 'print the report as JSON')
    .action(async (file: string, o: Record<string, unknown>) => {
      const format = importFormat(file, o['format']);
      const content = await readInput(file);
      const query = queryString({
        applicationId: o['application'] as string | undefined,
        ...(o['dryRun'] === true ? { dryRun: true } : {}),
      });
      const answer = await client(o).send('POST', `/devices/import${query}`, {
        text: {
          content: format === 'csv' ? content : JSON.stringify(importJson(content, file)),
          contentType: format === 'csv' ? 'text/csv' : 'application/json',
        },
      });
      const ok = answer.status === 200 || answer.status === 201;
      const report = (
        ok ? answer.body : (answer.body as { details?: unknown } | undefined)?.details
      ) as ImportReport | undefined;
      if (!isReport(report)) throw new ApiError(answer.status, answer.body);
      if (o['json'] === true) printJson(report);
      else process.stdout.write(formatReport(report));
      if (!ok)
        throw new ApiError(answer.status, { ...(answer.body as object), details: undefined });
      if (report.invalid > 0) {
        throw new CliInputError(
          `${report.invalid} of ${report.total} lines are invalid (dry run: nothing was written)`,
        );
      }
    });

  withConnection(
    device
      .command('export')
      .description('the devices you see, without keys, as CSV or JSON (stdout or --out)'),
  )
    .option('--format <format>', 'csv or json', 'csv')
    .option('--out <file>', 'write to this file instead of standard output')
    .option('--application <id>', 'only this application')
    .option('--tenant <id>', 'only this tenant')
    .option('--device-profile <id>', 'only the devices with this profile')
    .option('--tag <key=value>', 'only the devices with this tag', collectTag)
    .option('--search <text>', 'part of a name or DevEUI')
    .action(async (o: Record<string, unknown>) => {
      const format = String(o['format']);
      if (format !== 'csv' && format !== 'json') {
        throw new CliInputError(`--format must be csv or json, got ${format}`);
      }
      const tags = Object.entries((o['tag'] as Record<string, string> | undefined) ?? {});
      if (tags.length > 1) throw new CliInputError('--tag filters on one tag at a time');
      const query = queryString({
        format,
        applicationId: o['application'] as string | undefined,
        tenantId: o['tenant'] as string | undefined,
        deviceProfileId: o['deviceProfile'] as string | undefined,
        tag: tags[0] === undefined ? undefined : `${tags[0][0]}:${tags[0][1]}`,
        search: o['search'] as string | undefined,
      });
      const answer = await client(o).send('GET', `/devices/export${query}`);
      if (answer.status !== 200) throw new ApiError(answer.status, answer.body);
      const text = answer.text.endsWith('\n') ? answer.text : `${answer.text}\n`;
      if (typeof o['out'] === 'string') {
        await writeFile(o['out'], text);
        process.stderr.write(`galet: devices written to ${o['out']}\n`);
      } else {
        process.stdout.write(text);
      }
    });

  withConnection(
    device
      .command('move')
      .description('move devices to another application: same session, no new join')
      .argument('<devEui...>', 'the devices'),
  )
    .requiredOption('--application <id>', 'the application they go to')
    .action(async (devEuis: string[], o: Record<string, unknown>) => {
      const api = client(o);
      const failures: string[] = [];
      for (const devEui of devEuis) {
        try {
          const moved = await api.request('POST', `/devices/${segment(devEui)}/move`, {
            applicationId: o['application'],
          });
          process.stdout.write(`${JSON.stringify(moved)}\n`);
        } catch (error) {
          if (!(error instanceof CliInputError)) throw error;
          process.stderr.write(`galet: ${devEui}: ${error.message}\n`);
          failures.push(devEui);
        }
      }
      if (failures.length > 0) {
        throw new CliInputError(
          `${failures.length} of ${devEuis.length} devices not moved: ${failures.join(' ')}`,
        );
      }
    });
}

function importFormat(file: string, given: unknown): 'csv' | 'json' {
  if (given !== undefined) {
    if (given !== 'csv' && given !== 'json') {
      throw new CliInputError(`--format must be csv or json, got ${String(given)}`);
    }
    return given;
  }
  const extension = extname(file).toLowerCase();
  if (extension === '.json') return 'json';
  if (extension === '.csv' || file === '-') return 'csv';
  throw new CliInputError(
    `cannot tell the format of ${file}: name it .csv or .json, or give --format`,
  );
}

async function readInput(file: string): Promise<string> {
  if (file === '-') {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  }
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    throw new CliInputError(
      `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    );
  }
}

/** A JSON import: `[...]` or `{devices: [...]}`. */
function importJson(content: string, file: string): unknown {
  let parsed: unknown;
  try {
    parsed = JSON.parse(content);
  } catch (error) {
    throw new CliInputError(`${file} is not JSON: ${(error as Error).message}`);
  }
  return Array.isArray(parsed) ? { devices: parsed } : parsed;
}

function isReport(value: unknown): value is ImportReport {
  return (
    typeof value === 'object' && value !== null && Array.isArray((value as ImportReport).errors)
  );
}

/** The report for people: the counts, then one line per bad line. */
export function formatReport(report: ImportReport): string {
  const head = `${report.dryRun ? 'dry run: ' : ''}${report.total} devices, ${report.valid} valid, ${report.invalid} invalid, ${report.created} created`;
  const lines = report.errors.map(
    (error) =>
      `line ${error.line}${error.devEui === null ? '' : ` (${error.devEui})`}: ${error.messages.join('; ')}`,
  );
  return `${[head, ...lines].join('\n')}\n`;
}
