import { randomUUID } from 'node:crypto';
import { type ExpressionBuilder, sql } from 'kysely';
import type { GaletDatabase } from './database.js';
import { StorageError } from './errors.js';
import type {
  IsoTimestamp,
  Schema,
  WebhookDeliveriesTable,
  WebhookDeliveryStatus,
} from './schema.js';
import type { SecretBox } from './secret-box.js';
import {
  assertInteger,
  clock,
  fromDbBoolean,
  fromDbBytes,
  MAX_LIST_LIMIT,
  type RepositoryOptions,
  toDbBoolean,
  toDbBytes,
  toIsoTimestamp,
} from './values.js';

export type { WebhookDeliveryStatus } from './schema.js';

export const WEBHOOK_DELIVERY_STATUSES: readonly WebhookDeliveryStatus[] = [
  'pending',
  'delivered',
  'dead',
];

/** A webhook as the API shows it: never its secret nor its header values. */
export interface Webhook {
  id: string;
  applicationId: string;
  url: string;
  /** Event types delivered (`up`, `join`, ...); empty: every type. */
  eventTypes: string[];
  /** Names of the extra headers sent with each request. */
  headerNames: string[];
  enabled: boolean;
  /** The last failed attempt of any delivery (kept after later successes). */
  lastError: { message: string; httpStatus: number | null; at: IsoTimestamp } | null;
  createdAt: IsoTimestamp;
  updatedAt: IsoTimestamp;
}

export interface NewWebhook {
  applicationId: string;
  url: string;
  /** The HMAC-SHA256 key (its UTF-8 bytes). */
  secret: string;
  headers?: Record<string, string>;
  eventTypes?: string[];
  enabled?: boolean;
}

export interface WebhookChanges {
  url?: string;
  secret?: string;
  /** Replaces every extra header. */
  headers?: Record<string, string>;
  eventTypes?: string[];
  enabled?: boolean;
}

/** What the sender needs to sign and send: opened from the sealed columns. */
export interface WebhookCredentials {
  secret: string;
  headers: Record<string, string>;
}

export interface WebhookDelivery {
  webhookId: string;
  eventId: number;
  devEui: string;
  eventType: string;
  status: WebhookDeliveryStatus;
  attempts: number;
  /** When a pending delivery is tried next; null: it waits for its device's earlier event. */
  nextAttemptAt: IsoTimestamp | null;
  queuedAt: IsoTimestamp;
  lastError: string | null;
  lastHttpStatus: number | null;
  createdAt: IsoTimestamp;
  deliveredAt: IsoTimestamp | null;
  deadAt: IsoTimestamp | null;
}

export interface NewWebhookDelivery {
  webhookId: string;
  eventId: number;
  devEui: string;
  eventType: string;
}

/** A delivery whose turn has come: the head of its device's queue, due now. */
export interface DueWebhookDelivery {
  webhookId: string;
  eventId: number;
  devEui: string;
  eventType: string;
  attempts: number;
  nextAttemptAt: IsoTimestamp;
  queuedAt: IsoTimestamp;
  url: string;
  /** Changes when the webhook does: the sender's cache key for its credentials. */
  webhookUpdatedAt: IsoTimestamp;
  /** The event's stored JSON text; null when retention purged the event. */
  eventBody: string | null;
}

export interface DeliveryKey {
  webhookId: string;
  eventId: number;
}

export interface DeliveryOutcome {
  error?: string | null;
  httpStatus?: number | null;
}

/** What ending a delivery writes besides its attempts: its final status, when, and why. */
type FinishedDeliveryColumns =
  | { status: 'delivered'; last_http_status: number; delivered_at: IsoTimestamp }
  | { status: 'dead'; last_error: string; last_http_status: number | null; dead_at: IsoTimestamp };

export interface ReplayRequest {
  fromEventId?: number;
  toEventId?: number;
  /** 'dead': re-queue the dead-lettered deliveries only (in the range, if one is given). */
  status?: 'dead';
}

