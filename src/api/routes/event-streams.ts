import type { ServerResponse } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ApplicationServices } from '../../application/services.js';
import type { Principal } from '../../platform/roles.js';
import type { FeedEvent } from '../../storage/index.js';
import { principalOf } from '../auth.js';
import { ApiError, badRequest, notFound } from '../errors.js';
import { authorizeObject } from '../scope.js';
import type { ApiContext } from '../server.js';
import { deviceFor } from './device-access.js';

/**
 * Server-sent events: `GET /applications/{id}/events/stream` and `/devices/{devEui}/events/stream`
 * (`text/event-stream`). Each event goes out as `id`, `event` (its type) and `data` (the stored
 * JSON); a client that reconnects with `Last-Event-ID` (or `?lastEventId=`) gets what it missed
 * (up to `maxReplayEvents`), then live events. Only events up to the application services'
 * `readyUpTo()` are sent. Authorization as the device events route: another tenant's
 * application or device answers 404.
 */

export interface EventStreamLimits {
  /** Open streams per API key, user or the admin token (default 10); more: 429. */
  maxStreamsPerPrincipal: number;
  /** Events sent after a Last-Event-ID before the stream skips to live events (default 1000). */
  maxReplayEvents: number;
  /** Period of the keep-alive comment (default 15 s). */
  keepAliveMs: number;
  /** Read period when no append wakes the stream (default 2 s). */
  pollIntervalMs: number;
  /** Events read per query (default 100). */
  batchSize: number;
}

export const DEFAULT_EVENT_STREAM_LIMITS: EventStreamLimits = {
  maxStreamsPerPrincipal: 10,
  maxReplayEvents: 1000,
  keepAliveMs: 15_000,
  pollIntervalMs: 2000,
  batchSize: 100,
};

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

/** Registers the two stream routes; nothing without application services (network role alone). */
export function registerEventStreamRoutes(
  api: FastifyInstance,
  context: ApiContext,
  application: ApplicationServices | undefined,
  limits: EventStreamLimits = DEFAULT_EVENT_STREAM_LIMITS,
): void {
  if (application === undefined) return;
  const { storage } = context;
  const open = new Set<EventStream>();
  const openPerPrincipal = new Map<string, number>();

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
    const count = openPerPrincipal.get(owner) ?? 0;
    if (count >= limits.maxStreamsPerPrincipal) {
      throw new ApiError(
        429,
        'TOO_MANY_STREAMS',
        `at most ${limits.maxStreamsPerPrincipal} event streams may be open at once per credential`,
      );
    }
    const lastId = await storage.events.lastId();
    const position = requested ?? Math.min(lastId, application.readyUpTo());
    openPerPrincipal.set(owner, count + 1);
    reply.hijack();
    const stream = new EventStream(reply.raw, {
      read: (afterId, limit) => storage.events.listAfter(afterId, { limit, ...filter }),
      readyUpTo: () => application.readyUpTo(),
      onEventsReady: (listener) => application.onEventsReady(listener),
      position,
      replayUntil: requested === undefined ? position : lastId,
      limits,
    });
    open.add(stream);
    reply.raw.once('close', () => stream.end());
    stream.run().finally(() => {
      open.delete(stream);
      const left = (openPerPrincipal.get(owner) ?? 1) - 1;
      if (left === 0) openPerPrincipal.delete(owner);
      else openPerPrincipal.set(owner, left);
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
    const keepAlive = setInterval(() => this.#write(': keep-alive\n\n'), limits.keepAliveMs);
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
      await this.#write(`id: ${event.id}\nevent: ${type}\ndata: ${body}\n\n`);
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
    this.#position = Math.max(this.#position, resumeAt);
  }

  /** Writes, waiting for a slow client to drain. */
  async #write(text: string): Promise<void> {
    if (this.#ended || this.#raw.writableEnded) return;
    if (this.#raw.write(text)) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        this.#raw.off('drain', done);
        this.#raw.off('close', done);
        resolve();
      };
      this.#raw.once('drain', done);
      this.#raw.once('close', done);
    });
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
