import { readFile, stat } from 'node:fs/promises';
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

/**
 * One join server of the `joinServers` setting: the JoinEUIs it serves (a prefix or a range),
 * where it answers Backend Interfaces JoinReq over HTTP, and the KEK the network shares with it
 * (the network session keys come back wrapped under it; read from a file, never the config).
 */
export type JoinServerSetting = JoinEuiSelector & {
  url: string;
  kekLabel: string;
  kekFile: string;
  /** Shown in logs and metrics; default: the URL's host. */
  name?: string;
  /** How long to wait for the JoinAns (default 3000 ms: the JoinAccept must make RX1/RX2). */
  timeoutMs?: number;
};

/** A JoinServerSetting whose KEK was read. */
export interface JoinServerRoute {
  name: string;
  url: string;
  kekLabel: string;
  kek: Uint8Array;
  timeoutMs: number;
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
]);
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
  const text = (key: string): string => {
    const field = fields[key];
    if (typeof field !== 'string' || field === '') {
      throw new JoinEuiTableError(`${where}: ${key} must be a non-empty string`);
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
  };
}

/**
 * Reads each join server's KEK (16, 24 or 32 bytes as hex: RFC 3394 takes AES-128/192/256
 * keys). A KEK file readable by other users is named in a warning.
 */
export async function loadJoinServerRoutes(
  settings: readonly JoinServerSetting[],
  logger?: Logger,
): Promise<JoinEuiTable<JoinServerRoute>> {
  const entries = [];
  // Checked again: startGalet may be given settings that no config file went through.
  for (const [index, setting] of parseJoinServerSettings(settings).entries()) {
    const where = `joinServers[${index}]`;
    let text: string;
    try {
      text = (await readFile(setting.kekFile, 'latin1')).trim();
    } catch (error) {
      throw new JoinEuiTableError(
        `${where}: cannot read kekFile ${setting.kekFile}: ${(error as Error).message}`,
      );
    }
    if (!/^(?:[0-9a-fA-F]{32}|[0-9a-fA-F]{48}|[0-9a-fA-F]{64})$/.test(text)) {
      throw new JoinEuiTableError(
        `${where}: kekFile ${setting.kekFile} must hold a KEK of 16, 24 or 32 bytes as hex`,
      );
    }
    const { mode } = await stat(setting.kekFile);
    if ((mode & 0o077) !== 0) {
      logger?.warn(
        { path: setting.kekFile, mode: `0${(mode & 0o777).toString(8)}` },
        'join server KEK file is readable by other users; chmod 600 it',
      );
    }
    entries.push({
      selector: setting,
      where,
      value: {
        name: setting.name ?? new URL(setting.url).host,
        url: setting.url,
        kekLabel: setting.kekLabel,
        kek: new Uint8Array(Buffer.from(text, 'hex')),
        timeoutMs: setting.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      },
    });
  }
  return new JoinEuiTable(entries);
}

/**
 * Backend Interfaces over HTTP, synchronous: the JoinReq JSON is POSTed to the join server's
 * URL and the HTTP 200 answer's body is the JoinAns. Anything else (no connection, no answer in
 * time, another status, an answer that is not JSON) throws, naming the server.
 */
export function httpJoinReqSender(
  route: Pick<JoinServerRoute, 'name' | 'url' | 'timeoutMs'>,
): SendJoinReq {
  return async (message) => {
    let response: Response;
    try {
      response = await fetch(route.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify(message),
        signal: AbortSignal.timeout(route.timeoutMs),
        redirect: 'error',
      });
    } catch (error) {
      const cause = (error as { cause?: { code?: unknown; message?: unknown } }).cause;
      const reason =
        (error as Error).name === 'TimeoutError'
          ? `no answer within ${route.timeoutMs} ms`
          : typeof cause?.code === 'string'
            ? cause.code
            : (error as Error).message;
      throw new Error(`join server ${route.name} (${route.url}) unreachable: ${reason}`);
    }
    const body = await response.arrayBuffer().catch(() => new ArrayBuffer(0));
    if (response.status !== 200) {
      throw new Error(`join server ${route.name} answered HTTP ${response.status}`);
    }
    if (body.byteLength > MAX_ANSWER_BYTES) {
      throw new Error(`join server ${route.name} answered ${body.byteLength} bytes: too large`);
    }
    try {
      return JSON.parse(Buffer.from(body).toString('utf8')) as unknown;
    } catch {
      throw new Error(`join server ${route.name} answered something that is not JSON`);
    }
  };
}

/** Counters per join server name (the metrics' `kind` label). */
export interface JoinServerCounters {
  joinRequests: Record<string, number>;
  /** No usable answer: unreachable, timed out, not HTTP 200, not a JoinAns. */
  joinRequestsUnanswered: Record<string, number>;
  joinsAccepted: Record<string, number>;
  /** The join server answered with a failure (MIC, unknown device, replay...). */
  joinsRefused: Record<string, number>;
}

export function newJoinServerCounters(): JoinServerCounters {
  return { joinRequests: {}, joinRequestsUnanswered: {}, joinsAccepted: {}, joinsRefused: {} };
}

/**
 * The network's configured join servers (issue 5): for a JoinEUI in the table, a JoinServer
 * that sends Backend Interfaces JoinReq over HTTP to that server, counted per server; a failure
 * to get an answer is logged (warn) with the server's name and the reason.
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
              decodeValue(answer, 'JoinAns'); // what the client reads next: invalid is unanswered
              return answer;
            } catch (error) {
              unanswered.value = true;
              counters.joinRequestsUnanswered[route.name]!++;
              logger.warn(
                {
                  joinServer: route.name,
                  devEui: (message as { DevEUI?: unknown }).DevEUI,
                  error: (error as Error).message,
                },
                'join server did not answer the JoinReq',
              );
              throw error;
            }
          },
          networkKeks: (label) => (label === route.kekLabel ? route.kek : undefined),
          device: options.device,
        });
      const joinServer: JoinServer = {
        async handleJoinRequest(request: JoinRequestMessage): Promise<JoinAnswer> {
          counters.joinRequests[route.name]!++;
          const unanswered = { value: false };
          const answer = await clientFor(unanswered).handleJoinRequest(request);
          if (answer.result === 'Success') counters.joinsAccepted[route.name]!++;
          else if (!unanswered.value) counters.joinsRefused[route.name]!++;
          return answer;
        },
        handleRejoinRequest: (request: RejoinRequestMessage) =>
          clientFor({ value: false }).handleRejoinRequest(request),
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
      joinsAccepted: { ...this.#counters.joinsAccepted },
      joinsRefused: { ...this.#counters.joinsRefused },
    };
  }
}
