import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { newTimeOrderedId } from '../../src/storage/ids.js';

describe('newTimeOrderedId', () => {
  it('makes UUIDv7s that sort in creation order within one millisecond', () => {
    const ids = Array.from({ length: 5000 }, () => newTimeOrderedId(1_700_000_000_000));
    assert.deepEqual([...ids].sort(), ids);
    assert.equal(new Set(ids).size, ids.length);
    for (const id of ids.slice(0, 10)) {
      assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    }
  });

  it('keeps the order when the clock steps back', () => {
    const first = newTimeOrderedId(Date.now() + 60_000);
    const second = newTimeOrderedId(Date.now());
    assert.ok(second > first);
  });
});
