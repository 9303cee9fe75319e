import { type LinkOutboxEntry, type LinkOutboxStore, MAX_LINK_ID_LENGTH } from '../link/outbox.js';
import { MAX_TOPIC_LENGTH } from '../link/protocol.js';
import type { GaletDatabase } from './database.js';
import { StorageError } from './errors.js';
import type { IsoTimestamp } from './schema.js';
import type { SecretBox } from './secret-box.js';
import { assertInteger, clock, type RepositoryOptions } from './values.js';

const MAX_PENDING_LIMIT = 1_000_000_000;

/**
 * The provider link's durable outbox (`LinkOutboxStore` of src/link/outbox.ts): deliveries per
 * link, numbered by a per-link counter kept in `link_outbox_cursors` with the last acknowledged
 * seq. Seqs of a link are contiguous, so `last_seq - acked_seq` is the number of pending
 * deliveries without counting rows.
 */
export class LinkOutboxRepository implements LinkOutboxStore {
  readonly #db: GaletDatabase['db'];
  readonly #now: () => IsoTimestamp;

  constructor(database: GaletDatabase, _secrets: SecretBox, options?: RepositoryOptions) {
    this.#db = database.db;
    this.#now = clock(options);
  }

  /**
   * Stores a delivery and returns its seq, or undefined (storing nothing) when the link holds
   * `maxPending` pending deliveries already. The seq comes from one INSERT ... ON CONFLICT DO
   * UPDATE ... WHERE pending < maxPending: the bound and the counter move in one statement, and
   * the cursor row stays locked until the delivery is in, so concurrent appends commit in seq
   * order on both engines.
   */
  async append(
    linkId: string,
    topic: string,
    bodyJson: string,
    maxPending: number,
  ): Promise<number | undefined> {
    assertLinkId(linkId);
    if (typeof topic !== 'string' || topic === '' || topic.length > MAX_TOPIC_LENGTH) {
      throw new StorageError(
        'INVALID_INPUT',
        `link delivery topic must have 1 to ${MAX_TOPIC_LENGTH} characters`,
      );
    }
    if (typeof bodyJson !== 'string' || bodyJson === '') {
      throw new StorageError('INVALID_INPUT', 'link delivery body must be JSON text');
    }
    assertInteger(maxPending, 1, MAX_PENDING_LIMIT, 'maxPending');
    const now = this.#now();
    return this.#db.transaction().execute(async (trx) => {
      const cursor = await trx
        .insertInto('link_outbox_cursors')
        .values({ link_id: linkId, last_seq: 1, acked_seq: 0, updated_at: now })
        .onConflict((oc) =>
          oc
            .column('link_id')
            .doUpdateSet((eb) => ({
              last_seq: eb('link_outbox_cursors.last_seq', '+', 1),
              updated_at: eb.ref('excluded.updated_at'),
            }))
            .where((eb) =>
              eb(
                eb('link_outbox_cursors.last_seq', '-', eb.ref('link_outbox_cursors.acked_seq')),
                '<',
                maxPending,
              ),
            ),
        )
        .returning('last_seq')
        .executeTakeFirst();
      if (cursor === undefined) return undefined;
      await trx
        .insertInto('link_outbox')
        .values({
          link_id: linkId,
          seq: cursor.last_seq,
          topic,
          body: bodyJson,
          created_at: now,
        })
        .execute();
      return cursor.last_seq;
    });
  }

  /** Up to `limit` (1 to 1000) pending deliveries with a seq above `afterSeq`, oldest first. */
  async pendingAfter(linkId: string, afterSeq: number, limit: number): Promise<LinkOutboxEntry[]> {
    assertLinkId(linkId);
    assertInteger(afterSeq, 0, Number.MAX_SAFE_INTEGER, 'afterSeq');
    assertInteger(limit, 1, 1000, 'limit');
    const rows = await this.#db
      .selectFrom('link_outbox')
      .select(['seq', 'topic', 'body'])
      .where('link_id', '=', linkId)
      .where('seq', '>', afterSeq)
      .orderBy('seq')
      .limit(limit)
      .execute();
    return rows.map((row) => ({ seq: row.seq, topic: row.topic, bodyJson: row.body }));
  }

  /**
   * Removes the link's deliveries up to `seq` and records it as acknowledged. Cumulative: a seq
   * at or below the acknowledged one changes nothing; one beyond the last given out stops there.
   */
  async ackUpTo(linkId: string, seq: number): Promise<void> {
    assertLinkId(linkId);
    assertInteger(seq, 0, Number.MAX_SAFE_INTEGER, 'seq');
    const now = this.#now();
    await this.#db.transaction().execute(async (trx) => {
      await trx
        .deleteFrom('link_outbox')
        .where('link_id', '=', linkId)
        .where('seq', '<=', seq)
        .execute();
      await trx
        .updateTable('link_outbox_cursors')
        .set((eb) => ({
          acked_seq: eb.case().when('last_seq', '<', seq).then(eb.ref('last_seq')).else(seq).end(),
          updated_at: now,
        }))
        .where('link_id', '=', linkId)
        .where('acked_seq', '<', seq)
        .execute();
    });
  }

  async pendingCount(linkId: string): Promise<number> {
    assertLinkId(linkId);
    const row = await this.#db
      .selectFrom('link_outbox_cursors')
      .select(['last_seq', 'acked_seq'])
      .where('link_id', '=', linkId)
      .executeTakeFirst();
    return row === undefined ? 0 : row.last_seq - row.acked_seq;
  }
}

function assertLinkId(linkId: string): void {
  if (typeof linkId !== 'string' || linkId === '' || linkId.length > MAX_LINK_ID_LENGTH) {
    throw new StorageError(
      'INVALID_INPUT',
      `link id must have 1 to ${MAX_LINK_ID_LENGTH} characters`,
    );
  }
}
