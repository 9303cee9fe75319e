import {
  type Connection,
  type ConnectionOptions,
  connectionOptions,
  resolveConnection,
} from './connection.js';
import { CliInputError } from './fail.js';
import { exchange, type HttpAnswer, HttpTransportError } from './http-request.js';

/** An error answer of the API, `{error, message, details}`: one clear line, then its details. */
export class ApiError extends CliInputError {
  readonly status: number;
  readonly code: string;
  readonly details: unknown;

  constructor(status: number, body: unknown) {
    const answer = (typeof body === 'object' && body !== null ? body : {}) as {
      error?: unknown;
      message?: unknown;
      details?: unknown;
    };
    const message = typeof answer.message === 'string' ? answer.message : `HTTP ${status}`;
    const details = detailsText(message, answer.details);
    super(`${message} (HTTP ${status})${details}`);
    this.status = status;
    this.code = typeof answer.error === 'string' ? answer.error : `HTTP_${status}`;
    this.details = answer.details;
  }
}

export interface RawAnswer {
  status: number;
  contentType: string;
  text: string;
  /** The parsed body when it is JSON. */
  body: unknown;
}

export interface RequestOptions {
  /** A JSON body. */
  json?: unknown;
  /** A body sent as it is, with its content type. */
  text?: { content: string; contentType: string };
  /** False: no Authorization header (login). */
  authenticated?: boolean;
  /** Another credential than the connection's (a fresh session). */
  token?: string;
}

/**
 * A small client of Galet's HTTP API for the CLI: the connection resolved once
 * (`resolveConnection`), JSON in and out, API errors as `ApiError`, network failures as one
 * line naming the server and the reason.
 */
export class ApiClient {
  readonly connection: Connection;

  constructor(connection: Connection) {
    this.connection = connection;
  }

  get baseUrl(): string {
    return this.connection.url;
  }

  /** The parsed answer of a 2xx; `ApiError` for any other status. */
  async request(method: string, path: string, body?: unknown): Promise<unknown> {
    const answer = await this.send(method, path, body === undefined ? {} : { json: body });
    if (answer.status < 200 || answer.status >= 300) throw new ApiError(answer.status, answer.body);
    return answer.body;
  }

  /** A JSON request's status and body, whatever the status (the demo fleet's `ApiRequester`). */
  async requestRaw(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; body: unknown }> {
    return this.send(method, path, body === undefined ? {} : { json: body });
  }

  /** The status and body, whatever the status (connection failures still throw). */
  async send(method: string, path: string, options: RequestOptions = {}): Promise<RawAnswer> {
    // What fetch sent: any answer type (the export is CSV), plus who is asking.
    const headers: Record<string, string> = { accept: '*/*', 'user-agent': 'galet-cli' };
    if (options.authenticated !== false) {
      const token = options.token ?? this.connection.token;
      if (token === undefined) {
        throw new CliInputError(
          `no credential for ${this.baseUrl}: run galet login, give --token, or set GALET_TOKEN`,
        );
      }
      headers['authorization'] = `Bearer ${token}`;
    }
    let body: string | undefined;
    if (options.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(options.json);
    } else if (options.text !== undefined) {
      headers['content-type'] = options.text.contentType;
      body = options.text.content;
    }
    let answer: HttpAnswer;
    try {
      answer = await exchange({
        method,
        url: `${this.baseUrl}/api/v1${path}`,
        headers,
        ...(body === undefined ? {} : { body }),
      });
    } catch (error) {
      throw new CliInputError(`cannot reach Galet at ${this.baseUrl}: ${connectionFailure(error)}`);
    }
    const { text } = answer;
    const contentType = headerText(answer.headers['content-type']);
    const isJson = contentType.includes('json');
    return {
      status: answer.status,
      contentType,
      text,
      body: text === '' ? undefined : isJson ? safeJson(text) : { message: text.slice(0, 200) },
    };
  }
}

/** The client of a command's connection options (`withConnection`). */
export function client(options: Record<string, unknown>): ApiClient {
  return clientOf(connectionOptions(options));
}

export function clientOf(
  options: ConnectionOptions,
  env: NodeJS.ProcessEnv = process.env,
): ApiClient {
  return new ApiClient(resolveConnection(options, env));
}

/** Node's code (ECONNREFUSED, ENOTFOUND, CERT_HAS_EXPIRED, ...), else the reason. */
function connectionFailure(error: unknown): string {
  if (error instanceof HttpTransportError) {
    return error.code === 'ETIMEDOUT' || error.code.startsWith('ERR_') ? error.message : error.code;
  }
  return (error as Error).message;
}

function headerText(value: string | string[] | undefined): string {
  return Array.isArray(value) ? value.join(', ') : (value ?? '');
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return { message: text.slice(0, 200) };
  }
}

/**
 * The lines after the message: each failing field of a request the schema refused (when there
 * is more than the one the message names), else the details as compact JSON.
 */
function detailsText(message: string, details: unknown): string {
  if (details === undefined || details === null) return '';
  if (Array.isArray(details) && details.every(isSchemaFailure)) {
    // Fastify names the part of the request first: `body.name must be ...`, `querystring...`.
    const part = /^(body|querystring|params|headers)\b/.exec(message)?.[1] ?? 'body';
    const lines = details
      .map((failure) => `${part}${failure.instancePath.replaceAll('/', '.')} ${failure.message}`)
      .filter((line) => line !== message);
    return lines.map((line) => `\n  ${line}`).join('');
  }
  return `\n  details: ${clip(JSON.stringify(details))}`;
}

function isSchemaFailure(value: unknown): value is { instancePath: string; message: string } {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { instancePath?: unknown }).instancePath === 'string' &&
    typeof (value as { message?: unknown }).message === 'string'
  );
}

function clip(text: string, max = 2000): string {
  return text.length <= max ? text : `${text.slice(0, max)}…`;
}
