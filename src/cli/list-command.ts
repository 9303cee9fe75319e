import type { Command } from 'commander';
import type { ApiClient } from './api-client.js';
import { CliInputError } from './fail.js';
import { readInteger } from './frame-inputs.js';
import { type Column, formatTable, printJson } from './output.js';

/**
 * The listing options every list command shares: `--json`, `--limit`, `--cursor`, `--all`
 * (follows `nextCursor` to the end, progress on standard error), `--sort`.
 */
export function withListing(command: Command, sortHelp?: string): Command {
  command
    .option('--json', 'print the raw JSON answer instead of a table')
    .option('--limit <n>', 'items per page, 1-1000 (default 100)')
    .option('--cursor <cursor>', 'continue after a page: the nextCursor it gave')
    .option('--all', 'every page, following nextCursor (progress on standard error)');
  if (sortHelp !== undefined) command.option('--sort <field>', sortHelp);
  return command;
}

/** What a list command reads: its path, its filters, and the key of its items in the answer. */
export interface ListRequest<T> {
  path: string;
  /** Query filters; undefined ones are left out. */
  query: Record<string, string | number | boolean | undefined>;
  itemsKey: string;
  columns: readonly Column<T>[];
  /** What a row is, for the progress of `--all` (`devices`). */
  what: string;
}

interface Page {
  items: unknown[];
  nextCursor: string | null;
}

/** Reads the page (or, with `--all`, every page) and prints it as a table or JSON. */
export async function runList<T>(
  api: ApiClient,
  request: ListRequest<T>,
  options: Record<string, unknown>,
): Promise<void> {
  const limit =
    options['limit'] === undefined ? undefined : readInteger(options['limit'], 10, '--limit');
  if (limit !== undefined && (limit < 1 || limit > 1000)) {
    throw new CliInputError(`--limit must be between 1 and 1000, got ${limit}`);
  }
  const all = options['all'] === true;
  let cursor = typeof options['cursor'] === 'string' ? options['cursor'] : undefined;
  const rows: unknown[] = [];
  let page: Page;
  let answer: Record<string, unknown>;
  do {
    const query = queryString({
      ...request.query,
      ...(typeof options['sort'] === 'string' ? { sort: options['sort'] } : {}),
      limit: limit ?? (all ? 1000 : undefined),
      cursor,
    });
    answer = (await api.request('GET', `${request.path}${query}`)) as Record<string, unknown>;
    page = pageOf(answer, request.itemsKey);
    rows.push(...page.items);
    cursor = page.nextCursor ?? undefined;
    if (all && cursor !== undefined) {
      process.stderr.write(`galet: ${rows.length} ${request.what} so far, reading on...\n`);
    }
  } while (all && cursor !== undefined);
  if (all) process.stderr.write(`galet: ${rows.length} ${request.what}\n`);
  if (options['json'] === true) {
    printJson(all ? { [request.itemsKey]: rows, nextCursor: null } : answer);
    return;
  }
  process.stdout.write(formatTable(rows as T[], request.columns));
  if (!all && page.nextCursor !== null) {
    process.stderr.write(`galet: more ${request.what}: --cursor ${page.nextCursor} (or --all)\n`);
  }
}

export function queryString(query: Record<string, string | number | boolean | undefined>): string {
  const parameters = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined) parameters.set(name, String(value));
  }
  const text = parameters.toString();
  return text === '' ? '' : `?${text}`;
}

function pageOf(answer: Record<string, unknown>, itemsKey: string): Page {
  const items = answer[itemsKey];
  if (!Array.isArray(items)) {
    throw new CliInputError(`the server's answer has no ${itemsKey} list: is it a Galet?`);
  }
  const next = answer['nextCursor'];
  return { items, nextCursor: typeof next === 'string' ? next : null };
}
