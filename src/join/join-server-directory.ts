import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP } from 'node:net';
import type { Logger } from '../logger.js';
import type { MacVersion } from '../network/session.js';
import { decodeValue } from './backend-interfaces/index.js';
import { BackendJoinServerClient, type SendJoinReq } from './backend-join.js';
import { type JoinEuiSelector, JoinEuiTable, JoinEuiTableError } from './join-eui-table.js';
import type {
  JoinAnswer,
  JoinRequestMessage,
  JoinServer,
  RejoinRequestMessage,
} from './join-server.js';
import {
  BEARER_TOKEN,
  readCertificateFile,
  readKekFile,
  readPrivateKeyFile,
  readTokenFile,
} from './secret-files.js';

/**
 * TLS of a join server reached over https://: the CA its certificate chains to (default: the
 * system's), and the client certificate and key Galet presents (mutual TLS), all PEM files.
 */
export interface JoinServerTlsSetting {
  caFile?: string;
  certFile?: string;
  keyFile?: string;
}

/**
 * One join server of the `joinServers` setting: the JoinEUIs it serves (a prefix or a range),
 * where it answers Backend Interfaces JoinReq over HTTP, the KEK the network shares with it
 * (the network session keys come back wrapped under it; read from a file, never the config),
 * and how the network proves who it is there (a bearer token, a client certificate, or both).
 */
export type JoinServerSetting = JoinEuiSelector & {
  url: string;
  kekLabel: string;
  kekFile: string;
  /** Shown in logs and metrics; default: the URL's host. */
  name?: string;
  /** How long to wait for the JoinAns (default 3000 ms: the JoinAccept must make RX1/RX2). */
  timeoutMs?: number;
  /** Sent as `Authorization: Bearer <token>`; `tokenFile` keeps it out of the config. */
  token?: string;
  tokenFile?: string;
  tls?: JoinServerTlsSetting;
};

/** A JoinServerSetting whose KEK, token and TLS files were read. */
export interface JoinServerRoute {
  name: string;
  url: string;
  kekLabel: string;
  kek: Uint8Array;
  timeoutMs: number;
  token?: string;
  tls?: { ca?: string; cert?: string; key?: string };
}

const DEFAULT_TIMEOUT_MS = 3000;
const MAX_ANSWER_BYTES = 64 * 1024;
const SETTING_KEYS = new Set([
  'joinEuiPrefix',
  'joinEuiRange',
  'url',
  'kekLabel',
  'kekFile',
  'name',
  'timeoutMs',
  'token',
  'tokenFile',
  'tls',
]);
const TLS_KEYS = new Set(['caFile', 'certFile', 'keyFile']);
/** Backend Interfaces KEKLabel: printable, no spaces (it travels in JSON and logs). */
const KEK_LABEL = /^[\x21-\x7e]{1,128}$/;

/**
 * The `joinServers` setting checked: each entry's fields, then the table (a JoinEUI served by
 * two entries is refused, nested prefixes aside). Throws a JoinEuiTableError naming the entry.
 */
export function parseJoinServerSettings(value: unknown): JoinServerSetting[] {
  if (!Array.isArray(value)) {
    throw new JoinEuiTableError('joinServers must be an array of join servers');
  }
  const settings = value.map((entry, index) => parseEntry(entry, `joinServers[${index}]`));
  new JoinEuiTable(
    settings.map((setting, index) => ({
      selector: setting,
      value: setting,
      where: `joinServers[${index}]`,
    })),
  );
  return settings;
}

/** Whether a URL's host is this machine (a token may travel there over plain http). */
function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
}

