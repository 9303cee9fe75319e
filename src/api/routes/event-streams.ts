import type { ServerResponse } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ApplicationServices } from '../../application/services.js';
import type { Logger } from '../../logger.js';
import type { Principal } from '../../platform/roles.js';
import type { FeedEvent } from '../../storage/index.js';
import { principalOf } from '../auth.js';
import { ApiError, badRequest, notFound } from '../errors.js';
import type { MetricSource } from '../metrics.js';
import { authorizeObject } from '../scope.js';
import type { ApiContext } from '../server.js';
import { deviceFor } from './device-access.js';

/**
 * Server-sent events: `GET /applications/{id}/events/stream` and `/devices/{devEui}/events/stream`
 * (`text/event-stream`). Each event goes out as `id`, `event` (its type) and `data` (the stored
 * JSON); a client that reconnects with `Last-Event-ID` (or `?lastEventId=`) gets what it missed
 * (up to `maxReplayEvents`), then live events. Only events up to the application services'
 * `readyUpTo()` are sent. Authorization as the device events route: another tenant's
 * application or device answers 404. An `EventStreamGate` bounds the open streams (per
 * credential and in all) and counts them for `/metrics`.
 */

export interface EventStreamLimits {
  /** Open streams per API key, user or the admin token (default 10); more: 429. */
  maxStreamsPerPrincipal: number;
  /** Open streams in all, every credential together (default 100); more: 429. */
  maxStreams: number;
  /** Events sent after a Last-Event-ID before the stream skips to live events (default 1000). */
  maxReplayEvents: number;
  /** Period of the keep-alive comment, a heartbeat that proxies see (default 15 s). */
  keepAliveMs: number;
  /** Read period when no append wakes the stream (default 2 s). */
  pollIntervalMs: number;
  /** Events read per query (default 100). */
  batchSize: number;
}

export const DEFAULT_EVENT_STREAM_LIMITS: EventStreamLimits = {
  maxStreamsPerPrincipal: 10,
  maxStreams: 100,
  maxReplayEvents: 1000,
  keepAliveMs: 15_000,
  pollIntervalMs: 2000,
  batchSize: 100,
};

// The gate travels from the application services (server/application-services.ts, which
// registers its metrics before the API exists) to these routes on the services object.
/** Which bound refused a stream (`galet_event_streams_refused_total{kind}`). */
export type EventStreamRefusal = 'per_credential' | 'total';

/** A refusal is logged at most this often per credential and bound. */
const REFUSAL_LOG_INTERVAL_MS = 60_000;

/**
 * Admits or refuses each new stream against the limits (per credential and in all), and
 * counts open streams, events sent and refusals for `/metrics`.
 */
export class EventStreamGate {
  readonly limits: EventStreamLimits;
  readonly #logger: Logger | undefined;
  readonly #now: () => number;
  readonly #openPerOwner = new Map<string, number>();
  readonly #lastRefusalLog = new Map<string, number>();
  #open = 0;
  readonly #counters = {
    opened: 0,
    eventsSent: 0,
    replaysTruncated: 0,
    refused: { per_credential: 0, total: 0 } as Record<EventStreamRefusal, number>,
  };

  constructor(
    options: { limits?: Partial<EventStreamLimits>; logger?: Logger; now?: () => number } = {},
  ) {
    const limits = { ...DEFAULT_EVENT_STREAM_LIMITS };
    for (const [name, value] of Object.entries(options.limits ?? {}) as [
      keyof EventStreamLimits,
      number | undefined,
    ][]) {
      if (value === undefined) continue;
      const least = name === 'maxReplayEvents' ? 0 : 1;
      if (!Number.isSafeInteger(value) || value < least) {
        throw new RangeError(`event streams: ${name} must be an integer of at least ${least}`);
      }
      limits[name] = value;
    }
    this.limits = limits;
    this.#logger = options.logger;
    this.#now = options.now ?? Date.now;
  }

  /** Open streams now. */
  get open(): number {
    return this.#open;
  }

  /** Takes a place for a new stream of `owner`, or throws the API's 429 (counted, logged). */
  admit(owner: string): void {
    const ownerCount = this.#openPerOwner.get(owner) ?? 0;
    if (ownerCount >= this.limits.maxStreamsPerPrincipal) {
      this.#refuse(
        owner,
        'per_credential',
        `at most ${this.limits.maxStreamsPerPrincipal} event streams may be open at once per credential`,
      );
    }
    if (this.#open >= this.limits.maxStreams) {
      this.#refuse(
        owner,
        'total',
        `the server has ${this.limits.maxStreams} event streams open, its limit: try again later`,
      );
    }
    this.#openPerOwner.set(owner, ownerCount + 1);
    this.#open += 1;
    this.#counters.opened += 1;
  }

  /** Gives back the place of an ended stream. */
  release(owner: string): void {
    const left = (this.#openPerOwner.get(owner) ?? 1) - 1;
    if (left <= 0) this.#openPerOwner.delete(owner);
    else this.#openPerOwner.set(owner, left);
    this.#open = Math.max(0, this.#open - 1);
  }

  sent(events: number): void {
    this.#counters.eventsSent += events;
  }

  replayTruncated(): void {
    this.#counters.replaysTruncated += 1;
  }

  readonly metricSource: MetricSource = () => ({
    opened: this.#counters.opened,
    eventsSent: this.#counters.eventsSent,
    replaysTruncated: this.#counters.replaysTruncated,
    refused: { ...this.#counters.refused },
  });

  readonly gauges: Record<string, { help: string; read: () => number }> = {
    event_streams_open: {
      help: 'server-sent event streams open now',
      read: () => this.#open,
    },
  };

  #refuse(owner: string, kind: EventStreamRefusal, message: string): never {
    this.#counters.refused[kind] += 1;
    const key = `${kind} ${owner}`;
    const now = this.#now();
    const last = this.#lastRefusalLog.get(key);
    if (last === undefined || now - last >= REFUSAL_LOG_INTERVAL_MS) {
      this.#lastRefusalLog.set(key, now);
      // The credential's id only (an API key's id, a user's id), never a token.
      this.#logger?.warn(
        { credential: owner, limit: kind, open: this.#open },
        `event stream refused: ${message}`,
      );
      if (this.#lastRefusalLog.size > 10_000) this.#lastRefusalLog.clear();
    }
    const max = kind === 'total' ? this.limits.maxStreams : this.limits.maxStreamsPerPrincipal;
    throw new ApiError(429, 'TOO_MANY_STREAMS', message, { limit: kind, max });
  }
}

/** Appends wake every open stream; one stream reads at most this often. */
const MIN_READ_INTERVAL_MS = 50;

const LAST_EVENT_ID = /^\d{1,15}$/;

const streamQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: { lastEventId: { type: 'string', pattern: '^[0-9]{1,15}$' } },
} as const;

