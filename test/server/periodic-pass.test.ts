import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PeriodicPass } from '../../src/periodic-pass.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('periodic pass', () => {
  it('runs at start and on its period, one pass at a time, and close waits for the pass', async () => {
    let runs = 0;
    let release: (() => void) | undefined;
    const pass = new PeriodicPass(async () => {
      runs += 1;
      if (runs === 2) await new Promise<void>((resolve) => (release = resolve));
      return runs;
    }, 10);
    pass.start();
    assert.equal(runs, 1, 'the first pass runs at once');
    while (runs < 2) await sleep(2);
    // The second pass hangs: ticks and calls meanwhile join it instead of starting another.
    const joined = pass.runOnce();
    await sleep(40);
    assert.equal(runs, 2);
    assert.equal(pass.stopping, false);
    const closed = pass.close();
    assert.equal(pass.stopping, true);
    release?.();
    assert.equal(await joined, 2);
    await closed;
    await sleep(40);
    assert.equal(runs, 2, 'no pass after close');
  });
});
