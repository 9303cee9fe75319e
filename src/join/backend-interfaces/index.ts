// LoRaWAN Backend Interfaces messages and key envelopes: pure, no I/O (see README.md).
export * from './key-envelope.js';
export * from './messages.js';
