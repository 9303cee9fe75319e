/**
 * The network side of deliveries on one connection: sends the link's pending deliveries from
 * the outbox in seq order with at most `window` unacknowledged, takes the provider's acks and
 * nacks, and after a nack sends again from the refused seq once a delay has passed (doubling
 * while the same seq keeps failing). A new connection gets a new sender, which starts from the
 * oldest unacknowledged delivery: that is the retransmission after a reconnect.
 */
import { LinkProtocolError } from './errors.js';
import type { LinkLogger } from './log.js';
import type { LinkOutboxStore } from './outbox.js';
import { encodeDelivery } from './protocol.js';

export interface DeliveryCounters {
  /** Delivery frames sent, retransmissions included. */
  deliveriesSent: number;
  /** Delivery frames of a seq sent before (after a reconnect or a nack). */
  deliveriesRetransmitted: number;
  /** Deliveries the provider acknowledged. */
  deliveriesAcked: number;
  /** Nacks: the provider's handler failed; the delivery is sent again later. */
  deliveriesNacked: number;
  /** Outbox reads or acks that failed (retried). */
  outboxErrors: number;
}

export interface DeliverySenderOptions {
  linkId: string;
  outbox: LinkOutboxStore;
  window: number;
  redeliveryDelayMs: number;
  maxRedeliveryDelayMs: number;
  /** Wait before reading the outbox again after it failed. */
  outboxRetryDelayMs: number;
  counters: DeliveryCounters;
  logger: LinkLogger;
  /** Sends a frame's text; false when the connection is gone. */
  send(text: string): boolean;
  /** The highest seq ever sent on this link (across connections), to count retransmissions. */
  highestSent: { get(): number; set(seq: number): void };
  /** `count` deliveries were acknowledged. */
  onAcked(count: number): void;
}

export class DeliverySender {
  readonly #options: DeliverySenderOptions;
  /** Sent and not yet acknowledged, in seq order. */
  #inFlight: number[] = [];
  #lastSentSeq = 0;
  #pumping = false;
  #wakeAgain = false;
  /** Changes on every nack, so that a read started before it is not sent after it. */
  #epoch = 0;
  #stopped = false;
  #resumeTimer: NodeJS.Timeout | undefined;
  #nackedSeq = 0;
  #consecutiveNacks = 0;
  #acks: Promise<void> = Promise.resolve();

  constructor(options: DeliverySenderOptions) {
    this.#options = options;
  }

  /** There may be new deliveries in the outbox, or room in the window. */
  wake(): void {
    if (this.#stopped || this.#resumeTimer !== undefined) return;
    if (this.#pumping) {
      this.#wakeAgain = true;
      return;
    }
    void this.#pump();
  }

  /** Cumulative ack. Throws a LinkProtocolError for a seq that was never sent. */
  onAck(seq: number): void {
    if (seq > this.#lastSentSeq) {
      throw new LinkProtocolError('UNKNOWN_SEQ', `ack of seq ${seq}, which was not sent`);
    }
    let acked = 0;
    while (acked < this.#inFlight.length && this.#inFlight[acked]! <= seq) acked++;
    // An ack at or below one already taken: a duplicate, harmless.
    if (acked === 0) return;
    this.#inFlight.splice(0, acked);
    if (seq >= this.#nackedSeq) this.#consecutiveNacks = 0;
    this.#options.counters.deliveriesAcked += acked;
    this.#options.onAcked(acked);
    const { outbox, linkId, logger, counters } = this.#options;
    this.#acks = this.#acks.then(() =>
      outbox.ackUpTo(linkId, seq).catch((error: unknown) => {
        // The next ack covers this one (acks are cumulative); until then, at worst the provider
        // gets these deliveries again and recognises them.
        counters.outboxErrors++;
        logger.error({ linkId, seq, error: String(error) }, 'link outbox ack failed');
      }),
    );
    this.wake();
  }

  /** The oldest delivery in flight failed at the provider: send it again later, from it on. */
  onNack(seq: number): void {
    if (this.#inFlight[0] !== seq) {
      throw new LinkProtocolError(
        'UNKNOWN_SEQ',
        `nack of seq ${seq}, which is not the oldest delivery in flight`,
      );
    }
    this.#options.counters.deliveriesNacked++;
    this.#consecutiveNacks = seq === this.#nackedSeq ? this.#consecutiveNacks + 1 : 1;
    this.#nackedSeq = seq;
    this.#inFlight = [];
    this.#lastSentSeq = seq - 1;
    this.#epoch++;
    const { redeliveryDelayMs, maxRedeliveryDelayMs } = this.#options;
    const delayMs = Math.min(
      maxRedeliveryDelayMs,
      redeliveryDelayMs * 2 ** Math.min(this.#consecutiveNacks - 1, 30),
    );
    this.#pauseFor(delayMs);
  }

  /** The connection is gone: no more sending. */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#resumeTimer);
    this.#resumeTimer = undefined;
  }

  /** Resolves when the outbox acks started so far are done. */
  settled(): Promise<void> {
    return this.#acks;
  }

  #pauseFor(delayMs: number): void {
    clearTimeout(this.#resumeTimer);
    this.#resumeTimer = setTimeout(() => {
      this.#resumeTimer = undefined;
      this.wake();
    }, delayMs);
  }

  async #pump(): Promise<void> {
    this.#pumping = true;
    const { outbox, linkId, window, counters, highestSent } = this.#options;
    try {
      do {
        this.#wakeAgain = false;
        while (!this.#stopped && this.#resumeTimer === undefined) {
          const room = window - this.#inFlight.length;
          if (room <= 0) break;
          const epoch = this.#epoch;
          const entries = await outbox.pendingAfter(linkId, this.#lastSentSeq, room);
          if (this.#stopped) return;
          // A nack came during the read: what was read may start after the refused seq.
          if (epoch !== this.#epoch) continue;
          if (entries.length === 0) break;
          for (const entry of entries) {
            if (entry.seq <= this.#lastSentSeq) continue;
            if (!this.#options.send(encodeDelivery(entry.seq, entry.topic, entry.bodyJson))) {
              return;
            }
            this.#inFlight.push(entry.seq);
            this.#lastSentSeq = entry.seq;
            counters.deliveriesSent++;
            if (entry.seq <= highestSent.get()) counters.deliveriesRetransmitted++;
            else highestSent.set(entry.seq);
          }
        }
      } while (this.#wakeAgain && !this.#stopped);
    } catch (error) {
      counters.outboxErrors++;
      this.#options.logger.error(
        { linkId, error: String(error) },
        'link outbox read failed; retrying',
      );
      if (!this.#stopped) this.#pauseFor(this.#options.outboxRetryDelayMs);
    } finally {
      this.#pumping = false;
    }
  }
}