/** At most this many events per replay call; the answer says where to continue. */
export const MAX_REPLAY_EVENTS = 10_000;
const MAX_URL_LENGTH = 2000;
const MAX_ERROR_LENGTH = 500;
/** Rows per INSERT: 9 parameters each stays far below both engines' limits. */
const INSERT_BATCH_ROWS = 500;
/** Headers Galet sets itself (with every `x-galet-*`): configured headers may not replace them. */
const RESERVED_HEADERS = new Set([
  'content-type',
  'content-length',
  'content-encoding',
  'host',
  'connection',
  'keep-alive',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'expect',
]);
/**
 * The `next_attempt_at` of a pending delivery behind its device's head: a valid time that never
 * comes, so that due scans (`next_attempt_at <= now`) skip it through the index.
 */
const BLOCKED = '9999-12-31T23:59:59.999Z';
const EVENT_TYPE = /^[a-z][a-z0-9_-]{0,31}$/;

/**
 * The delivery `d` is the head of its (webhook, device): no pending delivery of that pair comes
 * before it (a probe on the pending index).
 */
function isHead({
  not,
  exists,
  selectFrom,
}: ExpressionBuilder<Schema & { d: WebhookDeliveriesTable }, 'd'>) {
  return not(
    exists(
      selectFrom('webhook_deliveries as p')
        .select('p.event_id')
        .whereRef('p.webhook_id', '=', 'd.webhook_id')
        .whereRef('p.dev_eui', '=', 'd.dev_eui')
        // A literal, not a parameter: SQLite uses a partial index only for a matching constant.
        .where('p.status', '=', sql.lit('pending'))
        .whereRef('p.event_id', '<', 'd.event_id'),
    ),
  );
}

function secretAssociatedData(id: string): string {
  return `webhook:${id}:secret`;
}
function headersAssociatedData(id: string): string {
  return `webhook:${id}:headers`;
}

/**
 * Webhooks per application and their durable outbox (`webhook_deliveries`, one row per webhook
 * and event). Secrets and extra headers are sealed under the master key.
 *
 * Ordered per device: only the oldest pending delivery of a (webhook, device), its head, has a
 * real `next_attempt_at`; the ones behind it wait with `BLOCKED` (a time that never comes), so
 * the due scan visits heads only, however long the backlog. When a head is delivered or dead,
 * the next one is promoted by a statement of its own after the change committed: of two
 * concurrent changes of one device (a queueing and a finished head), the later promotion sees
 * both. A crash between the two leaves a device without a head; `unblockHeads` (run by the sender
 * at start and now and then) repairs that. The sender claims a head by moving `next_attempt_at`
 * to the end of a lease, so after a crash it is due again once the lease ran out.
 */
export class WebhookRepository {
  readonly #db: GaletDatabase['db'];
  readonly #dialect: GaletDatabase['dialect'];
  readonly #secrets: SecretBox;
  readonly #now: () => IsoTimestamp;

  constructor(database: GaletDatabase, secrets: SecretBox, options?: RepositoryOptions) {
    this.#db = database.db;
    this.#dialect = database.dialect;
    this.#secrets = secrets;
    this.#now = clock(options);
  }

