/** The provider link: the network's `LinkServer`, the provider's `LinkClient`, the outbox. */
export {
  LinkClient,
  type LinkClientCounters,
  type LinkClientOptions,
  type LinkClientState,
  type LinkClientStateChange,
  type LinkReconnectOptions,
  linkUrl,
} from './client.js';
export type { LinkTrafficCounters } from './connection.js';
export type { LinkDeliveryCursor, LinkDeliveryHandler } from './delivery-receiver.js';
export * from './downlink-messages.js';
export * from './errors.js';
export type { LinkLogger } from './log.js';
export * from './outbox.js';
export * from './protocol.js';
export {
  CLOSE_REPLACED,
  type LinkAuthenticator,
  type LinkDisconnectInfo,
  LinkServer,
  type LinkServerCounters,
  type LinkServerOptions,
  type LinkServerRequestHandler,
} from './server.js';