function parseEntry(entry: unknown, where: string): JoinServerSetting {
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
    throw new JoinEuiTableError(`${where} must be an object`);
  }
  const fields = entry as Record<string, unknown>;
  for (const key of Object.keys(fields)) {
    if (!SETTING_KEYS.has(key)) throw new JoinEuiTableError(`${where}: unknown field "${key}"`);
  }
  const hasPrefix = fields['joinEuiPrefix'] !== undefined;
  if (hasPrefix === (fields['joinEuiRange'] !== undefined)) {
    throw new JoinEuiTableError(`${where}: give exactly one of joinEuiPrefix and joinEuiRange`);
  }
  const text = (key: string, from: Record<string, unknown> = fields, at = where): string => {
    const field = from[key];
    if (typeof field !== 'string' || field === '') {
      throw new JoinEuiTableError(`${at}: ${key} must be a non-empty string`);
    }
    return field;
  };
  const url = text('url');
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new JoinEuiTableError(`${where}: url must be an http:// or https:// URL, got ${url}`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new JoinEuiTableError(`${where}: url must be an http:// or https:// URL, got ${url}`);
  }
  if (parsed.username !== '' || parsed.password !== '') {
    throw new JoinEuiTableError(`${where}: url must not hold credentials`);
  }
  const kekLabel = text('kekLabel');
  if (!KEK_LABEL.test(kekLabel)) {
    throw new JoinEuiTableError(`${where}: kekLabel must be 1 to 128 printable characters`);
  }
  const timeoutMs = fields['timeoutMs'];
  if (
    timeoutMs !== undefined &&
    (!Number.isInteger(timeoutMs) || (timeoutMs as number) < 100 || (timeoutMs as number) > 10_000)
  ) {
    throw new JoinEuiTableError(`${where}: timeoutMs must be an integer from 100 to 10000`);
  }
  // Credentials: a token (inline or in a file) and/or TLS files.
  if (fields['token'] !== undefined && fields['tokenFile'] !== undefined) {
    throw new JoinEuiTableError(`${where}: give token or tokenFile, not both`);
  }
  const token = fields['token'] === undefined ? undefined : text('token');
  if (token !== undefined && !BEARER_TOKEN.test(token)) {
    throw new JoinEuiTableError(`${where}: token must be 16 to 512 visible ASCII characters`);
  }
  const tokenFile = fields['tokenFile'] === undefined ? undefined : text('tokenFile');
  if (
    (token !== undefined || tokenFile !== undefined) &&
    parsed.protocol === 'http:' &&
    !isLoopbackHost(parsed.hostname)
  ) {
    throw new JoinEuiTableError(
      `${where}: the token would cross the network in clear to ${parsed.host}: use an https:// url (http:// is for a join server on this machine only)`,
    );
  }
  let tls: JoinServerTlsSetting | undefined;
  if (fields['tls'] !== undefined) {
    const value = fields['tls'];
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new JoinEuiTableError(`${where}: tls must be an object {caFile, certFile, keyFile}`);
    }
    const tlsFields = value as Record<string, unknown>;
    for (const key of Object.keys(tlsFields)) {
      if (!TLS_KEYS.has(key)) throw new JoinEuiTableError(`${where}.tls: unknown field "${key}"`);
    }
    if (parsed.protocol !== 'https:') {
      throw new JoinEuiTableError(`${where}: tls needs an https:// url`);
    }
    if ((tlsFields['certFile'] === undefined) !== (tlsFields['keyFile'] === undefined)) {
      throw new JoinEuiTableError(`${where}.tls: give certFile and keyFile together`);
    }
    tls = {};
    for (const key of TLS_KEYS) {
      if (tlsFields[key] !== undefined) {
        tls[key as keyof JoinServerTlsSetting] = text(key, tlsFields, `${where}.tls`);
      }
    }
  }
  const selector: JoinEuiSelector = hasPrefix
    ? { joinEuiPrefix: fields['joinEuiPrefix'] as string }
    : { joinEuiRange: fields['joinEuiRange'] as { first: string; last: string } };
  return {
    ...selector,
    url,
    kekLabel,
    kekFile: text('kekFile'),
    ...(fields['name'] === undefined ? {} : { name: text('name') }),
    ...(timeoutMs === undefined ? {} : { timeoutMs: timeoutMs as number }),
    ...(token === undefined ? {} : { token }),
    ...(tokenFile === undefined ? {} : { tokenFile }),
    ...(tls === undefined ? {} : { tls }),
  };
}

/**
 * Reads each join server's KEK (16, 24 or 32 bytes as hex: RFC 3394 takes AES-128/192/256
 * keys), token file and TLS files. A KEK, token or key file readable by other users is named in
 * a warning.
 */
export async function loadJoinServerRoutes(
  settings: readonly JoinServerSetting[],
  logger?: Logger,
): Promise<JoinEuiTable<JoinServerRoute>> {
  const entries = [];
  // Checked again: startGalet may be given settings that no config file went through.
  for (const [index, setting] of parseJoinServerSettings(settings).entries()) {
    const where = `joinServers[${index}]`;
    const kek = await readKekFile(setting.kekFile, where, JoinEuiTableError, logger);
    const token =
      setting.tokenFile === undefined
        ? setting.token
        : await readTokenFile(setting.tokenFile, where, JoinEuiTableError, logger);
    let tls: JoinServerRoute['tls'];
    if (setting.tls !== undefined) {
      const at = `${where}.tls`;
      const { caFile, certFile, keyFile } = setting.tls;
      tls = {
        ...(caFile === undefined
          ? {}
          : { ca: (await readCertificateFile(caFile, at, 'caFile', JoinEuiTableError)).pem }),
        ...(certFile === undefined
          ? {}
          : { cert: (await readCertificateFile(certFile, at, 'certFile', JoinEuiTableError)).pem }),
        ...(keyFile === undefined
          ? {}
          : { key: await readPrivateKeyFile(keyFile, at, 'keyFile', JoinEuiTableError, logger) }),
      };
    }
    entries.push({
      selector: setting,
      where,
      value: {
        name: setting.name ?? new URL(setting.url).host,
        url: setting.url,
        kekLabel: setting.kekLabel,
        kek,
        timeoutMs: setting.timeoutMs ?? DEFAULT_TIMEOUT_MS,
        ...(token === undefined ? {} : { token }),
        ...(tls === undefined ? {} : { tls }),
      },
    });
  }
  return new JoinEuiTable(entries);
}