const STREAM_DESCRIPTION =
  'A text/event-stream: `id: <event id>`, `event: <type>`, `data: <event JSON>` per event, and ' +
  'keep-alive comments. Resumable with the Last-Event-ID header or ?lastEventId= (docs/integrations.md).';

/**
 * Registers the two stream routes; nothing without application services (network role alone).
 * The bounds and counters are the services' `eventStreams` gate, else a gate of `limits`.
 */
export function registerEventStreamRoutes(
  api: FastifyInstance,
  context: ApiContext,
  application: ApplicationServices | undefined,
  limits: Partial<EventStreamLimits> = {},
): void {
  if (application === undefined) return;
  const { storage } = context;
  const gate = application.eventStreams ?? new EventStreamGate({ limits });
  const open = new Set<EventStream>();

  // The HTTP server waits for open responses before it closes: end every stream first.
  api.addHook('preClose', async () => {
    for (const stream of open) stream.end();
  });

  const serve = async (
    request: FastifyRequest<{ Querystring: { lastEventId?: string } }>,
    reply: FastifyReply,
    filter: { applicationId: string } | { devEui: string },
  ): Promise<FastifyReply> => {
    const requested = lastEventIdOf(request);
    const owner = streamOwner(principalOf(request));
    gate.admit(owner);
    let stream: EventStream;
    try {
      const lastId = await storage.events.lastId();
      const position = requested ?? Math.min(lastId, application.readyUpTo());
      reply.hijack();
      stream = new EventStream(reply.raw, {
        read: (afterId, limit) => storage.events.listAfter(afterId, { limit, ...filter }),
        readyUpTo: () => application.readyUpTo(),
        onEventsReady: (listener) => application.onEventsReady(listener),
        position,
        replayUntil: requested === undefined ? position : lastId,
        limits: gate.limits,
        gate,
      });
    } catch (error) {
      gate.release(owner);
      throw error;
    }
    open.add(stream);
    reply.raw.once('close', () => stream.end());
    stream.run().finally(() => {
      open.delete(stream);
      gate.release(owner);
    });
    return reply;
  };

  api.get<{ Params: { id: string }; Querystring: { lastEventId?: string } }>(
    '/applications/:id/events/stream',
    {
      schema: {
        summary: "Stream an application's events (server-sent events)",
        description: STREAM_DESCRIPTION,
        querystring: streamQuerySchema,
      },
    },
    async (request, reply) => {
      const application = await storage.applications.get(request.params.id);
      if (application === undefined) throw notFound(`application ${request.params.id}`);
      authorizeObject(
        request,
        'events:read',
        { tenantId: application.tenantId, applicationId: application.id },
        `application ${request.params.id}`,
      );
      return serve(request, reply, { applicationId: application.id });
    },
  );

  api.get<{ Params: { devEui: string }; Querystring: { lastEventId?: string } }>(
    '/devices/:devEui/events/stream',
    {
      schema: {
        summary: "Stream a device's events (server-sent events)",
        description: STREAM_DESCRIPTION,
        querystring: streamQuerySchema,
      },
    },
    async (request, reply) => {
      const device = await deviceFor(storage, request, request.params.devEui, 'events:read');
      return serve(request, reply, { devEui: device.devEui });
    },
  );
}

