import { timingSafeEqual } from 'node:crypto';

/**
 * Compares two MICs (or tokens) without leaking where they differ through timing. Short values
 * (a 4-byte MIC) are compared with a branch-free accumulation, which costs less than the call
 * into node:crypto; longer ones go to timingSafeEqual.
 */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  if (a.length > 32) return timingSafeEqual(a, b);
  let difference = 0;
  for (let i = 0; i < a.length; i++) difference |= a[i]! ^ b[i]!;
  return difference === 0;
}