/** The join server refused the network's credentials (HTTP 401 or 403). */
export class JoinServerUnauthorizedError extends Error {
  override readonly name = 'JoinServerUnauthorizedError';
}

/** The Result.Description of a Backend Interfaces answer body, if it has one (for messages). */
function describedResult(body: Buffer): string | undefined {
  try {
    const result = (JSON.parse(body.toString('utf8')) as { Result?: Record<string, unknown> })
      .Result;
    const code = result?.['ResultCode'];
    const description = result?.['Description'];
    if (typeof code !== 'string') return undefined;
    const text = `${code}${typeof description === 'string' ? `: ${description}` : ''}`;
    return text.replace(/[^\x20-\x7e]/g, '?').slice(0, 200);
  } catch {
    return undefined;
  }
}

/**
 * Backend Interfaces over HTTP, synchronous: the JoinReq (or RejoinReq) JSON is POSTed to the
 * join server's URL, with the route's bearer token and client certificate when it has them, and
 * the HTTP 200 answer's body is the JoinAns. Anything else (no connection, no answer in time,
 * another status, an answer that is not JSON) throws, naming the server; HTTP 401 and 403
 * throw a JoinServerUnauthorizedError. The token never appears in an error.
 */
export function httpJoinReqSender(
  route: Pick<JoinServerRoute, 'name' | 'url' | 'timeoutMs' | 'token' | 'tls'>,
): SendJoinReq {
  const url = new URL(route.url);
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return (message) =>
    new Promise<unknown>((resolve, reject) => {
      const body = Buffer.from(JSON.stringify(message), 'utf8');
      const signal = AbortSignal.timeout(route.timeoutMs);
      const unreachable = (reason: string) =>
        reject(new Error(`join server ${route.name} (${route.url}) unreachable: ${reason}`));
      const request = send(url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json',
          'content-length': body.length,
          ...(route.token === undefined ? {} : { authorization: `Bearer ${route.token}` }),
        },
        // One connection per request: joins are rare, and nothing stays open at shutdown.
        agent: false,
        signal,
        ...(route.tls ?? {}),
      });
      request.on('error', (error: Error & { code?: unknown }) => {
        if (signal.aborted) unreachable(`no answer within ${route.timeoutMs} ms`);
        else unreachable(typeof error.code === 'string' ? error.code : error.message);
      });
      request.on('response', (response: IncomingMessage) => {
        const chunks: Buffer[] = [];
        let size = 0;
        response.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_ANSWER_BYTES) {
            request.destroy();
            reject(new Error(`join server ${route.name} answered over ${MAX_ANSWER_BYTES} bytes`));
            return;
          }
          chunks.push(chunk);
        });
        response.on('error', () => undefined); // the request's error handler reports it
        response.on('end', () => {
          if (size > MAX_ANSWER_BYTES) return;
          const answer = Buffer.concat(chunks);
          const status = response.statusCode ?? 0;
          if (status === 401 || status === 403) {
            const said = describedResult(answer);
            reject(
              new JoinServerUnauthorizedError(
                `join server ${route.name} refused the network's credentials (HTTP ${status}${said === undefined ? '' : `, ${said}`})`,
              ),
            );
            return;
          }
          if (status !== 200) {
            const said = describedResult(answer);
            reject(
              new Error(
                `join server ${route.name} answered HTTP ${status}${said === undefined ? '' : ` (${said})`}`,
              ),
            );
            return;
          }
          try {
            resolve(JSON.parse(answer.toString('utf8')) as unknown);
          } catch {
            reject(new Error(`join server ${route.name} answered something that is not JSON`));
          }
        });
      });
      request.end(body);
    });
}