  async create(input: NewWebhook): Promise<Webhook> {
    const id = randomUUID();
    const now = this.#now();
    const headers = checkedHeaders(input.headers ?? {});
    const row = {
      id,
      application_id: String(input.applicationId),
      url: checkedUrl(input.url),
      secret_enc: this.#sealSecret(id, input.secret),
      headers_enc: this.#sealHeaders(id, headers),
      header_names: JSON.stringify(Object.keys(headers).sort()),
      event_types: JSON.stringify(checkedEventTypes(input.eventTypes ?? [])),
      enabled: toDbBoolean(this.#dialect, input.enabled ?? true),
      after_event_id: 0,
      last_error: null,
      last_error_status: null,
      last_error_at: null,
      created_at: now,
      updated_at: now,
    };
    const application = await this.#db
      .selectFrom('applications')
      .select('id')
      .where('id', '=', row.application_id)
      .executeTakeFirst();
    if (application === undefined) {
      throw new StorageError('NOT_FOUND', `application ${row.application_id} not found`);
    }
    const last = await this.#db
      .selectFrom('events')
      .select((eb) => eb.fn.max('id').as('id'))
      .executeTakeFirst();
    row.after_event_id = Number(last?.id ?? 0);
    await this.#db.insertInto('webhooks').values(row).execute();
    return toWebhook(row);
  }

  async get(id: string): Promise<Webhook | undefined> {
    const row = await this.#db
      .selectFrom('webhooks')
      .selectAll()
      .where('id', '=', String(id))
      .executeTakeFirst();
    return row === undefined ? undefined : toWebhook(row);
  }

  /** An application's webhooks, oldest first. */
  async listForApplication(applicationId: string): Promise<Webhook[]> {
    const rows = await this.#db
      .selectFrom('webhooks')
      .selectAll()
      .where('application_id', '=', String(applicationId))
      .orderBy('created_at')
      .orderBy('id')
      .execute();
    return rows.map(toWebhook);
  }

  /**
   * The enabled webhooks of these applications, with their event filters and the last event id
   * before each was created (the dispatcher's read).
   */
  /** Whether any application has an enabled webhook (one indexed probe). */
  async anyEnabled(): Promise<boolean> {
    const row = await this.#db
      .selectFrom('webhooks')
      .select('id')
      .where('enabled', '=', toDbBoolean(this.#dialect, true))
      .limit(1)
      .executeTakeFirst();
    return row !== undefined;
  }

  async enabledFor(
    applicationIds: readonly string[],
  ): Promise<
    Array<{ id: string; applicationId: string; eventTypes: string[]; afterEventId: number }>
  > {
    if (applicationIds.length === 0) return [];
    const rows = await this.#db
      .selectFrom('webhooks')
      .select(['id', 'application_id', 'event_types', 'after_event_id'])
      .where('application_id', 'in', [...new Set(applicationIds)])
      .where('enabled', '=', toDbBoolean(this.#dialect, true))
      .execute();
    return rows.map((row) => ({
      id: row.id,
      applicationId: row.application_id,
      eventTypes: JSON.parse(row.event_types) as string[],
      afterEventId: Number(row.after_event_id),
    }));
  }

  async update(id: string, changes: WebhookChanges): Promise<Webhook | undefined> {
    const set: Record<string, unknown> = { updated_at: this.#now() };
    if (changes.url !== undefined) set['url'] = checkedUrl(changes.url);
    if (changes.secret !== undefined) set['secret_enc'] = this.#sealSecret(id, changes.secret);
    if (changes.headers !== undefined) {
      const headers = checkedHeaders(changes.headers);
      set['headers_enc'] = this.#sealHeaders(id, headers);
      set['header_names'] = JSON.stringify(Object.keys(headers).sort());
    }
    if (changes.eventTypes !== undefined) {
      set['event_types'] = JSON.stringify(checkedEventTypes(changes.eventTypes));
    }
    if (changes.enabled !== undefined) {
      set['enabled'] = toDbBoolean(this.#dialect, changes.enabled === true);
    }
    const row = await this.#db
      .updateTable('webhooks')
      .set(set)
      .where('id', '=', String(id))
      .returningAll()
      .executeTakeFirst();
    return row === undefined ? undefined : toWebhook(row);
  }

  /** Deletes the webhook and its deliveries. */
  async delete(id: string): Promise<boolean> {
    const result = await this.#db.deleteFrom('webhooks').where('id', '=', String(id)).execute();
    return Number(result[0]?.numDeletedRows ?? 0) > 0;
  }

  /** The secret and extra headers, opened (the sender's read; never for the API). */
  async credentials(id: string): Promise<WebhookCredentials | undefined> {
    const row = await this.#db
      .selectFrom('webhooks')
      .select(['secret_enc', 'headers_enc'])
      .where('id', '=', String(id))
      .executeTakeFirst();
    if (row === undefined) return undefined;
    const secret = Buffer.from(
      this.#secrets.open(fromDbBytes(row.secret_enc), secretAssociatedData(id)),
    ).toString('utf8');
    const headers =
      row.headers_enc === null
        ? {}
        : (JSON.parse(
            Buffer.from(
              this.#secrets.open(fromDbBytes(row.headers_enc), headersAssociatedData(id)),
            ).toString('utf8'),
          ) as Record<string, string>);
    return { secret, headers };
  }

  /** Notes a failed attempt on the webhook, where the API shows it. */
  async recordError(id: string, outcome: DeliveryOutcome): Promise<void> {
    await this.#db
      .updateTable('webhooks')
      .set({
        last_error: truncated(outcome.error ?? 'failed'),
        last_error_status: outcome.httpStatus ?? null,
        last_error_at: this.#now(),
      })
      .where('id', '=', String(id))
      .execute();
  }

  /**
   * Queues deliveries in one transaction; a (webhook, event) already queued is left as it is,
   * so a batch handed out again adds nothing. Returns how many rows were added.
   */
  async enqueue(deliveries: readonly NewWebhookDelivery[]): Promise<number> {
    if (deliveries.length === 0) return 0;
    const now = this.#now();
    const rows = deliveries.map((delivery) => ({
      webhook_id: delivery.webhookId,
      event_id: delivery.eventId,
      dev_eui: delivery.devEui,
      event_type: delivery.eventType,
      status: 'pending' as const,
      attempts: 0,
      next_attempt_at: BLOCKED,
      queued_at: now,
      created_at: now,
    }));
    const added = await this.#db.transaction().execute(async (trx) => {
      let added = 0;
      for (let start = 0; start < rows.length; start += INSERT_BATCH_ROWS) {
        const result = await trx
          .insertInto('webhook_deliveries')
          .values(rows.slice(start, start + INSERT_BATCH_ROWS))
          .onConflict((oc) => oc.columns(['webhook_id', 'event_id']).doNothing())
          .executeTakeFirst();
        added += Number(result.numInsertedOrUpdatedRows ?? 0);
      }
      return added;
    });
    await this.#promoteHeads(
      deliveries.map((delivery) => ({ webhookId: delivery.webhookId, devEui: delivery.devEui })),
    );
    return added;
  }

  /**
   * Up to `limit` deliveries due now, each the oldest pending one of its (webhook, device), of
   * enabled webhooks, the longest waiting first. Rows behind a head are skipped by the NOT
   * EXISTS probe on the pending index; the scan is over the due pending rows.
   */
  async due(limit: number): Promise<DueWebhookDelivery[]> {
    assertInteger(limit, 1, MAX_LIST_LIMIT, 'limit');
    const now = this.#now();
    const rows = await this.#db
      .selectFrom('webhook_deliveries as d')
      .innerJoin('webhooks as w', 'w.id', 'd.webhook_id')
      .leftJoin('events as e', 'e.id', 'd.event_id')
      .select([
        'd.webhook_id',
        'd.event_id',
        'd.dev_eui',
        'd.event_type',
        'd.attempts',
        'd.next_attempt_at',
        'd.queued_at',
        'w.url',
        'w.updated_at',
        'e.body',
      ])
      // A literal, not a parameter: SQLite uses a partial index only for a matching constant.
      .where('d.status', '=', sql.lit('pending'))
      .where('d.next_attempt_at', '<=', now)
      .where('w.enabled', '=', toDbBoolean(this.#dialect, true))
      .where(isHead)
      .orderBy('d.next_attempt_at')
      .orderBy('d.event_id')
      .limit(limit)
      .execute();
    return rows.map((row) => ({
      webhookId: row.webhook_id,
      eventId: Number(row.event_id),
      devEui: row.dev_eui,
      eventType: row.event_type,
      attempts: row.attempts,
      nextAttemptAt: row.next_attempt_at,
      queuedAt: row.queued_at,
      url: row.url,
      webhookUpdatedAt: row.updated_at,
      eventBody: row.body ?? null,
    }));
  }

  /**
   * Takes a due delivery for one attempt: moves its next attempt to `leaseUntil` if nobody took
   * it since it was read (its `next_attempt_at` is still `seenNextAttemptAt`). False: taken.
   */
  async claim(
    key: DeliveryKey,
    seenNextAttemptAt: IsoTimestamp,
    leaseUntil: IsoTimestamp,
  ): Promise<boolean> {
    const result = await this.#db
      .updateTable('webhook_deliveries')
      .set({ next_attempt_at: toIsoTimestamp(leaseUntil, 'leaseUntil') })
      .where('webhook_id', '=', key.webhookId)
      .where('event_id', '=', key.eventId)
      .where('status', '=', 'pending')
      .where('next_attempt_at', '=', seenNextAttemptAt)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async markDelivered(key: DeliveryKey, httpStatus: number): Promise<void> {
    await this.#finish(key, true, (now) => ({
      status: 'delivered',
      last_http_status: httpStatus,
      delivered_at: now,
    }));
  }

  /** A failed attempt; the next one at `nextAttemptAt`. */
  async markRetry(
    key: DeliveryKey,
    outcome: DeliveryOutcome,
    nextAttemptAt: IsoTimestamp,
  ): Promise<void> {
    await this.#db
      .updateTable('webhook_deliveries')
      .set((eb) => ({
        attempts: eb('attempts', '+', 1),
        last_error: truncated(outcome.error ?? 'failed'),
        last_http_status: outcome.httpStatus ?? null,
        next_attempt_at: toIsoTimestamp(nextAttemptAt, 'nextAttemptAt'),
      }))
      .where('webhook_id', '=', key.webhookId)
      .where('event_id', '=', key.eventId)
      .where('status', '=', 'pending')
      .execute();
  }

  /** A failed attempt after which the delivery is given up (dead-lettered). */
  async markDead(key: DeliveryKey, outcome: DeliveryOutcome, countAttempt = true): Promise<void> {
    await this.#finish(key, countAttempt, (now) => ({
      status: 'dead',
      last_error: truncated(outcome.error ?? 'failed'),
      last_http_status: outcome.httpStatus ?? null,
      dead_at: now,
    }));
  }

  /**
   * Ends a pending delivery with `outcome`'s columns (its status and when), then lets the next
   * delivery of its device through. Nothing happens when it is no longer pending.
   */
  async #finish(
    key: DeliveryKey,
    countAttempt: boolean,
    outcome: (now: IsoTimestamp) => FinishedDeliveryColumns,
  ): Promise<void> {
    const now = this.#now();
    const finished = await this.#db
      .updateTable('webhook_deliveries')
      .set((eb) => ({
        ...outcome(now),
        attempts: countAttempt ? eb('attempts', '+', 1) : eb.ref('attempts'),
        next_attempt_at: now,
      }))
      .where('webhook_id', '=', key.webhookId)
      .where('event_id', '=', key.eventId)
      .where('status', '=', 'pending')
      .returning('dev_eui')
      .execute();
    await this.#promoteHeads(
      finished.map((row) => ({ webhookId: key.webhookId, devEui: row.dev_eui })),
    );
  }

  /** A webhook's deliveries by event id, ascending, after `afterEventId`. */
  async listDeliveries(
    webhookId: string,
    options: { status?: WebhookDeliveryStatus; afterEventId?: number; limit?: number } = {},
  ): Promise<WebhookDelivery[]> {
    const limit = options.limit ?? 100;
    assertInteger(limit, 1, MAX_LIST_LIMIT, 'limit');
    let query = this.#db
      .selectFrom('webhook_deliveries')
      .selectAll()
      .where('webhook_id', '=', String(webhookId));
    if (options.status !== undefined) {
      if (!WEBHOOK_DELIVERY_STATUSES.includes(options.status)) {
        throw new StorageError('INVALID_INPUT', `unknown delivery status ${options.status}`);
      }
      query = query.where('status', '=', options.status);
    }
    if (options.afterEventId !== undefined) {
      assertInteger(options.afterEventId, 0, Number.MAX_SAFE_INTEGER, 'afterEventId');
      query = query.where('event_id', '>', options.afterEventId);
    }
    const rows = await query.orderBy('event_id').limit(limit).execute();
    return rows.map((row) => ({
      webhookId: row.webhook_id,
      eventId: Number(row.event_id),
      devEui: row.dev_eui,
      eventType: row.event_type,
      status: row.status,
      attempts: row.attempts,
      nextAttemptAt:
        row.status !== 'pending' || row.next_attempt_at === BLOCKED ? null : row.next_attempt_at,
      queuedAt: row.queued_at,
      lastError: row.last_error,
      lastHttpStatus: row.last_http_status,
      createdAt: row.created_at,
      deliveredAt: row.delivered_at,
      deadAt: row.dead_at,
    }));
  }

  /**
   * Queues deliveries again, as new (no attempts, the dead-letter age from now).
   * `status: 'dead'`: the webhook's dead-lettered deliveries in the range. Otherwise every event
   * of its application in the range that its filter takes (`fromEventId` required), whether it
   * was delivered, dead or never queued; pending ones are left alone. At most
   * `MAX_REPLAY_EVENTS` events per call: `nextFromEventId` says where to continue.
   */
  async replay(
    webhookId: string,
    request: ReplayRequest,
  ): Promise<{ requeued: number; nextFromEventId: number | null }> {
    const from = request.fromEventId ?? 0;
    const to = request.toEventId ?? Number.MAX_SAFE_INTEGER;
    assertInteger(from, 0, Number.MAX_SAFE_INTEGER, 'fromEventId');
    assertInteger(to, 0, Number.MAX_SAFE_INTEGER, 'toEventId');
    const webhook = await this.#db
      .selectFrom('webhooks')
      .select(['id', 'application_id', 'event_types'])
      .where('id', '=', String(webhookId))
      .executeTakeFirst();
    if (webhook === undefined)
      throw new StorageError('NOT_FOUND', `webhook ${webhookId} not found`);
    const now = this.#now();
    const requeued = {
      status: 'pending' as const,
      attempts: 0,
      next_attempt_at: BLOCKED,
      queued_at: now,
      last_error: null,
      last_http_status: null,
      delivered_at: null,
      dead_at: null,
    };
    if (request.status === 'dead') {
      const revived = await this.#db
        .updateTable('webhook_deliveries')
        .set(requeued)
        .where('webhook_id', '=', webhook.id)
        .where('status', '=', 'dead')
        .where('event_id', '>=', from)
        .where('event_id', '<=', to)
        .returning('dev_eui')
        .execute();
      await this.#promoteHeads(
        revived.map((row) => ({ webhookId: webhook.id, devEui: row.dev_eui })),
      );
      return { requeued: revived.length, nextFromEventId: null };
    }
    if (request.fromEventId === undefined) {
      throw new StorageError('INVALID_INPUT', 'a replay of events needs fromEventId');
    }
    const eventTypes = JSON.parse(webhook.event_types) as string[];
    let events = this.#db
      .selectFrom('events')
      .select(['id', 'dev_eui', 'type'])
      .where('application_id', '=', webhook.application_id)
      .where('id', '>=', from)
      .where('id', '<=', to);
    if (eventTypes.length > 0) events = events.where('type', 'in', eventTypes);
    const rows = await events
      .orderBy('id')
      .limit(MAX_REPLAY_EVENTS + 1)
      .execute();
    const taken = rows.slice(0, MAX_REPLAY_EVENTS);
    const count = await this.#db.transaction().execute(async (trx) => {
      let changed = 0;
      for (let start = 0; start < taken.length; start += INSERT_BATCH_ROWS) {
        const result = await trx
          .insertInto('webhook_deliveries')
          .values(
            taken.slice(start, start + INSERT_BATCH_ROWS).map((event) => ({
              webhook_id: webhook.id,
              event_id: event.id,
              dev_eui: event.dev_eui,
              event_type: event.type,
              created_at: now,
              ...requeued,
            })),
          )
          .onConflict((oc) =>
            oc
              .columns(['webhook_id', 'event_id'])
              .doUpdateSet(requeued)
              .where('webhook_deliveries.status', '<>', 'pending'),
          )
          .executeTakeFirst();
        changed += Number(result.numInsertedOrUpdatedRows ?? 0);
      }
      return changed;
    });
    await this.#promoteHeads(
      taken.map((event) => ({ webhookId: webhook.id, devEui: event.dev_eui })),
    );
    const next = rows[MAX_REPLAY_EVENTS];
    return { requeued: count, nextFromEventId: next === undefined ? null : Number(next.id) };
  }

  /**
   * Gives every (webhook, device) with pending deliveries its head: a repair after a crash
   * between a change and its promotion. Visits every waiting row: run it now and then, not per
   * delivery. Returns how many heads it made due.
   */
  async unblockHeads(): Promise<number> {
    const result = await this.#db
      .updateTable('webhook_deliveries as d')
      .set({ next_attempt_at: this.#now() })
      .where('d.status', '=', sql.lit('pending'))
      .where('d.next_attempt_at', '=', BLOCKED)
      .where(isHead)
      .executeTakeFirst();
    return Number(result.numUpdatedRows);
  }

  /** Makes the oldest pending delivery of each (webhook, device) due if it waits (`BLOCKED`). */
  async #promoteHeads(
    devices: ReadonlyArray<{ webhookId: string; devEui: string }>,
  ): Promise<void> {
    const seen = new Set<string>();
    for (const { webhookId, devEui } of devices) {
      const pair = `${webhookId}|${devEui}`;
      if (seen.has(pair)) continue;
      seen.add(pair);
      await this.#db
        .updateTable('webhook_deliveries as d')
        .set({ next_attempt_at: this.#now() })
        .where('d.webhook_id', '=', webhookId)
        .where('d.dev_eui', '=', devEui)
        .where('d.status', '=', sql.lit('pending'))
        .where('d.next_attempt_at', '=', BLOCKED)
        .where(isHead)
        .execute();
    }
  }

  /** How many deliveries are pending, and since when the oldest waits (queued or replayed). */
  async pendingStats(): Promise<{ pending: number; oldestQueuedAt: IsoTimestamp | null }> {
    const row = await this.#db
      .selectFrom('webhook_deliveries')
      .select((eb) => [
        eb.fn.countAll<number | string>().as('pending'),
        eb.fn.min('queued_at').as('oldest'),
      ])
      .where('status', '=', sql.lit('pending'))
      .executeTakeFirst();
    return {
      pending: Number(row?.pending ?? 0),
      oldestQueuedAt: (row?.oldest as IsoTimestamp | null | undefined) ?? null,
    };
  }

  /** Removes up to `limit` deliveries delivered before `before` (history kept for a while). */
  async purgeDelivered(before: IsoTimestamp, limit = 10_000): Promise<number> {
    assertInteger(limit, 1, 1_000_000, 'limit');
    const cutoff = toIsoTimestamp(before, 'before');
    const victims = this.#db
      .selectFrom('webhook_deliveries')
      .select(['webhook_id', 'event_id'])
      .where('status', '=', 'delivered')
      .where('delivered_at', '<', cutoff)
      .limit(limit);
    const rows = await victims.execute();
    if (rows.length === 0) return 0;
    let removed = 0;
    await this.#db.transaction().execute(async (trx) => {
      for (const row of rows) {
        const result = await trx
          .deleteFrom('webhook_deliveries')
          .where('webhook_id', '=', row.webhook_id)
          .where('event_id', '=', row.event_id)
          .where('status', '=', 'delivered')
          .executeTakeFirst();
        removed += Number(result.numDeletedRows);
      }
    });
    return removed;
  }

  #sealSecret(id: string, secret: string): Buffer {
    if (typeof secret !== 'string' || secret.length < 16 || secret.length > 200) {
      throw new StorageError('INVALID_INPUT', 'a webhook secret has 16 to 200 characters');
    }
    return toDbBytes(this.#secrets.seal(Buffer.from(secret, 'utf8'), secretAssociatedData(id)));
  }

  #sealHeaders(id: string, headers: Record<string, string>): Buffer | null {
    if (Object.keys(headers).length === 0) return null;
    return toDbBytes(
      this.#secrets.seal(Buffer.from(JSON.stringify(headers), 'utf8'), headersAssociatedData(id)),
    );
  }
}

