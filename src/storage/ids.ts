import { randomBytes } from 'node:crypto';

let lastMs = -1;
let sequence = 0;

/**
 * A UUIDv7 (RFC 9562 §5.7) whose 12-bit `rand_a` field counts ids made within one millisecond
 * (§6.2, method 1). Ids made by this process therefore sort as text in creation order, even
 * several per millisecond or when the wall clock steps back: the downlink queue relies on that
 * to keep the order of items enqueued together. `randomUUID()` (v4) cannot give that order.
 */
export function newTimeOrderedId(nowMs: number = Date.now()): string {
  if (nowMs > lastMs) {
    lastMs = nowMs;
    sequence = 0;
  } else if (sequence < 0xfff) {
    sequence += 1;
  } else {
    // 4096 ids in one millisecond: borrow the next one rather than repeat an id.
    lastMs += 1;
    sequence = 0;
  }
  const bytes = randomBytes(16);
  bytes.writeUIntBE(lastMs, 0, 6);
  bytes[6] = 0x70 | (sequence >> 8);
  bytes[7] = sequence & 0xff;
  bytes[8] = 0x80 | (bytes[8]! & 0x3f);
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
