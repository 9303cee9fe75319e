/**
 * The same server on PostgreSQL (`--database-url postgres://…`): join, uplinks, a downlink and
 * a restart, end to end. Needs the PostgreSQL server of the test environment; without it the
 * test is skipped with a message (GALET_REQUIRE_SERVICES=1 makes that a failure).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  dropPostgresTestDatabase,
  postgresTestHost,
  postgresTestUrl,
  skipOrFail,
} from '../helpers/services.js';
import { ScenarioNetwork } from './helpers.js';

describe('network server on PostgreSQL', () => {
  it('joins, accepts uplinks, delivers a downlink and keeps the session across a restart', async (t) => {
    const url = await postgresTestUrl();
    if (url === undefined) {
      skipOrFail(t, `PostgreSQL on ${postgresTestHost()} is not reachable`);
      return;
    }
    const net = await ScenarioNetwork.start([{ gatewayId: 'aa555a0000000101' }], url);
    try {
      const device = await net.addOtaaDevice('0000000000000f01', '1.0.4');
      await net.join(device);
      await net.queueDownlink(device.devEui, 7, Uint8Array.from([0x42]));
      const first = await net.uplink(device, { fPort: 3, payload: Uint8Array.from([1]) });
      assert.equal(first.event.fCnt, 0);
      const downlink = await net.waitForDownlink(device, 1);
      assert.deepEqual(downlink.payload, Uint8Array.from([0x42]));

      await net.restart();

      const second = await net.uplink(device, { fPort: 3, payload: Uint8Array.from([2]) });
      assert.equal(second.event.fCnt, 1);
      assert.deepEqual(
        (await net.events(device.devEui, 'up')).map((event) => event.fCnt),
        [0, 1],
      );
      assert.equal(await net.metric('galet_network_uplinks_mic_failed_total'), 0);
    } finally {
      await net.close();
      await dropPostgresTestDatabase(url);
    }
  });
});