function toWebhook(row: {
  id: string;
  application_id: string;
  url: string;
  header_names: string;
  event_types: string;
  enabled: boolean | number;
  last_error: string | null;
  last_error_status: number | null;
  last_error_at: IsoTimestamp | null;
  created_at: IsoTimestamp;
  updated_at: IsoTimestamp;
}): Webhook {
  return {
    id: row.id,
    applicationId: row.application_id,
    url: row.url,
    eventTypes: JSON.parse(row.event_types) as string[],
    headerNames: JSON.parse(row.header_names) as string[],
    enabled: fromDbBoolean(row.enabled),
    lastError:
      row.last_error === null || row.last_error_at === null
        ? null
        : { message: row.last_error, httpStatus: row.last_error_status, at: row.last_error_at },
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/** http or https, no credentials in the URL (they belong in the sealed headers). */
function checkedUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new StorageError('INVALID_INPUT', 'webhook url is not an absolute URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new StorageError(
      'INVALID_INPUT',
      `webhook url must be http or https, got ${url.protocol}`,
    );
  }
  if (url.username !== '' || url.password !== '') {
    throw new StorageError(
      'INVALID_INPUT',
      'webhook url must not hold credentials: put them in a header (headers are sealed at rest)',
    );
  }
  if (value.length > MAX_URL_LENGTH) {
    throw new StorageError(
      'INVALID_INPUT',
      `webhook url is longer than ${MAX_URL_LENGTH} characters`,
    );
  }
  return url.toString();
}

