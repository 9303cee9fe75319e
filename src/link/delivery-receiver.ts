/**
 * The provider side of deliveries: hands each delivery to the handler of its topic, one at a
 * time and in seq order across reconnections, acks it once the handler resolved, and recognises
 * a delivery handled before (a retransmission) by its seq: it is acked without calling the
 * handler again. The highest handled seq is kept in memory and, through an optional
 * `LinkDeliveryCursor`, durably, so a restarted provider recognises them too.
 *
 * When a handler fails the delivery is nacked and everything after it on that connection is
 * dropped unhandled: the network sends them again, from the failed one on, after a delay.
 */
import { LinkProtocolError } from './errors.js';
import type { LinkLogger } from './log.js';
import { encodeFrame, type LinkDeliveryFrame } from './protocol.js';

/** The provider's durable record of the last delivery it handled. */
export interface LinkDeliveryCursor {
  /** The highest seq handled so far; 0 when none. */
  load(): Promise<number>;
  /** Called after each handled delivery, before its ack. */
  save(seq: number): Promise<void>;
}

export type LinkDeliveryHandler = (body: unknown, seq: number) => Promise<void>;

export interface DeliveryReceiverCounters {
  deliveriesReceived: number;
  /** Handlers that resolved. */
  deliveriesHandled: number;
  /** Deliveries recognised as handled before and acked without calling the handler. */
  deliveriesDuplicate: number;
  /** Handlers that threw or rejected, or deliveries of a topic without a handler; nacked. */
  deliveryHandlerErrors: number;
  /** Deliveries dropped unhandled: after a failed one, or from a connection that closed. */
  deliveriesSkipped: number;
  /** `LinkDeliveryCursor.load` or `save` failed. */
  cursorErrors: number;
}

export function newDeliveryReceiverCounters(): DeliveryReceiverCounters {
  return {
    deliveriesReceived: 0,
    deliveriesHandled: 0,
    deliveriesDuplicate: 0,
    deliveryHandlerErrors: 0,
    deliveriesSkipped: 0,
    cursorErrors: 0,
  };
}

/** What the receiver needs of one connection. */
export interface DeliveryChannel {
  readonly isOpen: boolean;
  send(text: string): boolean;
  readonly logFields: Record<string, unknown>;
}

interface ChannelState {
  /** Bumped by a failure: deliveries queued before it are not handled. */
  epoch: number;
  /** The failed seq, until the network sends it again. */
  nackedSeq: number | undefined;
  queued: number;
}

export interface DeliveryReceiverOptions {
  handlerFor(topic: string): LinkDeliveryHandler | undefined;
  cursor: LinkDeliveryCursor | undefined;
  counters: DeliveryReceiverCounters;
  logger: LinkLogger;
  /** Deliveries queued per connection beyond which the network is misbehaving. */
  maxQueued: number;
}

export class DeliveryReceiver {
  readonly #options: DeliveryReceiverOptions;
  readonly #channels = new WeakMap<DeliveryChannel, ChannelState>();
  #highestHandledSeq = 0;
  #cursorLoaded = false;
  /** One delivery at a time, in arrival order, whatever the connection. */
  #chain: Promise<void> = Promise.resolve();

  constructor(options: DeliveryReceiverOptions) {
    this.#options = options;
  }

  /** Loads the durable cursor once (before the first connection). Throws what `load` throws. */
  async loadCursor(): Promise<void> {
    if (this.#cursorLoaded || this.#options.cursor === undefined) return;
    try {
      const seq = await this.#options.cursor.load();
      if (!Number.isSafeInteger(seq) || seq < 0) {
        throw new TypeError(`the delivery cursor loaded ${String(seq)}, not a seq`);
      }
      this.#highestHandledSeq = Math.max(this.#highestHandledSeq, seq);
      this.#cursorLoaded = true;
    } catch (error) {
      this.#options.counters.cursorErrors++;
      throw error;
    }
  }

  /** A delivery frame arrived on `channel`. Throws a LinkProtocolError when too many are queued. */
  receive(channel: DeliveryChannel, frame: LinkDeliveryFrame): void {
    const counters = this.#options.counters;
    counters.deliveriesReceived++;
    let state = this.#channels.get(channel);
    if (state === undefined) {
      state = { epoch: 0, nackedSeq: undefined, queued: 0 };
      this.#channels.set(channel, state);
    }
    if (state.nackedSeq !== undefined) {
      // Sent before the network saw the nack: it comes again after the failed one.
      if (frame.seq > state.nackedSeq) {
        counters.deliveriesSkipped++;
        return;
      }
      state.nackedSeq = undefined;
    }
    if (state.queued >= this.#options.maxQueued) {
      counters.deliveriesSkipped++;
      throw new LinkProtocolError(
        'WINDOW_EXCEEDED',
        `more than ${this.#options.maxQueued} deliveries waiting to be handled`,
      );
    }
    state.queued++;
    const epoch = state.epoch;
    const channelState = state;
    this.#chain = this.#chain
      .then(() => this.#handle(channel, channelState, epoch, frame))
      .catch((error: unknown) => {
        this.#options.logger.error(
          { ...channel.logFields, seq: frame.seq, error: String(error) },
          'link delivery handling failed',
        );
      });
  }

  /** Resolves when every delivery received so far was handled or dropped. */
  idle(): Promise<void> {
    return this.#chain;
  }

  async #handle(
    channel: DeliveryChannel,
    state: ChannelState,
    epoch: number,
    frame: LinkDeliveryFrame,
  ): Promise<void> {
    const { counters, logger, cursor } = this.#options;
    state.queued--;
    if (epoch !== state.epoch || !channel.isOpen) {
      // The network sends it again (after the failed one, or on the next connection).
      counters.deliveriesSkipped++;
      return;
    }
    if (frame.seq <= this.#highestHandledSeq) {
      counters.deliveriesDuplicate++;
      channel.send(encodeFrame({ type: 'ack', seq: frame.seq }));
      return;
    }
    const handler = this.#options.handlerFor(frame.topic);
    try {
      if (handler === undefined) throw new Error(`no delivery handler for topic ${frame.topic}`);
      await handler(frame.body, frame.seq);
    } catch (error) {
      counters.deliveryHandlerErrors++;
      logger.warn(
        {
          ...channel.logFields,
          seq: frame.seq,
          topic: frame.topic,
          error: error instanceof Error ? error.message : String(error),
        },
        'link delivery handler failed; the network will send it again',
      );
      state.epoch++;
      state.nackedSeq = frame.seq;
      channel.send(encodeFrame({ type: 'nack', seq: frame.seq }));
      return;
    }
    this.#highestHandledSeq = frame.seq;
    counters.deliveriesHandled++;
    if (cursor !== undefined) {
      try {
        await cursor.save(frame.seq);
      } catch (error) {
        // Acked all the same: the network then drops it, so only a lost ack followed by a
        // restart could bring it back to the handler.
        counters.cursorErrors++;
        logger.error(
          { ...channel.logFields, seq: frame.seq, error: String(error) },
          'saving the link delivery cursor failed',
        );
      }
    }
    channel.send(encodeFrame({ type: 'ack', seq: frame.seq }));
  }
}