/** Counters per join server name (the metrics' `kind` label). */
export interface JoinServerCounters {
  /** JoinReq and RejoinReq sent. */
  joinRequests: Record<string, number>;
  /** No usable answer: unreachable, timed out, not HTTP 200, not a JoinAns. */
  joinRequestsUnanswered: Record<string, number>;
  /** HTTP 401 or 403: the join server refused the network's token or certificate. */
  joinRequestsUnauthorized: Record<string, number>;
  joinsAccepted: Record<string, number>;
  /** The join server answered with a failure (MIC, unknown device, replay...). */
  joinsRefused: Record<string, number>;
}

export function newJoinServerCounters(): JoinServerCounters {
  return {
    joinRequests: {},
    joinRequestsUnanswered: {},
    joinRequestsUnauthorized: {},
    joinsAccepted: {},
    joinsRefused: {},
  };
}

/**
 * The network's configured join servers (issue 5): for a JoinEUI in the table, a JoinServer
 * that sends Backend Interfaces JoinReq (and RejoinReq) over HTTP to that server, counted per
 * server; a failure to get an answer is logged (warn) with the server's name and the reason.
 */
export class JoinServerDirectory {
  readonly #table: JoinEuiTable<{ route: JoinServerRoute; joinServer: JoinServer }>;
  readonly #counters = newJoinServerCounters();

  constructor(options: {
    routes: JoinEuiTable<JoinServerRoute>;
    /** The device's MAC version and JoinEUI as the network knows them. */
    device: (devEui: string) => Promise<{ macVersion: MacVersion; joinEui: string } | undefined>;
    logger: Logger;
    /** For tests: how a JoinReq is sent (default HTTP). */
    sender?: (route: JoinServerRoute) => SendJoinReq;
  }) {
    const { logger } = options;
    const counters = this.#counters;
    const makeSender = options.sender ?? httpJoinReqSender;
    this.#table = options.routes.map((route) => {
      for (const counter of Object.values(counters) as Record<string, number>[]) {
        counter[route.name] = 0;
      }
      const send = makeSender(route);
      // One client per request, so that its send knows whether this request went unanswered.
      const clientFor = (unanswered: { value: boolean }) =>
        new BackendJoinServerClient({
          send: async (message) => {
            try {
              const answer = await send(message);
              // What the client reads next: invalid is unanswered.
              decodeValue(answer, ['JoinAns', 'RejoinAns']);
              return answer;
            } catch (error) {
              unanswered.value = true;
              const refused = error instanceof JoinServerUnauthorizedError;
              if (refused) counters.joinRequestsUnauthorized[route.name]!++;
              else counters.joinRequestsUnanswered[route.name]!++;
              logger.warn(
                {
                  joinServer: route.name,
                  devEui: (message as { DevEUI?: unknown }).DevEUI,
                  messageType: (message as { MessageType?: unknown }).MessageType,
                  error: (error as Error).message,
                },
                refused
                  ? "join server refused the network's credentials"
                  : 'join server did not answer the JoinReq',
              );
              throw error;
            }
          },
          networkKeks: (label) => (label === route.kekLabel ? route.kek : undefined),
          device: options.device,
          rejoins: true,
        });
      const counted = async (
        answering: (unanswered: { value: boolean }) => Promise<JoinAnswer>,
      ) => {
        counters.joinRequests[route.name]!++;
        const unanswered = { value: false };
        const answer = await answering(unanswered);
        if (answer.result === 'Success') counters.joinsAccepted[route.name]!++;
        else if (!unanswered.value) counters.joinsRefused[route.name]!++;
        return answer;
      };
      const joinServer: JoinServer = {
        handleJoinRequest: (request: JoinRequestMessage) =>
          counted((unanswered) => clientFor(unanswered).handleJoinRequest(request)),
        handleRejoinRequest: (request: RejoinRequestMessage) =>
          counted((unanswered) => clientFor(unanswered).handleRejoinRequest(request)),
      };
      return { route, joinServer };
    });
  }

  /** The configured join server for this JoinEUI, or undefined (the fallback applies). */
  forJoinEui(joinEui: string): { name: string; joinServer: JoinServer } | undefined {
    const found = this.#table.lookup(joinEui);
    return found === undefined
      ? undefined
      : { name: found.route.name, joinServer: found.joinServer };
  }

  counters(): JoinServerCounters {
    return {
      joinRequests: { ...this.#counters.joinRequests },
      joinRequestsUnanswered: { ...this.#counters.joinRequestsUnanswered },
      joinRequestsUnauthorized: { ...this.#counters.joinRequestsUnauthorized },
      joinsAccepted: { ...this.#counters.joinsAccepted },
      joinsRefused: { ...this.#counters.joinsRefused },
    };
  }
}