function checkedEventTypes(types: readonly string[]): string[] {
  if (!Array.isArray(types) || types.length > 32) {
    throw new StorageError('INVALID_INPUT', 'eventTypes is a list of at most 32 event types');
  }
  for (const type of types) {
    if (typeof type !== 'string' || !EVENT_TYPE.test(type)) {
      throw new StorageError(
        'INVALID_INPUT',
        `eventTypes: ${JSON.stringify(type)} is not an event type`,
      );
    }
  }
  return [...new Set(types)].sort();
}

/** Header names are lower-cased; names and values must be sendable as HTTP/1.1 fields. */
function checkedHeaders(headers: Record<string, string>): Record<string, string> {
  if (typeof headers !== 'object' || headers === null || Array.isArray(headers)) {
    throw new StorageError('INVALID_INPUT', 'headers is an object of header names to values');
  }
  const entries = Object.entries(headers);
  if (entries.length > 20) throw new StorageError('INVALID_INPUT', 'at most 20 extra headers');
  const checked: Record<string, string> = {};
  for (const [name, value] of entries) {
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$/.test(name)) {
      throw new StorageError('INVALID_INPUT', `header name ${JSON.stringify(name)} is not a token`);
    }
    if (typeof value !== 'string' || value.length > 4000 || /[^\t\x20-\x7e\x80-\xff]/.test(value)) {
      throw new StorageError('INVALID_INPUT', `header ${name}: value must be visible text`);
    }
    const lower = name.toLowerCase();
    if (RESERVED_HEADERS.has(lower) || lower.startsWith('x-galet-')) {
      throw new StorageError(
        'INVALID_INPUT',
        `header ${name} is set by Galet and cannot be configured`,
      );
    }
    checked[lower] = value;
  }
  return checked;
}

function truncated(text: string): string {
  return text.length <= MAX_ERROR_LENGTH ? text : `${text.slice(0, MAX_ERROR_LENGTH - 1)}…`;
}
