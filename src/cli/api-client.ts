import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CliInputError } from './fail.js';

export interface ApiClientOptions {
  url?: string;
  token?: string;
  dataDir?: string;
}

/**
 * A small client of Galet's HTTP API for the CLI: base URL from --url / GALET_URL (default
 * http://127.0.0.1:8080), token from --token / GALET_TOKEN / GALET_ADMIN_TOKEN or the data
 * directory's admin.token. API errors become one-line CLI errors.
 */
export class ApiClient {
  readonly #baseUrl: string;
  readonly #token: string;

  constructor(options: ApiClientOptions, env: NodeJS.ProcessEnv = process.env) {
    this.#baseUrl = (options.url ?? env['GALET_URL'] ?? 'http://127.0.0.1:8080').replace(
      /\/+$/,
      '',
    );
    const token =
      options.token ??
      env['GALET_TOKEN'] ??
      env['GALET_ADMIN_TOKEN'] ??
      readTokenFile(options.dataDir ?? env['GALET_DATA_DIR'] ?? './data');
    if (token === undefined) {
      throw new CliInputError(
        'no API token: give --token, set GALET_TOKEN, or run where <data-dir>/admin.token is readable',
      );
    }
    this.#token = token;
  }

  async request(method: string, path: string, body?: unknown): Promise<unknown> {
    const { status, body: json } = await this.requestRaw(method, path, body);
    if (status < 200 || status >= 300) {
      const message = (json as { message?: string } | undefined)?.message ?? `HTTP ${status}`;
      throw new CliInputError(`${message} (HTTP ${status})`);
    }
    return json;
  }

  /** The status and parsed body, whatever the status (connection failures still throw). */
  async requestRaw(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; body: unknown }> {
    let response: Response;
    try {
      response = await fetch(`${this.#baseUrl}/api/v1${path}`, {
        method,
        headers: {
          authorization: `Bearer ${this.#token}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    } catch (error) {
      throw new CliInputError(
        `cannot reach Galet at ${this.#baseUrl}: ${connectionFailure(error)}`,
      );
    }
    const text = await response.text();
    return { status: response.status, body: text === '' ? undefined : safeJson(text) };
  }
}

/** fetch hides the reason (ECONNREFUSED, ENOTFOUND, ...) in its cause, sometimes one level down. */
function connectionFailure(error: unknown): string {
  const cause = (
    error as { cause?: { code?: string; message?: string; errors?: Array<{ code?: string }> } }
  ).cause;
  return cause?.code ?? cause?.errors?.[0]?.code ?? cause?.message ?? (error as Error).message;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return { message: text.slice(0, 200) };
  }
}

function readTokenFile(dataDir: string): string | undefined {
  try {
    return readFileSync(join(dataDir, 'admin.token'), 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}