/** `Last-Event-ID` (header, as EventSource sends it) or `?lastEventId=`; undefined: live only. */
function lastEventIdOf(
  request: FastifyRequest<{ Querystring: { lastEventId?: string } }>,
): number | undefined {
  const header = request.headers['last-event-id'];
  const text = typeof header === 'string' && header !== '' ? header : request.query.lastEventId;
  if (text === undefined) return undefined;
  if (!LAST_EVENT_ID.test(text)) {
    throw badRequest('Last-Event-ID must be an event id (digits only)');
  }
  return Number(text);
}

function streamOwner(principal: Principal): string {
  switch (principal.kind) {
    case 'admin-token':
      return 'admin-token';
    case 'api-key':
      return `key:${principal.keyId}`;
    case 'user':
      return `user:${principal.userId}`;
  }
}

interface EventStreamSource {
  read(afterId: number, limit: number): Promise<FeedEvent[]>;
  readyUpTo(): number;
  onEventsReady(listener: () => void): () => void;
  position: number;
  /**
   * The last id when the stream opened: events up to it are a replay (counted against
   * `maxReplayEvents`), later ones are live.
   */
  replayUntil: number;
  limits: EventStreamLimits;
  /** Counts what the stream sends. */
  gate: Pick<EventStreamGate, 'sent' | 'replayTruncated'>;
}

/** One open stream: reads after its in-memory position and writes SSE frames until it ends. */
class EventStream {
  readonly #raw: ServerResponse;
  readonly #source: EventStreamSource;
  #position: number;
  #replayed = 0;
  #ended = false;
  #wake: (() => void) | undefined;
  #woken = false;

  constructor(raw: ServerResponse, source: EventStreamSource) {
    this.#raw = raw;
    this.#source = source;
    this.#position = source.position;
  }

  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#wake?.();
    if (!this.#raw.writableEnded) this.#raw.end();
  }

  async run(): Promise<void> {
    const { limits } = this.#source;
    this.#raw.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    this.#raw.write(': galet event stream\n\n');
    // A heartbeat for proxies and clients; not needed while a slow client still has data to read.
    const keepAlive = setInterval(() => {
      if (!this.#raw.writableNeedDrain) void this.#write(': keep-alive\n\n');
    }, limits.keepAliveMs);
    const unsubscribe = this.#source.onEventsReady(() => {
      this.#woken = true;
      this.#wake?.();
    });
    try {
      while (!this.#ended) {
        const read = await this.#step();
        if (read === limits.batchSize) continue;
        await this.#sleep(limits.pollIntervalMs);
        if (!this.#ended) await delay(MIN_READ_INTERVAL_MS);
      }
    } catch {
      // The database went away (shutdown) or the socket failed: the client reconnects.
    } finally {
      clearInterval(keepAlive);
      unsubscribe();
      this.end();
    }
  }

  /** Sends the next events; returns how many were read. */
  async #step(): Promise<number> {
    const { limits } = this.#source;
    const readyUpTo = this.#source.readyUpTo();
    if (readyUpTo <= this.#position) return 0;
    const events = await this.#source.read(this.#position, limits.batchSize);
    for (const event of events) {
      if (event.id > readyUpTo || this.#ended) return 0;
      const replay = event.id <= this.#source.replayUntil;
      if (replay && this.#replayed >= limits.maxReplayEvents) {
        await this.#skipToLive();
        return 0;
      }
      const body = JSON.stringify(event.body);
      // JSON text holds no line break; a type could, and would break the framing.
      const type = event.type.replace(/[\r\n]/g, '');
      if (await this.#write(`id: ${event.id}\nevent: ${type}\ndata: ${body}\n\n`)) {
        this.#source.gate.sent(1);
      }
      this.#position = event.id;
      if (replay) this.#replayed += 1;
    }
    return events.length;
  }

  /** The backlog is over the replay limit: say so, with an id to resume from, and go live. */
  async #skipToLive(): Promise<void> {
    const resumeAt = this.#source.replayUntil;
    const notice = JSON.stringify({
      reason: `more than ${this.#source.limits.maxReplayEvents} events to replay`,
      skippedAfterId: this.#position,
      resumedAtId: resumeAt,
    });
    await this.#write(`id: ${resumeAt}\nevent: replay-truncated\ndata: ${notice}\n\n`);
    this.#source.gate.replayTruncated();
    this.#position = Math.max(this.#position, resumeAt);
  }

  /** Writes, waiting for a slow client to drain; false when the stream had ended. */
  async #write(text: string): Promise<boolean> {
    if (this.#ended || this.#raw.writableEnded) return false;
    if (this.#raw.write(text)) return true;
    await new Promise<void>((resolve) => {
      const done = () => {
        this.#raw.off('drain', done);
        this.#raw.off('close', done);
        resolve();
      };
      this.#raw.once('drain', done);
      this.#raw.once('close', done);
    });
    return true;
  }

  #sleep(ms: number): Promise<void> {
    if (this.#woken || this.#ended) {
      this.#woken = false;
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      const self = this;
      function done(): void {
        clearTimeout(timer);
        self.#wake = undefined;
        self.#woken = false;
        resolve();
      }
      this.#wake = done;
    });
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
