import type {
  FeedEventHead,
  NewWebhookDelivery,
  WebhookRepository,
} from '../../../storage/index.js';

/** The name of the dispatcher's durable cursor in `storage.consumerCursors`. */
export const WEBHOOK_CURSOR = 'webhooks';

/**
 * The handler of the webhooks' event feed: for each event, one outbox row per enabled webhook of
 * its application that takes the event's type and was created before the event was stored. The
 * whole batch is queued in one transaction, and a (webhook, event) already queued is skipped, so
 * a batch handed out again (at-least-once feed) adds nothing. Returns how many rows were added.
 */
export function webhookEnqueuer(
  webhooks: Pick<WebhookRepository, 'enabledFor' | 'enqueue'>,
): (events: readonly FeedEventHead[]) => Promise<number> {
  return async (events) => {
    const targets = await webhooks.enabledFor(events.map((event) => event.applicationId));
    if (targets.length === 0) return 0;
    const byApplication = new Map<string, typeof targets>();
    for (const target of targets) {
      byApplication.set(target.applicationId, [
        ...(byApplication.get(target.applicationId) ?? []),
        target,
      ]);
    }
    const deliveries: NewWebhookDelivery[] = [];
    for (const event of events) {
      for (const target of byApplication.get(event.applicationId) ?? []) {
        if (event.id <= target.afterEventId) continue;
        if (target.eventTypes.length > 0 && !target.eventTypes.includes(event.type)) continue;
        deliveries.push({
          webhookId: target.id,
          eventId: event.id,
          devEui: event.devEui,
          eventType: event.type,
        });
      }
    }
    return webhooks.enqueue(deliveries);
  };
}
